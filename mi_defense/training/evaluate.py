"""Measure trained models: their outputs and accuracy, and a distilled set's worth (train
fresh ConvNets on it alone and measure their test accuracy).

The protocol of ``evaluate_set`` is ``loop.train_model`` (FRePo's evaluation protocol). No
checkpoint selection is done, so the test set is only ever used for the final measurement.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from mi_defense.config import TrainConfig
from mi_defense.errors import UserError
from mi_defense.tfenv import tf
from mi_defense.training.loop import train_model
from mi_defense.training.stacked import stackable, train_models


def predict(model, x: np.ndarray, batch: int = 1000, features: bool = False) -> np.ndarray:
    """Model outputs (or penultimate features) for ``x`` in batches, inference mode."""
    fn = model.features if features else model
    f = tf.function(lambda b: fn(b, training=False))
    outs = [f(tf.constant(x[i:i + batch], tf.float32)).numpy() for i in range(0, len(x), batch)]
    return (np.concatenate(outs) if outs
            else np.zeros((0, model.feature_dim if features else model.config["num_classes"]), np.float32))


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(predict(model, x), axis=1) == y))


def check_batched(cfg: TrainConfig, x: np.ndarray) -> None:
    """Refuse ``batched`` training of models ``stacked.train_models`` cannot train together."""
    if not stackable(cfg, x):
        raise UserError("batched (--batched) trains ConvNets without normalisation on images only "
                        f"(norm is '{cfg.norm}'); train the models one at a time")


def evaluate_set(x: np.ndarray, y_targets: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, num_classes: int,
                 cfg: TrainConfig, models: int = 3, progress: bool = True, batched: bool = False,
                 on_model=None) -> dict:
    """Train ``models`` fresh models on ``(x, y_targets)``; test accuracy of each.
    ``batched`` trains them together in one graph (``stacked.train_models``; the same models).
    ``on_model()``, when given, is called after each model is measured (progress and estimates)."""
    accs, t0 = [], time.time()
    if models < 1:
        raise UserError(f"models must be a whole number >= 1 (train at least one model), got {models!r}")
    if batched:
        check_batched(cfg, x)
    trained = (train_models([x] * models, [y_targets] * models, num_classes, cfg, [cfg.seed + k for k in range(models)])
               if batched else (train_model(x, y_targets, num_classes, dataclasses.replace(cfg, seed=cfg.seed + k),
                                            progress=progress, desc=f"model {k + 1}/{models}") for k in range(models)))
    for m in trained:
        accs.append(accuracy(m, x_test, y_test))
        if on_model is not None:
            on_model()
    return {"test_accuracy_mean": float(np.mean(accs)), "test_accuracy_std": float(np.std(accs)),
            "test_accuracy": [float(a) for a in accs], "models": models, "n_train": int(len(x)),
            "train_steps": int(m.train_steps), "train_config": dataclasses.asdict(cfg), "batched": batched,
            "seconds": time.time() - t0}
