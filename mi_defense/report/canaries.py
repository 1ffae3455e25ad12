"""The canary audits beside an audit's results (``DIR/canaries.json``, written by
``mi-defense canary ... --into DIR``): each DP claim next to the epsilon lower bound that a
canary audit of it reached, and the deliberately broken controls that show the audit can
exceed a claim."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List

from mi_defense.errors import UserError

FILE = "canaries.json"
NEEDED = ("claimed_epsilon", "audited_epsilon_lower_bound", "confidence", "broken")
NOTE = ("A canary audit plays the worst case the guarantee must survive. A bound below the claim is what a correct mechanism "
        "gives, and alone proves little; the rows with a broken mechanism (noise or clipping removed inside the real code, the "
        "same epsilon still claimed) show that the same audit exceeds the claim when the guarantee is false. One step: the "
        "mechanism's own update on neighbouring inputs, many trials, compared with the accountant's epsilon for that one step. "
        "One run: the whole defense trained once with canaries each included with probability 1/2 (Steinke, Nasr & "
        "Jagielski 2023); black-box, so it bounds far below a correct claim.")


def load_canaries(out_dir) -> List[dict]:
    """The canary results recorded in ``out_dir`` (empty when none); a one-line error when damaged."""
    path = Path(out_dir) / FILE
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON ({exc}); delete it or write it again with mi-defense canary --into") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in NEEDED) for r in rows):
        raise UserError(f"{path} must be a list of canary results with {', '.join(NEEDED)}; write it with mi-defense canary --into")
    return rows


def key(r: dict) -> tuple:
    """What a result audits: a newer result of the same key replaces the older."""
    return (r.get("defense") or r.get("mechanism"), "one run" if "canaries" in r else "one step", r.get("run_epsilon"),
            r.get("broken"), r.get("kind"))


def add(out_dir, result: dict) -> Path:
    """Record ``result`` in ``out_dir/canaries.json`` (replacing one of the same key), atomically."""
    from mi_defense.io import write_json

    rows = [r for r in load_canaries(out_dir) if key(r) != key(result)] + [result]
    path = Path(out_dir) / FILE
    write_json(path, rows)
    return path


def canary_rows(rows: List[dict]) -> List[list]:
    """The report's table: one line per canary audit, the header first."""
    out = [["audit", "mechanism", "broken", "size", "claimed epsilon", "audited epsilon >=", "verdict"]]
    for r in sorted(rows, key=lambda r: (str(key(r)[0]), r.get("broken") or "", key(r)[1])):
        one_run = "canaries" in r
        claim = r["claimed_epsilon"]
        size = (f"{r['canaries']} {r.get('kind', '')} canaries, {r.get('right')}/{2 * r.get('guesses', 0)} right" if one_run
                else f"{r.get('trials')} trials per input")
        what = r.get("defense") if one_run else f"{r.get('mechanism')} step (run at epsilon {r.get('run_epsilon', 0):g})"
        verdict = ("no claim" if claim is None else "CAUGHT" if r["audited_epsilon_lower_bound"] > claim else "below the claim")
        out.append(["one run" if one_run else "one step", what, r["broken"] or "-", size,
                    "-" if claim is None else f"{claim:.2f}", f"{r['audited_epsilon_lower_bound']:.2f}", verdict])
    return out
