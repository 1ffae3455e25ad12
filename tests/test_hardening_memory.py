"""A distillation whose arrays cannot fit in the machine's memory is refused up front, with
the estimate and the largest ipc that fits."""
import re

import numpy as np
import pytest

from mi_defense.config import DistillConfig
from mi_defense.distillation import memory
from mi_defense.errors import UserError


def test_the_estimate_grows_with_the_set_and_names_the_largest_ipc_that_fits():
    cfg = DistillConfig(ipc=5000, width=64, batch_real=256)
    parts = memory.estimate(cfg, 54000, (28, 28, 1), 10)
    assert parts["activations for the gradient"] > parts["real pool"] and sum(parts.values()) > 30 * memory.GIB
    sizes = [sum(memory.estimate(cfg, 54000, (28, 28, 1), 10, ipc=k).values()) for k in (1, 10, 100, 1000)]
    assert sizes == sorted(sizes)
    with pytest.raises(UserError) as err:
        memory.check_memory(cfg, 54000, (28, 28, 1), 10, memory=16 * memory.GIB)
    msg = str(err.value)
    assert "needs at least" in msg and "16.0 GiB of memory" in msg and "\n" not in msg
    ipc = int(re.search(r"use --ipc (\d+) or less", msg).group(1))
    assert 0 < ipc < 5000
    memory.check_memory(DistillConfig(ipc=ipc, width=64, batch_real=256), 54000, (28, 28, 1), 10,
                        memory=16 * memory.GIB)
    memory.check_memory(DistillConfig(ipc=10), 54000, (28, 28, 1), 10)  # the quick setting fits this machine
    assert memory.machine_memory() > memory.GIB


def test_dp_readout_gradients_are_counted():
    plain = memory.estimate(DistillConfig(ipc=10), 1000, (32, 32, 3), 10)
    dp = memory.estimate(DistillConfig(ipc=10, epsilon=1.0), 1000, (32, 32, 3), 10)
    assert "per-example gradients (DP)" in dp and "per-example gradients (DP)" not in plain


def test_cli_and_api_refuse_before_allocating_or_writing(tmp_path, capsys, monkeypatch):
    import mi_defense
    from mi_defense.cli import main

    monkeypatch.setattr(memory, "machine_memory", lambda: 20 * 2 ** 20)  # a 20 MiB machine
    out = tmp_path / "d"
    assert main(["distill", "--dataset", "digits", "--ipc", "100", "--steps", "1", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: a distillation of 1000 synthetic images (ipc=100) needs at least") and "\n" not in err
    assert not out.exists()
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images[..., None] * 255 / 16).round().astype(np.uint8)
    with pytest.raises(UserError, match="more than this machine's 0.0 GiB of memory; use --ipc"):
        mi_defense.distill(x, d.target, ipc=100, steps=1)
