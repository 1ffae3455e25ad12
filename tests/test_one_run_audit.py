"""The end-to-end one-run canary audit (Steinke, Nasr & Jagielski 2023) can fail: DP-SGD
with its noise removed inside the real training loop, still claiming its epsilon, is
caught; the correct defense stays below its claim."""
import json

import numpy as np
import pytest

from mi_defense.auditing import AuditConfig
from mi_defense.auditing.one_run import audit_one_run, make_canaries
from mi_defense.cli import main
from mi_defense.config import TrainConfig


@pytest.fixture
def clusters(tmp_path):
    """Four well-separated Gaussian classes in 12 dimensions: a wrong label is an outlier a model can only memorise."""
    rng = np.random.default_rng(0)
    centers = 3 * rng.standard_normal((4, 12))
    y, yt = np.arange(1200) % 4, np.arange(200) % 4
    path = tmp_path / "clusters.npz"
    np.savez(path, x_train=(centers[y] + rng.standard_normal((1200, 12))).astype(np.float32), y_train=y,
             x_test=(centers[yt] + rng.standard_normal((200, 12))).astype(np.float32), y_test=yt)
    return str(path)


def config(data):
    return AuditConfig(dataset=data, members=400, references=0, n_jobs=1, defenses=("none",),
                       train=TrainConfig(width=256, depth=2, lr=3e-3, warmup=10, steps=600, augment=False))


@pytest.mark.slow
def test_one_run_catches_dpsgd_without_noise_and_not_the_correct_one(clusters):
    quiet = dict(canaries=200, log=lambda s: None)
    correct = audit_one_run("dpsgd:eps=1", config(clusters), **quiet)
    broken = audit_one_run("dpsgd:eps=1", config(clusters), broken="noise", **quiet)
    assert correct.claimed_epsilon == pytest.approx(1.0, abs=1e-3) == broken.claimed_epsilon  # the break still claims 1
    assert correct.audited_epsilon_lower_bound < 1.0 and not correct.caught
    assert broken.audited_epsilon_lower_bound > 1.5 and broken.caught
    assert correct.guesses == 20 and broken.right > correct.right


def test_canaries_are_wrongly_labelled_or_noise_and_bad_requests_are_one_line_errors(clusters, capsys):
    rng = np.random.default_rng(1)
    x, y = np.random.default_rng(2).integers(0, 255, (50, 4, 4, 1)).astype(np.uint8), np.arange(50) % 5
    cx, cy, used = make_canaries(x, y, 5, 20, "mislabelled", rng)
    assert len(cx) == 20 and all(((cx[i] == x).all(axis=(1, 2, 3)) & (y != cy[i])).any() for i in range(20))
    assert (cx == x[used]).all() and (cy != y[used]).all() and len(set(used)) == 20
    nx, ny, _ = make_canaries(x, y, 5, 20, "noise", rng)
    assert nx.dtype == np.uint8 and nx.shape == (20, 4, 4, 1) and ny.max() < 5
    for argv, msg in ((["--one-run", "dpsgd:eps=1", "--dataset", clusters, "--canaries", "10", "--guesses", "6"],
                       "guesses"),
                      (["--one-run", "dpsgd:eps=1", "--dataset", clusters, "--canaries", "5000"],
                       "lie outside the members"),
                      (["--one-run", "none", "--dataset", clusters, "--canaries", "20", "--break", "noise"],
                       "applies to dpsgd")):
        assert main(["canary", *argv]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, err


def test_one_run_cli_writes_its_result(clusters, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["canary", "--one-run", "none", "--dataset", clusters, "--members", "200", "--canaries", "40",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["defense"] == "none" and r["claimed_epsilon"] is None and r["canaries"] == 40 and r["guesses"] == 4
    assert "audited epsilon >=" in capsys.readouterr().out
