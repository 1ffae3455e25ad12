"""Per-example clipped gradients of FRePo's KRR loss with respect to its linear readout.

The KRR prediction for a real example with features ``f_i`` is linear in ``f_i``:

    pred_i = Y_s^T (K_ss + rho I)^-1 F_s f_i = h f_i,
    h(F_s, Y_s) = Y_s^T (K_ss + rho I)^-1 F_s          (C x d),   rho = lambda tr(K_ss) / n_s

so the loss depends on the synthetic set only through the readout ``h``, and

    l_i = 1/2 ||h f_i - y_i||^2,    dl_i/dh = r_i f_i^T,    r_i = h f_i - y_i,
    dL/d(F_s, Y_s) = J_h^T (1/|t| sum_i r_i f_i^T)

(``J_h`` the Jacobian of ``h`` with respect to the synthetic features and labels). Each
example's gradient with respect to ``h`` is the rank-one matrix ``r_i f_i^T`` with norm
``||r_i|| ||f_i||``; clipped, summed and noised there, ``G = sum_i c_i r_i f_i^T + N(0,
sigma^2 C^2 I)`` is the only quantity that reads private data, and ``J_h^T G`` is computed
from the synthetic set alone (post-processing).

Why here rather than on ``(F_s, Y_s)`` (``distill.dp_krr``): ``h`` has ``C d`` entries
against ``n_s (d + C)`` for the synthetic features and labels (5 760 against 58 600 for 100
images, 10 classes and the width-64 ConvNet's 576 features), and the noise's norm grows with
the square root of the dimension, while the unclipped gradient is the same ``J_h^T G``.
"""
from __future__ import annotations

from mi_defense.distillation.dp_krr import clip_factors
from mi_defense.distillation.krr import regularised_cholesky
from mi_defense.tfenv import tf


def krr_readout(f_s, y_s, reg: float):
    """``h = Y_s^T (K_ss + reg tr(K_ss)/n_s I)^-1 F_s`` (``C x d``), in the dtype of ``f_s``;
    the KRR prediction for features ``f`` is ``h f``."""
    alpha = tf.linalg.cholesky_solve(regularised_cholesky(f_s, reg), tf.cast(y_s, f_s.dtype))  # n x C
    return tf.matmul(alpha, f_s, transpose_a=True)


def clipped_readout_sum(h, f_t, y_t, clip: float):
    """``(sum_i c_i r_i f_i^T, ||r_i|| ||f_i||)`` for readout ``h`` (``C x d``), real features
    ``f_t`` and targets ``y_t``, with ``c_i = min(1, C/||r_i f_i^T||)``, in float64.

    A real example whose norm is not finite contributes nothing; norms above the bound are
    scaled to ``C (1 - CLIP_MARGIN)`` so rounding cannot carry a contribution past ``C``.
    """
    h, f_t, y_t = (tf.cast(a, tf.float64) for a in (h, f_t, y_t))
    r = tf.matmul(f_t, h, transpose_b=True) - y_t                                   # b x C
    norms = tf.norm(r, axis=1) * tf.norm(f_t, axis=1)
    c, ok = clip_factors(norms, clip)
    cr = tf.where(ok[:, None], c[:, None] * r, tf.zeros_like(r))
    f_ok = tf.where(ok[:, None], f_t, tf.zeros_like(f_t))
    return tf.matmul(cr, f_ok, transpose_a=True), norms
