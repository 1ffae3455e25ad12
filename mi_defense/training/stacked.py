"""Train R independent ConvNets together, in one TensorFlow graph.

The R models' weights and Adam moments are stacked on a leading model axis; one step
draws each model's own batch from its own training set with its own seed (the draw and
the augmentation of ``loop.train_model``), runs the R forward and backward passes as
one vectorised computation (``tf.vectorized_map`` over the model axis, which TensorFlow
lowers to batched kernels on the device it picks), and applies Adam with Keras'
update rule to every model at once. The result equals training the models one by one
with ``loop.train_model`` and the same seeds, to float tolerance (tested).

Where it pays: on a GPU, R small models fill the device that one leaves mostly idle.
On a CPU a single width-32 ConvNet already keeps the cores busy, so training R
together is not faster there (``mi-defense bench train`` measures both); the default
everywhere is one model at a time and ``batched=True`` is the choice to make on a GPU.
Only ConvNets without normalisation layers (FRePo's evaluation protocol) are stacked.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np

from mi_defense.config import TrainConfig
from mi_defense.models import build_model
from mi_defense.tfenv import tf
from mi_defense.training.loop import draw_batch, resolve_steps
from mi_defense.training.schedules import WarmupCosine
from mi_defense.training.targets import LOSSES


def stackable(cfg: TrainConfig, x: np.ndarray) -> bool:
    """Whether ``train_models`` can train models of ``cfg`` on inputs like ``x``."""
    return cfg.norm == "none" and x.ndim == 4


def _layers(model) -> list:
    """The (kernel, bias) pairs of a ConvNet, convolutions first, then the head."""
    return [(conv.kernel, conv.bias) for _, conv in model.blocks] + [(model.head.kernel, model.head.bias)]


def _forward(weights: Sequence[tf.Tensor], x, pad_first: bool):
    """The ConvNet of ``models.ConvNet`` (no normalisation) as a pure function of its weights."""
    pairs = [weights[i:i + 2] for i in range(0, len(weights), 2)]
    convs, (head_k, head_b) = pairs[:-1], pairs[-1]
    for i, (k, b) in enumerate(convs):
        if i == 0 and pad_first:
            x = tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]])
        x = tf.nn.relu(tf.nn.conv2d(x, k, 1, "VALID" if (i == 0 and pad_first) else "SAME") + b)
        x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
    return tf.matmul(tf.reshape(x, [tf.shape(x)[0], -1]), head_k) + head_b


def train_models(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], num_classes: int, cfg: TrainConfig,
                 seeds: Sequence[int], on_step: Optional[Callable[[int], None]] = None) -> List[tf.keras.Model]:
    """Train ``len(seeds)`` fresh ConvNets, model ``r`` on ``(xs[r], ys[r])`` with
    ``cfg`` and seed ``seeds[r]``; every training set has the same shape. Returns Keras
    models, as ``train_model`` does. ``on_step(step)`` is called every 100 steps."""
    r_models = len(seeds)
    if not (len(xs) == len(ys) == r_models) or r_models == 0:
        raise ValueError("train_models needs one training set and one seed per model")
    if len({x.shape for x in xs}) != 1 or not stackable(cfg, xs[0]):
        raise ValueError("train_models stacks ConvNets without normalisation on training sets of one shape")
    n = len(xs[0])
    steps = resolve_steps(cfg, n)
    batch = min(n, cfg.batch)
    models = [build_model(xs[0].shape[1:], num_classes, width=cfg.width, depth=cfg.depth, norm="none", seed=s)
              for s in seeds]
    flat = [[v for pair in _layers(m) for v in pair] for m in models]
    w = [tf.Variable(np.stack([f[i].numpy() for f in flat])) for i in range(len(flat[0]))]
    m_ = [tf.Variable(tf.zeros_like(v)) for v in w]
    v_ = [tf.Variable(tf.zeros_like(v)) for v in w]
    x_all = tf.constant(np.stack(xs), tf.float32)
    y_all = tf.constant(np.stack(ys), tf.float32)
    seed_t = tf.constant(np.asarray(seeds, np.int64))
    rgb = xs[0].shape[-1] == 3
    aug_mode = cfg.augment_mode(rgb)
    loss_fn = LOSSES[cfg.loss]
    lr_at = WarmupCosine(cfg.lr, min(cfg.warmup, steps // 2), steps, cfg.lr_final_ratio)
    pad_first = models[0].pad_first
    b1, b2, eps = 0.9, 0.999, 1e-7  # Keras Adam's defaults

    @tf.function
    def train_step(step):
        pairs = [draw_batch(x_all[r], y_all[r], batch, tf.stack([seed_t[r], step]), aug_mode, rgb)
                 for r in range(r_models)]
        xb = tf.stack([p[0] for p in pairs])
        yb = tf.stack([p[1] for p in pairs])
        with tf.GradientTape() as tape:
            out = tf.vectorized_map(lambda a: _forward(a[0], a[1], pad_first), (list(w), xb))
            per_example = loss_fn(tf.reshape(out, [-1, num_classes]), tf.reshape(yb, [-1, num_classes]))
            # model r's gradient is its own
            loss = tf.reduce_sum(tf.reduce_mean(tf.reshape(per_example, [r_models, -1]), axis=1))
        grads = tape.gradient(loss, w)
        t = tf.cast(step + 1, tf.float32)
        alpha = lr_at(step) * tf.sqrt(1.0 - tf.pow(b2, t)) / (1.0 - tf.pow(b1, t))
        for var, g, m, v in zip(w, grads, m_, v_):
            m.assign_add((g - m) * (1.0 - b1))
            v.assign_add((tf.square(g) - v) * (1.0 - b2))
            var.assign_sub((m * alpha) / (tf.sqrt(v) + eps))
        return loss

    for step in range(steps):
        train_step(tf.constant(step, tf.int64))
        if on_step is not None and (step + 1) % 100 == 0:
            on_step(step + 1)
    for r, model in enumerate(models):
        for var, stacked in zip([v for pair in _layers(model) for v in pair], w):
            var.assign(stacked[r])
        model.train_steps = steps
    return models

