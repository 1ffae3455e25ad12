"""LAMB ("Large Batch Optimization for Deep Learning", You et al. 2020), per tensor.

TensorFlow 2.15 ships no LAMB. For a parameter ``p`` with gradient ``g`` at step ``t``
(1-based):

    m = b1 m + (1 - b1) g,          v = b2 v + (1 - b2) g^2
    u = m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd * p
    r = ||p|| / ||u||  (1 when either norm is zero)
    p = p - lr * r * u

Only distillation uses it; its learning-rate schedule is ``training.schedules.cosine_lr``.
"""
from __future__ import annotations

from mi_defense.tfenv import tf


def lamb_update(p, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-6, wd=0.0):
    """One LAMB step; returns ``(new_p, new_m, new_v)``. ``t`` is the 1-based step."""
    t = tf.cast(t, p.dtype)
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * tf.square(g)
    m_hat = m / (1.0 - tf.pow(tf.cast(b1, p.dtype), t))
    v_hat = v / (1.0 - tf.pow(tf.cast(b2, p.dtype), t))
    u = m_hat / (tf.sqrt(v_hat) + eps) + wd * p
    p_norm = tf.norm(p)
    u_norm = tf.norm(u)
    ratio = tf.where((p_norm > 0) & (u_norm > 0), p_norm / tf.maximum(u_norm, 1e-30), tf.ones_like(p_norm))
    return p - lr * ratio * u, m, v

