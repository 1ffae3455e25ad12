"""LiRA: the likelihood-ratio attack of "Membership Inference Attacks From First
Principles" (Carlini, Chien, Nasr, Song, Terzis, Tramer, IEEE S&P 2022).

For an example ``x`` with target signal ``t = phi(f_theta(x)_y)`` (``phi(p) = log(p / (1-p))``)
and reference runs that did (IN) or did not (OUT) train on ``x``:

    online:   Lambda(x) = log N(t; mu_in, sigma_in^2) - log N(t; mu_out, sigma_out^2)
    offline:  Lambda(x) = log Phi((t - mu_out) / sigma_out)       (one-sided test)

``mu`` and ``sigma`` are per-example estimates over the reference runs; with a *global*
(fixed) variance, ``sigma^2`` is the within-example variance averaged over all examples,
which is far more stable with few reference runs. With ``A`` augmentation queries the
log-likelihood ratio is averaged over the queries (each query has its own mean).
``lira_from_signal`` applies the same test to any per-example statistic ``t`` (the
scaled logit computed from logits, or a release statistic).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

from attacks.signals import logit_scale

_MIN_STD = 1e-6
# From this many reference runs on, per-example variances are estimated well enough ("Membership
# Inference Attacks From First Principles", section VI); below it a fixed (global) variance is stronger.
PER_EXAMPLE_VARIANCE_RUNS = 64


def default_attack(references: int) -> str:
    """The reference attack to declare for ``references`` runs: LiRA online with per-example
    variances from ``PER_EXAMPLE_VARIANCE_RUNS`` on, with a fixed variance below, and the
    loss threshold without reference runs."""
    if not references:
        return "threshold_loss"
    return "lira_online" if references >= PER_EXAMPLE_VARIANCE_RUNS else "lira_online_fixed"


def _masked_stats(x: np.ndarray, mask: np.ndarray):
    """Per-example mean and variance of ``x (N, M, A)`` over runs where ``mask (N, M)``."""
    w = mask[:, :, None].astype(np.float64)
    cnt = w.sum(axis=1)  # (N, 1)
    mean = np.where(cnt > 0, (x * w).sum(axis=1) / np.maximum(cnt, 1), np.nan)
    var = np.where(cnt > 1, (((x - mean[:, None, :]) ** 2) * w).sum(axis=1) / np.maximum(cnt - 1, 1), np.nan)
    return mean, var, cnt[:, 0]


def _fill(stat: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(stat), fallback, stat)


def lira_scores(target_p: np.ndarray, ref_p: np.ndarray, ref_in: np.ndarray, online: bool = True,
                fixed_variance: bool = False) -> np.ndarray:
    """LiRA scores (larger = member) from true-class probabilities (clipped at ``1e-12``
    from 0 and 1 before the logit; give ``lira_from_signal`` scaled logits computed from
    logits to avoid that cap).

    ``target_p`` (N, A), ``ref_p`` (N, M, A), ``ref_in`` (N, M) bool.
    """
    return lira_from_signal(logit_scale(target_p), logit_scale(ref_p), ref_in, online, fixed_variance)


def lira_from_signal(t: np.ndarray, r: np.ndarray, ref_in: np.ndarray, online: bool = True,
                     fixed_variance: bool = False) -> np.ndarray:
    """LiRA scores (larger = member) from a signal already on the scale where it is fitted
    by Gaussians: the scaled logit ``phi`` for a model, or any other per-example statistic
    (e.g. a transformed distance to a released set).

    ``t`` (N,) or (N, A), ``r`` (N, M) or (N, M, A), ``ref_in`` (N, M) bool.
    """
    t = np.asarray(t, np.float64)
    r = np.asarray(r, np.float64)
    if t.ndim == 1:
        t, r = t[:, None], r[:, :, None]
    ref_in = np.asarray(ref_in, bool)
    mu_out, var_out, n_out = _masked_stats(r, ~ref_in)
    mu_in, var_in, n_in = _masked_stats(r, ref_in)
    # examples with no OUT (or IN) run fall back to the pooled mean of all runs
    all_mean = r.mean(axis=1)
    mu_out = _fill(mu_out, all_mean)
    mu_in = _fill(mu_in, all_mean)
    pooled_out = np.nanmean(var_out, axis=0, keepdims=True) if np.isfinite(var_out).any() else np.ones((1, t.shape[1]))
    pooled_in = np.nanmean(var_in, axis=0, keepdims=True) if np.isfinite(var_in).any() else pooled_out
    if fixed_variance:
        var_out = np.broadcast_to(pooled_out, t.shape)
        var_in = np.broadcast_to(pooled_in, t.shape)
    else:
        var_out = _fill(var_out, np.broadcast_to(pooled_out, t.shape))
        var_in = _fill(var_in, np.broadcast_to(pooled_in, t.shape))
    sd_out = np.sqrt(np.maximum(var_out, _MIN_STD ** 2))
    sd_in = np.sqrt(np.maximum(var_in, _MIN_STD ** 2))
    if online:
        llr = norm.logpdf(t, mu_in, sd_in) - norm.logpdf(t, mu_out, sd_out)
    else:
        llr = norm.logcdf((t - mu_out) / sd_out)
    return llr.mean(axis=1)
