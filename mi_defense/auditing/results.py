"""Reading an audit's ``results.json``: ``load_record`` (the typed ``record.AuditRecord`` the
report renders), and ``AuditResults`` and ``DefenseResult``, the API's view of it.

The file stays the record (every attack, every CI, the run metadata); ``AuditResults`` gives
the fields a user reads most (the primary attack's AUC and TPRs, the audited epsilon) a flat
name, keeps the typed record in ``record`` and the JSON of it in ``raw``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Optional

from mi_defense.auditing.migrate import SCHEMA, SchemaError, migrate
from mi_defense.auditing.record import AuditRecord, DefenseEntry
from mi_defense.auditing.results_check import ResultsError
from mi_defense.errors import UserError

__all__ = ["SCHEMA", "AuditResults", "DefenseResult", "load_record", "load_results"]


@dataclass(frozen=True)
class DefenseResult:
    """One defense: utility, the declared (primary) attack's result and the audited epsilon."""

    name: str
    defense: str
    test_accuracy: float
    train_accuracy: Optional[float]
    undertrained: bool
    recipe: Optional[str]
    primary_attack: Optional[str]
    auc: Optional[float]
    auc_ci: Optional[List[float]]
    tpr_at_fpr: Dict[str, Optional[float]]
    tpr_ci_at_fpr: Dict[str, Optional[List[float]]]
    unresolved_fprs: List[str]
    epsilon_lower_bound: Optional[float]
    claimed_epsilon: Optional[float]
    privacy_statement: str
    raw: dict = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_entry(cls, e: DefenseEntry) -> "DefenseResult":
        """The flat view of a checked defense entry of the record."""
        ev = e.evidence
        p, b = ev.primary_attack, ev.epsilon_lower_bound
        return cls(name=e.name, defense=e.defense, test_accuracy=e.test_accuracy, train_accuracy=e.train_accuracy,
                   undertrained=bool(e.undertrained), recipe=e.recipe.name if e.recipe else None,
                   primary_attack=p.name if p else None, auc=p.auc if p else None,
                   auc_ci=list(p.auc_ci) if p and p.auc_ci else None, tpr_at_fpr=dict(p.tpr_at_fpr or {}) if p else {},
                   tpr_ci_at_fpr=dict(p.tpr_at_fpr_ci or {}) if p else {},
                   unresolved_fprs=list(e.attack(p.name).unresolved_fprs or ()) if p else [],
                   epsilon_lower_bound=b.value if b else None, claimed_epsilon=e.claimed_epsilon,
                   privacy_statement=e.privacy_statement, raw=e.to_json())

    def _key(self, fpr: float) -> str:
        for k in self.tpr_at_fpr:
            if abs(float(k) - fpr) <= 1e-12:
                return k
        raise KeyError(f"no TPR at FPR {fpr}; the audit measured {', '.join(self.tpr_at_fpr) or 'none'}")

    def tpr(self, fpr: float = 1e-3) -> Optional[float]:
        """The primary attack's TPR at ``fpr`` (one of the audit's ``fprs``)."""
        return self.tpr_at_fpr[self._key(fpr)]

    def tpr_text(self, fpr: float = 1e-3) -> str:
        """``"4.1% [0.9, 8.0]"``, with ``†`` when ``fpr`` is below 1/#non-members (the TPR at zero false positives)."""
        try:
            k = self._key(fpr)
        except KeyError:
            return "-"
        v, ci = self.tpr_at_fpr[k], self.tpr_ci_at_fpr.get(k)
        if v is None:
            return "-"
        return (f"{100 * v:.1f}%" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")
                + (" †" if k in self.unresolved_fprs else ""))


@dataclass(frozen=True)
class AuditResults:
    """An audit's results: the typed ``record``, and from it the dataset, the configuration,
    one ``DefenseResult`` per defense and the whole ``results.json`` record (``raw``).
    ``path`` is the folder it was read from."""

    record: AuditRecord
    path: Optional[Path] = field(default=None, compare=False)

    @property
    def dataset(self) -> str:
        return self.record.dataset

    @property
    def config(self) -> dict:
        return self.record.config

    @cached_property
    def defenses(self) -> List[DefenseResult]:
        return [DefenseResult.from_entry(e) for e in self.record.defenses]

    @cached_property
    def raw(self) -> dict:
        return self.record.to_json()

    @classmethod
    def from_dict(cls, results: dict, path=None) -> "AuditResults":
        """The results of a ``results.json`` record (migrated from an older schema, then checked);
        ``path`` is the audit's folder, named in an error."""
        where = "results" if path is None else f"results in {path}"
        return cls(_record(results, where, path), Path(path) if path is not None else None)

    def to_json(self) -> str:
        from mi_defense.io import to_json

        return to_json(self.raw)

    @classmethod
    def from_json(cls, text: str, path=None) -> "AuditResults":
        try:
            return cls.from_dict(json.loads(text), path)
        except json.JSONDecodeError as exc:
            raise UserError(f"results are not valid JSON ({exc})") from None
        except RecursionError:
            raise UserError("results are nested too deeply to be an audit's record") from None

    @classmethod
    def load(cls, folder) -> "AuditResults":
        """Read ``folder/results.json`` (checked as ``mi-defense report`` checks it)."""
        return cls(load_record(folder), Path(folder))

    def __getitem__(self, name: str) -> DefenseResult:
        for d in self.defenses:
            if d.name == name:
                return d
        raise KeyError(f"no defense {name!r}; the audit holds {', '.join(d.name for d in self.defenses)}")

    def summary(self) -> str:
        """A plain-text table: accuracies, the primary attack's AUC and TPR at 0.1% FPR with
        their 95% CIs, the audited epsilon bound; † marks a TPR at an FPR below 1/#non-members."""
        w = max([len("defense")] + [len(d.name) for d in self.defenses]) + 2
        lines = [f"{'defense':<{w}}{'train acc':>10}{'test acc':>9}  {'primary attack':<19}{'AUC [95% CI]':<22}"
                 f"{'TPR@0.1%FPR [95% CI]':<24}{'eps >=':>7}"]
        for d in self.defenses:
            train = "-" if d.train_accuracy is None else f"{100 * d.train_accuracy:.1f}%"
            auc = ("-" if d.auc is None
                   else f"{d.auc:.3f}" + (f" [{d.auc_ci[0]:.3f}, {d.auc_ci[1]:.3f}]" if d.auc_ci else ""))
            eps = "-" if d.epsilon_lower_bound is None else f"{d.epsilon_lower_bound:.2f}"
            lines.append(f"{d.name:<{w}}{train:>10}{100 * d.test_accuracy:>8.1f}%  {d.primary_attack or '-':<19}"
                         f"{auc:<22}{d.tpr_text(1e-3):<24}{eps:>7}" + ("  undertrained" if d.undertrained else ""))
        if any(k in d.unresolved_fprs for d in self.defenses for k in d.tpr_at_fpr if abs(float(k) - 1e-3) < 1e-12):
            lines.append("† FPR below 1/#non-members: the TPR at zero false positives")
        return "\n".join(lines)


def load_results(out_dir) -> dict:
    """``out_dir/results.json`` as JSON, migrated to the current schema and checked (``load_record``)."""
    return load_record(out_dir).to_json()


def load_record(out_dir) -> AuditRecord:
    """``out_dir/results.json``, migrated to the current schema (``auditing.migrate``) and
    checked against the schema the report reads (``auditing.results_check``)."""
    p = Path(out_dir) / "results.json"
    if not p.is_file():
        raise UserError(f"{p}: no results.json; run 'mi-defense audit --out {out_dir}' (or 'mi-defense run') first")
    try:
        results = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: not valid JSON ({exc}); {_rewrite(out_dir)}") from None
    except RecursionError:
        raise UserError(f"{p}: nested too deeply to be a results file; {_rewrite(out_dir)}") from None
    return _record(results, str(p), out_dir)


def _rewrite(out_dir) -> str:
    """How to write an audit's results.json again (its trained runs are cached in ``out_dir``)."""
    return (f"re-run 'mi-defense audit --out {out_dir if out_dir is not None else 'FOLDER'}' "
            "to rewrite it (cached runs are reused)")


def _record(results, where: str, out_dir) -> AuditRecord:
    """The checked record of the JSON ``results`` of the audit in ``out_dir`` (None: unknown),
    or a one-line ``UserError`` that starts with ``where`` and says how to write it again."""
    if not isinstance(results, dict) or "defenses" not in results:
        raise UserError(f"{where}: not an mi_defense results record (no 'defenses')")
    try:
        return AuditRecord.from_json(migrate(results))
    except SchemaError as exc:  # an older schema: the same audit re-scores the cached runs into the current one
        raise UserError(f"{where}: {exc}; re-score it: {_rewrite(out_dir)}") from None
    except ResultsError as exc:
        raise UserError(f"{where}: {exc}; {_rewrite(out_dir)}") from None
