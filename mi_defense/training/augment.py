"""Batch augmentations for training on few examples (as in FRePo's evaluation protocol).

One augmentation is drawn per batch from {colour, crop, rotate, translate, cutout}
(+ horizontal flip for RGB), with per-example random parameters. Inputs are images in
model space (N, H, W, C). Two parameter sets (``STYLES``):

- ``dsa`` (the default; recorded as ``true`` or ``frepo`` before the sets had names): the
  set of Differentiable Siamese Augmentation ("Dataset Condensation with Differentiable
  Siamese Augmentation", Zhao & Bilen 2021): brightness shift up to +-0.5, contrast factor
  in [0.5, 1.5], saturation in [0, 2], zoom in by up to 20 %, rotation up to +-15 degrees,
  translation up to 1/8 of the size, a hole of half the side centred anywhere, zero fill
  outside the image.
- ``frepo-code``: the milder ones of FRePo's public evaluation code ("Dataset Distillation
  using Neural Feature Regression"): brightness shift up to +-0.25, contrast and
  saturation factors log-uniform in [e^-0.25, e^0.25], a random resized crop zooming by a
  log-uniform factor in [0.8, 1.25] (in or out), rotation up to +-15 degrees, translation
  up to 1/8 of the size, one square hole of a quarter of the side inside the image; the
  geometric ones resample bilinearly and extend the border pixels (no constant fill).

``flip_crop`` is the usual augmentation for models trained on real RGB images.
"""
from __future__ import annotations

import math

from mi_defense.tfenv import tf


def _project(x, t, fill: str):
    """Resample each image of ``x`` bilinearly through its projective transform (a row of
    ``t``, output to input coordinates); ``fill``: CONSTANT (zeros) or NEAREST outside."""
    return tf.raw_ops.ImageProjectiveTransformV3(images=x, transforms=t, output_shape=tf.shape(x)[1:3],
                                                 interpolation="BILINEAR", fill_mode=fill, fill_value=0.0)


def _draws(x, shared: bool):
    """How many parameter draws a batch gets: one per example, or one for all (``shared``)."""
    return 1 if shared else tf.shape(x)[0]


def _affine(x, seed, kind: str, fill: str = "CONSTANT", shared: bool = False):
    n = tf.shape(x)[0]
    h = tf.cast(tf.shape(x)[1], tf.float32)
    w = tf.cast(tf.shape(x)[2], tf.float32)
    u = tf.broadcast_to(tf.random.stateless_uniform([_draws(x, shared), 3], seed, -1.0, 1.0), [n, 3])
    one, zero = tf.ones([n]), tf.zeros([n])
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    if kind == "rotate":  # +-15 degrees about the centre
        a = u[:, 0] * 15.0 * math.pi / 180.0
        c, s = tf.cos(a), tf.sin(a)
        tx = cx - c * cx + s * cy
        ty = cy - s * cx - c * cy
        t = tf.stack([c, -s, tx, s, c, ty, zero, zero], axis=1)
    elif kind == "crop":  # zoom in by 0..20%, random centre shift (random resized crop)
        sc = 1.0 - 0.2 * tf.abs(u[:, 0])
        tx = (1.0 - sc) * cx + u[:, 1] * (1.0 - sc) * cx
        ty = (1.0 - sc) * cy + u[:, 2] * (1.0 - sc) * cy
        t = tf.stack([sc, zero, tx, zero, sc, ty, zero, zero], axis=1)
    else:  # translate by up to 1/8 of the size
        t = tf.stack([one, zero, u[:, 0] * w / 8.0, zero, one, u[:, 1] * h / 8.0, zero, zero], axis=1)
    return _project(x, t, fill)


def _colour(x, seed, shared: bool = False):
    u = tf.random.stateless_uniform([_draws(x, shared), 1, 1, 3], seed, 0.0, 1.0)
    x = x + (u[..., 0:1] - 0.5)  # brightness
    if x.shape[-1] == 3:  # saturation
        mean = tf.reduce_mean(x, axis=3, keepdims=True)
        x = (x - mean) * (u[..., 1:2] * 2.0) + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * (u[..., 2:3] + 0.5) + mean  # contrast


def _cutout(x, seed, shared: bool = False):
    n = _draws(x, shared)
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    ch, cw = h // 2, w // 2
    cy = tf.random.stateless_uniform([n, 1, 1], seed, 0, h, dtype=tf.int32)
    cx = tf.random.stateless_uniform([n, 1, 1], seed + 1, 0, w, dtype=tf.int32)
    yy = tf.range(h)[None, :, None]
    xx = tf.range(w)[None, None, :]
    inside = (tf.abs(yy - cy) <= ch // 2) & (tf.abs(xx - cx) <= cw // 2)
    return x * tf.cast(~inside, x.dtype)[..., None]


def _flip(x, seed, shared: bool = False):
    n = _draws(x, shared)
    coin = tf.random.stateless_uniform([n, 1, 1, 1], seed) < 0.5
    return tf.where(coin, tf.image.flip_left_right(x), x)


def flip_crop(x, seed, pad: int = 4):
    """The standard augmentation for real RGB images: a random horizontal flip, then a
    random crop of the original size from the image zero-padded by ``pad`` pixels, drawn
    per example."""
    x = _flip(x, seed)
    n = tf.shape(x)[0]
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    off = tf.random.stateless_uniform([n, 2], seed + 11, 0, 2 * pad + 1, dtype=tf.int32)
    rows = off[:, 0:1] + tf.range(h)[None, :]                     # (n, h)
    cols = off[:, 1:2] + tf.range(w)[None, :]                     # (n, w)
    x = tf.gather(padded, rows, axis=1, batch_dims=1)             # (n, h, W+2p, c)
    return tf.gather(x, cols, axis=2, batch_dims=1)               # (n, h, w, c)


def _log_uniform(shape, seed, span: float):
    return tf.exp(tf.random.stateless_uniform(shape, seed, -span, span))


def _frepo_colour(x, seed):
    """Brightness, contrast, then saturation, each per example (FRePo's code's parameters)."""
    n = tf.shape(x)[0]
    x = x + tf.random.stateless_uniform([n, 1, 1, 1], seed, -0.25, 0.25)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x - mean) * _log_uniform([n, 1, 1, 1], seed + 1, 0.25) + mean
    if x.shape[-1] == 3:
        mean = tf.reduce_mean(x, axis=3, keepdims=True)
        x = (x - mean) * _log_uniform([n, 1, 1, 1], seed + 2, 0.25) + mean
    return x


def _frepo_crop(x, seed):
    """Random resized crop: zoom ``z`` log-uniform in [0.8, 1.25], the window's centre
    shifted uniformly by up to ``|H z - H| / 2`` output pixels; border pixels extended."""
    n = tf.shape(x)[0]
    h = tf.cast(tf.shape(x)[1], tf.float32)
    w = tf.cast(tf.shape(x)[2], tf.float32)
    z = tf.exp(tf.random.stateless_uniform([n], seed, math.log(0.8), math.log(1.25)))
    u = tf.random.stateless_uniform([n, 2], seed + 1, -1.0, 1.0)
    sy, sx = u[:, 0] * tf.abs(h * z - h) / 2.0, u[:, 1] * tf.abs(w * z - w) / 2.0
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    zero = tf.zeros([n])
    t = tf.stack([1.0 / z, zero, cx + (sx - cx) / z, zero, 1.0 / z, cy + (sy - cy) / z, zero, zero], axis=1)
    return _project(x, t, "NEAREST")


def _frepo_cutout(x, seed):
    """One zero-filled square of a quarter of the side, placed wholly inside the image."""
    n = tf.shape(x)[0]
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    sh, sw = tf.maximum(h // 4, 1), tf.maximum(w // 4, 1)
    y0 = tf.random.stateless_uniform([n, 1, 1], seed, 0, h - sh + 1, dtype=tf.int32)
    x0 = tf.random.stateless_uniform([n, 1, 1], seed + 1, 0, w - sw + 1, dtype=tf.int32)
    yy = tf.range(h)[None, :, None]
    xx = tf.range(w)[None, None, :]
    inside = (yy >= y0) & (yy < y0 + sh) & (xx >= x0) & (xx < x0 + sw)
    return x * tf.cast(~inside, x.dtype)[..., None]


def _frepo_branches(x, seed):
    return [lambda: _frepo_colour(x, seed), lambda: _frepo_crop(x, seed),
            lambda: _affine(x, seed, "rotate", "NEAREST"), lambda: _affine(x, seed, "translate", "NEAREST"),
            lambda: _frepo_cutout(x, seed)]


def _dsa_branches(x, seed, shared: bool = False):
    return [lambda: _colour(x, seed, shared), lambda: _affine(x, seed, "crop", shared=shared),
            lambda: _affine(x, seed, "rotate", shared=shared), lambda: _affine(x, seed, "translate", shared=shared),
            lambda: _cutout(x, seed, shared)]


# The augmentation styles by name: each gives the candidate operations for a batch.
STYLES = {"dsa": _dsa_branches, "frepo-code": _frepo_branches}


def augment(x, seed, rgb: bool, style: str = "dsa", shared: bool = False):
    """Apply one randomly chosen augmentation of ``style`` (``STYLES``) to the whole batch ``x``,
    its parameters drawn per example, or once for the whole batch with ``shared`` (``dsa``
    only): then each image's result depends on that image and ``seed`` alone, not on its
    position or on the other images of the batch."""
    if style not in STYLES:
        raise ValueError(f"augmentation style {style!r} unknown; use one of {', '.join(STYLES)}")
    if shared and style != "dsa":
        raise ValueError(f"shared draws are implemented for the dsa style only, not {style!r}")
    branches = _dsa_branches(x, seed, shared) if shared else STYLES[style](x, seed)
    if rgb:
        branches.append(lambda: _flip(x, seed, shared))
    k = tf.random.stateless_uniform([], seed + 7, 0, len(branches), dtype=tf.int32)
    return tf.switch_case(k, branches)
