"""``migrate(results)``: a ``results.json`` of an earlier version brought to the current schema.

Within schema 2 fields were added after the first records were written; a record that lacks
one gets the value the audit used when the field did not exist yet:

- ``config.release_attack``: ``release_pixel`` (the only attack on a released set then);
- ``config.confidence``: 0.95 (the confidence of the epsilon lower bounds);
- ``leave_one_out_primary.fpr``: ``"0.001"`` (the FPR its mean TPR is at).

Nothing present is changed, so no recorded number moves. Schema 1 cannot be migrated: it has
no attack declared before scoring, and choosing one afterwards from the results would bias the
verdict; such a record is refused, to be re-scored (the trained runs are cached).
"""
from __future__ import annotations

import copy

from mi_defense.auditing.results_check import ResultsError

SCHEMA = "mi_defense.results/2"  # the version of results.json this package writes and reads

# (key of ``config``, the value the audit used before the key was written)
CONFIG_DEFAULTS = (("release_attack", "release_pixel"), ("confidence", 0.95))
LEAVE_ONE_OUT_FPR = "0.001"


class SchemaError(ResultsError):
    """A record of a schema this version cannot read."""


def migrate(results: dict) -> dict:
    """``results`` in the current schema (a new dict; ``results`` is left as it is). Raises
    ``SchemaError`` for a schema that cannot be migrated."""
    if results.get("schema") != SCHEMA:
        raise SchemaError(f"results schema {str(results.get('schema'))[:40]!r}, this version reads {SCHEMA!r}")
    out = dict(results)
    if isinstance(out.get("config"), dict) and any(k not in out["config"] for k, _ in CONFIG_DEFAULTS):
        out["config"] = {**out["config"], **{k: v for k, v in CONFIG_DEFAULTS if k not in out["config"]}}
    if isinstance(out.get("defenses"), list):
        out["defenses"] = [_entry(e) for e in out["defenses"]]
    return out


def _entry(e):
    many = e.get("leave_one_out_primary") if isinstance(e, dict) else None
    if isinstance(many, dict) and "fpr" not in many:
        e = copy.copy(e)
        e["leave_one_out_primary"] = {**many, "fpr": LEAVE_ONE_OUT_FPR}
    return e
