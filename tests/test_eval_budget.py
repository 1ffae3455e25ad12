"""``evaluate`` is sized to the distillation it measures: a set distilled with the ``small``
preset (named in its private run record) gets 2 models per set and half of FRePo's protocol
steps; any other set, or one without a run record, the full protocol (3 models, 1000 / 2000
/ 5000 steps). Explicit ``models`` and ``steps`` override the rule. No model is trained:
the training entry point is replaced by a stub that records what it was asked to train."""
import json

import numpy as np
import pytest

import mi_defense.api as api
from mi_defense.config import EVAL_BUDGETS, eval_budget


@pytest.fixture
def asked(monkeypatch):
    import mi_defense.training.evaluate as training_evaluate

    calls = []

    def fake_set(x, y, x_test, y_test, num_classes, cfg, models=3, progress=True, batched=False, on_model=None):
        calls.append((models, cfg.steps))
        return {"test_accuracy_mean": 0.5, "test_accuracy_std": 0.0, "models": models, "n_train": int(len(x)),
                "train_config": {"width": cfg.width}}

    monkeypatch.setattr(training_evaluate, "evaluate_set", fake_set)
    return calls


def _split(folder):
    """The split beside the set (digits has no test set: the split's test share is used)."""
    from mi_defense.data import load_dataset, make_split

    make_split(load_dataset("digits"), 200, 100, seed=0).save(folder / "PRIVATE-do-not-release" / "split.json")


def _record(folder, preset):
    _split(folder)
    run = {"kind": "frepo-distill-run", "preset": preset, "config": {"width": 32, "depth": 3, "steps": 1000}}
    (folder / "PRIVATE-do-not-release" / "run.json").write_text(json.dumps(run))


@pytest.mark.parametrize("preset, models, steps, budget", [
    ("small", 2, 500, "small"),     # 10 images: the protocol's 1000 steps, halved
    ("quick", 3, None, "full"),     # None: the protocol's steps, resolved by the training loop
    (None, 3, None, "full"),        # an older record without the preset
])
def test_the_default_work_follows_the_distillation_preset(distilled_digits, asked, preset, models, steps, budget):
    _record(distilled_digits, preset)
    r = api.evaluate(distilled_digits / "distilled.npz", "digits")
    assert asked == [(models, steps)] and r["budget"] == budget


def test_without_a_run_record_the_full_protocol(distilled_digits, asked):
    _split(distilled_digits)
    api.evaluate(distilled_digits / "distilled.npz", "digits")
    assert asked == [(3, None)]


def test_given_models_and_steps_override_the_budget(distilled_digits, asked):
    _record(distilled_digits, "small")
    api.evaluate(distilled_digits / "distilled.npz", "digits", models=4, steps=700)
    api.evaluate(distilled_digits / "distilled.npz", "digits", preset="quick")  # a training preset: full protocol
    assert asked == [(4, 700), (3, None)]


def test_the_budget_table():
    small = {"width": 32, "steps": 1000}
    assert eval_budget("small", small) == "small" and eval_budget("quick", small) == eval_budget(None, small) == "full"
    # the small preset with larger settings (--steps 5000, --width 128) is evaluated in full
    assert eval_budget("small", {"width": 32, "steps": 5000}) == eval_budget("small", {"width": 128, "steps": 500}) \
        == "full"
    assert EVAL_BUDGETS["small"].models < EVAL_BUDGETS["full"].models
    assert EVAL_BUDGETS["small"].step_fraction == 0.5 and EVAL_BUDGETS["full"].step_fraction == 1.0


def test_the_distillation_records_its_preset(tmp_path):
    from mi_defense.api import distill_dataset

    distill_dataset("digits", out=tmp_path / "d", steps=2, members=300, progress=False)
    run = json.loads((tmp_path / "d" / "PRIVATE-do-not-release" / "run.json").read_text())
    assert run["preset"] == "small"


def test_the_array_api_records_the_preset_it_chose():
    from sklearn.datasets import load_digits

    from mi_defense.api import distill

    d = load_digits()
    x = np.round(d.images[:300, :, :, None] * (255 / 16)).astype(np.uint8)
    released = distill(x, d.target[:300], steps=2)
    assert released.private["preset"] == "small"  # auto, below 20 000 images: evaluate sizes its budget by it
    assert "preset" not in released.provenance


def test_a_path_names_the_dataset_as_a_string_does(distilled_digits, asked, tmp_path):
    from pathlib import Path

    from mi_defense.errors import UserError

    _split(distilled_digits)
    api.evaluate(distilled_digits / "distilled.npz", Path("digits"))  # a registered name as a Path
    with pytest.raises(UserError, match="no such|not found|does not exist") as e:
        api.evaluate(distilled_digits / "distilled.npz", tmp_path / "absent.npz")
    assert "must name the data" not in str(e.value)
    assert asked == [(3, None)]
