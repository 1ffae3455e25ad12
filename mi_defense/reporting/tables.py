"""Tables and verdicts shared by the HTML and Markdown reports, rendered from the typed
record of results.json (``auditing.record``) only."""
from __future__ import annotations

import csv
import io
from typing import List, Optional, Tuple

from attacks.lira import PER_EXAMPLE_VARIANCE_RUNS
from attacks.metrics import MAIN_FPR
from mi_defense.auditing.record import AttackSummary, AuditRecord, DefenseEntry, RegeneratedRows
from mi_defense.config.train import augment_name
from mi_defense.errors import UserError

FPR_MAIN = MAIN_FPR


def pct(v: Optional[float], digits: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def ci(v) -> str:
    return "" if not v else f" [{100 * v[0]:.1f}, {100 * v[1]:.1f}]"


def ci_raw(v) -> str:
    return "" if not v else f" [{v[0]:.3f}, {v[1]:.3f}]"


def dash(v) -> str:
    return "-" if v is None else v


def _attack_phrase(entry: DefenseEntry, s: AttackSummary, what: str) -> str:
    note = " (below 1/#non-members: the TPR at zero false positives)" if entry.unresolved(s) else ""
    return (f"{what}, {s.name}, reaches AUC {s.auc:.3f}{ci_raw(s.auc_ci)} and "
            f"TPR {pct(s.tpr, 2)}{ci(s.tpr_ci)} at {pct(float(s.fpr), 1)} FPR{note}")


def eps_text(entry: DefenseEntry) -> str:
    b = entry.evidence.epsilon_lower_bound
    return "-" if b is None or b.value is None else f"{b.value:.2f} ({b.attack})"


def verdict(entry: DefenseEntry, baseline_acc: Optional[float], n_nonmembers: Optional[int] = None,
            results: Optional[AuditRecord] = None) -> str:
    """One paragraph: a short first line (the severity, the primary attack's AUC with its
    interval, the smallest FPR ``n_nonmembers`` resolve), then the worst finding, utility
    kept (and, given the whole ``results``, a real subset that dominates a FRePo defense),
    the declared attacks with CIs, the audited and claimed epsilon, the guarantee."""
    from mi_defense.reporting.canaries import canary_sentence
    from mi_defense.reporting.findings import SEVERITIES, dominated, severity, worst_finding

    ev = entry.evidence
    lead = f"**{entry.name}: {SEVERITIES[severity(entry)]}.**"
    p = ev.primary_attack
    if p:
        lead += f" Primary attack AUC {p.auc:.3f}{ci_raw(p.auc_ci)}"
        lead += (f"; {n_nonmembers} non-members resolve FPRs down to {pct(1 / n_nonmembers, 1)}." if n_nonmembers
                 else ".")
    w = worst_finding(entry)
    if w is not None and w.kind == "init_members":
        s = w.result
        lead += (f" Worst finding: {w.what}, TPR {pct(s.tpr, 1)}{ci(s.tpr_ci)} at {pct(float(s.fpr), 1)} FPR "
                 f"(AUC {s.auc:.3f}).")
    elif w is not None:  # a declared attack: its full sentence leads, and is not repeated below
        lead += f" Worst finding: {_attack_phrase(entry, w.result, w.what)}."
    said = {w.kind} if w is not None else set()
    parts = [f"{lead} It reaches {pct(entry.test_accuracy)} test accuracy"]
    if entry.train_accuracy is not None:
        parts[-1] += f" ({pct(entry.train_accuracy)} on the members)"
    if baseline_acc is not None and entry.defense != "none":
        parts[-1] += f", {100 * (entry.test_accuracy - baseline_acc):+.1f} points against no defense"
    parts.extend(filter(None, [dominated(entry, results)]))  # a real subset of its size beats a FRePo defense
    if entry.undertrained:
        parts.append("**undertrained: leakage underestimated** (train accuracy below 95%; an undefended model is "
                     "deployed fitted to its training set)")
    if p and "primary_attack" not in said:
        parts.append(_attack_phrase(entry, p, "the primary attack"))
    many = ev.leave_one_out_primary
    if many and many.auc_mean is not None:
        pm = lambda v, scale: "" if v is None else f" ± {scale * v:.{3 if scale == 1 else 2}f}"
        tpr = "" if many.tpr_mean is None else (f" and TPR {100 * many.tpr_mean:.2f}{pm(many.tpr_se, 100)}% "
                                                f"at {pct(float(many.fpr), 1)} FPR")
        parts.append(f"over {many.targets} leave-one-out targets (the reference runs), {many.attack} averages AUC "
                     f"{many.auc_mean:.3f}{pm(many.auc_se, 1)}{tpr} (mean ± standard error)")
    if ev.release_attack and "release_attack" not in said:
        parts.append(_attack_phrase(entry, ev.release_attack, "the attack on the released set"))
    strong = ev.strongest_release_attack
    if strong:
        parts.append(f"the strongest attack on the released set, {strong.name} (chosen on half of the examples), "
                     f"reaches AUC {strong.auc:.3f}{ci_raw(strong.auc_ci)} on the other half")
    b = ev.epsilon_lower_bound if ev.epsilon_lower_bound and ev.epsilon_lower_bound.value is not None else None
    if b:
        claimed = entry.claimed_epsilon
        parts.append(f"audited epsilon lower bound {b.value:.2f} at {100 * b.confidence:.0f}% confidence"
                     + (f" against a claimed epsilon of {claimed:.3g} (natural examples and the final model only: a "
                        f"broken mechanism can score as low)" if claimed is not None else ""))
    if b and not b.value and severity(entry) == "leaking" and entry.claimed_epsilon is None:
        parts.append("the epsilon bound is 0 although an attack beats chance: at this audit's size its Clopper-Pearson "
                     "intervals on TPR and FPR are too wide to bound epsilon above 0, which says nothing about privacy")
    canary = canary_sentence(entry)
    if canary:
        parts.append(canary)
    parts.extend(guarantee(entry))
    return "; ".join(parts) + "."


def guarantee(entry: DefenseEntry) -> List[str]:
    """The verdict's last clauses: what the defense claims, and for a DP claim that an attack
    beats chance, that this is leakage the claim permits."""
    from mi_defense.reporting.findings import beats_chance

    if entry.claimed_epsilon is None:
        return ["no defense and no privacy guarantee" if entry.defense == "none" else
                "this defense carries no formal privacy guarantee; the attack results are the only evidence"]
    permitted = ([f"a declared attack beats chance: leakage that epsilon = {entry.claimed_epsilon:.3g} permits, "
                  "measured, not excluded by the claim"] if beats_chance(entry) else [])
    return permitted + ["the claimed guarantee, which rests on its proof and accountant (an audit can contradict it, "
                        "never confirm it): " + entry.privacy_statement.rstrip(".")]


def resolved_tpr(entry: DefenseEntry, s: AttackSummary) -> Tuple[str, Optional[float], Optional[tuple], bool]:
    """A declared attack's TPR at its declared FPR when the non-members resolve it, else at the
    smallest FPR they resolve: ``(fpr, tpr, tpr_ci, unresolved)``; ``unresolved`` only when
    no recorded FPR is resolved (then the declared one, the TPR at zero false positives)."""
    bad = entry.unresolved_fprs_of(s)
    table, cis = s.tpr_at_fpr or {}, s.tpr_at_fpr_ci or {}
    if s.fpr not in bad:
        return s.fpr, s.tpr, s.tpr_ci, False
    ok = sorted((f for f in table if f not in bad and table[f] is not None and float(f) > float(s.fpr)), key=float)
    if not ok:
        return s.fpr, s.tpr, s.tpr_ci, True
    return ok[0], table[ok[0]], cis.get(ok[0]), False


def _fpr(f: str) -> str:
    return f"{100 * float(f):g}%"


def _tpr_cells(entry_attacks: list) -> Tuple[str, List[str]]:
    """The header and cells of a TPR column (entries without the attack get "-"): the header
    names the FPR when every row shares it, else each cell does."""
    got = [None if s is None else resolved_tpr(e, s) for e, s in entry_attacks]
    fprs = {g[0] for g in got if g}
    head = f"TPR@{_fpr(next(iter(fprs)))}FPR [95% CI]" if len(fprs) == 1 else "TPR at a resolved FPR [95% CI]"
    cells = ["-" if g is None else f"{pct(g[1], 2)}{ci(g[2])}" + ("" if len(fprs) == 1 else f" at {_fpr(g[0])} FPR")
             + (" †" if g[3] else "") for g in got]
    return head, cells


def summary_rows(results: AuditRecord) -> List[List[str]]:
    """The summary table, privacy first: defense, claimed and audited epsilon, the primary
    attack's AUC and its TPR at a resolved FPR, then the accuracies and the rest (TPR at 1%
    FPR where the first TPR is at another FPR; the release attack's where a defense has one)."""
    ds = results.defenses
    tpr_head, tprs = _tpr_cells([(e, e.evidence.primary_attack) for e in ds])
    rel_head, rels = _tpr_cells([(e, e.evidence.release_attack) for e in ds])
    one, has_rel = not tpr_head.startswith("TPR@1%"), any(e.evidence.release_attack for e in ds)
    head = ["defense", "claimed ε", "audited ε ≥", "primary attack AUC [95% CI]", f"primary attack {tpr_head}",
            "test acc.", "acc. on members", "gap (points)", "primary attack"] + (["TPR@1%FPR"] if one else [])
    rows = [head + ([f"release attack {rel_head}"] if has_rel else []) + ["recipe"]]
    for e, tpr, rel in zip(ds, tprs, rels):
        s = e.evidence.primary_attack or AttackSummary()
        gap = e.generalization_gap
        row = [e.name + (" (undertrained)" if e.undertrained else ""),
               "-" if e.claimed_epsilon is None else f"{e.claimed_epsilon:.3g}", eps_text(e),
               f"{s.auc:.3f}{ci_raw(s.auc_ci)}" if s.name else "-", tpr, pct(e.test_accuracy),
               pct(e.train_accuracy), "-" if gap is None else f"{100 * gap:.1f}", dash(s.name)]
        row += [pct((s.tpr_at_fpr or {}).get("0.01"), 2)] if one else []
        rows.append(row + ([rel] if has_rel else []) + [dash(e.recipe.name if e.recipe else None)])
    return rows


def recipe_rows(results: AuditRecord) -> List[List[str]]:
    rows = [["defense", "recipe", "how its model is trained"]]
    for e in results.defenses:
        r = e.recipe
        rows.append([e.name, dash(r.name if r else None), dash(r.description if r else None)])
    return rows


def strongest_rows(results: AuditRecord) -> List[List[str]]:
    rows = [["defense", "attack chosen on half A", "AUC on half B [95% CI]", "TPR@0.1%FPR on half B [95% CI]"]]
    for e in results.defenses:
        for s, what in ((e.evidence.strongest_attack, ""), (e.evidence.strongest_release_attack, " (released set)")):
            if s:
                rows.append([e.name + what, s.name, f"{s.auc:.3f}{ci_raw(s.auc_ci)}", f"{pct(s.tpr, 2)}{ci(s.tpr_ci)}"])
    return rows


def attack_rows(entry: DefenseEntry) -> List[List[str]]:
    rows = [["attack", "AUC [95% CI]", "advantage", "TPR@1%FPR", "TPR@0.1%FPR"]]
    for name, r in entry.attacks.items():
        t = r.tpr_at_fpr
        rows.append([name, f"{r.auc:.3f}{ci_raw(r.auc_ci)}", f"{r.advantage:.3f}", pct(t.get("0.01"), 2),
                     pct(t.get(FPR_MAIN), 2) + (" †" if r.unresolved(FPR_MAIN) else "")])
    return rows


def csv_text(results: AuditRecord) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    fprs = sorted({k for e in results.defenses for r in e.attacks.values() for k in r.tpr_at_fpr}, key=float,
                  reverse=True)
    w.writerow(["defense", "test_accuracy", "train_accuracy", "attack", "auc", "auc_ci_low", "auc_ci_high", "advantage"]
               + [f"tpr_at_fpr_{f}" for f in fprs] + ["n_members", "n_nonmembers"])
    for e in results.defenses:
        for name, r in e.attacks.items():
            lo, hi = (r.auc_ci or (None, None))
            w.writerow([e.name, e.test_accuracy, e.train_accuracy, name, r.auc, lo, hi, r.advantage]
                       + [r.tpr_at_fpr.get(f) for f in fprs] + [r.n_members, r.n_nonmembers])
    return buf.getvalue()


THREAT_MODEL = (
    "The attacker wants to tell whether a given record was in the private training set (a *member*). "
    "It can query the released model on any input and read its outputs (logits), knows the data distribution "
    "and the training pipeline, and can repeat the whole defense on data of its own (reference runs, as LiRA "
    "and RMIA assume). When a defense releases data (the FRePo synthetic set), the attacker also sees that set. "
    "Members and non-members are equally likely a priori. Members are the positive class in every ROC; "
    "TPR at low FPR is the measure that matters: an attack that confidently identifies even a few members "
    "breaks their privacy, whatever its average accuracy (\"Membership Inference Attacks From First Principles\")."
)


def _recorded_primary(results: AuditRecord) -> str:
    """The primary attack the audit recorded (the same for every defense), as it was declared."""
    names = sorted({e.evidence.primary_attack.name for e in results.defenses if e.evidence.primary_attack} - {None})
    return ", ".join(names) or results.config.get("primary_attack") or "not recorded"


def setup_lines(results: AuditRecord) -> List[str]:
    c, sp, v, m = results.config, results.split, results.versions, results.machine or {}
    return [
        f"Dataset: {results.dataset} (input {'x'.join(str(d) for d in results.input_shape)}, "
        f"{len(results.class_names)} classes), split seed {sp.seed}, split SHA-256 {sp.hash[:16]}...",
        f"Members {sp.n_members}, non-members {sp.n_nonmembers}, test {sp.n_test} "
        f"(test from the {'test set' if sp.test_source == 'test' else 'training pool'}).",
        f"Target models: {'ConvNet' if len(results.input_shape) == 3 else 'MLP'} width {c['train']['width']}, depth "
        f"{c['train']['depth']}. The undefended model is trained on real data as it would be deployed (the real-data "
        "recipe: cross-entropy to convergence); a model trained on a distilled set keeps FRePo's evaluation protocol, "
        "and the random subset of the same size is trained with that same protocol, as \"No Free Lunch in 'Privacy for "
        "Free'\" prescribes; DP-SGD has its own recipe (see the recipe table).",
        *([f"Your model {c['model']} replaces that network (not in FRePo's pool nor dpsgd-linear): "
           "see the recipe table."] if c.get("model") else []),
        f"FRePo: pool ConvNet width {c['distill']['width']}, depth {c['distill']['depth']}, "
        f"{c['distill']['pool_norm']} norm, real batch {c['distill']['batch_real']}, pool {c['distill']['pool_size']}, "
        f"{c['distill']['steps']} outer steps.",
        f"Reference runs per defense: {c['references']} (LiRA / RMIA, leave-one-out over complementary pairs of runs); "
        f"targets per defense: {c['targets']}; bootstrap resamples: {c['bootstrap']}; "
        f"seed {c['seed']}. " + reference_note(c['references']),
        f"Primary attack, declared before scoring: {_recorded_primary(results)}; attack on a released set: "
        f"{c['release_attack']}. The epsilon lower bounds use one-sided Clopper-Pearson intervals at "
        f"{100 * c['confidence']:.0f}% confidence, the threshold chosen on one half of the examples and the bound "
        "computed on the other; they treat the examples of one training run as independent trials, which makes them "
        "evidence rather than proof, and a small bound never shows a defense is private.",
        f"Wall time: {_hours(results)}; machine: {v.get('platform', '?')}, {m.get('cpus', '?')} CPU cores"
        f"{', GPU ' + str(m['gpus']) if m.get('gpus') else ''}.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val and k not in ("platform",)),
        *[regenerated_line(r, c) for r in results.regenerated_rows or ()],
    ]


# The training settings a regenerated row may change (the scoring is the same: ``auditing.merge``):
# tables of settings, compared key by key, and single settings.
TRAINING_TABLES = ("train", "distill", "real_recipe")
TRAINING_SETTINGS = ("real_steps", "transform", "model")
SHOWN_DIFFERENCES = 4  # settings a regenerated-rows line names; the rest are counted


def _setting(v, present: bool = True) -> str:
    if not present:
        return "not recorded"
    text = ("none" if v is None else str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float)
            else str(v))
    return text if len(text) <= 40 else text[:37] + "..."


def _same_setting(key: str, a, b) -> bool:
    """Whether two recorded values of ``key`` are one setting: ``augment`` compares the modes its
    spellings name (``true`` is ``dsa``, as ``config.augment_name`` reads older records)."""
    if key == "augment" and a is not None and b is not None:
        try:
            return augment_name(a, key) == augment_name(b, key)
        except UserError:
            return a == b
    return a == b


def training_differences(config: Optional[dict], other: Optional[dict]) -> Tuple[List[str], List[str]]:
    """The training settings of ``config`` that differ from ``other``'s, each as
    ``"train.width 64 (the other rows: 32)"``, and those ``other`` does not record (written by an
    older version), each as ``"transform fixed"``; a setting absent on one side and null on the
    other is the same. Both empty when either configuration is not recorded. The settings
    outside the tables (normalisation, model) come first."""
    if not isinstance(config, dict) or not isinstance(other, dict):
        return [], []
    # (name, config's table or the configuration, other's, key)
    pairs = [(k, config, other, k) for k in TRAINING_SETTINGS]
    for t in TRAINING_TABLES:
        a, b = config.get(t), other.get(t)
        if isinstance(a, dict) and isinstance(b, dict):
            pairs += [(f"{t}.{k}", a, b, k) for k in list(a) + [k for k in b if k not in a]]
        else:
            pairs.append((t, config, other, t))
    differ, unrecorded = [], []
    for name, a, b, k in pairs:
        if _same_setting(k, a.get(k), b.get(k)):  # equal, or absent or null on both sides
            continue
        if k in b or k not in a:
            differ.append(f"{name} {_setting(a.get(k), k in a)} (the other rows: {_setting(b.get(k), k in b)})")
        else:
            unrecorded.append(f"{name} {_setting(a.get(k))}")
    return differ, unrecorded


def _named(items: List[str]) -> str:
    shown = items[:SHOWN_DIFFERENCES]
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def regenerated_line(r: RegeneratedRows, config: Optional[dict] = None) -> str:
    """One row set put in by a later audit of the same split (``auditing.merge``), with the
    training settings of that audit (``r.config``) that differ from the record's ``config``,
    which the set-up lines above describe, and those the record's audit did not record."""
    was = "; ".join(part for part in ("replacing the rows of the same name" if r.replaced else "",
                                      f"removing {', '.join(r.dropped)}" if r.dropped else "") if part)
    ver = (r.versions or {}).get("mi-defense", "?")
    line = (f"Rows {', '.join(r.rows)} were regenerated by a later audit of the same split, reference halves and "
            f"scoring (mi-defense {ver}){': ' + was if was else ''}; the other rows are unchanged.")
    differ, unrecorded = training_differences(r.config, config)
    if differ:
        line += f" Its training settings differ from the other rows' (the set-up above): {_named(differ)}."
    elif isinstance(r.config, dict) and isinstance(config, dict):
        line += " Its recorded training settings are the other rows' (the set-up above)."
    if unrecorded:
        line += f" Settings the other rows' audit did not record: {_named(unrecorded)}."
    return line


def reference_note(references: int) -> str:
    """How the number of reference runs limits LiRA and RMIA."""
    if not references:
        return ("Without reference runs LiRA and RMIA cannot run; threshold and trained attacks are much weaker at "
                "low FPR.")
    return (f"With {references} reference runs each example has {references // 2} IN and {references // 2} OUT runs: "
            + ("enough for LiRA's per-example variances. " if references >= PER_EXAMPLE_VARIANCE_RUNS else
               "too few for reliable per-example variances, so LiRA with a fixed (global) variance is the declared "
               "attack; more runs (64 and up) make LiRA stronger, so these numbers are a lower bound on what an "
               "attacker with more compute achieves. "))


def _hours(results: AuditRecord) -> str:
    t = results.timings or {}
    total = sum(v for v in (t.get("training_seconds_all_runs") or {}).values() if v)
    if not total:
        return "not recorded"
    return (f"{total / 3600:.2f} h of training over all runs (run times summed), "
            f"{t.get('scoring_seconds', 0) / 60:.1f} min of scoring")
