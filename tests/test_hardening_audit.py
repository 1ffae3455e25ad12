"""Audit start-up and cache failures are one-line errors, and a failed start-up writes nothing."""
import sys

import numpy as np
import pytest

from mi_defense.auditing import AuditConfig, run_audit
from mi_defense.auditing.executors import RayExecutor, check_ray_address, make_executor
from mi_defense.cli import main
from mi_defense.config import TrainConfig
from mi_defense.errors import UserError
from mi_defense.io import write_npz


@pytest.fixture
def tiny(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=rng.standard_normal((200, 12)).astype(np.float32), y_train=np.arange(200) % 4,
             x_test=rng.standard_normal((40, 12)).astype(np.float32), y_test=np.arange(40) % 4)
    return str(path)


def _cfg(dataset):
    return AuditConfig(dataset=dataset, members=40, nonmembers=40, references=0, bootstrap=5, n_jobs=1,
                       defenses=("none",), attacks=("threshold_loss",),
                       train=TrainConfig(width=8, depth=2, warmup=2, steps=10, augment=False))


def _one_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.parametrize("address", ["not a host:::", "head", "head:99999", "http://head:6379"])
def test_a_malformed_ray_address_is_refused_before_anything_is_written(tmp_path, capsys, tiny, address):
    out = tmp_path / "audit"
    assert main(["audit", "--dataset", tiny, "--defense", "none", "--references", "0", "--executor", "ray",
                 "--ray-address", address, "--out", str(out), "--quiet"]) == 2
    _one_line(capsys, "is not one; give HOST:PORT")
    assert not out.exists()
    with pytest.raises(UserError, match="RAY_ADDRESS"):
        make_executor("ray", address=address)


def test_ray_address_forms_ray_accepts_pass(monkeypatch):
    for address in (None, "auto", "local", "10.0.0.5:6379", "head-node.example:6379", "ray://head:10001", "ray://head",
                    "[::1]:6379"):
        check_ray_address(address)
    monkeypatch.setenv("RAY_ADDRESS", "bad:::")
    with pytest.raises(UserError, match="'bad:::'"):
        RayExecutor()


def test_an_unreachable_ray_cluster_writes_no_split(tmp_path, capsys, tiny, monkeypatch):
    ray = pytest.importorskip("ray")

    def refuse(*args, **kwargs):
        raise ConnectionError("Could not find any running Ray instance.\nPlease specify the one to connect to")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    out = tmp_path / "audit"
    assert main(["audit", "--dataset", tiny, "--defense", "none", "--references", "0", "--executor", "ray",
                 "--ray-address", "127.0.0.1:6379", "--out", str(out), "--quiet"]) == 2
    _one_line(capsys, "cannot reach the Ray cluster at 127.0.0.1:6379 (Could not find any running Ray instance.)")
    assert not out.exists()  # no split.json, no training_config.json
    import mi_defense

    with pytest.raises(UserError, match="cannot reach the Ray cluster"):
        mi_defense.audit(out=tmp_path / "api", dataset=tiny, defenses=["none"], references=0, executor="ray",
                         executor_options={"address": "127.0.0.1:6379"})
    assert not (tmp_path / "api").exists()


def test_ray_not_installed_writes_no_split(tmp_path, capsys, tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    out = tmp_path / "audit"
    assert main(["audit", "--dataset", tiny, "--defense", "none", "--references", "0", "--executor", "ray",
                 "--out", str(out), "--quiet"]) == 2
    _one_line(capsys, "needs Ray")
    assert not out.exists()


def test_a_cached_run_with_nan_logits_is_refused_in_one_line(tmp_path, tiny):
    out = tmp_path / "audit"
    run_audit(_cfg(tiny), out, progress=False, log=lambda s: None)
    path = next((out / "cache" / "none").glob("target*.npz"))
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["logits"][3, 1] = np.nan
    write_npz(path, **arrays)
    with pytest.raises(UserError) as err:
        run_audit(_cfg(tiny), out, progress=False, log=lambda s: None)
    msg = str(err.value)
    assert str(path) in msg and "logits hold 1 NaN" in msg and "delete it" in msg and "\n" not in msg
    path.unlink()  # the fix the message gives: the run is trained again and scored
    assert run_audit(_cfg(tiny), out, progress=False, log=lambda s: None)["defenses"][0]["attacks"]
