"""Rows of one audit replaced by the rows of another audit of the same split.

An audit's rows are independent given its split: each defense is trained on the same
members, attacked with its own reference runs over the same universe halves, and scored
with the same seed and FPRs. So a row can be regenerated (a new recipe, a new attack) by
auditing that defense alone on the same split and putting its row in place of the old
one, without retraining the other defenses. ``merge_results`` refuses two audits whose
split, dataset or scoring differ, and records in the merged record which rows came from
where (``regenerated_rows``: the rows, the rows they replaced, and the new audit's
versions and configuration), so a reader sees that the record was assembled.
"""
from __future__ import annotations

import copy
from typing import Dict, Optional, Sequence

import numpy as np

from mi_defense.auditing.signals import Signals
from mi_defense.errors import UserError

# What must be equal for rows of two audits to be comparable: the examples, the reference
# halves and the scoring (the attacks run, the ones declared before scoring, the queries they
# make). Training settings may differ (that is what a regenerated row changes); the report
# names those that do (``reporting.tables.regenerated_line``). A key absent on both sides is
# equal; ``ABSENT`` is what a key an older record lacks means.
SAME_SPLIT = ("hash", "seed", "n_members", "n_nonmembers", "n_test", "test_source", "dataset_fingerprint")
SAME_CONFIG = ("members", "nonmembers", "test", "seed", "references", "targets", "fprs", "bootstrap", "confidence",
               "primary_attack", "release_attack", "attacks", "augmented_queries")
ABSENT = {("config", "augmented_queries"): "none"}  # plain queries, as every audit before the setting (not migrated)


def _get(record: dict, where: str, key: str):
    return record.get(where, {}).get(key, ABSENT.get((where, key)))


def _check_same(base: dict, new: dict) -> None:
    if base.get("dataset") != new.get("dataset"):
        raise UserError(f"the audits are of different datasets ({base.get('dataset')} and {new.get('dataset')}); "
                        "regenerate rows with an audit of the same dataset and split")
    for where, keys in (("split", SAME_SPLIT), ("config", SAME_CONFIG)):
        diff = [k for k in keys if _get(base, where, k) != _get(new, where, k)]
        if diff:
            raise UserError(f"the audits differ in their {where} ({', '.join(diff)}); regenerate rows with an audit of "
                            "the same split and scoring (the same --config, --seed and --references)")


def merge_results(base: dict, new: dict, drop: Sequence[str] = ()) -> dict:
    """``base``'s record with ``new``'s rows in it.

    A row of ``base`` whose name is among ``new``'s rows is replaced in place; the rows named in
    ``drop`` (e.g. an old recipe the new rows supersede) are removed; ``new``'s other rows are
    appended. Both records must be of the same dataset, split and scoring, and of the current
    schema: migrate both first (``auditing.migrate.migrate``), which fills the defaults of keys
    older records lack, so that a key one record lacks is not taken for a different scoring."""
    _check_same(base, new)
    names = [e["name"] for e in base["defenses"]]
    missing = [d for d in drop if d not in names]
    if missing:
        raise UserError(f"no row {', '.join(missing)} to drop; the rows are {', '.join(names)}")
    fresh = {e["name"]: e for e in new["defenses"]}
    both = [d for d in drop if d in fresh]
    if both:
        raise UserError(f"{', '.join(both)} is both a regenerated row and a row to drop; drop only the rows the new "
                        "ones supersede")
    out = copy.deepcopy(base)
    rows, replaced = [], []
    for e in out["defenses"]:
        if e["name"] in fresh:
            rows.append(copy.deepcopy(fresh.pop(e["name"])))
            replaced.append(e["name"])
        elif e["name"] not in drop:
            rows.append(e)
    rows += [copy.deepcopy(e) for e in fresh.values()]
    out["defenses"] = rows
    out["config"]["defenses"] = [e["name"] for e in rows]
    timings = out.setdefault("timings", {})
    for key in ("training_seconds", "training_seconds_all_runs"):
        merged = {k: v for k, v in timings.get(key, {}).items() if k in out["config"]["defenses"]}
        merged.update(new.get("timings", {}).get(key, {}))
        timings[key] = merged
    out.setdefault("regenerated_rows", []).append({
        "rows": [e["name"] for e in new["defenses"]], "replaced": replaced, "dropped": list(drop),
        "versions": new.get("versions"), "machine": new.get("machine"), "config": new.get("config")})
    return out


def _arrays(d) -> Dict[str, np.ndarray]:
    return {"target_logits": d.target_logits, "scaled_logit": d.scaled_logit, "test_accuracy": d.test_accuracy,
            **{f"release_{k}": v for k, v in d.release.items()}}


def merge_signals(base: Optional[Signals], new: Signals, keep: Sequence[str]) -> dict:
    """The keyword arguments of ``signals.save`` for the merged record: ``new``'s defenses,
    and ``base``'s (when there is a signals file) whose keys are in ``keep``."""
    if base is not None:
        same = (np.array_equal(base.labels, new.labels) and np.array_equal(base.membership, new.membership)
                and np.array_equal(base.reference_in, new.reference_in) and base.scoring == new.scoring)
        if not same:
            raise UserError("the signals files are of different examples, reference halves or scoring; "
                            "regenerate rows with an audit of the same split")
    per = {k: _arrays(d) for k, d in (base.defenses.items() if base is not None else ())
           if k in keep and k not in new.defenses}
    per.update({k: _arrays(d) for k, d in new.defenses.items()})
    return dict(labels=new.labels, membership=new.membership, reference_in=new.reference_in, per_defense=per,
                scoring=new.scoring)
