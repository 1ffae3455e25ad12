"""Empirical lower bounds on epsilon from an attack's scores.

If a training algorithm is (epsilon, delta)-differentially private, every membership test
built on its output obeys, for the event "flagged as member",

    TPR <= e^eps * FPR + delta        and        TNR <= e^eps * FNR + delta,

so ``eps >= ln((TPR - delta) / FPR)`` and ``eps >= ln((TNR - delta) / FNR)``. With finite
samples the rates are bounded with one-sided Clopper-Pearson intervals: at confidence
``c`` the numerator uses its lower bound and the denominator its upper bound, each at
level ``1 - (1 - c) / 2`` (Bonferroni), so the bound holds with probability at least ``c``
("Auditing Differentially Private Machine Learning: How Private is Private SGD?",
Jagielski, Ullman & Oprea, NeurIPS 2020).

Choosing the threshold on the same examples that the bound is computed on would bias it
upward, so the examples are split at random into two halves (members and non-members
separately): the threshold and direction are chosen on the first half and the bound is
computed on the second.

What this cannot show: the examples of one training run are not independent trials, so for
a single model the bound is evidence, not a proof (a rigorous one-run audit needs
randomised canary insertion, "Privacy Auditing with One (1) Training Run", Steinke, Nasr &
Jagielski, NeurIPS 2023). A small bound never shows that a mechanism is private: it only
says this attack found no more.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.stats import beta


def clopper_pearson_lower(k, n, alpha: float) -> np.ndarray:
    """One-sided lower bound at level ``1 - alpha`` on a proportion with ``k`` successes in ``n``."""
    k = np.asarray(k, np.float64)
    return np.where(k > 0, beta.ppf(alpha, np.maximum(k, 1e-300), n - k + 1), 0.0)


def clopper_pearson_upper(k, n, alpha: float) -> np.ndarray:
    """One-sided upper bound at level ``1 - alpha`` on a proportion with ``k`` successes in ``n``."""
    k = np.asarray(k, np.float64)
    return np.where(k < n, beta.ppf(1.0 - alpha, k + 1, np.maximum(n - k, 1e-300)), 1.0)


def _counts(scores: np.ndarray, membership: np.ndarray):
    """Distinct thresholds (descending) and, for "member if score >= t", the TP and FP counts."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], membership[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return s[last], tp, fp


def _bounds(tp, fp, n1: int, n0: int, alpha: float, delta: float):
    """Both directions' epsilon bounds at every threshold: (flag-as-member, flag-as-nonmember)."""
    a = alpha / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr_lo, fpr_up = clopper_pearson_lower(tp, n1, a), clopper_pearson_upper(fp, n0, a)
        tnr_lo, fnr_up = clopper_pearson_lower(n0 - fp, n0, a), clopper_pearson_upper(n1 - tp, n1, a)
        above = np.log(np.maximum(tpr_lo - delta, 0.0) / fpr_up)
        below = np.log(np.maximum(tnr_lo - delta, 0.0) / fnr_up)
    return np.nan_to_num(above, nan=-np.inf), np.nan_to_num(below, nan=-np.inf), (tpr_lo, fpr_up, tnr_lo, fnr_up)


def bound_at_best_threshold(scores, membership, confidence: float = 0.95, delta: float = 0.0) -> dict:
    """The largest bound over all thresholds of these very examples (biased upward when
    reported on them; used to choose the threshold on a held-out half)."""
    scores, membership = np.asarray(scores, np.float64), np.asarray(membership, bool)
    n1, n0 = int(membership.sum()), int((~membership).sum())
    thr, tp, fp = _counts(scores, membership)
    above, below, _ = _bounds(tp, fp, n1, n0, 1.0 - confidence, delta)
    i, j = int(np.argmax(above)), int(np.argmax(below))
    if above[i] >= below[j]:
        return {"value": float(above[i]), "threshold": float(thr[i]), "direction": "member_if_at_least"}
    return {"value": float(below[j]), "threshold": float(thr[j]), "direction": "nonmember_if_below"}


def bound_at_threshold(scores, membership, threshold: float, direction: str, confidence: float = 0.95,
                       delta: float = 0.0) -> dict:
    """The Clopper-Pearson epsilon bound of the test "member iff score >= threshold"."""
    scores, membership = np.asarray(scores, np.float64), np.asarray(membership, bool)
    n1, n0 = int(membership.sum()), int((~membership).sum())
    flagged = scores >= threshold
    tp, fp = int((flagged & membership).sum()), int((flagged & ~membership).sum())
    above, below, (tpr_lo, fpr_up, tnr_lo, fnr_up) = _bounds(np.array([tp]), np.array([fp]), n1, n0, 1.0 - confidence,
                                                             delta)
    value = above[0] if direction == "member_if_at_least" else below[0]
    return {"value": float(max(value, 0.0)), "tp": tp, "fp": fp, "n_members": n1, "n_nonmembers": n0,
            "tpr_lower": float(tpr_lo[0]), "fpr_upper": float(fpr_up[0]), "tnr_lower": float(tnr_lo[0]),
            "fnr_upper": float(fnr_up[0])}


def halves(membership: np.ndarray, seed: int = 0):
    """Two disjoint boolean masks, each holding a random half of the members and of the non-members."""
    membership = np.asarray(membership, bool)
    rng = np.random.default_rng(seed)
    first = np.zeros(len(membership), bool)
    for group in (np.flatnonzero(membership), np.flatnonzero(~membership)):
        first[rng.permutation(group)[: len(group) // 2]] = True
    return first, ~first


def epsilon_lower_bound(scores, membership, confidence: float = 0.95, delta: float = 0.0, seed: int = 0,
                        attack: Optional[str] = None) -> dict:
    """Empirical epsilon lower bound: threshold chosen on one random half, bound on the other.

    Returns ``{"value", "confidence", "delta", "attack", "threshold", "direction", ...}``;
    ``value`` is never below 0.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"delta must lie in [0, 1), got {delta}")
    scores, membership = np.asarray(scores, np.float64), np.asarray(membership, bool)
    choose, report = halves(membership, seed)
    pick = bound_at_best_threshold(scores[choose], membership[choose], confidence, delta)
    out = bound_at_threshold(scores[report], membership[report], pick["threshold"], pick["direction"], confidence,
                             delta)
    return {"value": out["value"], "confidence": confidence, "delta": delta, "attack": attack,
            "threshold": pick["threshold"], "direction": pick["direction"],
            "selection": "threshold and direction chosen on a random half of the examples, "
            "bound computed on the other half", **{k: v for k, v in out.items() if k != "value"}}
