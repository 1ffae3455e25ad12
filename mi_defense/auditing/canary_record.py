"""The canary audits recorded beside an audit (``DIR/canaries.json``, written by
``mi-defense canary ... --into DIR``): one-step and one-run canary audits of the DP
mechanisms, read by the audit's scoring (each DP defense's entry lists the canary audits
of its mechanism) and by the report.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

from mi_defense.errors import UserError

FILE = "canaries.json"
NEEDED = ("claimed_epsilon", "audited_epsilon_lower_bound", "confidence", "broken")
# one-step audits name a mechanism; the defenses whose DP step it is
STEP_OF = {"dpsgd": ("dpsgd", "dpsgd-linear"), "dp-frepo": ("frepo",), "dp-frepo-once": ("frepo",)}
# DP-FRePo's one-step audits: the mechanism (``DistillConfig.mechanism``) of the frepo specs each belongs to
FREPO_MECHANISM = {"dp-frepo": "per-step", "dp-frepo-once": "once"}


def load_canaries(out_dir) -> List[dict]:
    """The canary results recorded in ``out_dir`` (empty when none); a one-line error when damaged."""
    path = Path(out_dir) / FILE
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON ({exc}); "
                        "delete it or write it again with mi-defense canary --into") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in NEEDED) for r in rows):
        raise UserError(f"{path} must be a list of canary results with {', '.join(NEEDED)}; "
                        "write it with mi-defense canary --into")
    return rows


def key(r: dict) -> tuple:
    """What a result audits: a newer result of the same key replaces the older. A one-step
    audit is keyed by its noise multiplier too (one mechanism at one epsilon is audited at
    each defense's own multiplier: ``mi-defense canary --step-of``)."""
    sigma = r.get("noise_multiplier")
    return (r.get("defense") or r.get("mechanism"), "one run" if "canaries" in r else "one step", r.get("run_epsilon"),
            r.get("broken"), r.get("kind"), None if sigma is None else round(float(sigma), 6))


def add(out_dir, result: dict) -> Path:
    """Record ``result`` in ``out_dir/canaries.json`` (replacing one of the same key), atomically."""
    from mi_defense.io import write_json

    rows = [r for r in load_canaries(out_dir) if key(r) != key(result)] + [result]
    path = Path(out_dir) / FILE
    write_json(path, rows)
    return path


def calibrated_for(r: dict, noise_multiplier: Optional[float]) -> bool:
    """Whether canary result ``r`` audits a defense whose noise multiplier is ``noise_multiplier``:
    a one-run audit trained the defense itself; a one-step audit ran the mechanism's update at
    its own noise multiplier (calibrated for its own record count, steps and epsilon), which
    audits a defense only when the two multipliers agree (relative difference below 1e-6). An
    update audited at another multiplier says nothing about this defense's claim."""
    if "canaries" in r:
        return True
    theirs = r.get("noise_multiplier")
    return (noise_multiplier is not None and theirs is not None
            and abs(float(theirs) - float(noise_multiplier)) <= 1e-6 * max(abs(float(noise_multiplier)), 1e-12))


def for_defense(rows: List[dict], spec, noise_multiplier: Optional[float] = None) -> List[dict]:
    """The canary audits of ``spec``'s mechanism (a ``DefenseSpec`` that claims DP) at its
    settings: its own one-run audits, and the one-step audits of its DP step run at its noise
    multiplier (``calibrated_for``; none when ``noise_multiplier`` is unknown)."""
    if not spec.claims_dp:
        return []
    epsilon = float(spec.kwargs["epsilon"])
    mechanism = str(spec.kwargs.get("mechanism", "per-step"))
    return [r for r in rows if r.get("defense") == str(spec) or
            (spec.name in STEP_OF.get(r.get("mechanism"), ()) and r.get("run_epsilon") is not None and
             float(r["run_epsilon"]) == epsilon and FREPO_MECHANISM.get(r.get("mechanism"), mechanism) == mechanism
             and calibrated_for(r, noise_multiplier))]
