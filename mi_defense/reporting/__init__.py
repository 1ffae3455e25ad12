"""Render ``DIR/results.json`` into ``report.html`` (self-contained), ``report.md``,
``results.csv`` and five PNG figures. Reads results.json and the artifacts beside it only:
the text and tables from its typed record (``auditing.record``), the figures from its arrays."""
from __future__ import annotations

import base64
import html
from pathlib import Path
import os
import shutil
import tempfile
from typing import Dict, List, NamedTuple, Optional

from mi_defense.auditing.record import AuditRecord
from mi_defense.auditing.results import load_record, load_results  # noqa: F401  (the report's readers, re-exported)
from mi_defense.errors import UserError
from mi_defense.io import _alive, write_text
from mi_defense.reporting import canaries, figures, findings, images, tables

# (file, caption for a figure that carries none, how it is drawn: None for figure 4, drawn
# from the run artifacts). Each figure writes the caption that fits what it drew into its PNG
# (``figures.caption``), so the captions follow the data and a kept figure 4 keeps its own.
FIGURES = [
    ("fig1_roc.png", "ROC curves of every attack, one panel per defense (log-log axes).", figures.roc_curves),
    ("fig2_frontier.png", "Privacy/utility frontier: test accuracy against the primary attack's TPR and AUC, with 95% "
                          "bootstrap CIs.", figures.frontier),
    ("fig3_auc_over_steps.png", "AUC of the loss-threshold attack against the target's training steps.",
     figures.auc_over_steps),
    ("fig4_images.png", "Released images and the most exposed members per defense (drawn by an earlier version: "
                        "each row's title says what it shows).", None),
    ("fig5_per_class.png", "TPR at 1% FPR of the primary attack, by class.", figures.per_class),
]


def render_figures(results: dict, out_dir: Path, into: Optional[Path] = None) -> Dict[str, Path]:
    """Draw the figures into ``into`` (default ``out_dir``) from ``results`` and the run
    artifacts in ``out_dir``; a figure of images whose artifacts are gone keeps the one
    already in ``out_dir``."""
    into = out_dir if into is None else into
    out = {}
    for name, _, fn in FIGURES:
        path = into / name
        made = images.images(results, out_dir, path) if fn is None else fn(results, path)
        if made is None and fn is None and (out_dir / name).is_file():
            # the images come from the run's artifacts; keep the figure drawn when they were there
            made = out_dir / name
        if made is not None:
            out[name] = made
    return out


def captions(figs: Dict[str, Path]) -> Dict[str, str]:
    """Each drawn figure's caption: the one written into it, else the fallback in ``FIGURES``."""
    return {name: figures.caption(figs[name]) or fallback for name, fallback, _ in FIGURES if name in figs}


def _md(text: str) -> str:
    """User text (defense and class names) made inert in Markdown: HTML escaped, pipes kept out of tables."""
    return html.escape(str(text), quote=False).replace("|", "&#124;")


def _md_table(rows) -> str:
    rows = [[_md(c) for c in r] for r in rows]
    head, *body = rows
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def _html_table(rows, box_id: str = "") -> str:
    """A table in a box that scrolls sideways when the table is wider than the page."""
    head, *body = rows
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    ident = f' id="{box_id}"' if box_id else ""
    return f'<div class="table-box"{ident}><table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table></div>'


def _md_inline(text: str) -> str:
    """The verdicts use **bold**; turn it into <strong> after escaping."""
    parts = html.escape(text).split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


SUMMARY_NOTE = ("Each TPR in the summary is at the attack's declared FPR where the non-members resolve it, else at the "
                "smallest FPR they resolve (named in the column's header); the per-defense tables below give every "
                "FPR.")

FOOTNOTE = ("† the FPR is below 1/#non-members and cannot be resolved with this many non-members; "
            "the value shown is the TPR at zero false positives.")


STRONGEST_NOTE = ("A secondary view. The maximum over many attacks on the same examples overstates leakage, so each "
                  "defense's strongest attack is chosen on a random half of the examples (A) and its numbers are "
                  "computed on the other half (B) only. The verdicts and the frontier use the primary attack, declared "
                  "before scoring.")


STAGING = ".report-staging"


def _remove_stale_staging(out_dir: Path) -> None:
    """Remove staging folders that killed renders (their process gone) left in ``out_dir``."""
    for d in out_dir.glob(f"{STAGING}.*"):
        try:
            pid = int(d.name[len(STAGING) + 1:].split(".")[0])
        except ValueError:
            continue
        if d.is_dir() and pid != os.getpid() and not _alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def render_report(out_dir) -> Dict[str, Path]:
    """Write report.html, report.md, results.csv and the figures into ``out_dir``.

    Everything is drawn into a staging folder inside ``out_dir`` and moved into place only
    when all of it is drawn (the figures first, report.html last): a render that fails
    leaves the folder as it was."""
    out_dir = Path(out_dir)
    record = load_record(out_dir)
    _remove_stale_staging(out_dir)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f"{STAGING}.{os.getpid()}.", dir=out_dir))
    except OSError as exc:
        raise UserError(f"cannot write in {out_dir} ({exc.strerror or exc}); "
                        "choose a writable folder with free space") from None
    try:
        staged = _render(record, out_dir, stage)
        placed = {}
        for key in [k for k in staged if k not in ("csv", "md", "html")] + ["csv", "md", "html"]:
            path = staged[key]
            if path.parent == stage:
                os.replace(path, out_dir / path.name)
                path = out_dir / path.name
            placed[key] = path
        for name, _, fn in FIGURES:  # a figure drawn from the results that this render leaves out is not kept stale
            if fn is not None and name not in staged and (out_dir / name).is_file():
                (out_dir / name).unlink()
        return {k: placed[k] for k in staged}
    except OSError as exc:
        raise UserError(f"cannot write the report into {out_dir} ({exc.strerror or exc}); "
                        "choose a writable folder with free space") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


class Sections(NamedTuple):
    """What the Markdown and the HTML report both say, rendered once from the record."""

    title: str
    verdicts: List[str]
    severities: List[str]
    limits: List[str]
    setup: List[str]
    summary: List[List[str]]
    canary: List[list]   # the canary audits' table (its header alone: none recorded)
    power: List[str]     # how many broken controls each kind of canary audit caught
    recipes: List[List[str]]
    strongest: List[List[str]]
    glossary: List[List[str]]


def sections(record: AuditRecord, out_dir: Path) -> Sections:
    """The report's text and tables from the record, and the canary audits recorded beside it in ``out_dir``."""
    base = next((e.test_accuracy for e in record.defenses if e.defense == "none"), None)
    recorded = canaries.load_canaries(out_dir)  # read once: the table, the power lines and the HTML
    return Sections(title=f"Membership-inference audit: {record.dataset}",
                    verdicts=[tables.verdict(e, base, record.split.n_nonmembers, record) for e in record.defenses],
                    severities=[findings.severity(e) for e in record.defenses], limits=findings.limitations(record),
                    setup=tables.setup_lines(record), summary=tables.summary_rows(record),
                    canary=canaries.canary_rows(recorded), power=canaries.power(recorded),
                    recipes=tables.recipe_rows(record), strongest=tables.strongest_rows(record),
                    glossary=[["name", "what it is"]] + [list(g) for g in findings.GLOSSARY])


def markdown(record: AuditRecord, s: Sections, said: Dict[str, str]) -> str:
    """``report.md``: the sections, one table of attacks per defense, and the figures ``said``
    (file name -> caption) drew."""
    md = [f"# {_md(s.title)}", "", "## Verdicts", ""] + [f"- {_md(v)}" for v in s.verdicts]
    md += ["", "## Limitations", ""] + [f"> - {_md(line)}" for line in s.limits]
    md += ["", "## Threat model", "", tables.THREAT_MODEL, "", "## Set-up", ""] + [f"- {_md(line)}" for line in s.setup]
    md += ["", "## Summary", "", _md_table(s.summary), "", SUMMARY_NOTE, "", FOOTNOTE, ""]
    if len(s.canary) > 1:
        md += ["## Canary audits of the DP mechanisms", "", canaries.NOTE, ""] + [f"- {_md(p)}" for p in s.power]
        md += ["", _md_table(s.canary), ""]
    md += ["## Training recipes", "", _md_table(s.recipes), ""]
    md += ["## Strongest attack, selected on held-out examples", "", STRONGEST_NOTE, "", _md_table(s.strongest), ""]
    for e in record.defenses:
        md += [f"### {_md(e.name)}", "", _md(e.privacy_statement), "", _md_table(tables.attack_rows(e)), ""]
    md += ["## Glossary of attacks", "", _md_table(s.glossary), ""]
    md += ["## Figures", ""]
    for name, caption in said.items():
        md += [f"![{caption}]({name})", "", caption, ""]
    return "\n".join(md)


def _render(record: AuditRecord, out_dir: Path, stage: Path) -> Dict[str, Path]:
    """Draw every file of the report into ``stage``; the run artifacts are read from ``out_dir``."""
    figs = render_figures(record.to_json(), out_dir, stage)
    s = sections(record, out_dir)
    said = captions(figs)
    write_text(stage / "report.md", markdown(record, s, said))
    write_text(stage / "results.csv", tables.csv_text(record))

    body = [f"<h1>{html.escape(s.title)}</h1>", "<h2>Verdicts</h2>"]
    body += [f'<p class="verdict sev-{sev}">{_md_inline(v)}</p>' for v, sev in zip(s.verdicts, s.severities)]
    body += (['<div class="limitations"><h2>Limitations</h2><ul>']
             + [f"<li>{html.escape(line)}</li>" for line in s.limits] + ["</ul></div>"])
    body += ["<h2>Threat model</h2>", f"<p>{_md_inline(tables.THREAT_MODEL)}</p>", "<h2>Set-up</h2><ul>"]
    body += [f"<li>{html.escape(line)}</li>" for line in s.setup] + ["</ul>"]
    body += ["<h2>Summary</h2>", _html_table(s.summary, "summary"),
             f'<p class="note">{html.escape(SUMMARY_NOTE)} {html.escape(FOOTNOTE)}</p>']
    if len(s.canary) > 1:
        body += ["<h2>Canary audits of the DP mechanisms</h2>", f"<p>{html.escape(canaries.NOTE)}</p>", "<ul>"]
        body += [f"<li>{html.escape(p)}</li>" for p in s.power] + ["</ul>", _html_table(s.canary)]
    body += ["<h2>Training recipes</h2>", _html_table(s.recipes)]
    body += ["<h2>Strongest attack, selected on held-out examples</h2>", f"<p>{html.escape(STRONGEST_NOTE)}</p>",
             _html_table(s.strongest)]
    for e in record.defenses:
        body += [f"<h3>{html.escape(e.name)}</h3>", f"<p>{html.escape(e.privacy_statement)}</p>",
                 _html_table(tables.attack_rows(e))]
    body += ["<h2>Glossary of attacks</h2>", _html_table(s.glossary)]
    body += ["<h2>Figures</h2>"]
    for name, caption in said.items():
        data = base64.b64encode(figs[name].read_bytes()).decode()
        body += [f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                 f'<figcaption>{html.escape(caption)}</figcaption></figure>']
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
             "padding:0 1em;color:#222;line-height:1.45}"
             ".table-box{overflow-x:auto;max-width:100%;margin:1em 0}table{border-collapse:collapse;font-size:.9em}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
             "th{background:#f2f2f2}.verdict{background:#f7f9fc;border-left:6px solid #0072B2;padding:.5em .8em}"
             ".sev-leaking{border-left-color:#D55E00;background:#fdf3ee}.sev-no-evidence{border-left-color:#E69F00}"
             ".sev-guarantee{border-left-color:#009E73;background:#f0f9f5}"
             ".limitations{background:#fffbea;border:1px solid #e6d690;padding:.2em 1em;margin:1em 0}"
             ".note{font-size:.85em;color:#555}img{max-width:100%}figcaption{font-size:.9em;color:#444}")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(s.title)}</title>'
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
    write_text(stage / "report.html", page)
    return {"html": stage / "report.html", "md": stage / "report.md", "csv": stage / "results.csv", **figs}
