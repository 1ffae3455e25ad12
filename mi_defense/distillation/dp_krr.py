"""Per-example clipped gradients of FRePo's KRR loss with respect to the synthetic features
and labels, in closed form: DP-FRePo's ``clip_space=features`` (``distill.dp``).

FRePo's meta-loss is a mean over real examples, ``L = 1/|t| sum_i l_i``, and each real
example ``i`` enters only through its own term (its features ``f_i`` are computed in
inference mode, so no batch statistic mixes examples). With the notation of
``distill.krr`` (``F = F_s`` of shape ``n x d``, ``Y = Y_s``, ``lambda`` the relative ridge):

    K = F F^T,   A = K + rho I,   rho = lambda tr(K) / n,   alpha = A^-1 Y
    k_i = F f_i,   r_i = alpha^T k_i - y_i,   l_i = 1/2 ||r_i||^2
    u_i = alpha r_i,   w_i = A^-1 k_i,   s_i = (2 lambda / n) (w_i . u_i)

the gradient of ``l_i`` with respect to the synthetic features and labels is

    dl_i/dY = w_i r_i^T
    dl_i/dF = u_i f_i^T - M_i F,   M_i = w_i u_i^T + u_i w_i^T + s_i I

(the first term through ``k_i``, the second through ``A``). Regrouped with
``p_i = f_i - F^T w_i`` and ``v_i = F^T u_i`` (so the large, nearly cancelling parts of
``u_i f_i^T`` and ``M_i F`` cancel inside ``p_i``, element by element):

    dl_i/dF = u_i p_i^T - w_i v_i^T - s_i F

its squared norm needs no ``n x d`` array per example:

    ||dl_i/dY||^2 = ||w_i||^2 ||r_i||^2
    ||dl_i/dF||^2 = ||u||^2 ||p||^2 + ||w||^2 ||v||^2 + s^2 ||F||^2 - 2 (u.w)(p.v) - 2 s (p.v) + 2 s (f - p).v

and the sum of the clipped gradients ``sum_i c_i g_i`` with ``c_i = min(1, C / ||g_i||)`` is
a handful of matrix products:

    sum_i c_i dl_i/dY = (c * W)^T R
    sum_i c_i dl_i/dF = (c * U)^T P - (c * W)^T V - (sum_i c_i s_i) F

Everything here runs in float64, so the norms that bound each example's influence are
exact to rounding. Clipping with respect to ``(F_s, Y_s)`` rather than the synthetic
pixels keeps the per-example work at ``O(n^2 + n d)``; the step from the noisy feature
gradient back to the pixels goes through the network evaluated on synthetic data only,
so it is post-processing.
"""
from __future__ import annotations

from mi_defense.distillation.krr import regularised_cholesky
from mi_defense.tfenv import tf


CLIP_MARGIN = 1e-6


def per_example_terms(f_s, y_s, f_t, y_t, reg: float):
    """``dict(R, U, W, s, P, V, F, Ft)`` of the module docstring (float64, one row per real example)."""
    f_s, y_s, f_t, y_t = (tf.cast(a, tf.float64) for a in (f_s, y_s, f_t, y_t))
    lam = tf.constant(reg, tf.float64) / tf.cast(tf.shape(f_s)[0], tf.float64)
    chol = regularised_cholesky(f_s, reg)
    alpha = tf.linalg.cholesky_solve(chol, y_s)                           # n x C
    kt = tf.matmul(f_t, f_s, transpose_b=True)                             # b x n
    r = tf.matmul(kt, alpha) - y_t                                         # b x C
    u = tf.matmul(r, alpha, transpose_b=True)                              # b x n
    w = tf.transpose(tf.linalg.cholesky_solve(chol, tf.transpose(kt)))     # b x n
    s = 2.0 * lam * tf.reduce_sum(w * u, axis=1)                           # b
    p = f_t - tf.matmul(w, f_s)                                            # b x d: p_i = f_i - F^T w_i
    v = tf.matmul(u, f_s)                                                  # b x d: v_i = F^T u_i
    return {"R": r, "U": u, "W": w, "s": s, "P": p, "V": v, "F": f_s, "Ft": f_t}


def _dot(a, b):
    return tf.reduce_sum(a * b, axis=1)


def per_example_sq_norms(t) -> "tf.Tensor":
    """``||dl_i/dF_s||^2 + ||dl_i/dY_s||^2`` for every real example, from ``per_example_terms``."""
    u, w, p, v, s, f = t["U"], t["W"], t["P"], t["V"], t["s"], t["F"]
    pv = _dot(p, v)
    sq_f = (_dot(u, u) * _dot(p, p) + _dot(w, w) * _dot(v, v) + s * s * tf.reduce_sum(f * f)
            - 2.0 * _dot(u, w) * pv - 2.0 * s * pv + 2.0 * s * _dot(t["Ft"] - p, v))
    sq_y = _dot(w, w) * _dot(t["R"], t["R"])
    return tf.maximum(sq_f, 0.0) + sq_y


def clip_factors(norms, clip: float):
    """``(c, ok)``: ``c_i = min(1, C (1 - CLIP_MARGIN) / ||g_i||)`` for per-example norms
    ``norms`` (float64), and 0 where the norm is not finite (``ok`` false)."""
    ok = tf.math.is_finite(norms)
    bound = tf.constant(clip, tf.float64) * (1.0 - CLIP_MARGIN)
    c = tf.where(ok, tf.minimum(tf.constant(1.0, tf.float64), bound / tf.maximum(norms, 1e-300)), tf.zeros_like(norms))
    return c, ok


def clipped_gradient_sum(f_s, y_s, f_t, y_t, reg: float, clip: float):
    """``(sum_i c_i dl_i/dF_s, sum_i c_i dl_i/dY_s, ||g_i||)`` with ``c_i = min(1, C/||g_i||)``.

    A real example whose gradient is not finite contributes nothing (``c_i = 0``), so one
    odd example can neither break the step nor exceed its share ``C``. Norms above the bound
    are scaled to ``C (1 - CLIP_MARGIN)``, so a rounding error in the computed norm (about
    1e-8 relative when ``K_ss`` is near singular) cannot carry a contribution past ``C``.
    """
    t = per_example_terms(f_s, y_s, f_t, y_t, reg)
    norms = tf.sqrt(per_example_sq_norms(t))
    c, ok = clip_factors(norms, clip)
    u, w, r, p, v = (tf.where(ok[:, None], t[key], tf.zeros_like(t[key])) for key in ("U", "W", "R", "P", "V"))
    s = tf.where(ok, t["s"], tf.zeros_like(norms))
    cu, cw = c[:, None] * u, c[:, None] * w
    g_y = tf.matmul(cw, r, transpose_a=True)
    g_f = tf.matmul(cu, p, transpose_a=True) - tf.matmul(cw, v, transpose_a=True) - tf.reduce_sum(c * s) * t["F"]
    return g_f, g_y, norms
