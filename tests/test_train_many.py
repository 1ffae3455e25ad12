"""Several models trained together in one graph equal the same models trained one by one."""
import dataclasses
import json

import numpy as np
import pytest

from mi_defense.cli import main
from mi_defense.config import TrainConfig
from mi_defense.data import Transform, load_dataset
from mi_defense.training.evaluate import evaluate_set, predict
from mi_defense.training.loop import train_model
from mi_defense.training.stacked import stackable, train_models
from mi_defense.training.targets import targets_for


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    return Transform.fit(ds.x_train)(ds.x_train), ds.y_train


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_models_trained_together_equal_models_trained_one_by_one(digits, loss):
    x, y = digits
    rng = np.random.default_rng(0)
    sets = [rng.choice(len(x), 40, replace=False) for _ in range(3)]  # each model its own training set
    cfg = TrainConfig(width=8, depth=2, steps=30, batch=16, warmup=5, loss=loss)
    seeds = [3, 4, 5]
    together = train_models([x[s] for s in sets], [targets_for(y[s], 10) for s in sets], 10, cfg, seeds)
    outs = []
    for s, seed, m in zip(sets, seeds, together):
        alone = train_model(x[s], targets_for(y[s], 10), 10, dataclasses.replace(cfg, seed=seed))
        assert m.train_steps == alone.train_steps == 30
        np.testing.assert_allclose(predict(m, x[:300]), predict(alone, x[:300]), rtol=1e-4, atol=1e-5)
        outs.append(predict(m, x[:300]))
    assert not np.allclose(outs[0], outs[1], atol=1e-2)  # three different models, not one copied


def test_only_convnets_without_normalisation_are_stacked(digits):
    x, y = digits
    assert stackable(TrainConfig(), x) and not stackable(TrainConfig(norm="batch"), x)
    with pytest.raises(ValueError):
        train_models([x[:10], x[:12]], [targets_for(y[:10], 10), targets_for(y[:12], 10)], 10, TrainConfig(), [0, 1])


@pytest.mark.slow
def test_batched_evaluation_gives_the_same_accuracies(digits):
    x, y = digits
    cfg = TrainConfig(width=8, depth=2, steps=40, batch=50, warmup=5)
    a = evaluate_set(x[:50], targets_for(y[:50], 10), x[1000:], y[1000:], 10, cfg, models=2, progress=False)
    b = evaluate_set(x[:50], targets_for(y[:50], 10), x[1000:], y[1000:], 10, cfg, models=2, progress=False,
                     batched=True)
    assert b["batched"] and not a["batched"]
    # at most a borderline image or two
    np.testing.assert_allclose(a["test_accuracy"], b["test_accuracy"], atol=2 / 797)


@pytest.mark.slow
def test_bench_train_writes_both_rates(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["bench", "train", "--dataset", "digits", "--models", "2", "--width", "4", "--depth", "2",
                 "--train-size", "50", "--batch", "25", "--steps", "110", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["models"] == 2 and r["timed_steps"] == 10 and r["batch"] == 25
    assert (r["speedup"]
            == pytest.approx(r["batched_model_steps_per_second"] / r["one_at_a_time_model_steps_per_second"]))
    assert "model-steps/s" in capsys.readouterr().out
    assert main(["bench", "train", "--dataset", "digits", "--models", "0"]) == 2
    assert main(["bench", "train", "--dataset", "digits", "--steps", "50"]) == 2
