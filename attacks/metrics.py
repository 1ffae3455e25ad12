"""Honest attack metrics. Members are the positive class.

* ROC over all thresholds (ties form one step, never split in the attacker's favour);
* AUC (ties count one half);
* membership advantage ``max_t TPR(t) - FPR(t)`` and balanced accuracy ``(1 + adv) / 2``;
* TPR at FPR ``f``: the highest TPR among ROC points whose FPR does not exceed ``f``
  (conservative, no interpolation). A target ``f < 1 / #non-members`` cannot be resolved:
  it is reported in ``unresolved_fprs`` and its value is the TPR at zero false positives;
* percentile bootstrap confidence intervals (members and non-members resampled
  separately) for AUC and every TPR@FPR.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Sequence

import numpy as np

DEFAULT_FPRS = (1e-1, 1e-2, 1e-3, 1e-4)
MAIN_FPR = "0.001"  # the FPR the headline TPR is read at (as a key of tpr_at_fpr)


def fpr_key(f: float) -> str:
    return np.format_float_positional(f, trim="-")


def roc_curve(scores: np.ndarray, membership: np.ndarray):
    """``(fpr, tpr, thresholds)`` from the highest threshold down, starting at (0, 0)."""
    scores = np.asarray(scores, np.float64)
    y = np.asarray(membership, bool)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[distinct]
    fp = (distinct + 1) - tp
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos], np.r_[np.inf, s[distinct]]


def auc(scores: np.ndarray, membership: np.ndarray) -> float:
    """Mann-Whitney AUC: P(score_member > score_nonmember) + 0.5 P(tie)."""
    from scipy.stats import rankdata

    y = np.asarray(membership, bool)
    r = rankdata(scores)
    n1, n0 = y.sum(), (~y).sum()
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def _point_metrics(scores, membership, fprs):
    f, t, _ = roc_curve(scores, membership)
    return auc(scores, membership), float(np.max(t - f)), {fpr_key(x): tpr_at_fpr(f, t, x) for x in fprs}, (f, t)


def _downsample_roc(f, t, max_points=400):
    """Keep the low-FPR region in full detail and thin the rest (for plots)."""
    if len(f) <= max_points:
        return f, t
    grid = np.unique(np.r_[np.geomspace(max(f[f > 0].min(), 1e-6) if (f > 0).any() else 1e-6, 1.0, max_points), 0.0])
    idx = np.unique(np.clip(np.searchsorted(f, grid, side="right") - 1, 0, len(f) - 1))
    return f[idx], t[idx]


def evaluate(scores: np.ndarray, membership: np.ndarray, fprs: Sequence[float] = DEFAULT_FPRS,
             bootstrap: int = 200, seed: int = 0, slices: Optional[Dict[str, np.ndarray]] = None,
             name: str = "attack", roc_points: bool = True) -> dict:
    """The attack-suite result schema for one score vector (see README)."""
    scores = np.asarray(scores, np.float64)
    membership = np.asarray(membership, bool)
    n1, n0 = int(membership.sum()), int((~membership).sum())
    a, adv, tprs, (f, t) = _point_metrics(scores, membership, fprs)
    out = {"name": name, "auc": a, "advantage": adv, "balanced_accuracy": 0.5 + adv / 2.0,
           "tpr_at_fpr": tprs, "unresolved_fprs": [fpr_key(x) for x in fprs if x < 1.0 / max(n0, 1)],
           "n_members": n1, "n_nonmembers": n0}
    if bootstrap:
        rng = np.random.default_rng(seed)
        pos, neg = np.flatnonzero(membership), np.flatnonzero(~membership)
        aucs, tp = [], {k: [] for k in tprs}
        for _ in range(bootstrap):
            idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
            b_auc, _, b_t, _ = _point_metrics(scores[idx], membership[idx], fprs)
            aucs.append(b_auc)
            for k, v in b_t.items():
                tp[k].append(v)
        out["auc_ci"] = [float(np.percentile(aucs, 2.5)), float(np.percentile(aucs, 97.5))]
        out["tpr_at_fpr_ci"] = {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in tp.items()}
        out["bootstrap"] = bootstrap
    if roc_points:
        fd, td = _downsample_roc(f, t)
        out["roc"] = {"fpr": fd.tolist(), "tpr": td.tolist()}
    if slices:
        from attacks.inputs import as_mask

        out["slices"] = {k: slice_metrics(scores, membership, as_mask(m, len(scores), f"slice '{k}'"), fprs)
                         for k, m in slices.items()}
    return out


def slice_metrics(scores, membership, mask, fprs=DEFAULT_FPRS) -> dict:
    """Metrics on a slice. A slice holding members only (such as "members used to
    initialise the synthetic data") is compared against all non-members."""
    mask = np.asarray(mask, bool)
    mem = mask & membership
    non = mask & ~membership
    if not non.any():
        non = ~membership
    n1, n0 = int(mem.sum()), int(non.sum())
    if n1 == 0 or n0 == 0:
        return {"n_members": n1, "n_nonmembers": n0, "auc": None, "tpr_at_fpr": {}}
    sel = mem | non
    a, adv, tprs, _ = _point_metrics(scores[sel], membership[sel], fprs)
    return {"n_members": n1, "n_nonmembers": n0, "auc": a, "advantage": adv, "tpr_at_fpr": tprs,
            "unresolved_fprs": [fpr_key(x) for x in fprs if x < 1.0 / n0]}


def class_slices(labels: np.ndarray, num_classes: Optional[int] = None) -> Dict[str, np.ndarray]:
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if num_classes is None else num_classes
    return {f"class={c}": labels == c for c in range(k)}


def summarise_over_targets(results: Iterable[dict]) -> dict:
    """Mean and standard deviation of AUC and TPR@FPR over several targets."""
    results = list(results)
    aucs = [r["auc"] for r in results]
    out = {"n_targets": len(results), "auc_mean": float(np.mean(aucs)), "auc_std": float(np.std(aucs)),
           "tpr_at_fpr_mean": {}, "tpr_at_fpr_std": {}}
    for k in results[0]["tpr_at_fpr"]:
        v = [r["tpr_at_fpr"][k] for r in results]
        out["tpr_at_fpr_mean"][k] = float(np.mean(v))
        out["tpr_at_fpr_std"][k] = float(np.std(v))
    return out
