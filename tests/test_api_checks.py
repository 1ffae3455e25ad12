"""The API checks its own arguments: bad input raises a one-line ``UserError`` naming the
problem and the fix, before any training and before anything is written; and ``evaluate``
keeps the random subset's member indices out of its result and its JSON. Nothing here
trains a model: the training entry points are replaced by stubs that fail when reached."""
import json

import numpy as np
import pytest

import mi_defense
import mi_defense.api as api
from mi_defense.errors import UserError


def _never(*_a, **_k):
    raise AssertionError("reached training: the argument was not checked first")


@pytest.fixture
def no_training(monkeypatch):
    import mi_defense.auditing as auditing
    import mi_defense.training.evaluate as training_evaluate

    monkeypatch.setattr(training_evaluate, "evaluate_set", _never)
    monkeypatch.setattr(auditing, "run_audit", _never)


def _one_line(exc_info, *expect):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for e in expect:
        assert e in msg, msg
    return msg


@pytest.fixture
def distilled(distilled_digits):
    """A distilled.npz for digits (``conftest.distilled_digits``: only its format matters here)."""
    return distilled_digits / "distilled.npz"


@pytest.mark.parametrize("kwargs,expect", [
    ({"models": 0}, ["models must be a whole number >= 1", "got 0"]),
    ({"models": -2}, ["models must be a whole number >= 1"]),
    ({"models": 1.5}, ["models must be a whole number >= 1"]),
    ({"models": True}, ["models must be a whole number >= 1"]),
    ({"compare_width": -1}, ["compare_width must be a whole number >= 0", "0 for none"]),
    ({"preset": "fast"}, ["preset 'fast' unknown", "quick", "paper"]),
    ({"only_subset": True, "compare_width": 32}, ["only_subset (--only-subset)", "compare_width (--compare-width)"]),
])
def test_evaluate_refuses_bad_arguments_before_training(distilled, no_training, kwargs, expect):
    with pytest.raises(UserError) as e:
        api.evaluate(distilled, "digits", json_path=distilled.parent / "e.json", **kwargs)
    _one_line(e, *expect)
    assert not (distilled.parent / "e.json").exists()


def test_evaluate_checks_json_path_before_anything(tmp_path, no_training):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError) as e:  # the set does not even exist: the path is checked first
        api.evaluate(tmp_path / "none.npz", "digits", json_path=tmp_path / "afile" / "e.json")
    _one_line(e, "json_path (--json)", "which is a file")
    with pytest.raises(UserError) as e:
        api.evaluate(tmp_path / "none.npz", "digits", json_path=tmp_path)
    _one_line(e, "is a folder; give a file path")


def test_evaluate_refuses_an_unknown_preset_below_the_api_too(distilled, no_training):
    from mi_defense.distillation.evaluation import evaluate_distilled

    with pytest.raises(UserError) as e:
        evaluate_distilled(distilled, "digits", preset="fast", progress=False)
    _one_line(e, "preset 'fast' unknown; use quick or paper")


def test_evaluate_subset_without_the_private_record_is_refused_before_training(distilled, tmp_path, no_training):
    rng = np.random.default_rng(2)  # data with a test set, so the set alone could be evaluated
    np.savez(tmp_path / "data.npz", x_train=rng.integers(0, 256, (100, 8, 8, 1), dtype=np.uint8),
             y_train=np.arange(100) % 10, x_test=rng.integers(0, 256, (50, 8, 8, 1), dtype=np.uint8),
             y_test=np.arange(50) % 10)
    for flag in ("baseline_subset", "only_subset"):
        with pytest.raises(UserError) as e:
            api.evaluate(distilled, str(tmp_path / "data.npz"), **{flag: True})
        _one_line(e, "baseline_subset (--baseline-subset)", "split.json")


def test_batched_with_normalisation_is_refused_before_training(distilled, no_training):
    with pytest.raises(UserError) as e:
        api.evaluate(distilled, "digits", batched=True, norm="batch")
    _one_line(e, "batched (--batched)", "norm is 'batch'")


def test_evaluate_settings_are_named_for_both_callers(distilled, no_training):
    with pytest.raises(UserError) as e:
        api.evaluate(distilled, "digits", steps=0)
    assert "command line" not in _one_line(e, "steps must be a whole number >= 1")
    with pytest.raises(UserError) as e:
        api.evaluate(distilled, "digits", wdith=3)
    assert "command line" not in _one_line(e, "unknown key(s) wdith")


@pytest.mark.parametrize("shard", [(0, 0), (3, 3), (4, 3), (-1, 2), (0.0, 2), (True, 2), (1,), (0, 1, 2), "0/4", 3])
def test_audit_refuses_a_bad_shard_before_training(tmp_path, no_training, shard):
    with pytest.raises(UserError) as e:
        api.audit(dataset="digits", defenses=["none"], references=0, out=tmp_path / "o", shard=shard)
    _one_line(e, "shard", "0 <= i < n", "--shard 0/4")
    assert not (tmp_path / "o").exists()


def test_audit_accepts_numpy_shard_numbers(tmp_path, monkeypatch):
    import mi_defense.auditing as auditing

    seen = []
    monkeypatch.setattr(auditing, "run_audit", lambda cfg, out, shard=None, **k: seen.append(shard))
    assert api.audit(dataset="digits", defenses=["none"], references=0, out=tmp_path / "o",
                     shard=(np.int64(1), np.int64(3))) is None
    assert seen == [(1, 3)] and all(type(v) is int for v in seen[0])


def test_the_cli_turns_the_api_refusals_into_status_2(tmp_path, capsys, no_training):
    from mi_defense.cli import main

    assert main(["audit", "--dataset", "digits", "--defense", "none", "--references", "0", "--shard", "0/0", "--quiet",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "0 <= i < n" in err
    assert main(["evaluate", "--distilled", str(tmp_path / "none.npz"), "--preset", "quick", "--models", "0"]) == 2
    assert "models must be a whole number >= 1" in capsys.readouterr().err


def test_private_dir_is_importable_but_not_the_users_api():
    assert api.PRIVATE_DIR == "PRIVATE-do-not-release"
    assert "PRIVATE_DIR" not in api.__all__ and "PRIVATE_DIR" not in mi_defense.__all__
    assert {"distill_dataset", "evaluate", "fetch_dataset", "list_datasets"} <= set(mi_defense.__all__)
    assert all(hasattr(mi_defense, n) for n in mi_defense.__all__) and all(hasattr(api, n) for n in api.__all__)


def test_evaluate_keeps_the_subset_members_out_of_its_result(distilled, tmp_path, monkeypatch):
    """The random subset's training-set indices name members of the private data: they go
    into the private run record beside the set, never into the result or its JSON."""
    import mi_defense.training.evaluate as training_evaluate
    from mi_defense.data import load_dataset, make_split

    ds = load_dataset("digits")
    split = make_split(ds, 200, 100, seed=0)
    split.save(distilled.parent / "PRIVATE-do-not-release" / "split.json")
    trained = []

    def fake_set(x, y, x_test, y_test, num_classes, cfg, models=3, progress=True, batched=False, on_model=None):
        trained.append(len(x))
        return {"test_accuracy_mean": 0.5, "test_accuracy_std": 0.0, "models": models, "n_train": int(len(x)),
                "train_config": {"width": cfg.width}}

    monkeypatch.setattr(training_evaluate, "evaluate_set", fake_set)
    r = api.evaluate(distilled, "digits", models=1, baseline_subset=True, seed=4, json_path=tmp_path / "e.json")
    assert trained == [10, 10]
    written = (tmp_path / "e.json").read_text()
    assert "members" not in json.loads(written)["random_subset"] and "members" not in r["random_subset"]
    private = distilled.parent / "PRIVATE-do-not-release" / "random-subset-seed4.json"
    assert (r["random_subset"]["members_file"] == str(private)
            and json.loads(written)["random_subset"]["members_file"] == str(private))
    record = json.loads(private.read_text())
    chosen = np.array(record["members"])
    assert record["seed"] == 4 and record["split_hash"] == split.hash and record["n_train"] == 10
    assert (set(chosen) <= set(split.members.tolist())
            and np.bincount(ds.y_train[chosen], minlength=10).tolist() == [1] * 10)
    # no member list anywhere in the public JSON
    assert not [k for k in _keys(json.loads(written)) if "member" in k and k != "members_file"]


def _keys(d):
    for k, v in d.items():
        yield k
        if isinstance(v, dict):
            yield from _keys(v)


def test_a_subset_larger_than_a_class_of_the_members_is_a_one_line_error():
    from types import SimpleNamespace

    from mi_defense.distillation.evaluation import _random_subset

    ds = SimpleNamespace(y_train=np.array([0, 0, 0, 1]), num_classes=2, class_names=["cat", "dog"],
                         x_train=np.zeros((4, 2, 2, 1), np.uint8))
    with pytest.raises(UserError, match=r"2 members per class.*fewer of class dog$|fewer of class dog;"):
        _random_subset(ds, SimpleNamespace(members=np.arange(4)), 4, lambda x: x, 0, "distilled.npz")


@pytest.mark.parametrize("bad", [None, 3, ""])
def test_an_output_path_that_is_not_one_is_a_one_line_error(bad, tmp_path):
    from mi_defense.io import check_writable_dir, check_writable_file

    with pytest.raises(UserError, match="is not a folder path"):
        check_writable_dir(bad, "out (--out)")
    with pytest.raises(UserError, match="is not a file path"):
        check_writable_file(bad, "json_path (--json)")
    with pytest.raises(UserError, match="out \\(--out\\) .* is not a folder path"):
        api.audit(preset="quick", out=bad)


def test_arrays_are_not_left_behind_by_a_call_refused_for_its_settings(tmp_path):
    x = np.zeros((40, 4, 4, 1), np.uint8)
    y = np.arange(40) % 2
    with pytest.raises(UserError, match="bogus"):
        api.audit(x, y, preset="bogus", out=tmp_path / "a")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("call, expect", [
    (lambda out: api.audit(out=out, dataset="digits", executor_options={"unknown": 1}),
     "executor option\\(s\\) unknown unknown for the local executor; it takes together"),
    (lambda out: api.audit(out=out, dataset="digits", executor_options=[1]), "executor_options must be a dict"),
    (lambda out: api.audit(np.zeros((40, 4, 4, 1), np.uint8), np.arange(40) % 2, out=out,
                           executor_options={"address": "x"}), "unknown for the local executor"),
    (lambda out: api.evaluate("distilled.npz", None), "dataset must name the data"),
    (lambda out: api.evaluate(None, "digits"), "distilled must be the path of a distilled.npz"),
    (lambda out: api.fetch_dataset(["mnist"]), "unknown dataset \\['mnist'\\]; give one name"),
])
def test_arguments_of_the_wrong_kind_are_one_line_errors_and_write_nothing(call, expect, tmp_path, no_training):
    with pytest.raises(UserError, match=expect) as e:
        call(tmp_path / "out")
    _one_line(e)
    assert not (tmp_path / "out").exists()
