"""Regression targets and the per-example training losses.

Integer labels become centred one-hot targets ``onehot(y) - 1/C`` (FRePo's, for the
training loop and for distillation's real batches); ``LOSSES`` names the losses a
``TrainConfig`` can ask for, each per example on outputs and float targets (N, C).
"""
from __future__ import annotations

import numpy as np

from mi_defense.tfenv import tf


def centred_onehot(y, num_classes: int, scale: float = 1.0):
    """``(onehot(y) - 1/C) * scale`` as float32."""
    return (tf.one_hot(y, num_classes) - 1.0 / num_classes) * scale


def targets_for(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Centred one-hot regression targets for integer labels."""
    return centred_onehot(tf.constant(y), num_classes).numpy()


def mse_loss(out, y):
    """Per-example ``0.5 * sum_c (out - y)^2``."""
    return 0.5 * tf.reduce_sum(tf.square(out - y), axis=1)


def xent_loss(out, y):
    return tf.nn.softmax_cross_entropy_with_logits(labels=tf.one_hot(tf.argmax(y, axis=1), tf.shape(y)[1]), logits=out)


LOSSES = {"mse": mse_loss, "xent": xent_loss}
