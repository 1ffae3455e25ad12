import json
import dataclasses

import numpy as np
import pytest

from mi_defense.auditing import Audit, AuditConfig, run_audit
from mi_defense.auditing.plan import RunId, train_positions
from mi_defense.cli import main
from mi_defense.config import DistillConfig, TrainConfig
from mi_defense.defenses import REGISTRY, Defense, DefenseResult
from mi_defense.errors import UserError
from mi_defense.training.loop import train_model
from mi_defense.training.targets import targets_for

REF0 = RunId("ref", 0)


class Blind(Defense):
    """A target that never sees the members: trained on fresh data from the same distribution."""

    name = "blind"
    _constraints = {}

    def fit(self, x, y, seed):
        rng = np.random.default_rng(seed + 12345)
        xb = rng.standard_normal(x.shape).astype(np.float32)
        yb = rng.integers(0, self.ctx.num_classes, len(x))
        cfg = self.train_cfg(seed, None)
        model = train_model(xb, targets_for(yb, self.ctx.num_classes), self.ctx.num_classes, cfg)
        return DefenseResult(model, None, {"train_accuracy": None, "privacy_statement": "never saw the members"})


@pytest.fixture(autouse=True)
def blind_defense():
    """Registered for each test only: the global registry is left as it was."""
    REGISTRY["blind"] = Blind
    yield
    REGISTRY.pop("blind", None)


@pytest.fixture
def tiny(tmp_path):
    """Random features with random labels over 10 classes: only memorisation fits the members."""
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=rng.standard_normal((300, 12)).astype(np.float32), y_train=np.arange(300) % 10,
             x_test=rng.standard_normal((60, 12)).astype(np.float32), y_test=np.arange(60) % 10)
    return str(path)


def tiny_config(dataset, **kw):
    base = dict(dataset=dataset, members=80, nonmembers=80, references=4, bootstrap=20, n_jobs=1,
                defenses=("none", "blind"),
                attacks=("threshold_loss", "threshold_logit_confidence", "lira_online", "lira_offline_fixed", "rmia"),
                train=TrainConfig(width=256, depth=2, lr=3e-3, warmup=10, steps=300, augment=False))
    base.update(kw)
    return AuditConfig(**base)


def by_name(results):
    return {e["name"]: e for e in results["defenses"]}


@pytest.mark.slow
def test_audit_catches_memorising_target_and_rates_blind_target_near_half(tiny, tmp_path):
    res = run_audit(tiny_config(tiny), tmp_path / "a", progress=False, log=lambda s: None)
    d = by_name(res)
    assert d["none"]["attacks"]["threshold_loss"]["auc"] > 0.95
    assert d["none"]["strongest_attack"]["auc"] > 0.95
    assert d["none"]["train_accuracy"] > 0.95 and not d["none"]["undertrained"]
    assert d["none"]["generalization_gap"] == pytest.approx(d["none"]["train_accuracy"] - d["none"]["test_accuracy"])
    blind = d["blind"]["attacks"]["threshold_loss"]
    assert blind["auc_ci"][0] - 0.05 < 0.5 < blind["auc_ci"][1] + 0.05 and abs(blind["auc"] - 0.5) < 0.15
    assert d["none"]["leave_one_out"]["lira_online"]["n_targets"] == 4
    assert d["none"]["leave_one_out"]["lira_online"]["auc_mean"] > 0.8
    text = (tmp_path / "a" / "results.json").read_text()
    on_disk = json.loads(text)
    assert on_disk["split"]["n_members"] == 80 and on_disk["split"]["hash"]
    assert ({"name", "params", "test_accuracy", "train_accuracy", "attacks", "released_artifact", "privacy_statement"}
            <= set(on_disk["defenses"][0]))
    from importlib import metadata
    assert on_disk["versions"]["tensorflow"] == metadata.version("tensorflow")  # the version that produced the numbers


@pytest.mark.slow
def test_second_scoring_pass_retrains_nothing_and_killed_audit_resumes(tiny, tmp_path):
    cfg = tiny_config(tiny, defenses=("none",))
    a = Audit(cfg, tmp_path / "b", progress=False, log=lambda s: None)
    first = a.run(stop_after_runs=2)  # "killed" after two of five runs
    assert first == {"trained": 2, "cached": 0, "total": 5}
    res1 = run_audit(cfg, tmp_path / "b", progress=False, log=lambda s: None)
    assert res1["timings"]["runs"] == {"trained": 3, "cached": 2, "total": 5}
    res2 = run_audit(cfg, tmp_path / "b", progress=False, log=lambda s: None)
    assert res2["timings"]["runs"] == {"trained": 0, "cached": 5, "total": 5}
    assert res2["defenses"][0]["attacks"] == res1["defenses"][0]["attacks"]
    # a split-only setting recorded in the folder (max_members) does not invalidate its runs
    tc = tmp_path / "b" / "training_config.json"
    tc.write_text(json.dumps({**json.loads(tc.read_text()), "max_members": 500}))
    res3 = run_audit(cfg, tmp_path / "b", progress=False, log=lambda s: None)
    assert res3["timings"]["runs"]["trained"] == 0 and res3["defenses"][0]["attacks"] == res1["defenses"][0]["attacks"]
    # a folder written before the DP-FRePo fields existed (absent there, at their defaults now) keeps its runs
    old = json.loads(tc.read_text())
    assert old["distill"]["lr"] == cfg.distill.image_lr  # recorded as the rate in effect, set or implied by the init
    for k in ("epsilon", "delta", "clip", "pool_bn_momentum"):
        old["distill"].pop(k)
    tc.write_text(json.dumps(old))
    assert (Audit(cfg, tmp_path / "b", progress=False, log=lambda s: None).run()
            == {"trained": 0, "cached": 5, "total": 5})
    # augment recorded as a boolean (before the styles had names): false is none, true is dsa
    assert cfg.train.augment == "none" and old["train"]["augment"] == "none"
    tc.write_text(json.dumps({**old, "train": {**old["train"], "augment": False}}))
    assert (Audit(cfg, tmp_path / "b", progress=False, log=lambda s: None).run()
            == {"trained": 0, "cached": 5, "total": 5})
    tc.write_text(json.dumps({**old, "train": {**old["train"], "augment": True}}))
    with pytest.raises(UserError, match=r"other settings \(train differ\)"):  # runs made with dsa, asked for none
        Audit(cfg, tmp_path / "b", progress=False, log=lambda s: None)
    for style, same in (("dsa", True), ("frepo", True), ("frepo-code", False)):
        other = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, augment=style))
        if same:
            Audit(other, tmp_path / "b", progress=False, log=lambda s: None)  # the style true meant (dsa, once frepo)
        else:
            with pytest.raises(UserError, match=r"other settings \(train differ\)"):
                Audit(other, tmp_path / "b", progress=False, log=lambda s: None)
    # a folder written before the evaluation's learning-rate floor existed decayed to zero:
    # reused at the default (0), refused under FRePo's code's 0.01
    assert old["train"].pop("lr_final_ratio") == 0.0
    tc.write_text(json.dumps(old))
    assert (Audit(cfg, tmp_path / "b", progress=False, log=lambda s: None).run()
            == {"trained": 0, "cached": 5, "total": 5})
    floor = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr_final_ratio=0.01))
    with pytest.raises(UserError, match=r"other settings \(train differ\)"):
        Audit(floor, tmp_path / "b", progress=False, log=lambda s: None)
    old["distill"]["lr"] = 0.5  # a real change is still caught
    tc.write_text(json.dumps(old))
    with pytest.raises(UserError, match=r"other settings \(distill differ\)"):
        Audit(cfg, tmp_path / "b", progress=False, log=lambda s: None)
    # the cached runs are never mixed with runs of other training settings
    with pytest.raises(UserError, match="other settings .*references"):
        run_audit(tiny_config(tiny, defenses=("none",), references=2), tmp_path / "b", progress=False,
                  log=lambda s: None)


@pytest.mark.slow
def test_sharded_runs_merge_into_the_same_result(tiny, tmp_path):
    cfg = tiny_config(tiny, defenses=("none",))
    whole = run_audit(cfg, tmp_path / "one", progress=False, log=lambda s: None)
    assert run_audit(cfg, tmp_path / "sh", shard=(0, 2), progress=False, log=lambda s: None) is None
    with pytest.raises(UserError, match="missing"):
        Audit(cfg, tmp_path / "sh", progress=False).score()  # shard 1 not done yet
    run_audit(cfg, tmp_path / "sh", shard=(1, 2), progress=False, log=lambda s: None)
    merged = run_audit(cfg, tmp_path / "sh", progress=False, log=lambda s: None)
    assert merged["timings"]["runs"]["trained"] == 0
    for name, r in whole["defenses"][0]["attacks"].items():
        assert merged["defenses"][0]["attacks"][name]["auc"] == pytest.approx(r["auc"], abs=1e-9), name


def test_audit_cli_rejects_bad_input(tiny, tmp_path, capsys):
    assert main(["audit", "--dataset", tiny, "--defense", "dpsgd:epsilon=3", "--out", str(tmp_path / "c")]) == 2
    assert "no parameter(s) epsilon" in capsys.readouterr().err
    assert main(["audit", "--dataset", tiny, "--references", "3", "--out", str(tmp_path / "c")]) == 2
    assert "even" in capsys.readouterr().err
    for spec, msg in (("frepo:ipc=ten", "ipc=ten is not a positive whole number"),
                      ("dpsgd:eps=-1", "eps=-1 is not a finite positive number"),
                      ("frepo:ipc=1,eps=8,clip_space=pixels", "clip_space 'pixels' unknown; use readout or features")):
        assert main(["audit", "--dataset", tiny, "--defense", "none", "--defense", spec, "--out",
                     str(tmp_path / "c")]) == 2
        assert msg in capsys.readouterr().err
        assert not (tmp_path / "c" / "cache").exists()  # rejected before anything was trained
    (tmp_path / "bad.toml").write_text("[audit]\nreferencez = 4\n")
    assert main(["audit", "--dataset", tiny, "--config", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "c")]) == 2
    assert "unknown key(s) referencez" in capsys.readouterr().err
    assert not (tmp_path / "c" / "results.json").exists()


def test_bare_subset_is_resolved_once_to_the_distilled_set_size(tiny, tmp_path, monkeypatch):
    # `subset` takes its size from the first FRePo set (ipc x classes), resolved once when the
    # audit is planned: the cache folder and the results name the size, so a changed defense
    # list never finds runs of another size under the same name.
    from mi_defense.auditing import setup

    built, make = [], setup.make_defense
    monkeypatch.setattr(setup, "make_defense", lambda spec, ctx: built.append(str(spec)) or make(spec, ctx))
    a = Audit(tiny_config(tiny, defenses=("subset", "frepo:ipc=2")), tmp_path / "d", progress=False, log=lambda s: None)
    assert [str(s) for s in a.specs] == ["subset:n=20", "frepo:ipc=2"]
    assert sorted(built) == ["frepo:ipc=2", "subset:n=20"]  # each defense built once; the size from FRePo's checked ipc
    monkeypatch.undo()
    a.train_run(a.specs[0], REF0)
    assert a._load(a.specs[0], REF0)["meta"]["n_train"] == 20
    b = Audit(tiny_config(tiny, defenses=("subset", "frepo:ipc=3")), tmp_path / "d", progress=False, log=lambda s: None)
    assert b.specs[0].key == "subset_n=30" and not b.cache.has(b.specs[0], REF0)
    c = Audit(tiny_config(tiny, defenses=("subset:n=20", "frepo:ipc=3")), tmp_path / "d", progress=False,
              log=lambda s: None)
    assert c.cache.has(c.specs[0], REF0) and c._stale(c.specs[0], REF0) is None  # an explicit size finds its runs


def cached(audit, meta):
    """A cached reference run 0 with ``meta``, trained on the examples the audit's plan gives it."""
    return {"meta": meta, "train_positions": train_positions(audit.setup, REF0)}


def test_a_cached_dp_frepo_run_is_reused_only_under_the_clip_space_and_start_it_recorded(tiny, tmp_path):
    # runs cached before the clipping space was recorded were clipped in feature space, the
    # default then; the default is now the readout, so such a run must be trained again
    a = Audit(tiny_config(tiny, defenses=("frepo:ipc=1,eps=8,init=noise",)), tmp_path / "e", progress=False,
              log=lambda s: None)
    spec = a.specs[0]
    assert a.defenses[spec.key].resolved() == {"clip_space": "readout", "init": "noise"}
    assert "clip_space=None (now readout)" in a._stale(spec, REF0, cached(a, {"epsilon": 8.0, "init": "noise"}))
    assert a._stale(spec, REF0, cached(a, {"epsilon": 8.0, "clip_space": "readout", "init": "noise"})) is None
    b = Audit(tiny_config(tiny, defenses=("frepo:ipc=1,eps=8,init=noise,clip_space=features",)), tmp_path / "f",
              progress=False, log=lambda s: None)
    assert "clip_space=readout (now features)" in b._stale(b.specs[0], REF0, cached(b, {"clip_space": "readout"}))
    # the start likewise (white noise, then smoothed noise when the spec names none)
    c = Audit(tiny_config(tiny, defenses=("frepo:ipc=1,eps=8",)), tmp_path / "h", progress=False, log=lambda s: None)
    assert c.defenses[c.specs[0].key].config(0).init == "smooth-noise"
    assert "init=noise (now smooth-noise)" in c._stale(c.specs[0], REF0,
                                                       cached(c, {"clip_space": "readout", "init": "noise"}))
    # a context starting from members (refused under DP) gives the DP spec smoothed noise too
    d = Audit(tiny_config(tiny, defenses=("frepo:ipc=1,eps=8",), distill=DistillConfig(init="real")), tmp_path / "i",
              progress=False, log=lambda s: None)
    assert d.defenses[d.specs[0].key].config(0).init == "smooth-noise"
    assert Audit(tiny_config(tiny, defenses=("frepo:ipc=1",)), tmp_path / "g", progress=False,
                 log=lambda s: None).defenses["frepo_ipc=1"].resolved() == {}  # FRePo without DP: nothing to check


def test_undertrained_undefended_target_is_flagged(tiny, tmp_path):
    from mi_defense.reporting import render_report

    cfg = tiny_config(tiny, defenses=("none:epochs=1",), references=0, attacks=("threshold_loss",))
    res = run_audit(cfg, tmp_path / "u", progress=False, log=lambda s: None)
    e = res["defenses"][0]
    assert e["train_accuracy"] < 0.95 and e["undertrained"] and e["recipe"]["epochs"] == 1
    render_report(tmp_path / "u")
    assert "undertrained: leakage underestimated" in (tmp_path / "u" / "report.md").read_text()


def test_corrupt_cached_run_is_trained_again(tiny, tmp_path):
    cfg = tiny_config(tiny, defenses=("none",), references=0, attacks=("threshold_loss",))
    first = run_audit(cfg, tmp_path / "c", progress=False, log=lambda s: None)
    (tmp_path / "c" / "cache" / "none" / "target0.npz").write_bytes(b"PK\x03\x04 truncated")
    logs = []
    again = run_audit(cfg, tmp_path / "c", progress=False, log=logs.append)
    assert again["timings"]["runs"]["trained"] == 1 and any("corrupt" in line for line in logs)
    assert again["defenses"][0]["test_accuracy"] == first["defenses"][0]["test_accuracy"]  # same seed, same numbers


def test_a_cached_run_trained_on_other_examples_is_trained_again(tiny, tmp_path):
    # committed runs are reused on other machines: another split, seed or dataset file must not
    # pass for the audit's own runs
    a = Audit(tiny_config(tiny, defenses=("none",), references=2), tmp_path / "o", progress=False, log=lambda s: None)
    a.train_run(a.specs[0], REF0)
    assert a._stale(a.specs[0], REF0) is None and (a.specs[0], REF0) not in a.todo()[0]
    run = a.cache.read(a.specs[0], REF0)
    run["train_positions"] = np.sort(train_positions(a.setup, RunId("ref", 1)))  # the other half's examples
    a.cache.write(a.specs[0], REF0, run.pop("meta"), **run)
    assert "other examples" in a._stale(a.specs[0], REF0)
    assert (a.specs[0], REF0) in a.todo()[0]
    with pytest.raises(UserError, match="other examples"):
        a._load(a.specs[0], REF0)


def test_run_ids_print_as_their_cache_names_and_get_distinct_seeds():
    from mi_defense.auditing.plan import RunId, jobs

    assert str(RunId("target", 0)) == "target0" and str(RunId("ref", 15)) == "ref15"
    seeds = [r.seed(7) for _, r in jobs(["d"], 2, 16)]
    assert len(set(seeds)) == len(seeds) == 18 and RunId("ref", 0).seed(7) == 8
    with pytest.raises(ValueError):
        RunId("reference", 0)
