"""Executors: a local Ray runtime trains the same runs as this process, and a worker that
dies mid-task does not stop the audit."""
import numpy as np
import pytest

from mi_defense.auditing import AuditConfig, run_audit
from mi_defense.auditing.executors import FAULT_ENV, LocalExecutor, RayExecutor, groups, make_executor
from mi_defense.auditing.plan import RunId
from mi_defense.config import DistillConfig, TrainConfig
from mi_defense.errors import UserError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=rng.standard_normal((300, 12)).astype(np.float32), y_train=np.arange(300) % 10,
             x_test=rng.standard_normal((60, 12)).astype(np.float32), y_test=np.arange(60) % 10)
    return str(path)


def _cfg(dataset):
    return AuditConfig(dataset=dataset, members=60, nonmembers=60, references=2, bootstrap=10, n_jobs=1,
                       defenses=("none",), attacks=("threshold_loss", "lira_online_fixed"),
                       train=TrainConfig(width=64, depth=2, lr=3e-3, warmup=5, steps=60, augment=False))


def test_make_executor_rejects_unknown_names():
    assert isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(UserError, match="unknown; use local or ray"):
        make_executor("slurm")
    with pytest.raises(UserError, match="--together must be a whole number >= 1, got 0"):
        make_executor("local", together=0)


def test_groups_put_reference_runs_of_one_defense_together_and_targets_alone():
    t0, r = RunId("target", 0), [RunId("ref", m) for m in range(5)]
    todo = [("a", t0)] + [("a", x) for x in r] + [("b", t0), ("b", r[0]), ("b", r[1])]
    got = [(s, [str(x) for x in runs]) for s, runs in groups(todo, 2)]
    assert got == [("a", ["target0"]), ("a", ["ref0", "ref1"]), ("a", ["ref2", "ref3"]), ("a", ["ref4"]),
                   ("b", ["target0"]), ("b", ["ref0", "ref1"])]
    assert len(groups(todo, 1)) == len(todo)


def test_the_setup_writes_nothing_pickles_and_executors_hand_each_run_to_on_done(tiny, tmp_path):
    """``prepare`` checks and writes nothing; the set-up pickles (Ray ships it to its workers
    once); an executor computes runs from it and hands each to ``on_done``, writing nothing."""
    import pickle

    from mi_defense.auditing.setup import prepare

    out = tmp_path / "never-written"
    setup = prepare(_cfg(tiny), out, progress=False, log=lambda s: None)
    copy = pickle.loads(pickle.dumps(setup))
    assert copy.n_members == 60 and list(copy.defenses) == ["none"] and np.array_equal(copy.x_u, setup.x_u)
    got = []
    runs = [(setup.specs[0], RunId("ref", m)) for m in range(2)]
    assert LocalExecutor().run(copy, runs, lambda *a: got.append(a), progress=False, log=lambda s: None) == 2
    assert [(str(s), str(r)) for s, r, _, _ in got] == [("none", "ref0"), ("none", "ref1")]
    meta, arrays = got[1][2:]
    assert meta["run"] == "ref1" and np.array_equal(arrays["train_positions"], np.flatnonzero(setup.masks[:, 1]))
    assert not out.exists()


@pytest.mark.slow
def test_reference_runs_trained_together_equal_runs_trained_one_by_one(tmp_path):
    """none and subset stack their models; FRePo distils each run, then trains the downstream
    models together; the tabular MLP of the Ray test cannot stack and falls back (same code)."""
    cfg = AuditConfig(dataset="digits", members=100, nonmembers=100, references=2, bootstrap=10, n_jobs=1,
                      defenses=("none", "subset:n=20", "frepo:ipc=1,steps=2"),
                      attacks=("threshold_loss", "lira_online_fixed"),
                      train=TrainConfig(width=8, depth=2, lr=3e-3, warmup=5, steps=40),
                      distill=DistillConfig(ipc=1, steps=2, width=8, depth=2, batch_real=32, pool_size=2,
                                            max_online_updates=3))
    one = run_audit(cfg, tmp_path / "one", progress=False, log=lambda s: None)
    together = run_audit(cfg, tmp_path / "together", progress=False, log=lambda s: None,
                         executor=LocalExecutor(together=2))
    for a, b in zip(one["defenses"], together["defenses"]):
        assert b["test_accuracy"] == pytest.approx(a["test_accuracy"], abs=1e-9)  # the target trains alone either way
        for name, r in a["attacks"].items():
            assert b["attacks"][name]["auc"] == pytest.approx(r["auc"], abs=2e-3), (a["name"], name)
        for m in range(2):
            with np.load(tmp_path / "one" / "cache" / a["key"] / f"ref{m}.npz") as x, \
                    np.load(tmp_path / "together" / "cache" / a["key"] / f"ref{m}.npz") as y:
                # float32 sums in another order, over 40 Adam steps: differences of 1e-3 (a wrong seed or set: order 1)
                np.testing.assert_allclose(x["logits"], y["logits"], rtol=1e-3, atol=5e-3, err_msg=a["name"])
                np.testing.assert_array_equal(x["train_positions"], y["train_positions"])
    from mi_defense.auditing.cache import RunCache
    from mi_defense.config import DefenseSpec

    cache = RunCache(tmp_path / "together")
    assert cache.read(DefenseSpec.parse("subset:n=20"), RunId("ref", 1))["meta"]["trained_together"] == 2
    assert "trained_together" not in cache.read(DefenseSpec.parse("subset:n=20"), RunId("target", 0))["meta"]


@pytest.mark.slow
def test_ray_executor_equals_local_and_survives_a_killed_worker(tiny, tmp_path):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'mi-defense[ray]')")
    cfg = _cfg(tiny)
    local = run_audit(cfg, tmp_path / "local", progress=False, log=lambda s: None)
    marker = tmp_path / "killed-once"
    logs = []
    try:
        ex = RayExecutor(address="local", max_retries=2,
                         runtime_env={"env_vars": {FAULT_ENV: str(marker), "TF_CPP_MIN_LOG_LEVEL": "3"}})
        remote = run_audit(cfg, tmp_path / "ray", progress=False, log=logs.append, executor=ex)
    finally:
        ray.shutdown()
    assert marker.exists()  # one worker did die mid-task, and its run was retried
    assert any("ray: 3 run(s) in 3 task(s) submitted" in m for m in logs)
    assert remote["timings"]["runs"]["trained"] == 3
    a, b = local["defenses"][0], remote["defenses"][0]
    assert b["test_accuracy"] == pytest.approx(a["test_accuracy"], abs=1e-9)
    for name, r in a["attacks"].items():
        assert b["attacks"][name]["auc"] == pytest.approx(r["auc"], abs=1e-6), name
    with np.load(tmp_path / "local" / "cache" / "none" / "ref1.npz") as x, \
            np.load(tmp_path / "ray" / "cache" / "none" / "ref1.npz") as y:
        np.testing.assert_allclose(x["logits"], y["logits"], rtol=1e-4, atol=1e-5)
