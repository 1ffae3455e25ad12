"""Write the generated parts of the documentation from committed files, or check them.

* ``docs/reference/cli.md``: every command's ``--help``;
* ``docs/results/reference-audits.md``: one table per committed reference audit, from its
  ``results.json`` (and the canary audits recorded beside it);
* the README's headline table, between ``<!-- headline:start -->`` and ``<!-- headline:end -->``.

Usage: ``python docs/generate.py`` (write) or ``python docs/generate.py --check`` (exit 1
naming every file that differs from what the committed results give).
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUDITS = ["mnist-cpu", "fashion_mnist-cpu", "fashion_mnist-cpu-small", "mnist-cpu-dp", "fashion_mnist-cpu-dp"]
COMMANDS = [["data", "list"], ["data", "fetch"], ["distill"], ["evaluate"], ["audit"], ["run"], ["attacks"], ["report"],
            ["canary"], ["bench"]]
START, END = "<!-- headline:start -->", "<!-- headline:end -->"


def _help(argv) -> str:
    from mi_defense.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix it
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return out.getvalue().rstrip().replace("\noptional arguments:", "\noptions:")  # Python < 3.10 says the former


def cli_page() -> str:
    parts = ["# Command-line reference", "", "Generated from `mi-defense <command> --help` by `docs/generate.py`.", "",
             "```text", _help([]), "```", ""]
    for argv in COMMANDS:
        parts += [f"## mi-defense {' '.join(argv)}", "", "```text", _help(argv), "```", ""]
    return "\n".join(parts)


def _auc(a) -> str:
    from mi_defense.report.tables import ci_raw

    return "-" if not a else f"{a['auc']:.3f}{ci_raw(a.get('auc_ci'))}"


def _tpr(a) -> str:
    return "-" if not a or a.get("tpr") is None else f"{100 * a['tpr']:.1f}% @ {100 * float(a['fpr']):g}% FPR"


def _canary(e) -> str:
    rows = [r for r in e.get("canary_audits") or [] if not r.get("broken")]
    return "; ".join(f"{'one run' if 'canaries' in r else 'one step'} >= {r['audited_epsilon_lower_bound']:.2f}" for r in rows) or "-"


def audit_rows(folder: str):
    from mi_defense.audit.results import load_results
    from mi_defense.report.tables import pct

    r = load_results(ROOT / "reports" / folder)
    head = ["defense", "test accuracy", "claimed ε", "primary attack AUC [95% CI]", "its TPR", "audited ε ≥ (natural)",
            "strongest release attack AUC", "canary audit ε ≥"]
    rows = [head]
    for e in r["defenses"]:
        b = e.get("epsilon_lower_bound") or {}
        strong = e.get("strongest_release_attack")
        rows.append([f"`{e['name']}`", pct(e["test_accuracy"]),
                     "-" if e.get("claimed_epsilon") is None else f"{e['claimed_epsilon']:.3g}",
                     _auc(e.get("primary_attack")), _tpr(e.get("primary_attack")),
                     "-" if not b else f"{b['value']:.2f}",
                     "-" if not strong else f"{strong['name']} {strong['auc']:.3f}", _canary(e)])
    return r, rows


def table(rows) -> str:
    return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
                     + ["| " + " | ".join(map(str, row)) + " |" for row in rows[1:]])


def audits_page() -> str:
    parts = ["# Reference audits", "", "Generated from each folder's `results.json` by `docs/generate.py`. The primary "
             "attack is declared before scoring; the audited ε from natural examples has little power (a broken mechanism "
             "can score as low); the canary audits are the ones that can fail (their broken controls are in each report). "
             "Full reports: `reports/<folder>/report.md`.", ""]
    for folder in AUDITS:
        if not (ROOT / "reports" / folder / "results.json").is_file():
            continue
        r, rows = audit_rows(folder)
        sp, cfg = r["split"], r["config"]
        parts += [f"## `reports/{folder}`", "",
                  f"{r['dataset']}: {sp['n_members']} members, {sp['n_nonmembers']} non-members, {sp['n_test']} test "
                  f"images, {cfg.get('references')} reference runs per defense; mi_defense {r['versions'].get('mi_defense', '?')}.",
                  "", table(rows), ""]
    return "\n".join(parts)


def headline() -> str:
    parts = [START, ""]
    for folder in ("mnist-cpu", "fashion_mnist-cpu"):
        if (ROOT / "reports" / folder / "results.json").is_file():
            r, rows = audit_rows(folder)
            parts += [f"**{r['dataset']}** (`reports/{folder}/report.md`)", "", table([x[:6] for x in rows]), ""]
    return "\n".join(parts + [END])


def outputs() -> dict:
    readme = (ROOT / "README.md").read_text()
    if START in readme and END in readme:
        a, b = readme.index(START), readme.index(END) + len(END)
        readme = readme[:a] + headline() + readme[b:]
    return {ROOT / "docs/reference/cli.md": cli_page() + "\n", ROOT / "docs/results/reference-audits.md": audits_page() + "\n",
            ROOT / "README.md": readme}


def main(argv) -> int:
    stale = []
    for path, text in outputs().items():
        if "--check" in argv:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
    if stale:
        print("out of date (run python docs/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
