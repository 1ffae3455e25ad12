"""What a reader needs first: each defense's worst finding and severity, the limits of the
audit, and a glossary of attack names. Read from the typed record of results.json only."""
from __future__ import annotations

from typing import List, NamedTuple, Optional

from mi_defense.auditing.record import AttackSummary, AuditRecord, DefenseEntry

SEVERITIES = {
    "leaking": "clearly leaking",
    "no-evidence": "no evidence of leakage at this power",
    # a DP claim rests on its proof and accountant; an audit can contradict it, never confirm it
    "guarantee": "DP claim, not contradicted by this audit",
}

GLOSSARY = [
    ("threshold_loss / _confidence / _entropy / _modified_entropy / _logit_confidence",
     "one score per example from the target's output (its loss, the confidence in the true class, ...); "
     "members are predicted above a threshold (\"Membership Inference Attacks against Machine Learning Models\", "
     "Shokri et al.; \"Systematic Evaluation of Privacy Risks of Machine Learning Models\", Song & Mittal)"),
    ("trained_lr / _mlp / _gb / _knn", "an attack classifier (logistic regression, MLP, gradient-boosted trees, k "
     "nearest neighbours; trained_rf, a random forest, in older reports) trained out of fold on the examples' outputs"),
    ("lira_online / lira_offline", "the likelihood-ratio attack (\"Membership Inference Attacks From First "
     "Principles\", Carlini et al.): Gaussians fitted per example to the reference runs' logit-scaled confidence, "
     "with (online) or without (offline) the runs that trained on the example"),
    ("lira_*_fixed", "LiRA with one variance shared by all examples, the better choice below about 64 reference runs"),
    ("rmia / rmia_online", "the relative membership inference attack (\"Low-Cost High-Power Membership Inference "
     "Attacks\", Zarifzadeh et al.): the example's likelihood ratio compared with population examples'"),
    ("release_pixel / release_feature", "attacks on a released synthetic set: the distance from a candidate to its "
     "nearest released image, in pixels or in the target's features"),
    ("release_krr", "the loss of a candidate's label under the kernel ridge regression predictor fitted on the "
     "released set (FRePo's objective, with a fixed random-feature kernel; \"Dataset Distillation using Neural Feature "
     "Regression\", Zhou et al.)"),
    ("release_lira_pixel / _random_feature / _krr / _model_feature",
     "a release statistic (the nearest-release distance in pixels, in fixed random features or in each run's own "
     "model's features, or the KRR loss) calibrated as LiRA calibrates a model's output: compared with the same "
     "statistic against reference releases distilled with and without the candidate (\"No Free Lunch in 'Privacy for "
     "Free'\", Carlini, Feldman & Nasr)"),
    ("leave-one-out", "each reference run in turn as the target, the runs but it and its complementary partner its "
     "references: many targets per defense, whose mean AUC has a far smaller standard error than one target's "
     "interval"),
    ("init_members", "the members copied into a synthetic set at initialisation (init=real): the release attack's "
     "result on them alone"),
]


class Finding(NamedTuple):
    kind: str    # "init_members" | "release_attack" | "primary_attack" (the results.json key of the last two)
    what: str    # how the report names it
    result: AttackSummary  # name, auc, tpr, fpr, tpr_ci


def worst_finding(entry: DefenseEntry) -> Optional[Finding]:
    """The finding with the highest TPR at the main FPR: the release attack on the members
    copied at initialisation, the release attack, or the primary attack. An attack whose
    AUC interval covers 0.5 (or lies below it) is no finding, whatever its TPR."""
    cands = []
    ev = entry.evidence
    rel = ev.release_attack
    if rel:
        init = (entry.attack(rel.name).slices or {}).get("init_members")
        if init and init.get("n_members"):
            t, t_ci = init["tpr_at_fpr"].get(rel.fpr), (init.get("tpr_at_fpr_ci") or {}).get(rel.fpr)
            cands.append(Finding("init_members",
                                 f"the {init['n_members']} members copied into the release at initialisation, "
                                 f"found by {rel.name}",
                                 AttackSummary(name=rel.name, auc=init["auc"], tpr=t, fpr=rel.fpr,
                                               tpr_ci=None if t_ci is None else tuple(t_ci))))
        cands.append(Finding("release_attack", "the attack on the released set", rel))
    if ev.primary_attack:
        cands.append(Finding("primary_attack", "the primary attack", ev.primary_attack))
    cands = [c for c in cands if c.result.tpr is not None and (c.result.auc_ci or [1.0])[0] > 0.5]
    return max(cands, key=lambda c: c.result.tpr) if cands else None


def severity(entry: DefenseEntry) -> str:
    """``leaking`` when a declared attack's AUC beats chance beyond its 95% CI, the audited
    epsilon bound is positive, or most members copied into a release are found;
    ``guarantee`` for a DP defense not contradicted by its audit (an attack may still beat
    chance: leakage the claimed epsilon permits); ``no-evidence`` otherwise (which is not
    evidence of privacy)."""
    ev = entry.evidence
    bound = ev.epsilon_lower_bound.value if ev.epsilon_lower_bound else None
    claimed = entry.claimed_epsilon
    from mi_defense.reporting.canaries import of_its_settings

    contradicted = any(r["audited_epsilon_lower_bound"] > r["claimed_epsilon"] for r in of_its_settings(entry)
                       # a correct-mechanism canary audit
                       if not r.get("broken") and r.get("claimed_epsilon") is not None)
    if claimed is not None and not contradicted and (bound is None or bound <= claimed):  # a DP defense
        return "guarantee"
    if contradicted:
        return "leaking"
    # The TPR's bootstrap CI at a low FPR is no test: the threshold is set on the same few
    # non-members. The AUC's CI and the held-out epsilon bound are.
    w = worst_finding(entry)
    init_found = w is not None and w.kind == "init_members" and (w.result.tpr or 0) > 0.5
    if beats_chance(entry) or init_found or (bound or 0) > 0:
        return "leaking"
    return "no-evidence"


def beats_chance(entry: DefenseEntry) -> bool:
    """A declared attack (primary or on the release) whose AUC interval lies above 0.5."""
    ev = entry.evidence
    return any((s.auc_ci or [0.5])[0] > 0.5 for s in (ev.primary_attack, ev.release_attack) if s)


def limitations(results: AuditRecord) -> List[str]:
    n_non, cfg = results.split.n_nonmembers, results.config
    refs = cfg["references"]
    low = [f for f in (cfg.get("fprs") or []) if f < 1.0 / n_non]
    out = [f"The smallest FPR {n_non} non-members resolve is 1/{n_non} = {100 / n_non:.3g}%"
           + (f"; TPRs at {', '.join(f'{100 * f:g}%' for f in low)} FPR are unresolved "
              "(marked †: the TPR at zero false positives)."
              if low else ".")]
    if refs == 0:
        out.append("No reference runs: LiRA and RMIA were not run, so the audit lacks the strongest attacks; its "
                   "numbers are a weak lower bound on leakage.")
    elif refs < 64:
        out.append(f"{refs} reference runs per defense: LiRA uses one variance shared by all examples (per-example "
                   "variances need about 64 runs), which gives up part of its power at low FPR; more runs can only "
                   "raise the measured leakage.")
    else:
        out.append(f"{refs} reference runs per defense: enough for LiRA's per-example variances.")
    out.append("The confidence intervals are bootstrap intervals over the audited examples; they do not cover the "
               "randomness of training (another seed gives another target model).")
    out.append("\"Strongest attack\" is a maximum over many attacks, biased upward; it is selected on one half of the "
               "examples and reported on the other, and the verdicts use the primary attack declared before scoring.")
    out.append("An attack that finds nothing shows only that these attacks, at this number of examples and reference "
               "runs, found nothing; only a DP guarantee bounds every attack.")
    return out


def _overlap(a: Optional[tuple], b: Optional[tuple]) -> bool:
    return bool(a) and bool(b) and a[0] <= b[1] and b[0] <= a[1]


def dominated(entry: DefenseEntry, results: Optional[AuditRecord]) -> Optional[str]:
    """The verdict's line for a FRePo defense that a random real subset of the same size
    (``subset:n=K``, K = images per class x classes) beats on test accuracy at equal measured
    leakage (overlapping primary-attack AUC intervals); None otherwise. DP-FRePo (a claimed
    epsilon) is not compared: the subset has no guarantee to set against its accuracy."""
    p = entry.evidence.primary_attack
    if not results or entry.defense != "frepo" or entry.claimed_epsilon is not None or not p:
        return None
    # a spec without ipc: FRePo's default, recorded
    ipc = (entry.params or {}).get("ipc", (entry.metadata or {}).get("ipc"))
    if not isinstance(ipc, int) or isinstance(ipc, bool):
        return None
    size = ipc * len(results.class_names)
    for sub in results.defenses:
        s = sub.evidence.primary_attack
        if (sub.defense != "subset" or (sub.params or {}).get("n") != size or not s
                or sub.test_accuracy <= entry.test_accuracy or not _overlap(p.auc_ci, s.auc_ci)):
            continue
        steps = (entry.metadata or {}).get("distill_steps")
        return (f"**dominated by {sub.name}**, a random real subset of the same size ({size} images): it reaches "
                f"{100 * sub.test_accuracy:.1f}% test accuracy against {100 * entry.test_accuracy:.1f}% at equal "
                f"measured leakage (primary-attack AUC intervals [{p.auc_ci[0]:.3f}, {p.auc_ci[1]:.3f}] and "
                f"[{s.auc_ci[0]:.3f}, {s.auc_ci[1]:.3f}] overlap); a larger distillation budget could change this: "
                f"more outer steps{f' than {steps}' if steps else ''}, or more images per class than {ipc} (then "
                "compared with the subset of that size)")
    return None
