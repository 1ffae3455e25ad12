"""Tables and verdicts shared by the HTML and Markdown reports (read from results.json only)."""
from __future__ import annotations

import csv
import io
from typing import List, Optional, Tuple

from attacks.lira import PER_EXAMPLE_VARIANCE_RUNS
from attacks.metrics import MAIN_FPR

FPR_MAIN = MAIN_FPR


def pct(v: Optional[float], digits: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def ci(v) -> str:
    return "" if not v else f" [{100 * v[0]:.1f}, {100 * v[1]:.1f}]"


def ci_raw(v) -> str:
    return "" if not v else f" [{v[0]:.3f}, {v[1]:.3f}]"


def unresolved(entry: dict, attack: str, fpr: str = FPR_MAIN) -> bool:
    return fpr in entry["attacks"].get(attack, {}).get("unresolved_fprs", [])


def _attack_phrase(entry: dict, s: dict, what: str) -> str:
    note = " (below 1/#non-members: the TPR at zero false positives)" if unresolved(entry, s["name"], s["fpr"]) else ""
    return (f"{what}, {s['name']}, reaches AUC {s['auc']:.3f}{ci_raw(s.get('auc_ci'))} and "
            f"TPR {pct(s['tpr'], 2)}{ci(s.get('tpr_ci'))} at {pct(float(s['fpr']), 1)} FPR{note}")


def eps_text(entry: dict) -> str:
    b = entry.get("epsilon_lower_bound")
    return "-" if not b else f"{b['value']:.2f} ({b['attack']})"


def verdict(entry: dict, baseline_acc: Optional[float], n_nonmembers: Optional[int] = None, results: Optional[dict] = None) -> str:
    """One paragraph: a short first line (the severity, the primary attack's AUC with its
    interval, the smallest FPR ``n_nonmembers`` resolve), then the worst finding, utility
    kept (and, given the whole ``results``, a real subset that dominates a FRePo defense),
    the declared attacks with CIs, the audited and claimed epsilon, the guarantee."""
    from mi_defense.reporting.canaries import canary_sentence
    from mi_defense.reporting.findings import SEVERITIES, dominated, severity, worst_finding

    lead = f"**{entry['name']}: {SEVERITIES[severity(entry)]}.**"
    p = entry.get("primary_attack")
    if p:
        lead += f" Primary attack AUC {p['auc']:.3f}{ci_raw(p.get('auc_ci'))}"
        lead += f"; {n_nonmembers} non-members resolve FPRs down to {pct(1 / n_nonmembers, 1)}." if n_nonmembers else "."
    w = worst_finding(entry)
    if w is not None and w.kind == "init_members":
        s = w.result
        lead += (f" Worst finding: {w.what}, TPR {pct(s['tpr'], 1)}{ci(s.get('tpr_ci'))} at {pct(float(s['fpr']), 1)} FPR"
                 f" (AUC {s['auc']:.3f}).")
    elif w is not None:  # a declared attack: its full sentence leads, and is not repeated below
        lead += f" Worst finding: {_attack_phrase(entry, w.result, w.what)}."
    said = {w.kind} if w is not None else set()
    parts = [f"{lead} It reaches {pct(entry['test_accuracy'])} test accuracy"]
    if entry.get("train_accuracy") is not None:
        parts[-1] += f" ({pct(entry['train_accuracy'])} on the members)"
    if baseline_acc is not None and entry["defense"] != "none":
        parts[-1] += f", {100 * (entry['test_accuracy'] - baseline_acc):+.1f} points against no defense"
    parts.extend(filter(None, [dominated(entry, results)]))  # a real subset of its size beats a FRePo defense
    if entry.get("undertrained"):
        parts.append("**undertrained: leakage underestimated** (train accuracy below 95%; an undefended model is "
                     "deployed fitted to its training set)")
    if entry.get("primary_attack") and "primary_attack" not in said:
        parts.append(_attack_phrase(entry, entry["primary_attack"], "the primary attack"))
    many = entry.get("leave_one_out_primary")
    if many:
        pm = lambda v, scale: "" if v is None else f" ± {scale * v:.{3 if scale == 1 else 2}f}"
        tpr = "" if many.get("tpr_mean") is None else (f" and TPR {100 * many['tpr_mean']:.2f}{pm(many.get('tpr_se'), 100)}% "
                                                         f"at {pct(float(many.get('fpr', FPR_MAIN)), 1)} FPR")
        parts.append(f"over {many['targets']} leave-one-out targets (the reference runs), {many['attack']} averages AUC "
                     f"{many['auc_mean']:.3f}{pm(many.get('auc_se'), 1)}{tpr} (mean ± standard error)")
    if entry.get("release_attack") and "release_attack" not in said:
        parts.append(_attack_phrase(entry, entry["release_attack"], "the attack on the released set"))
    strong = entry.get("strongest_release_attack")
    if strong:
        parts.append(f"the strongest attack on the released set, {strong['name']} (chosen on half of the examples), reaches "
                     f"AUC {strong['auc']:.3f}{ci_raw(strong.get('auc_ci'))} on the other half")
    b = entry.get("epsilon_lower_bound")
    if b:
        claimed = entry.get("claimed_epsilon")
        parts.append(f"audited epsilon lower bound {b['value']:.2f} at {100 * b['confidence']:.0f}% confidence"
                     + (f" against a claimed epsilon of {claimed:.3g} (natural examples and the final model only: a "
                        f"broken mechanism can score as low)" if claimed is not None else ""))
    if b and not b["value"] and severity(entry) == "leaking" and entry.get("claimed_epsilon") is None:
        parts.append("the epsilon bound is 0 although an attack beats chance: at this audit's size its Clopper-Pearson "
                     "intervals on TPR and FPR are too wide to bound epsilon above 0, which says nothing about privacy")
    canary = canary_sentence(entry)
    if canary:
        parts.append(canary)
    if entry.get("claimed_epsilon") is not None:
        parts.append("formal guarantee: " + entry["privacy_statement"].rstrip("."))
    elif entry["defense"] == "none":
        parts.append("no defense and no privacy guarantee")
    else:
        parts.append("this defense carries no formal privacy guarantee; the attack results are the only evidence")
    return "; ".join(parts) + "."


def resolved_tpr(entry: dict, s: dict) -> Tuple[str, Optional[float], Optional[list], bool]:
    """A declared attack's TPR at its declared FPR when the non-members resolve it, else at the
    smallest FPR they resolve: ``(fpr, tpr, tpr_ci, unresolved)``; ``unresolved`` only when
    no recorded FPR is resolved (then the declared one, the TPR at zero false positives)."""
    bad = set(entry["attacks"].get(s["name"], {}).get("unresolved_fprs", [])) | set(s.get("unresolved_fprs") or [])
    table, cis = s.get("tpr_at_fpr") or {}, s.get("tpr_at_fpr_ci") or {}
    if s["fpr"] not in bad:
        return s["fpr"], s.get("tpr"), s.get("tpr_ci"), False
    ok = sorted((f for f in table if f not in bad and table[f] is not None and float(f) > float(s["fpr"])), key=float)
    if not ok:
        return s["fpr"], s.get("tpr"), s.get("tpr_ci"), True
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


def summary_rows(results: dict) -> List[List[str]]:
    """The summary table, privacy first: defense, claimed and audited epsilon, the primary
    attack's AUC and its TPR at a resolved FPR, then the accuracies and the rest (TPR at 1%
    FPR where the first TPR is at another FPR; the release attack's where a defense has one)."""
    ds = results["defenses"]
    tpr_head, tprs = _tpr_cells([(e, e.get("primary_attack")) for e in ds])
    rel_head, rels = _tpr_cells([(e, e.get("release_attack")) for e in ds])
    one, has_rel = not tpr_head.startswith("TPR@1%"), any(e.get("release_attack") for e in ds)
    head = ["defense", "claimed ε", "audited ε ≥", "primary attack AUC [95% CI]", f"primary attack {tpr_head}", "test acc.",
            "acc. on members", "gap (points)", "primary attack"] + (["TPR@1%FPR"] if one else [])
    rows = [head + ([f"release attack {rel_head}"] if has_rel else []) + ["recipe"]]
    for e, tpr, rel in zip(ds, tprs, rels):
        s = e.get("primary_attack") or {}
        gap = e.get("generalization_gap")
        row = [e["name"] + (" (undertrained)" if e.get("undertrained") else ""),
               "-" if e.get("claimed_epsilon") is None else f"{e['claimed_epsilon']:.3g}", eps_text(e),
               f"{s['auc']:.3f}{ci_raw(s.get('auc_ci'))}" if s else "-", tpr, pct(e["test_accuracy"]),
               pct(e.get("train_accuracy")), "-" if gap is None else f"{100 * gap:.1f}", s.get("name", "-")]
        row += [pct(s.get("tpr_at_fpr", {}).get("0.01"), 2)] if one else []
        rows.append(row + ([rel] if has_rel else []) + [(e.get("recipe") or {}).get("name", "-")])
    return rows


def recipe_rows(results: dict) -> List[List[str]]:
    rows = [["defense", "recipe", "how its model is trained"]]
    for e in results["defenses"]:
        r = e.get("recipe") or {}
        rows.append([e["name"], r.get("name", "-"), r.get("description", "-")])
    return rows


def strongest_rows(results: dict) -> List[List[str]]:
    rows = [["defense", "attack chosen on half A", "AUC on half B [95% CI]", "TPR@0.1%FPR on half B [95% CI]"]]
    for e in results["defenses"]:
        for key, what in (("strongest_attack", ""), ("strongest_release_attack", " (released set)")):
            s = e.get(key)
            if s:
                rows.append([e["name"] + what, s["name"], f"{s['auc']:.3f}{ci_raw(s.get('auc_ci'))}",
                             f"{pct(s.get('tpr'), 2)}{ci(s.get('tpr_ci'))}"])
    return rows


def attack_rows(entry: dict) -> List[List[str]]:
    rows = [["attack", "AUC [95% CI]", "advantage", "TPR@1%FPR", "TPR@0.1%FPR"]]
    for name, r in entry["attacks"].items():
        t = r["tpr_at_fpr"]
        rows.append([name, f"{r['auc']:.3f}{ci_raw(r.get('auc_ci'))}", f"{r['advantage']:.3f}", pct(t.get("0.01"), 2),
                     pct(t.get(FPR_MAIN), 2) + (" †" if FPR_MAIN in r.get("unresolved_fprs", []) else "")])
    return rows


def csv_text(results: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    fprs = sorted({k for e in results["defenses"] for r in e["attacks"].values() for k in r["tpr_at_fpr"]}, key=float, reverse=True)
    w.writerow(["defense", "test_accuracy", "train_accuracy", "attack", "auc", "auc_ci_low", "auc_ci_high", "advantage"]
               + [f"tpr_at_fpr_{f}" for f in fprs] + ["n_members", "n_nonmembers"])
    for e in results["defenses"]:
        for name, r in e["attacks"].items():
            lo, hi = (r.get("auc_ci") or [None, None])
            w.writerow([e["name"], e["test_accuracy"], e.get("train_accuracy"), name, r["auc"], lo, hi, r["advantage"]]
                       + [r["tpr_at_fpr"].get(f) for f in fprs] + [r["n_members"], r["n_nonmembers"]])
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


def _recorded_primary(results: dict) -> str:
    """The primary attack the audit recorded (the same for every defense), as it was declared."""
    names = sorted({(e.get("primary_attack") or {}).get("name") for e in results["defenses"]} - {None})
    return ", ".join(names) or results["config"].get("primary_attack") or "not recorded"


def setup_lines(results: dict) -> List[str]:
    c, sp, v = results["config"], results["split"], results["versions"]
    return [
        f"Dataset: {results['dataset']} (input {'x'.join(str(d) for d in results['input_shape'])}, {len(results['class_names'])} classes), "
        f"split seed {sp['seed']}, split SHA-256 {sp['hash'][:16]}...",
        f"Members {sp['n_members']}, non-members {sp['n_nonmembers']}, test {sp['n_test']} "
        f"(test from the {'test set' if sp['test_source'] == 'test' else 'training pool'}).",
        f"Target models: {'ConvNet' if len(results['input_shape']) == 3 else 'MLP'} width {c['train']['width']}, depth {c['train']['depth']}. "
        "The undefended model is trained on real data as it would be deployed (the real-data recipe: cross-entropy to "
        "convergence); a model trained on a distilled set keeps FRePo's evaluation protocol, and the random subset of the "
        "same size is trained with that same protocol, as \"No Free Lunch in 'Privacy for Free'\" prescribes; DP-SGD has its "
        "own recipe (see the recipe table).",
        *([f"Your model {c['model']} replaces that network (not in FRePo's pool nor dpsgd-linear): see the recipe table."] if c.get("model") else []),
        f"FRePo: pool ConvNet width {c['distill']['width']}, depth {c['distill']['depth']}, {c['distill']['pool_norm']} norm, "
        f"real batch {c['distill']['batch_real']}, pool {c['distill']['pool_size']}, {c['distill']['steps']} outer steps.",
        f"Reference runs per defense: {c['references']} (LiRA / RMIA, leave-one-out over complementary pairs of runs); targets per defense: "
        f"{c['targets']}; bootstrap resamples: {c['bootstrap']}; seed {c['seed']}. " + reference_note(c['references']),
        f"Primary attack, declared before scoring: {_recorded_primary(results)}; attack on a "
        f"released set: {c.get('release_attack', 'release_pixel')}. The epsilon lower bounds use one-sided Clopper-Pearson "
        f"intervals at {100 * c.get('confidence', 0.95):.0f}% confidence, the threshold chosen on one half of the examples and "
        "the bound computed on the other; they treat the examples of one training run as independent trials, which makes them "
        "evidence rather than proof, and a small bound never shows a defense is private.",
        f"Wall time: {_hours(results)}; machine: {results['versions'].get('platform', '?')}, {results.get('machine', {}).get('cpus', '?')} CPU cores"
        f"{', GPU ' + str(results['machine']['gpus']) if results.get('machine', {}).get('gpus') else ''}.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val and k not in ("platform",)),
    ]


def reference_note(references: int) -> str:
    """How the number of reference runs limits LiRA and RMIA."""
    if not references:
        return "Without reference runs LiRA and RMIA cannot run; threshold and trained attacks are much weaker at low FPR."
    return (f"With {references} reference runs each example has {references // 2} IN and {references // 2} OUT runs: "
            + ("enough for LiRA's per-example variances. " if references >= PER_EXAMPLE_VARIANCE_RUNS else
               "too few for reliable per-example variances, so LiRA with a fixed (global) variance is the declared attack; "
               "more runs (64 and up) make LiRA stronger, so these numbers are a lower bound on what an attacker with more "
               "compute achieves. "))


def _hours(results: dict) -> str:
    t = results.get("timings", {})
    total = sum(v for v in (t.get("training_seconds_all_runs") or {}).values() if v)
    if not total:
        return "not recorded"
    return f"{total / 3600:.2f} h of training over all runs (run times summed), {t.get('scoring_seconds', 0) / 60:.1f} min of scoring"
