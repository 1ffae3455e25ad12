"""Executors: a local Ray runtime trains the same runs as this process, and a worker that
dies mid-task does not stop the audit."""
import numpy as np
import pytest

from mi_defense.audit import AuditConfig, run_audit
from mi_defense.audit.executors import FAULT_ENV, LocalExecutor, RayExecutor, make_executor
from mi_defense.config import TrainConfig
from mi_defense.errors import UserError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=rng.standard_normal((300, 12)).astype(np.float32), y_train=np.arange(300) % 10,
             x_test=rng.standard_normal((60, 12)).astype(np.float32), y_test=np.arange(60) % 10)
    return str(path)


def _cfg(dataset):
    return AuditConfig(dataset=dataset, members=60, nonmembers=60, references=2, bootstrap=10, n_jobs=1, defenses=("none",),
                       attacks=("threshold_loss", "lira_online_fixed"),
                       train=TrainConfig(width=64, depth=2, lr=3e-3, warmup=5, steps=60, augment=False))


def test_make_executor_rejects_unknown_names():
    assert isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(UserError, match="unknown; use local or ray"):
        make_executor("slurm")


def test_ray_executor_equals_local_and_survives_a_killed_worker(tiny, tmp_path):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'mi-defense[ray]')")
    cfg = _cfg(tiny)
    local = run_audit(cfg, tmp_path / "local", progress=False, log=lambda s: None)
    marker = tmp_path / "killed-once"
    logs = []
    try:
        ex = RayExecutor(address="local", max_retries=2, runtime_env={"env_vars": {FAULT_ENV: str(marker), "TF_CPP_MIN_LOG_LEVEL": "3"}})
        remote = run_audit(cfg, tmp_path / "ray", progress=False, log=logs.append, executor=ex)
    finally:
        ray.shutdown()
    assert marker.exists()  # one worker did die mid-task, and its run was retried
    assert any("ray: 3 run(s) submitted" in m for m in logs)
    assert remote["timings"]["runs"]["trained"] == 3
    a, b = local["defenses"][0], remote["defenses"][0]
    assert b["test_accuracy"] == pytest.approx(a["test_accuracy"], abs=1e-9)
    for name, r in a["attacks"].items():
        assert b["attacks"][name]["auc"] == pytest.approx(r["auc"], abs=1e-6), name
    with np.load(tmp_path / "local" / "cache" / "none" / "ref1.npz") as x, np.load(tmp_path / "ray" / "cache" / "none" / "ref1.npz") as y:
        np.testing.assert_allclose(x["logits"], y["logits"], rtol=1e-4, atol=1e-5)
