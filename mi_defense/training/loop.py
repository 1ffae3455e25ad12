"""Train a fresh model on (x, y): the one training loop of the package.

FRePo's evaluation protocol ("Dataset Distillation using Neural Feature Regression"):
a ConvNet without normalisation, Adam (lr 3e-4) with a linear warm-up over the first 500
steps then cosine decay to zero, mean-squared error on the (learned or centred one-hot)
labels, batch ``min(n, 500)``, one random augmentation per batch, and 1000 / 2000 / 5000
steps for training sets of up to 10 / 100 / more examples (the paper's 10 / 100 / 500
synthetic images). Models trained on real data use the same loop with the real-data
recipe of ``training.recipes`` (cross-entropy, length in epochs). The schedule is
``training.schedules.WarmupCosine``, the targets and losses ``training.targets``, the
augmentations ``training.augment``; ``training.stacked`` trains R models of this loop
together and ``training.evaluate`` measures them.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import numpy as np

from mi_defense.config import TrainConfig
from mi_defense.models import build_model
from mi_defense.tfenv import tf
from mi_defense.training.augment import STYLES, augment, flip_crop
from mi_defense.training.schedules import WarmupCosine
from mi_defense.training.targets import LOSSES


def default_steps(n_examples: int) -> int:
    """1000 steps for a training set of <= 10 examples, 2000 for <= 100, 5000 beyond
    (FRePo's protocol for 10 / 100 / 500 synthetic images)."""
    if n_examples <= 10:
        return 1000
    if n_examples <= 100:
        return 2000
    return 5000


def resolve_steps(cfg: TrainConfig, n_examples: int) -> int:
    """``cfg.steps``; else ``ceil(epochs * n / batch)``; else FRePo's protocol default."""
    if cfg.steps:
        return int(cfg.steps)
    if cfg.epochs:
        return max(1, int(math.ceil(cfg.epochs * n_examples / min(cfg.batch, n_examples))))
    return default_steps(n_examples)


def draw_batch(xs, ys, batch: int, seed, aug_mode: str, rgb: bool):
    """One training batch of ``(xs, ys)``: ``batch`` indices drawn with the stateless
    ``seed`` (the whole set when ``batch`` covers it), then the augmentation of
    ``aug_mode`` with ``seed + 3``. Shared by ``train_model`` and ``stacked.train_models``."""
    n = int(xs.shape[0])
    if batch < n:
        ids = tf.random.stateless_uniform([batch], seed, 0, n, dtype=tf.int64)
        xs, ys = tf.gather(xs, ids), tf.gather(ys, ids)
    if aug_mode in STYLES:
        xs = augment(xs, seed + 3, rgb, aug_mode)
    elif aug_mode == "flip_crop":
        xs = flip_crop(xs, seed + 3)
    return xs, ys


def check_user_model(model, x: np.ndarray, num_classes: int) -> None:
    """A caller's model must be a Keras model whose output is ``num_classes`` wide on ``x``."""
    from mi_defense.errors import UserError

    if not isinstance(model, tf.keras.Model):
        raise UserError(f"expected a tf.keras.Model, got {type(model).__name__}; "
                        "build one with tf.keras.Sequential or the functional API")
    try:
        out = model(tf.constant(x[:1], tf.float32), training=False)
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
        raise UserError(f"the model does not take inputs of shape {tuple(x.shape[1:])} "
                        f"({str(exc).splitlines()[0][:120]}); give it that input shape") from None
    if len(out.shape) != 2 or out.shape[-1] != num_classes:
        raise UserError(f"the model's output has shape {tuple(out.shape)}, expected (batch, {num_classes}): "
                        f"end it with Dense({num_classes}) and no softmax")


def train_model(x: np.ndarray, y: np.ndarray, num_classes: int, cfg: TrainConfig,
                progress: bool = False, desc: str = "train",
                on_step: Optional[Callable[[int, tf.keras.Model], None]] = None,
                model: Optional[tf.keras.Model] = None):
    """Train a fresh model on inputs ``x`` and float targets ``y`` (N, C); return it.
    ``model``: a Keras model of the caller's to train instead of the package's ConvNet
    (its output must be ``num_classes`` wide).

    Adam with warm-up and cosine decay (DP-SGD has its own loop, ``defenses.dpsgd``).
    ``on_step(step, model)`` is called every 100 steps (used to record attack AUC over
    training).
    """
    from mi_defense.progress import progress as progress_bar

    n = len(x)
    steps = resolve_steps(cfg, n)
    batch = min(n, cfg.batch)
    if model is None:
        model = build_model(x.shape[1:], num_classes, width=cfg.width, depth=cfg.depth, norm=cfg.norm, seed=cfg.seed)
    else:
        check_user_model(model, x, num_classes)
    opt = tf.keras.optimizers.Adam(WarmupCosine(cfg.lr, min(cfg.warmup, steps // 2), steps, cfg.lr_final_ratio))
    xs = tf.constant(x, tf.float32)
    ys = tf.constant(y, tf.float32)
    rgb = x.ndim == 4 and x.shape[-1] == 3
    aug_mode = cfg.augment_mode(rgb) if x.ndim == 4 else "none"
    loss_fn = LOSSES[cfg.loss]

    @tf.function
    def train_step(step):
        xb, yb = draw_batch(xs, ys, batch, tf.stack([tf.constant(cfg.seed, tf.int64), step]), aug_mode, rgb)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(model(xb, training=True), yb))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    bar = progress_bar(range(steps), desc=desc, unit="step", disable=not progress, leave=False, dynamic_ncols=True)
    for step in bar:
        loss = train_step(tf.constant(step, tf.int64))
        if progress and step % 50 == 0:  # reading the loss is a host round-trip: only for the bar
            bar.set_postfix(loss=f"{float(loss):.4f}")
        if on_step is not None and (step + 1) % 100 == 0:
            on_step(step + 1, model)
    bar.close()
    model.train_steps = steps
    return model


def with_seed(cfg: TrainConfig, seed: int) -> TrainConfig:
    return dataclasses.replace(cfg, seed=seed)
