"""Epsilon lower bound from one training run with randomly included canaries.

"Privacy Auditing with One (1) Training Run" (Steinke, Nasr & Jagielski, NeurIPS 2023):
``m`` canaries are each included in the training set independently with probability
1/2; after one run the auditor guesses, for ``r`` of them, whether they were included
(abstaining on the rest), and ``v`` guesses are right. If the mechanism is
``(eps, delta)``-DP, the number of right guesses is stochastically dominated by
``Binomial(r, q)``, ``q = e^eps / (1 + e^eps)`` (the accuracy of eps-randomised
response), up to a ``delta`` term:

    P[V >= v] <= P[Binomial(r, q) >= v] + 2 m delta * max_{1<=i<=v} P[v > Binomial(r, q) >= v - i] / i.

The lower bound at confidence ``1 - beta`` is the largest ``eps`` whose right-hand side
is still below ``beta``: a mechanism that were ``(eps, delta)``-DP would produce ``v`` or
more right guesses with probability below ``beta``. Unlike a Clopper-Pearson bound over
the examples of one run, this one is valid although the canaries share a run: the
randomness it rests on is the independent inclusion of each canary.

The guesses must be fixed before the scores are looked at (here: the ``k_in`` highest
scores guessed included, the ``k_out`` lowest guessed excluded, ``k_in``/``k_out`` set in
advance); choosing them after seeing which guesses are right would void the bound.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import binom


def p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """Probability of ``v`` or more right guesses out of ``r`` (``m`` canaries) under an
    ``(eps, delta)``-DP mechanism (the bound in the module docstring)."""
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    q = 1.0 / (1.0 + math.exp(-eps))
    tail = float(binom.sf(v - 1, r, q))
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    below = np.cumsum(binom.pmf(np.arange(v - 1, -1, -1), r, q))  # P[v > B >= v - i] for i = 1..v
    alpha = float(np.max(below / np.arange(1, v + 1)))
    return min(tail + 2.0 * m * delta * alpha, 1.0)


def epsilon_lower_bound_one_run(m: int, r: int, v: int, confidence: float = 0.95, delta: float = 0.0) -> float:
    """The largest ``eps`` (to 1e-6) with ``p_value(m, r, v, eps, delta) < 1 - confidence``; 0
    when even ``eps = 0`` cannot be rejected."""
    beta = 1.0 - confidence
    if p_value(m, r, v, 0.0, delta) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < beta:
        lo, hi = hi, 2.0 * hi
        if hi > 1e3:
            return lo
    while hi - lo > 1e-6:
        mid = 0.5 * (lo + hi)
        if p_value(m, r, v, mid, delta) < beta:
            lo = mid
        else:
            hi = mid
    return lo


def guesses(scores, included, k_in: int, k_out: int):
    """``(r, v)``: guess the ``k_in`` highest-scored canaries included and the ``k_out``
    lowest excluded (ties broken by position), abstain on the rest; ``v`` right guesses."""
    scores, included = np.asarray(scores, np.float64), np.asarray(included, bool)
    if k_in + k_out > len(scores):
        raise ValueError(f"k_in + k_out = {k_in + k_out} guesses for {len(scores)} canaries")
    order = np.argsort(-scores, kind="mergesort")
    right = int(included[order[:k_in]].sum()) + int((~included[order[len(order) - k_out:]]).sum() if k_out else 0)
    return k_in + k_out, right


def audit_one_run(scores, included, k_in: int, k_out: int, confidence: float = 0.95, delta: float = 0.0) -> dict:
    """The one-run audit of canaries with ``scores`` (higher: more likely included) and
    their true inclusion; ``{"value", "m", "r", "v", "k_in", "k_out", "confidence", "delta"}``."""
    m = len(np.asarray(scores))
    r, v = guesses(scores, included, k_in, k_out)
    return {"value": epsilon_lower_bound_one_run(m, r, v, confidence, delta), "m": m, "r": r, "v": v, "k_in": k_in,
            "k_out": k_out, "confidence": confidence, "delta": delta,
            "method": "one training run, canaries included with probability 1/2 (Steinke, Nasr & Jagielski 2023)"}
