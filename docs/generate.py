"""Write the generated parts of the documentation from committed files, or check them.

* ``docs/reference/cli.md``: every command's ``--help``;
* ``docs/results/reference-audits.md``: one table per committed reference audit, from its
  ``results.json`` (and the canary audits recorded beside it);
* the README's headline table, between ``<!-- headline:start -->`` and ``<!-- headline:end -->``;
* the measured tables of the guides, each between ``<!-- generated:NAME:start -->`` and
  ``<!-- generated:NAME:end -->`` (``GUIDE_TABLES``: NAME, its page, and the committed
  ``evaluate*.json`` behind each cell), and the blocks of ``GUIDE_BLOCKS`` (the ``cheap``
  preset's measurement, the tables of a reference audit on the measurements page:
  ``generated_blocks.py``).

The guides, ``docs/index.md`` and the README hold no other percentage: ``tests/test_docs.py``
fails on one outside these blocks (``without_generated_blocks``), so a measured figure is
added to them by adding a table here (or linked on a results page).

Usage: ``python docs/generate.py`` (write) or ``python docs/generate.py --check`` (exit 1
naming every file that differs from what the committed results give).

The file is also the MkDocs hook of ``mkdocs.yml`` (``on_page_markdown``): a link from a
documentation page to a repository file outside ``docs/`` (``reports/...``), which works on
a checkout but is not part of the site, becomes the file's path in a code span.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the blocks beside this file, however it is loaded
from generated_blocks import cheap_preset_table, reference_audit_table, strongest_table, table  # noqa: E402

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
    from mi_defense.reporting.tables import ci_raw

    return "-" if not a else f"{a['auc']:.3f}{ci_raw(a.get('auc_ci'))}"


def _tpr(a) -> str:
    return "-" if not a or a.get("tpr") is None else f"{100 * a['tpr']:.1f}% @ {100 * float(a['fpr']):g}% FPR"


def _canary(e, recorded) -> str:
    """The correct-mechanism canary bounds of entry ``e`` at its settings, each with whether the
    same audit caught its broken controls (noise or clipping removed): those its scoring
    listed and those recorded beside the audit since (``canaries.json``, which replace a listed one)."""
    from mi_defense.auditing.canary_record import calibrated_for, for_defense, key
    from mi_defense.config.defense import DefenseSpec

    sigma = (e.get("metadata") or {}).get("noise_multiplier")
    rows = {key(r): r for r in (e.get("canary_audits") or []) + for_defense(recorded, DefenseSpec.parse(e["name"]),
                                                                            sigma)}  # the recorded replace the scored
    rows = [r for r in rows.values() if calibrated_for(r, sigma)]
    kind = lambda r: "one run" if "canaries" in r else "one step"  # noqa: E731
    out = []
    for r in (r for r in rows if not r.get("broken")):
        broken = sorted((b["broken"], b["audited_epsilon_lower_bound"] > b["claimed_epsilon"])
                        for b in rows if b.get("broken") and kind(b) == kind(r))
        controls = "".join(f"; {b} removed: {'caught' if c else 'not caught'}" for b, c in broken)
        out.append(f"{kind(r)} >= {r['audited_epsilon_lower_bound']:.2f} (claim {r['claimed_epsilon']:.2f}{controls})")
    return "; ".join(out) or "-"


def audit_rows(folder: str):
    from mi_defense.auditing.results import load_results
    from mi_defense.reporting.tables import pct

    from mi_defense.auditing.canary_record import load_canaries

    r = load_results(ROOT / "reports" / folder)
    recorded = load_canaries(ROOT / "reports" / folder)
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
                     "-" if not strong else f"{strong['name']} {strong['auc']:.3f}", _canary(e, recorded)])
    return r, rows


def audits_page() -> str:
    parts = ["# Reference audits", "", "Generated from each folder's `results.json` by `docs/generate.py`. The primary "
             "attack is declared before scoring; the audited ε from natural examples has little power (a broken "
             "mechanism can score as low). The canary audits' bounds are for the correct mechanism, beside the claim "
             "each audits (a one-step audit, the claim of one update; a one-run audit, the whole run's): the one-step "
             "audits catch their broken controls (noise or clipping removed), the one-run audits caught none here, "
             "and no bound below a claim confirms it (each report lists the broken controls). Full reports: "
             "`reports/<folder>/report.md`.", ""]
    for folder in AUDITS:
        if not (ROOT / "reports" / folder / "results.json").is_file():
            continue
        r, rows = audit_rows(folder)
        sp, cfg = r["split"], r["config"]
        parts += [f"## `reports/{folder}`", "",
                  f"{r['dataset']}: {sp['n_members']} members, {sp['n_nonmembers']} non-members, {sp['n_test']} test "
                  f"images, {cfg.get('references')} reference runs per defense; "
                  f"mi-defense {r['versions'].get('mi-defense', '?')}.",
                  *[f"Rows {', '.join(f'`{n}`' for n in g['rows'])} were regenerated by a later audit of the same "
                    f"split, reference halves and scoring "
                    f"(mi-defense {(g.get('versions') or {}).get('mi-defense', '?')})"
                    + (f", removing {', '.join(f'`{n}`' for n in g['dropped'])}" if g.get('dropped') else "")
                    + "; the report's set-up says how their settings differ." for g in r.get("regenerated_rows", [])],
                  *cache_note(folder), "", table(rows), ""]
    return "\n".join(parts)


def cache_note(folder: str) -> list:
    """The trained runs committed beside an audit (``reports/run-reference-audits.sh``)."""
    n = len([p for p in (ROOT / "reports" / folder / "cache").glob("*/*.npz") if p.name != "scores.npz"])
    return [f"`reports/{folder}/cache/` holds {n} trained run(s) of the regenerated audit (each run's logits on the "
            "universe, the examples it trained on and what it released): `sh reports/run-reference-audits.sh` trains "
            "only the runs missing there, and re-scores every attack from them without training."] if n else []


def headline() -> str:
    parts = [START, ""]
    for folder in ("mnist-cpu", "fashion_mnist-cpu"):
        if (ROOT / "reports" / folder / "results.json").is_file():
            r, rows = audit_rows(folder)
            parts += [f"**{r['dataset']}** (`reports/{folder}/report.md`)", "", table([x[:6] for x in rows]), ""]
    return "\n".join(parts + [END])


# The guides' measured tables. A cell is a list of evaluation files under reports/ (one
# figure each, joined by commas; empty: not measured); a string is written as it is.
_DP, _Q, _AB = "dp-frepo", "dp-frepo/quick", "dp-frepo/ablation-w32-500steps"
_DATASETS = (("MNIST", "mnist"), ("Fashion-MNIST", "fashion_mnist"))


def _per_dataset(*cells):
    return [[name, *([c.format(ds=ds)] for c in cells)] for name, ds in _DATASETS]


def _row(label, mnist=(), fashion_mnist=()):
    """One row of a table with a column per dataset (``label``: its first cell, or a list of cells)."""
    return [*(label if isinstance(label, list) else [label]), list(mnist), list(fashion_mnist)]


def _both(label, *files):
    """A row measured on both datasets: ``files`` name the dataset's folder prefix ``{ds}``."""
    return _row(label, *([f.format(ds=ds) for f in files] for _, ds in _DATASETS))


_DATASET_ROWS = {
    "dp-frepo-small-budget": ("docs/guide/dp-frepo.md",
                              ["dataset", "FRePo from noise, no guarantee", "DP-FRePo ε = 10",
                               "DP-FRePo ε = 1 (σ = 1.01)"],
                              _per_dataset(f"{_DP}/{{ds}}-noise-nondp/evaluate.json",
                                           f"{_DP}/{{ds}}-eps10/evaluate.json",
                                           f"{_DP}/{{ds}}-eps1/evaluate.json")),
    "dp-frepo-quick-2000-steps": ("docs/guide/dp-frepo.md",
                                  ["dataset", "FRePo from noise, no guarantee", "DP-FRePo ε = 10 (σ = 0.52)",
                                   "DP-FRePo ε = 1 (σ = 1.19)"],
                                  _per_dataset("frepo-init/{ds}-noise/evaluate.json",
                                               f"{_Q}/{{ds}}-eps10/evaluate.json",
                                               f"{_Q}/{{ds}}-eps1/evaluate.json")),
}
_DISJ = "dp-frepo-disjoint"


def _measured(*files):
    """The cell's files that exist (a run of a series not finished yet is left out: its cell reads "–")."""
    return [f for f in files if (ROOT / "reports" / f).is_file()]


_DATASET_ROWS["dp-frepo-disjoint"] = (
    "docs/guide/dp-frepo.md",
    ["dataset", "tuning half: smoothed noise, ε = 1 (validation)", "tuning half: white noise, ε = 1 (validation)",
     "reporting half: ε = 1 (test)", "reporting half: ε = 10 (test)"],
    [[name, _measured(f"{_DISJ}/{ds}/tuning/eps1-smooth-noise/evaluate.json"),
      _measured(f"{_DISJ}/{ds}/tuning/eps1-noise/evaluate.json"),
      _measured(f"{_DISJ}/{ds}/report/eps1/evaluate.json"), _measured(f"{_DISJ}/{ds}/report/eps10/evaluate.json")]
     for name, ds in _DATASETS])
_ONCE = "dp-frepo-once"


def _once_report(ds: str, eps: int, file: str = "evaluate.json"):
    """The release-once reporting run at ``eps`` with the settings the dataset's tuning chose
    (``reports/dp-frepo-once/choice.py``)."""
    return _measured(str((_once_choice().report_folder(ds, eps) / file).relative_to(ROOT / "reports")))


@functools.lru_cache(maxsize=None)
def _once_choice():
    """``reports/dp-frepo-once/choice.py``, loaded from its file (a script folder, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dp_frepo_once_choice", ROOT / "reports" / _ONCE / "choice.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_DATASET_ROWS["dp-frepo-once"] = (
    "docs/guide/dp-frepo.md", ["dataset", "released once: ε = 1 (test)", "released once: ε = 10 (test)",
                               "the ε = 1 release, Dosser-like evaluation (test)"],
    [[name, _once_report(ds, 1), _once_report(ds, 10), _once_report(ds, 1, "evaluate-dosser.json")]
     for name, ds in _DATASETS])
_ONCE_CANDIDATES = (("4 networks, 1000 steps", "K4-S1000"), ("8 networks, 2000 steps", "K8-S2000"),
                    ("4 networks, 3000 steps", "K4-S3000"), ("16 networks, 4000 steps", "K16-S4000"),
                    ("4 networks, 1000 steps, 4 augmentations", "K4-S1000-A4"))
_DATASET_ROWS["dp-frepo-once-tuning"] = (
    "docs/guide/dp-frepo.md", ["dataset", *(f"{label} (validation)" for label, _ in _ONCE_CANDIDATES)],
    [[name, *(_measured(f"{_ONCE}/{ds}/tuning/eps1-{c}/evaluate.json") for _, c in _ONCE_CANDIDATES)]
     for name, ds in _DATASETS])
_DATASET_ROWS["dp-frepo-once-members"] = (
    "docs/guide/dp-frepo.md", ["MNIST members (tuning half)", "ε = 1 (validation)", "ε = 8 (validation)"],
    [[f"{n:,}".replace(",", " "), *(_measured(f"{_ONCE}/mnist/members/eps{e}-n{n}/evaluate.json") for e in (1, 8))]
     for n in (1000, 3000, 27000)])
_DATASET_ROWS["readme-dp-frepo"] = (
    "README.md", ["dataset", "per-step, ε = 1", "per-step, ε = 10", "released once, ε = 1", "released once, ε = 10"],
    [[name] + [_measured(f"{_DISJ}/{ds}/report/eps{e}/evaluate.json") for e in (1, 10)]
     + [_once_report(ds, e) for e in (1, 10)] for name, ds in _DATASETS])
_SETTING_ROWS = {
    "dp-frepo-batch": (["setting", "MNIST", "Fashion-MNIST"], [
        _both("expected batch 256", f"{_AB}/{{ds}}-eps1-batch256/evaluate.json"),
        _both("expected batch 1024", f"{_AB}/{{ds}}-eps1-batch1024/evaluate.json"),
        _row("batch 256, learning rate 3e-3 instead of 1e-2",
             fashion_mnist=[f"{_AB}/fashion_mnist-eps1-batch256-lr3e-3/evaluate.json"]),
        _row("batch 256, clipping only (ε = 10⁶, σ = 0.05)",
             fashion_mnist=[f"{_AB}/fashion_mnist-eps1e6-batch256/evaluate.json"]),
        _row("FRePo without DP", fashion_mnist=["frepo-init/fashion_mnist-w32-500steps/fm500-noise/evaluate.json"]),
    ]),
    "dp-frepo-clip-space": (["setting", "clip space", "MNIST", "Fashion-MNIST"], [
        _both(["ε = 10", "features"], f"{_Q}/{{ds}}-eps10-batch1024-500steps/evaluate.json"),
        _both(["ε = 10", "**readout**"], f"{_Q}/{{ds}}-eps10-readout/evaluate-w64.json"),
        _both(["ε = 1", "features"], f"{_Q}/{{ds}}-eps1-batch1024-500steps/evaluate.json",
                    f"{_Q}/{{ds}}-eps1-w64-w128/evaluate-w64-w128.json"),
        _both(["ε = 1", "**readout**"], f"{_Q}/{{ds}}-eps1-readout/evaluate-w64.json",
              f"{_Q}/{{ds}}-eps1-readout-b/evaluate-w64.json"),
        _both(["ε = 1, pool width 32", "features"], f"{_Q}/{{ds}}-eps1-w32-features/evaluate-w64.json"),
        _both(["ε = 1, pool width 32", "readout"], f"{_Q}/{{ds}}-eps1-w32-readout/evaluate-w64.json"),
    ]),
    "dp-frepo-start": (["setting", "MNIST", "Fashion-MNIST"], [
        _both("ε = 1, white noise", f"{_Q}/{{ds}}-eps1-readout/evaluate-w64.json",
              f"{_Q}/{{ds}}-eps1-readout-b/evaluate-w64.json"),
        _both("ε = 1, **smoothed noise** (the default; then the same command again)",
              f"{_Q}/{{ds}}-eps1-smooth-noise/evaluate-w64.json",
              f"{_Q}/{{ds}}-eps1-smooth-noise-b/evaluate-w64.json"),
        _both("ε = 1, noise blurred over 3 pixels (`smooth_sigma = 3`)", f"{_Q}/{{ds}}-eps1-smooth3/evaluate-w64.json"),
        _both("ε = 1, noise blurred over 4 pixels", f"{_Q}/{{ds}}-eps1-smooth4/evaluate-w64.json"),
        _row("ε = 1, white noise, LAMB `b1` 0.99 instead of 0.9",
             fashion_mnist=[f"{_Q}/fashion_mnist-eps1-lamb-b1-0.99/evaluate-w64.json"]),
        _both("ε = 10, white noise", f"{_Q}/{{ds}}-eps10-readout/evaluate-w64.json"),
        _both("ε = 10, **smoothed noise** (the default)", f"{_Q}/{{ds}}-eps10-smooth-noise/evaluate-w64.json"),
        _row("ε = 10, white noise, expected batch 4096 (σ = 1.18 instead of 0.63)",
             mnist=[f"{_Q}/mnist-eps10-batch4096/evaluate-w64.json"]),
        _row("ε = 10, smoothed noise, expected batch 4096",
             fashion_mnist=[f"{_Q}/fashion_mnist-eps10-smooth-noise-batch4096/evaluate-w64.json"]),
    ]),
}
GUIDE_TABLES = {**_DATASET_ROWS, **{name: ("docs/guide/dp-frepo.md", *spec) for name, spec in _SETTING_ROWS.items()}}


def once_exploration_table(file: str = "dp-frepo-once/results.jsonl") -> str:
    """The statistics tried for the release-once mechanism on MNIST's tuning half (``explore.py``)."""
    names = {"dm": "class means (distribution matching)", "krr": "FRePo's (A, B)"}
    rows = [["statistic", "feature dimension", "ε", "networks", "noise multiplier", "validation accuracy (1 model)"]]
    for line in (ROOT / "reports" / file).read_text().splitlines():
        r = json.loads(line)
        eps = r.get("achieved_epsilon", r["epsilon"])
        rows.append([names[r["mode"]], f"{r['projection']} (projected)" if r["projection"] else "all", f"{eps:.3g}",
                     str(r["networks"]), f"{r['noise_multiplier']:.2f}",
                     ", ".join(f"{100 * a:.1f} %" for a in r["validation_accuracy"])])
    return "\n".join([table(rows), "", f"Generated by `docs/generate.py` from `reports/{file}`: "
                      f"{dict((ds, name) for name, ds in _DATASETS)[r['dataset']]}'s tuning half of the disjoint "
                      "protocol, one evaluation model each."])


# Generated blocks of other kinds: NAME -> (page, function returning the block's content).
GUIDE_BLOCKS = {"cheap-preset": ("docs/guide/auditing.md", cheap_preset_table),
                "dp-frepo-once-exploration": ("docs/guide/dp-frepo.md", once_exploration_table),
                **{f"{kind}:{folder}": ("docs/results/measurements.md", functools.partial(render, folder))
                   for folder in ("mnist-cpu", "fashion_mnist-cpu")
                   for kind, render in (("reference-audit", reference_audit_table), ("strongest", strongest_table))},
                "reference-audit:fashion_mnist-cpu-small": ("docs/results/measurements.md",
                                                            functools.partial(reference_audit_table,
                                                                              "fashion_mnist-cpu-small"))}


def block_markers(name: str):
    return f"<!-- generated:{name}:start -->", f"<!-- generated:{name}:end -->"


def _accuracy(file: str) -> str:
    e = json.loads((ROOT / "reports" / file).read_text())
    mean, n = 100 * e["test_accuracy_mean"], e["models"]
    return f"{mean:.2f} %" if n == 1 else f"{mean:.2f} ± {100 * e['test_accuracy_std']:.2f} % ({n} models)"


def _pairs(runs):
    """Run folder names, ``mnist-X`` and ``fashion_mnist-X`` written once as ``*-X``."""
    out = {}
    for r in runs:
        ds, _, rest = r.partition("-")
        both = ds in ("mnist", "fashion_mnist") and {f"mnist-{rest}", f"fashion_mnist-{rest}"} <= set(runs)
        out.setdefault(f"*-{rest}" if both else r)
    return list(out)


def guide_table(name: str) -> str:
    _, head, rows = GUIDE_TABLES[name]
    body = [[", ".join(map(_accuracy, c)) or "–" if isinstance(c, list) else c for c in row] for row in rows]
    folders = {}  # parent folder -> run folders, in order of appearance
    for row in rows:
        for c in row:
            for f in c if isinstance(c, list) else []:
                folders.setdefault(Path(f).parent.parent.as_posix(), {}).setdefault(Path(f).parent.name)
    source = "; ".join(f"`reports/{parent}/`: " + ", ".join(f"`{r}`" for r in _pairs(runs))
                       for parent, runs in folders.items())
    source = f"the `evaluate*.json` of {source}" if source else "the `evaluate*.json` files of runs not finished yet"
    start, end = block_markers(name)
    measure = ("Accuracy (validation or test, as the column says)" if any("validation" in h for h in head)
               else "Test accuracy")
    return "\n".join([start, "", table([head, *body]), "",
                      f"{measure}, "
                      f"generated by `docs/generate.py` from {source}.", "", end])


def _replace_block(text: str, start: str, end: str, block: str) -> str:
    if start in text and end in text:
        a, b = text.index(start), text.index(end) + len(end)
        text = text[:a] + block + text[b:]
    return text


def without_generated_blocks(path: Path, text: str) -> str:
    """``text`` (the content of ``path``) without the blocks this script writes into it."""
    rel = path.resolve().relative_to(ROOT).as_posix()
    markers = [(START, END)] if rel == "README.md" else []
    markers += [block_markers(name) for name, (page, *_) in {**GUIDE_TABLES, **GUIDE_BLOCKS}.items() if page == rel]
    for start, end in markers:
        text = _replace_block(text, start, end, "")
    return text


def outputs() -> dict:
    out = {ROOT / "docs/reference/cli.md": cli_page() + "\n",
           ROOT / "docs/results/reference-audits.md": audits_page() + "\n",
           ROOT / "README.md": _replace_block((ROOT / "README.md").read_text(), START, END, headline())}
    for name, (page, *_) in GUIDE_TABLES.items():
        path = ROOT / page
        text = out.get(path) or path.read_text()
        start, end = block_markers(name)
        if start not in text or end not in text:
            raise SystemExit(f"{page}: the markers {start} and {end} are missing")
        out[path] = _replace_block(text, start, end, guide_table(name))
    for name, (page, render) in GUIDE_BLOCKS.items():
        path = ROOT / page
        text = out.get(path) or path.read_text()
        start, end = block_markers(name)
        if start not in text or end not in text:
            raise SystemExit(f"{page}: the markers {start} and {end} are missing")
        out[path] = _replace_block(text, start, end, "\n".join([start, "", render(), "", end]))
    return out


# The MkDocs hook (mkdocs.yml: hooks). A relative link or image whose target is a file of
# the repository outside docs/ becomes that file's path in a code span; a missing target is
# left for MkDocs to report.
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def _outside_docs(match, page_dir: Path, docs_dir: Path) -> str:
    image, text, url = match.groups()
    target = url.split("#", 1)[0]
    if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
        return match.group(0)
    path = (page_dir / target).resolve()
    if path == docs_dir or docs_dir in path.parents or not path.exists() or ROOT not in path.parents:
        return match.group(0)
    rel = f"`{path.relative_to(ROOT).as_posix()}{'/' if path.is_dir() else ''}`"
    if image:
        return f"*({text or 'figure'}: {rel} in the repository)*"
    return text if text.strip("`").rstrip("/") == rel.strip("`").rstrip("/") else f"{text} ({rel})"


def on_page_markdown(markdown: str, page, config, **_kwargs) -> str:
    if not page.file.abs_src_path:
        return markdown
    page_dir, docs_dir = Path(page.file.abs_src_path).parent, Path(config["docs_dir"]).resolve()
    parts = re.split(r"(^(?:```|~~~).*?^(?:```|~~~)[ \t]*$)", markdown, flags=re.M | re.S)  # odd parts: fenced code
    return "".join(p if i % 2 else _LINK.sub(lambda m: _outside_docs(m, page_dir, docs_dir), p)
                   for i, p in enumerate(parts))


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
