"""The evidence an audit reports, declared before any score exists.

Taking the best of ~20 attacks on the same examples overstates leakage (at 0.1% FPR with
1000 non-members the choice is decided by a single false positive), so:

* the **primary attack** on the model is fixed by the configuration
  (``AuditConfig.primary``); the verdict, the privacy/utility frontier and the epsilon
  lower bound use it;
* a defense that releases data also gets its declared **release attack**, a separate
  threat with its own numbers;
* the "strongest attack" stays a secondary view, selected on one random half of the
  examples and reported on the other half only;
* the **empirical epsilon lower bound** (``attacks.epsilon``) comes from the declared
  attack's scores, its threshold chosen on one half and the bound computed on the other.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

import attacks
from attacks import metrics
from attacks.epsilon import epsilon_lower_bound, halves
from attacks.metrics import summarise_over_targets
from mi_defense.data.split import partner

FPR_MAIN = "0.001"


def summary(result: dict, name: str) -> dict:
    """The headline numbers of one attack result (AUC and TPR at the main FPR, with CIs)."""
    return {"name": name, "auc": result["auc"], "auc_ci": result.get("auc_ci"), "fpr": FPR_MAIN,
            "tpr": result["tpr_at_fpr"].get(FPR_MAIN), "tpr_ci": result.get("tpr_at_fpr_ci", {}).get(FPR_MAIN),
            "tpr_at_fpr": result["tpr_at_fpr"], "tpr_at_fpr_ci": result.get("tpr_at_fpr_ci", {})}


def strongest_held_out(scores: Dict[str, np.ndarray], membership: np.ndarray, fprs: Sequence[float],
                       bootstrap: int, seed: int) -> Optional[dict]:
    """The attack with the highest TPR at 0.1% FPR (ties: AUC) on a random half of the
    examples, reported on the other half."""
    if not scores:
        return None
    choose, report = halves(membership, seed + 101)

    def rank(name):
        _, _, tprs, _ = metrics._point_metrics(scores[name][choose], membership[choose], [1e-3])
        return tprs[FPR_MAIN], metrics.auc(scores[name][choose], membership[choose])

    best = max(sorted(scores), key=rank)
    r = metrics.evaluate(scores[best][report], membership[report], fprs, bootstrap=bootstrap, seed=seed, roc_points=False)
    return {**summary(r, best), "selected_on": f"a random half of the examples ({int(choose.sum())})",
            "reported_on": f"the other half ({int(report.sum())}); the numbers are not comparable with the full-set ones",
            "n_members": r["n_members"], "n_nonmembers": r["n_nonmembers"], "unresolved_fprs": r["unresolved_fprs"]}


def declared_evidence(results: Dict[str, dict], scores: Dict[str, np.ndarray], membership: np.ndarray, primary: str,
                      release_attack: Optional[str], confidence: float, delta: float, seed: int, fprs: Sequence[float],
                      bootstrap: int) -> dict:
    """Primary (and release) attack summaries, the epsilon lower bound and the held-out strongest attack.

    With two declared attacks (a defense that releases data), each bound is computed at
    confidence ``1 - (1 - confidence) / 2`` and the larger is reported: both hold together
    at ``confidence`` (Bonferroni), so the maximum does too.
    """
    declared = [a for a in (primary, release_attack) if a and a in results]
    out = {"primary_attack": summary(results[primary], primary) if primary in results else None,
           "release_attack": summary(results[release_attack], release_attack) if release_attack in results else None,
           "epsilon_lower_bound": None,
           "strongest_attack": strongest_held_out(scores, membership, fprs, bootstrap, seed)}
    if declared:
        each = 1.0 - (1.0 - confidence) / len(declared)
        bounds = [epsilon_lower_bound(scores[a], membership, each, delta, seed, attack=a) for a in declared]
        best = max(bounds, key=lambda b: b["value"])
        out["epsilon_lower_bound"] = {**best, "confidence": confidence, "confidence_per_attack": each,
                                      "per_attack": {b["attack"]: b["value"] for b in bounds}}
    return out


def leave_one_out(probs: np.ndarray, masks: np.ndarray, names: Sequence[str], fprs: Sequence[float], seed: int) -> dict:
    """Each reference run in turn as the target, the runs other than it and its
    complementary partner (``data.split.partner``) as its references: mean and spread of
    each reference attack. Holding out the pair keeps every example IN exactly half of the
    remaining runs, so their inclusion pattern carries no trace of the target's membership
    (with one run held out, its members would be IN one run fewer among the rest, and
    LiRA would "find" them on signals that carry no information at all).

    ``probs`` (N, M) true-class probabilities of the M runs; ``masks`` (N, M) inclusion.
    """
    names = list(names)
    m = probs.shape[1]
    if not names or m < 4:
        return {}
    per = {n: [] for n in names}
    for j in range(m):
        others = [k for k in range(m) if k not in (j, partner(j))]
        ref = attacks.ReferenceInputs(target=probs[:, j], references=probs[:, others], reference_in=masks[:, others],
                                      membership=masks[:, j])
        r = attacks.run(reference=ref, attacks=names, fprs=fprs, bootstrap=0, seed=seed)
        for n in names:
            per[n].append(r[n])
    return {n: summarise_over_targets(per[n]) for n in names}
