"""The evidence an audit reports, declared before any score exists.

Taking the best of ~20 attacks on the same examples overstates leakage (at 0.1% FPR with
1000 non-members the choice is decided by a single false positive), so:

* the **primary attack** on the model is fixed by the configuration
  (``AuditConfig.primary``); the verdict, the privacy/utility frontier and the epsilon
  lower bound use it;
* a defense that releases data also gets its declared **release attack**, a separate
  threat with its own numbers;
* the "strongest attack" stays a secondary view, selected on one random half of the
  examples and reported on the other half only; so does the strongest attack on the
  released set, chosen among the release attacks alone;
* leave-one-out over the reference runs gives many targets per defense: the primary
  attack's mean AUC and TPR over them, with standard errors (``many_targets``);
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
from attacks.registry import RELEASE_PREFIX
from attacks.signals import run_signals
from mi_defense.data.split import partner

FPR_MAIN = metrics.MAIN_FPR


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
    r = metrics.evaluate(scores[best][report], membership[report], fprs, bootstrap=bootstrap, seed=seed,
                         roc_points=False)
    return {**summary(r, best), "selected_on": f"a random half of the examples ({int(choose.sum())})",
            "reported_on": f"the other half ({int(report.sum())}); "
                           "the numbers are not comparable with the full-set ones",
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


def leave_one_out(probs: np.ndarray, masks: np.ndarray, names: Sequence[str], fprs: Sequence[float], seed: int,
                  signal: str = "probability", per_target: bool = False, logits: Optional[Sequence[np.ndarray]] = None,
                  labels: Optional[np.ndarray] = None, n_jobs: Optional[int] = None) -> dict:
    """Each reference run in turn as the target, the runs other than it and its
    complementary partner (``data.split.partner``) as its references: mean and spread of
    each reference attack. Holding out the pair keeps every example IN exactly half of the
    remaining runs, so their inclusion pattern carries no trace of the target's membership
    (with one run held out, its members would be IN one run fewer among the rest, and
    LiRA would "find" them on signals that carry no information at all).

    ``probs`` (N, M) or (N, M, A): the M runs' signal (``signal``: true-class probability or
    scaled logit, as in ``attacks.ReferenceInputs``); ``masks`` (N, M) inclusion. Attacks on
    a model's outputs alone (threshold, trained) are scored on each run's ``logits`` (N, C)
    with ``labels``. ``per_target``: each attack's list of per-run results instead of their
    summary.
    """
    names = list(names)
    m = probs.shape[1]
    if not names or m < 4:
        return {}
    outputs = [n for n in names if n in attacks.THRESHOLD + attacks.TRAINED and logits is not None]
    reference = [n for n in names if n in attacks.REFERENCE]
    per = {n: [] for n in reference + outputs}
    for j in range(m):
        others = [k for k in range(m) if k not in (j, partner(j))]
        ref = attacks.ReferenceInputs(target=probs[:, j], references=probs[:, others], reference_in=masks[:, others],
                                      membership=masks[:, j], signal=signal)
        r = attacks.run(reference=ref, attacks=reference, fprs=fprs, bootstrap=0, seed=seed)
        if outputs:
            inp = attacks.AttackInputs(labels=labels, membership=masks[:, j], logits=logits[j])
            r.update(attacks.run(inp, attacks=outputs, fprs=fprs, bootstrap=0, seed=seed, n_jobs=n_jobs))
        for n in per:
            per[n].append(r[n])
    return per if per_target else {n: summarise_over_targets(per[n]) for n in per}


def many_targets(results: Sequence[dict], attack: str, fpr: str = FPR_MAIN) -> dict:
    """Mean AUC and TPR at ``fpr`` over the leave-one-out targets, each with its standard
    error ``s / sqrt(n)`` (``s`` the sample standard deviation, ``n`` the targets). The
    targets share reference runs, so the errors are somewhat too small; they show a leak
    that one target's interval is too wide to show."""
    aucs = np.array([r["auc"] for r in results])
    tprs = np.array([r["tpr_at_fpr"].get(fpr, np.nan) for r in results], float)
    se = lambda v: float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 and np.all(np.isfinite(v)) else None
    return {"attack": attack, "targets": len(results), "fpr": fpr, "auc_mean": float(aucs.mean()), "auc_se": se(aucs),
            "tpr_mean": float(tprs.mean()) if np.all(np.isfinite(tprs)) else None, "tpr_se": se(tprs)}


def leave_one_out_audit(signal_logits: Sequence[np.ndarray], logits: Sequence[np.ndarray], labels: np.ndarray,
                        masks: np.ndarray, requested: Sequence[str], primary: str, fprs: Sequence[float], seed: int,
                        n_jobs: Optional[int] = None):
    """``(summaries, primary)``: every requested reference attack's leave-one-out summary
    over the reference runs (scaled logits of ``signal_logits``, each (N, C) or (A, N, C)),
    and the primary attack's ``many_targets`` view (None when it cannot be computed)."""
    names = [n for n in (requested or attacks.REFERENCE) if n in attacks.REFERENCE]
    per = leave_one_out(run_signals(signal_logits, labels), masks, list(dict.fromkeys(names + [primary])), fprs, seed,
                        signal="logit", per_target=True, logits=logits, labels=labels, n_jobs=n_jobs)
    return ({n: summarise_over_targets(per[n]) for n in names if n in per},
            many_targets(per[primary], primary) if per.get(primary) else None)


def strongest_release(scores: Dict[str, np.ndarray], membership: np.ndarray, fprs: Sequence[float], bootstrap: int,
                      seed: int) -> Optional[dict]:
    """The strongest of the attacks on the released set, selected on one half of the
    examples and reported on the other (``strongest_held_out``); None without a release."""
    return strongest_held_out({n: s for n, s in scores.items() if n.startswith(RELEASE_PREFIX)}, membership, fprs,
                              bootstrap, seed)
