"""``OUT/report_model.md`` and ``OUT/report_model.html``: the short report of ``audit_model``.

Rendered from the ``results_model.json`` record alone (no TensorFlow): the model's
architecture (source, layers with their names and parameters, parameter count), the
examples and reference runs, every attack with its AUC and TPR at the low false-positive
rates, and what this audit cannot show (no reference runs: weak attacks only; fewer than
``PER_EXAMPLE_VARIANCE_RUNS`` references: LiRA with one variance for every example;
false-positive rates below one over the number of non-members: unresolved).
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Dict, List, Tuple

from attacks.lira import PER_EXAMPLE_VARIANCE_RUNS

Table = Tuple[List[str], List[List[str]]]


def _ci(r: dict, key: str = None) -> str:
    ci = r.get("auc_ci") if key is None else (r.get("tpr_at_fpr_ci") or {}).get(key)
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _attack_table(record: dict) -> Table:
    results = record["attacks"]
    fprs = [str(k) for k in next(iter(results.values()), {}).get("tpr_at_fpr", {})]
    head = ["attack", "AUC [95% CI]"] + [f"TPR at FPR {f}" for f in fprs]
    rows = []
    for name, r in results.items():
        unresolved = set(r.get("unresolved_fprs", []))
        cells = [f"{r['tpr_at_fpr'][f]:.4f}{_ci(r, f)}" + (" (unresolved)" if f in unresolved else "") for f in fprs]
        shown = f"{name} (primary)" if name == record.get("primary_attack") else name
        rows.append([shown, f"{r['auc']:.3f}{_ci(r)}"] + cells)
    return head, rows


def _shape(shape) -> str:
    return "" if shape is None else "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _layer_table(model: dict) -> Table:
    details = model.get("layer_details") or [{"name": "", "class": c} for c in model.get("layers", [])]
    rows = [[d.get("name", ""), d["class"], _shape(d.get("output_shape")),
             f"{d['parameters']:,}" if "parameters" in d else ""]
            for d in details]
    return ["layer", "class", "output shape", "parameters"], rows


def limitations(record: dict) -> List[str]:
    """What the audit cannot show, one sentence each."""
    refs, n_out = record["references"], record["n_nonmembers"]
    out = []
    if refs == 0:
        out.append("No reference runs (audit_model without train): only the attacks that need none ran (threshold and "
                   "trained attacks), which are much weaker at low false-positive rates than LiRA and RMIA. A low "
                   "score here is not evidence of privacy; give train=fit and references=16 or more.")
    elif refs < PER_EXAMPLE_VARIANCE_RUNS:
        out.append(f"{refs} reference runs: LiRA uses one variance shared by every example (lira_online_fixed); "
                   f"per-example variances need {PER_EXAMPLE_VARIANCE_RUNS} or more runs, and 16 or more runs are the "
                   "least to publish.")
    out.append(f"{n_out} non-members resolve false-positive rates down to {1 / max(n_out, 1):.2g}; a TPR at a lower "
               "rate (marked unresolved) is the TPR at zero false positives.")
    out.append("Attacks that find little on these examples are no guarantee for others: only differential privacy "
               "bounds what any attack can find.")
    return out


def _sections(record: dict) -> Tuple[str, List[Tuple[str, List[str], List[Table]]]]:
    m = record["model"]
    refs = record["references"]
    trained = (f"{refs} reference runs, each trained by {record.get('reference_training') or 'your train function'} "
               "on half of the examples (every example in half of the runs)" if refs else "no reference runs")
    model_lines = [f"Model {m['source']}: {len(m.get('layers', []))} layers, {m['parameters']:,} parameters; "
                   f"its outputs read as {record.get('outputs', 'logits')}."]
    data_lines = [f"{record['n_members']} members, {record['n_nonmembers']} non-members; {trained}. Primary attack: "
                  f"{record.get('primary_attack')}."]
    return "Membership-inference audit of a trained model", [
        ("Architecture", model_lines, [_layer_table(m)]),
        ("Attacks", data_lines, [_attack_table(record)]),
        ("What this audit cannot show", limitations(record), []),
    ]


def markdown(record: dict) -> str:
    title, sections = _sections(record)
    lines = [f"# {title}", ""]
    for name, paragraphs, tables in sections:
        lines += [f"## {name}", ""]
        bullets = name == "What this audit cannot show"
        lines += [f"- {p}" for p in paragraphs] if bullets else paragraphs
        lines.append("")
        for head, rows in tables:
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            lines.append("")
    return "\n".join(lines)


def to_html(record: dict) -> str:
    title, sections = _sections(record)
    e = html.escape
    body = [f"<h1>{e(title)}</h1>"]
    for name, paragraphs, tables in sections:
        body.append(f"<h2>{e(name)}</h2>")
        if name == "What this audit cannot show":
            body.append("<ul>" + "".join(f"<li>{e(p)}</li>" for p in paragraphs) + "</ul>")
        else:
            body += [f"<p>{e(p)}</p>" for p in paragraphs]
        for head, rows in tables:
            body.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_model_report(record: dict, out_dir) -> Dict[str, Path]:
    """Write ``report_model.md`` and ``report_model.html`` into ``out_dir``; return their paths."""
    from mi_defense.io import write_text

    out = Path(out_dir)
    paths = {"md": out / "report_model.md", "html": out / "report_model.html"}
    write_text(paths["md"], markdown(record))
    write_text(paths["html"], to_html(record))
    return paths
