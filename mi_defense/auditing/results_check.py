"""The declared schema of what the report reads from ``results.json``, checked before rendering.

``check_results(results)`` walks only the fields the report, its figures and
``AuditResults.summary`` read, and raises ``ResultsError`` (a ``UserError``) naming the
first field that is missing (with the other keys its object lacks), of the wrong type, out of
range or not a finite number. Every
number a verdict or a figure is drawn from must be finite: a NaN or infinite AUC is
refused, never rendered (JSON written by the audit holds no non-finite number; such a value
means the file was edited or damaged). Imports numpy only.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from mi_defense.errors import UserError

MAX_COUNT = 10 ** 12      # examples, runs, steps, bootstrap resamples, widths
MAX_EPSILON = 1e6         # audited or claimed epsilon
MAX_SECONDS = 1e9
MAX_CURVE_POINTS = 10 ** 7


class ResultsError(UserError):
    """A results record that does not match the schema the report reads."""


def _fail(where: str, problem: str):
    raise ResultsError(f"{where} {problem}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def number(v, where: str, lo: float = -math.inf, hi: float = math.inf, null: bool = False) -> Optional[float]:
    """A finite number in [lo, hi] (or None when ``null``)."""
    if v is None:
        if null:
            return None
        _fail(where, "is null; a number is needed (a null is what a non-finite number becomes in the written JSON)")
    if not _is_number(v):
        _fail(where, f"is {type(v).__name__}, not a number")
    f = float(v)
    if not math.isfinite(f):
        _fail(where, f"is {f}: not a finite number, and no verdict or figure comes from non-finite numbers")
    if not lo <= f <= hi:
        _fail(where, f"is {f:g}, outside [{lo:g}, {hi:g}]")
    return f


def count(v, where: str, lo: int = 0, null: bool = False) -> Optional[int]:
    """A whole number in [lo, MAX_COUNT]."""
    if v is None and null:
        return None
    if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)):
        _fail(where, f"is {type(v).__name__}, not a whole number")
    if not lo <= int(v) <= MAX_COUNT:
        _fail(where, f"is {int(v)}, outside [{lo}, {MAX_COUNT}]")
    return int(v)


def prob(v, where: str, null: bool = False) -> Optional[float]:
    return number(v, where, 0.0, 1.0, null)


KINDS = {str: "a string", dict: "an object"}  # the JSON types ``of_kind`` checks, as an error names them


def of_kind(v, where: str, kind: type, null: bool = False) -> Any:
    """``v`` when it is a ``kind`` (one of ``KINDS``), or None when ``null``."""
    if v is None and null:
        return None
    if not isinstance(v, kind):
        _fail(where, f"is {type(v).__name__}, not {KINDS[kind]}")
    return v


def text(v, where: str, null: bool = False) -> Optional[str]:
    return of_kind(v, where, str, null)


def mapping(v, where: str, null: bool = False) -> Optional[dict]:
    return of_kind(v, where, dict, null)


def seq(v, where: str, max_len: int = MAX_CURVE_POINTS, null: bool = False) -> Optional[list]:
    if v is None and null:
        return None
    if not isinstance(v, (list, tuple)):
        _fail(where, f"is {type(v).__name__}, not a list")
    if len(v) > max_len:
        _fail(where, f"holds {len(v)} items, more than {max_len}")
    return list(v)


def field(d: dict, key: str, where: str) -> Any:
    if key not in d:
        _fail(f"{where}.{key}", "is missing")
    return d[key]


def interval(v, where: str) -> None:
    """None or ``[low, high]``, two probabilities with low <= high."""
    if v is None:
        return
    lo, hi = (prob(x, f"{where}[{i}]") for i, x in enumerate(_pair(v, where)))
    if lo > hi:
        _fail(where, f"is [{lo:g}, {hi:g}]: its low end is above its high end")


def _pair(v, where: str) -> list:
    v = seq(v, where)
    if len(v) != 2:
        _fail(where, f"holds {len(v)} values, not [low, high]")
    return v


def fpr_key(k, where: str) -> None:
    try:
        f = float(k)
    except (TypeError, ValueError):
        f = math.nan
    if not isinstance(k, str) or not 0.0 < f <= 1.0:
        _fail(where, f"has the key {k!r}, not an FPR such as \"0.001\"")


def tpr_table(v, where: str) -> None:
    """``{"0.001": tpr or null, ...}``."""
    for k, t in mapping(v, where).items():
        fpr_key(k, where)
        prob(t, f"{where}[{k!r}]", null=True)


def ci_table(v, where: str) -> None:
    for k, c in (mapping(v, where, null=True) or {}).items():
        fpr_key(k, where)
        interval(c, f"{where}[{k!r}]")


def unresolved(v, where: str) -> None:
    for i, k in enumerate(seq(v, where, null=True) or []):
        fpr_key(k, f"{where}[{i}]")


def attack_summary(s, where: str) -> None:
    """A declared attack's headline numbers (``audit.evidence.summary``)."""
    mapping(s, where)
    text(field(s, "name", where), f"{where}.name")
    prob(field(s, "auc", where), f"{where}.auc")
    interval(s.get("auc_ci"), f"{where}.auc_ci")
    fpr_key(field(s, "fpr", where), f"{where}.fpr")
    prob(s.get("tpr"), f"{where}.tpr", null=True)
    interval(s.get("tpr_ci"), f"{where}.tpr_ci")
    tpr_table(s.get("tpr_at_fpr", {}), f"{where}.tpr_at_fpr")
    ci_table(s.get("tpr_at_fpr_ci"), f"{where}.tpr_at_fpr_ci")
    unresolved(s.get("unresolved_fprs"), f"{where}.unresolved_fprs")


def attack_result(r, where: str) -> None:
    """One attack's full result (``attacks.metrics.evaluate``)."""
    mapping(r, where)
    prob(field(r, "auc", where), f"{where}.auc")
    interval(r.get("auc_ci"), f"{where}.auc_ci")
    number(field(r, "advantage", where), f"{where}.advantage", -1.0, 1.0)
    tpr_table(field(r, "tpr_at_fpr", where), f"{where}.tpr_at_fpr")
    ci_table(r.get("tpr_at_fpr_ci"), f"{where}.tpr_at_fpr_ci")
    unresolved(r.get("unresolved_fprs"), f"{where}.unresolved_fprs")
    count(field(r, "n_members", where), f"{where}.n_members")
    count(field(r, "n_nonmembers", where), f"{where}.n_nonmembers")
    roc = mapping(field(r, "roc", where), f"{where}.roc")
    curve = [seq(field(roc, k, f"{where}.roc"), f"{where}.roc.{k}") for k in ("fpr", "tpr")]
    if len(curve[0]) != len(curve[1]) or not curve[0]:
        _fail(f"{where}.roc", f"has {len(curve[0])} FPRs and {len(curve[1])} TPRs; "
                              "a curve needs as many of each, at least one")
    for k, c in zip(("fpr", "tpr"), curve):
        a = np.asarray(c) if all(_is_number(x) for x in c) else None
        if a is None or not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
            _fail(f"{where}.roc.{k}", "holds a value that is not a finite number in [0, 1]")
    for name, sl in (mapping(r.get("slices"), f"{where}.slices", null=True) or {}).items():
        w = f"{where}.slices[{name!r}]"
        mapping(sl, w)
        count(sl.get("n_members", 0), f"{w}.n_members")
        prob(sl.get("auc"), f"{w}.auc", null=True)
        tpr_table(sl.get("tpr_at_fpr") or {}, f"{w}.tpr_at_fpr")
        ci_table(sl.get("tpr_at_fpr_ci"), f"{w}.tpr_at_fpr_ci")
        unresolved(sl.get("unresolved_fprs"), f"{w}.unresolved_fprs")


def scalar(v, where: str) -> None:
    if v is not None and not isinstance(v, (str, bool)):
        number(v, where)


def lacks(d: dict, keys, where: str) -> None:
    """Every key of ``keys`` in ``d``; else one error naming all that are missing."""
    missing = [k for k in keys if k not in d]
    if missing:
        _fail(where, f"lacks {', '.join(missing)}")


RECORD_KEYS = ("dataset", "class_names", "input_shape", "config", "split", "versions")
ENTRY_KEYS = ("name", "defense", "test_accuracy", "attacks", "privacy_statement")


def defense_entry(e, where: str) -> None:
    mapping(e, where)
    where = f"{where} ({e['name']})" if isinstance(e.get("name"), str) else where
    lacks(e, ENTRY_KEYS, where)
    for k in ("name", "defense", "privacy_statement"):
        text(field(e, k, where), f"{where}.{k}")
    text(e.get("key"), f"{where}.key", null=True)
    for k, v in mapping(e.get("params", {}), f"{where}.params").items():
        scalar(v, f"{where}.params.{k}")
    if e["defense"] == "dpsgd" and "eps" in e.get("params", {}):
        number(e["params"]["eps"], f"{where}.params.eps")
    prob(field(e, "test_accuracy", where), f"{where}.test_accuracy")
    prob(e.get("train_accuracy"), f"{where}.train_accuracy", null=True)
    number(e.get("generalization_gap"), f"{where}.generalization_gap", -1.0, 1.0, null=True)
    if e.get("undertrained") is not None and not isinstance(e["undertrained"], bool):
        _fail(f"{where}.undertrained", f"is {type(e['undertrained']).__name__}, not true or false")
    number(e.get("claimed_epsilon"), f"{where}.claimed_epsilon", 0.0, MAX_EPSILON, null=True)
    recipe = mapping(e.get("recipe"), f"{where}.recipe", null=True)
    if recipe is not None:
        text(recipe.get("name"), f"{where}.recipe.name", null=True)
        text(recipe.get("description"), f"{where}.recipe.description", null=True)
    attacks = mapping(field(e, "attacks", where), f"{where}.attacks")
    for name, r in attacks.items():
        attack_result(r, f"{where}.attacks[{name!r}]")
    for k in ("primary_attack", "release_attack", "strongest_attack", "strongest_release_attack"):
        if e.get(k) is not None:
            attack_summary(e[k], f"{where}.{k}")
    many = mapping(e.get("leave_one_out_primary"), f"{where}.leave_one_out_primary", null=True)
    if many:
        w = f"{where}.leave_one_out_primary"
        text(field(many, "attack", w), f"{w}.attack")
        count(field(many, "targets", w), f"{w}.targets", 1)
        fpr_key(field(many, "fpr", w), f"{w}.fpr")
        prob(field(many, "auc_mean", w), f"{w}.auc_mean")
        prob(many.get("tpr_mean"), f"{w}.tpr_mean", null=True)
        for k in ("auc_se", "tpr_se"):
            number(many.get(k), f"{w}.{k}", 0.0, 1.0, null=True)
    for k in ("primary_attack", "release_attack"):
        if e.get(k) is not None and e[k]["name"] not in attacks:
            _fail(f"{where}.{k}.name", f"names {e[k]['name']!r}, an attack the entry does not hold "
                                      f"({', '.join(attacks) or 'none'})")
    b = mapping(e.get("epsilon_lower_bound"), f"{where}.epsilon_lower_bound", null=True)
    if b:
        number(field(b, "value", f"{where}.epsilon_lower_bound"), f"{where}.epsilon_lower_bound.value", 0.0,
               MAX_EPSILON)
        text(field(b, "attack", f"{where}.epsilon_lower_bound"), f"{where}.epsilon_lower_bound.attack")
        number(field(b, "confidence", f"{where}.epsilon_lower_bound"), f"{where}.epsilon_lower_bound.confidence",
               0.0, 1.0)
    for i, point in enumerate(seq(e.get("auc_over_steps"), f"{where}.auc_over_steps", null=True) or []):
        step, auc = _pair(point, f"{where}.auc_over_steps[{i}]")
        number(step, f"{where}.auc_over_steps[{i}][0]", 0, MAX_COUNT)
        prob(auc, f"{where}.auc_over_steps[{i}][1]")


def regenerated_rows(v, where: str = "regenerated_rows") -> None:
    """The row sets later audits put in the record (``auditing.merge``): each names its rows
    and, when given, the rows they replaced and dropped, and its audit's versions, machine and
    configuration (objects or null)."""
    for i, r in enumerate(seq(v, where, 10 ** 5, null=True) or []):
        w = f"{where}[{i}]"
        mapping(r, w)
        for k in ("rows", "replaced", "dropped"):
            if k == "rows" or k in r:
                for j, name in enumerate(seq(field(r, k, w), f"{w}.{k}", 10 ** 5)):
                    text(name, f"{w}.{k}[{j}]")
        for k in ("versions", "machine", "config"):
            mapping(r.get(k), f"{w}.{k}", null=True)


def check_results(results: dict) -> dict:
    """``results`` when every field the report reads fits the schema; else ``ResultsError``.
    ``results`` is of the current schema: an older record is migrated first (``auditing.migrate``)."""
    mapping(results, "the record")
    lacks(results, ("defenses",), "the record")
    entries = seq(results["defenses"], "defenses", 10 ** 5)
    if not entries:
        _fail("the record", "holds no defenses (an audit writes one per --defense)")
    lacks(results, RECORD_KEYS, "the record")
    text(results["dataset"], "dataset")
    names = seq(results["class_names"], "class_names", MAX_COUNT)
    if not names:
        _fail("class_names", "is empty")
    for i, n in enumerate(names):
        text(n, f"class_names[{i}]")
    shape = seq(results["input_shape"], "input_shape", 3)
    if len(shape) not in (1, 3):
        _fail("input_shape", f"is {shape}; an input is (features,) or (height, width, channels)")
    for i, d in enumerate(shape):
        count(d, f"input_shape[{i}]", 1)
    c = mapping(results["config"], "config")
    for k, lo in (("references", 0), ("targets", 1), ("bootstrap", 0)):
        count(field(c, k, "config"), f"config.{k}", lo)
    count(field(c, "seed", "config"), "config.seed", lo=-MAX_COUNT)
    for i, f in enumerate(seq(c.get("fprs"), "config.fprs", null=True) or []):
        number(f, f"config.fprs[{i}]", 0.0, 1.0)
    text(c.get("primary_attack"), "config.primary_attack", null=True)
    text(field(c, "release_attack", "config"), "config.release_attack")
    text(c.get("augmented_queries"), "config.augmented_queries", null=True)  # absent: plain queries
    number(field(c, "confidence", "config"), "config.confidence", 0.0, 1.0)
    for table, keys in (("train", ("width", "depth")),
                        ("distill", ("width", "depth", "batch_real", "pool_size", "steps"))):
        t = mapping(field(c, table, "config"), f"config.{table}")
        for k in keys:
            count(field(t, k, f"config.{table}"), f"config.{table}.{k}")
        if table == "distill":
            text(field(t, "pool_norm", "config.distill"), "config.distill.pool_norm")
    sp = mapping(results["split"], "split")
    count(field(sp, "seed", "split"), "split.seed", lo=-MAX_COUNT)
    text(field(sp, "hash", "split"), "split.hash")
    count(field(sp, "n_members", "split"), "split.n_members", 1)
    count(field(sp, "n_nonmembers", "split"), "split.n_nonmembers", 1)
    count(field(sp, "n_test", "split"), "split.n_test")
    text(field(sp, "test_source", "split"), "split.test_source")
    for k, v in mapping(results["versions"], "versions").items():
        text(v, f"versions.{k}", null=True)
    m = mapping(results.get("machine"), "machine", null=True) or {}
    scalar(m.get("cpus"), "machine.cpus")
    t = mapping(results.get("timings"), "timings", null=True) or {}
    number(t.get("scoring_seconds", 0), "timings.scoring_seconds", 0, MAX_SECONDS)
    for k, v in (mapping(t.get("training_seconds_all_runs"), "timings.training_seconds_all_runs", null=True)
                 or {}).items():
        number(v, f"timings.training_seconds_all_runs[{k!r}]", 0, MAX_SECONDS, null=True)
    for i, e in enumerate(entries):
        defense_entry(e, f"defenses[{i}]")
    regenerated_rows(results.get("regenerated_rows"))
    return results
