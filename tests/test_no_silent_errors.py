"""Regression tests: results that used to be silently wrong."""
import json

import numpy as np
import pytest

import attacks
from mi_defense.auditing import Audit, AuditConfig, run_audit
from mi_defense.cli import main
from mi_defense.config import TrainConfig
from mi_defense.defenses import REGISTRY, Defense, DefenseResult
from mi_defense.errors import UserError
from mi_defense.io import to_json
from mi_defense.training.loop import train_model
from mi_defense.training.targets import targets_for


class Copycat(Defense):
    """Releases the first 10 members (barely perturbed) as its 'synthetic' set."""

    name = "copycat"
    releases = True

    def fit(self, x, y, seed):
        cfg = self.train_cfg(seed, 5)
        model = train_model(x, targets_for(y, self.ctx.num_classes), self.ctx.num_classes, cfg)
        pos = np.arange(10)
        rel = x[pos] + 1e-3 * np.random.default_rng(seed).standard_normal(x[pos].shape).astype(np.float32)
        return DefenseResult(model, {"x": rel, "y": targets_for(y[pos], self.ctx.num_classes), "labels": y[pos],
                                     "init_positions": pos},
                             {"train_accuracy": None, "privacy_statement": "copies members"})


@pytest.fixture
def copycat():
    REGISTRY["copycat"] = Copycat
    yield
    REGISTRY.pop("copycat", None)


def _image_sets(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (240, 8, 8, 1), dtype=np.uint8)
    xt = rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)
    y, yt = np.arange(240) % 10, np.arange(40) % 10
    np.savez(tmp_path / "u8.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    np.savez(tmp_path / "f32.npz", x_train=x.astype(np.float32) / 255, y_train=y, x_test=xt.astype(np.float32) / 255,
             y_test=yt)
    return str(tmp_path / "u8.npz"), str(tmp_path / "f32.npz")


def _cfg(dataset, **kw):
    base = dict(dataset=dataset, members=60, nonmembers=60, references=0, bootstrap=0, n_jobs=1, defenses=("copycat",),
                attacks=("release_pixel",), train=TrainConfig(width=4, depth=1, steps=5, augment=False))
    base.update(kw)
    return AuditConfig(**base)


def test_release_attack_is_the_same_for_uint8_and_float_copies_of_a_dataset(tmp_path, copycat):
    u8, f32 = _image_sets(tmp_path)
    res = [run_audit(_cfg(d), tmp_path / name, progress=False,
                     log=lambda s: None)["defenses"][0]["attacks"]["release_pixel"]
           for d, name in ((u8, "a"), (f32, "b"))]
    assert res[0]["auc"] == pytest.approx(res[1]["auc"], abs=1e-9)
    for r in res:  # the ten copied members sit on the release: all found before any false positive
        assert r["slices"]["init_members"]["tpr_at_fpr"]["0.01"] == 1.0
        assert r["tpr_at_fpr"]["0.01"] >= 10 / 60


def test_failed_audit_writes_nothing_and_a_saved_split_must_match(tmp_path, copycat):
    u8, _ = _image_sets(tmp_path)
    out = tmp_path / "a"
    with pytest.raises(UserError, match="ipcc"):
        Audit(_cfg(u8, members=50, defenses=("frepo:ipcc=10",)), out, progress=False)
    assert not out.exists()
    a = Audit(_cfg(u8, members=100), out, progress=False)
    assert (len(a.split.members) == 100
            and json.loads((out / "split.json").read_text())["members"] == a.split.members.tolist())
    with pytest.raises(UserError, match="another split"):
        Audit(_cfg(u8, members=50), out, progress=False)


def test_attack_list_that_applies_to_nothing_runs_nothing(tmp_path):
    rng = np.random.default_rng(0)
    inp = attacks.AttackInputs(labels=np.arange(40) % 4, membership=np.arange(40) < 20,
                               logits=rng.standard_normal((40, 4)))
    assert attacks.run(inp, attacks=[], bootstrap=0) == {}
    u8, _ = _image_sets(tmp_path)
    with pytest.raises(UserError, match="none of the requested attacks"):
        Audit(_cfg(u8, defenses=("none",)), tmp_path / "n", progress=False)
    assert not (tmp_path / "n").exists()


def test_infinite_epsilon_is_refused_and_json_is_strict(tmp_path, capsys):
    rc = main(["audit", "--dataset", "digits", "--defense", "dpsgd:eps=inf", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "eps=inf" in err and "Traceback" not in err and not (tmp_path / "o").exists()
    text = to_json({"a": float("inf"), "b": [float("nan"), 1.5], "c": np.float32("-inf")})

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")
    assert json.loads(text, parse_constant=refuse) == {"a": None, "b": [None, 1.5], "c": None}


def _distill(tmp_path, *extra):
    return main(["distill", "--dataset", "digits", "--ipc", "1", "--steps", "20", "--width", "4", "--depth", "1",
                 "--batch-real", "32", "--pool-size", "2", "--checkpoint-every", "10", "--out", str(tmp_path / "d"),
                 "--quiet", *extra])


@pytest.mark.slow
def test_distill_resume_refuses_other_settings_and_keeps_the_whole_history(tmp_path, capsys, monkeypatch):
    from mi_defense.distillation import api

    real = api.distill
    monkeypatch.setattr(api, "distill", lambda *a, **k: real(*a, **{**k, "stop_after": 10}))
    assert _distill(tmp_path) == 0  # killed after step 10 (checkpoint written)
    monkeypatch.setattr(api, "distill", real)
    split_before = (tmp_path / "d" / "PRIVATE-do-not-release" / "split.json").read_text()
    capsys.readouterr()
    assert _distill(tmp_path, "--resume", "--seed", "5", "--lr", "0.01") == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "Traceback" not in err
    assert (tmp_path / "d" / "PRIVATE-do-not-release" / "split.json").read_text() == split_before
    assert _distill(tmp_path, "--resume") == 0
    meta = json.loads((tmp_path / "d" / "PRIVATE-do-not-release" / "run.json").read_text())
    assert [h["step"] for h in meta["loss_history"]] == [10, 20] and meta["complete"]
    # removed once the set is complete
    assert not (tmp_path / "d" / "PRIVATE-do-not-release" / "checkpoint.npz").exists()
    assert _distill(tmp_path, "--resume") == 0  # already finished: the same history, no crash
    again = json.loads((tmp_path / "d" / "PRIVATE-do-not-release" / "run.json").read_text())
    assert again["loss_history"] == meta["loss_history"] and again["final_loss"] == meta["final_loss"]


def test_keep_checkpoint_keeps_it(tmp_path):
    assert _distill(tmp_path, "--keep-checkpoint") == 0
    assert ((tmp_path / "d" / "PRIVATE-do-not-release" / "checkpoint.npz").is_file()
            and (tmp_path / "d" / "distilled.npz").is_file())
