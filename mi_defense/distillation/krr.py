"""Kernel ridge regression on neural features: FRePo's meta-loss, as pure functions.

Notation of "Dataset Distillation using Neural Feature Regression" (Zhou, Nezhadarya,
Ba, NeurIPS 2022). With ``F_s`` the features of the ``n_s`` synthetic images (labels
``Y_s``) and ``F_t`` those of a real batch (centred one-hot targets ``Y_t``):

    K_ss = F_s F_s^T,    K_ts = F_t F_s^T
    pred = K_ts (K_ss + lambda * tr(K_ss) / n_s * I)^{-1} Y_s
    L    = 1/|t| * sum_i 1/2 * || pred_i - Y_t,i ||^2

The solve uses a Cholesky factorisation; gradients reach ``F_s`` and ``Y_s`` through the
kernel and the solve. Callers pass real-batch features as constants (no gradient). The
centred one-hot targets are ``training.targets.centred_onehot``.
"""
from __future__ import annotations

from mi_defense.tfenv import tf


def regularised_cholesky(f_s, reg: float = 1e-6):
    """Cholesky factor of ``K_ss + reg * tr(K_ss)/n_s * I`` (``K_ss = F_s F_s^T``), in the dtype of ``f_s``."""
    k_ss = tf.matmul(f_s, f_s, transpose_b=True)
    n_s = tf.cast(tf.shape(k_ss)[0], k_ss.dtype)
    ridge = tf.constant(reg, k_ss.dtype) * tf.linalg.trace(k_ss) / n_s
    return tf.linalg.cholesky(k_ss + ridge * tf.eye(tf.shape(k_ss)[0], dtype=k_ss.dtype))


def krr_predict(f_s, y_s, f_t, reg: float = 1e-6):
    """``K_ts (K_ss + reg * tr(K_ss)/n_s * I)^-1 Y_s``, computed in the dtype of ``f_s``."""
    alpha = tf.linalg.cholesky_solve(regularised_cholesky(f_s, reg), tf.cast(y_s, f_s.dtype))
    return tf.matmul(tf.matmul(f_t, f_s, transpose_b=True), alpha)


def krr_loss(f_s, y_s, f_t, y_t, reg: float = 1e-6):
    """FRePo's KRR loss ``mean_t 0.5 * sum_c (pred - Y_t)^2`` (see module docstring)."""
    pred = krr_predict(f_s, y_s, f_t, reg)
    return tf.reduce_mean(0.5 * tf.reduce_sum(tf.square(pred - tf.cast(y_t, pred.dtype)), axis=1))


def label_margin_loss(y_s, num_classes: int):
    """Hinge on learned labels: ``mean_s max(0, 1/C - (top1(y_s) - top2(y_s)))``.

    Keeps every learned label's largest entry at least ``1/C`` above its second, so the
    labels cannot drift into ambiguity.
    """
    top2 = tf.math.top_k(y_s, k=2).values
    margin = top2[:, 0] - top2[:, 1]
    return tf.reduce_mean(tf.nn.relu(1.0 / num_classes - margin))

