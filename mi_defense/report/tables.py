"""Tables and verdicts shared by the HTML and Markdown reports (read from results.json only)."""
from __future__ import annotations

import csv
import io
from typing import List, Optional

FPR_MAIN = "0.001"


def pct(v: Optional[float], digits: int = 1) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}%"


def ci(v) -> str:
    return "" if not v else f" [{100 * v[0]:.1f}, {100 * v[1]:.1f}]"


def ci_raw(v) -> str:
    return "" if not v else f" [{v[0]:.3f}, {v[1]:.3f}]"


def unresolved(entry: dict, attack: str, fpr: str = FPR_MAIN) -> bool:
    return fpr in entry["attacks"].get(attack, {}).get("unresolved_fprs", [])


def verdict(entry: dict, baseline_acc: Optional[float]) -> str:
    """One paragraph: utility kept, strongest attack, TPR at low FPR with CI, the guarantee."""
    s = entry.get("strongest_attack") or {}
    parts = [f"**{entry['name']}** reaches {pct(entry['test_accuracy'])} test accuracy"]
    if baseline_acc is not None and entry["defense"] != "none":
        parts[-1] += f" ({100 * (entry['test_accuracy'] - baseline_acc):+.1f} points against no defense)"
    if s:
        note = " (below 1/#non-members: the TPR at zero false positives)" if unresolved(entry, s["name"], s["fpr"]) else ""
        parts.append(f"its strongest attack, {s['name']}, reaches AUC {s['auc']:.3f}{ci_raw(s.get('auc_ci'))} and "
                     f"TPR {pct(s['tpr'], 2)}{ci(s.get('tpr_ci'))} at {pct(float(s['fpr']), 1)} FPR{note}")
    if entry["defense"] == "dpsgd":
        parts.append("formal guarantee: " + entry["privacy_statement"].rstrip("."))
    elif entry["defense"] == "none":
        parts.append("no defense and no privacy guarantee")
    else:
        parts.append("this defense carries no formal privacy guarantee; the attack results are the only evidence")
    return "; ".join(parts) + "."


def summary_rows(results: dict) -> List[List[str]]:
    rows = [["defense", "test acc.", "train acc.", "strongest attack", "AUC [95% CI]", "TPR@10%FPR", "TPR@1%FPR", "TPR@0.1%FPR [95% CI]"]]
    for e in results["defenses"]:
        s = e.get("strongest_attack") or {}
        r = e["attacks"].get(s.get("name"), {})
        t = r.get("tpr_at_fpr", {})
        mark = " †" if s and unresolved(e, s["name"]) else ""
        rows.append([e["name"], pct(e["test_accuracy"]), pct(e.get("train_accuracy")), s.get("name", "-"),
                     f"{s.get('auc', float('nan')):.3f}{ci_raw(s.get('auc_ci'))}", pct(t.get("0.1"), 2), pct(t.get("0.01"), 2),
                     f"{pct(t.get(FPR_MAIN), 2)}{ci(r.get('tpr_at_fpr_ci', {}).get(FPR_MAIN))}{mark}"])
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


def setup_lines(results: dict) -> List[str]:
    c, sp, v = results["config"], results["split"], results["versions"]
    return [
        f"Dataset: {results['dataset']} (input {'x'.join(str(d) for d in results['input_shape'])}, {len(results['class_names'])} classes), "
        f"split seed {sp['seed']}, split SHA-256 {sp['hash'][:16]}...",
        f"Members {sp['n_members']}, non-members {sp['n_nonmembers']}, test {sp['n_test']} (test from the {'test set' if sp['test_source'] == 'test' else 'training pool'}).",
        f"Target models: {'ConvNet' if len(results['input_shape']) == 3 else 'MLP'} width {c['train']['width']}, depth {c['train']['depth']}, "
        f"Adam {c['train']['lr']:g} with warm-up and cosine decay, MSE on centred one-hot (or learned) labels; "
        f"{c['real_steps'] or 'protocol-default'} steps on real data.",
        f"FRePo: pool ConvNet width {c['distill']['width']}, depth {c['distill']['depth']}, {c['distill']['pool_norm']} norm, "
        f"real batch {c['distill']['batch_real']}, pool {c['distill']['pool_size']}, {c['distill']['steps']} outer steps.",
        f"Reference runs per defense: {c['references']} (LiRA / RMIA, leave-one-out over runs); targets per defense: {c['targets']}; "
        f"bootstrap resamples: {c['bootstrap']}; seed {c['seed']}.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val and k not in ("platform",)),
    ]
