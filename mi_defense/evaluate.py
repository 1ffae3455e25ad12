"""Evaluate a distilled set: train fresh ConvNets on it alone and measure test accuracy.

The protocol is ``train.train_model`` (FRePo's evaluation protocol). No checkpoint
selection is done, so the test set is only ever used for the final measurement.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from mi_defense.config import TrainConfig
from mi_defense.errors import UserError
from mi_defense.train import accuracy, train_model


def evaluate_set(x: np.ndarray, y_targets: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, num_classes: int,
                 cfg: TrainConfig, models: int = 5, progress: bool = True, batched: bool = False) -> dict:
    """Train ``models`` fresh models on ``(x, y_targets)``; test accuracy of each.
    ``batched`` trains them together in one graph (``train_many``; the same models)."""
    from mi_defense.train_many import stackable, train_models

    accs, t0 = [], time.time()
    if batched and not stackable(cfg, x):
        raise UserError(f"--batched trains ConvNets without normalisation only (norm is '{cfg.norm}')")
    trained = (train_models([x] * models, [y_targets] * models, num_classes, cfg, [cfg.seed + k for k in range(models)])
               if batched else (train_model(x, y_targets, num_classes, dataclasses.replace(cfg, seed=cfg.seed + k),
                                            progress=progress, desc=f"model {k + 1}/{models}") for k in range(models)))
    for m in trained:
        accs.append(accuracy(m, x_test, y_test))
    return {"test_accuracy_mean": float(np.mean(accs)), "test_accuracy_std": float(np.std(accs)),
            "test_accuracy": [float(a) for a in accs], "models": models, "n_train": int(len(x)),
            "train_steps": int(m.train_steps), "train_config": dataclasses.asdict(cfg), "batched": batched,
            "seconds": time.time() - t0}
