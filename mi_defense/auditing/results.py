"""Typed access to an audit's ``results.json``: ``AuditResults`` and ``DefenseResult``.

The file stays the record (every attack, every CI, the run metadata); these classes give
the fields a reader needs most a type and a name, and keep the full record in ``raw``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from mi_defense.auditing.results_check import ResultsError, check_results
from mi_defense.errors import UserError

SCHEMA = "mi_defense.results/2"  # the version of results.json this package writes and reads


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
    def from_entry(cls, e: dict) -> "DefenseResult":
        p = e.get("primary_attack") or {}
        b = e.get("epsilon_lower_bound") or {}
        recipe = e.get("recipe")
        return cls(name=e["name"], defense=e["defense"], test_accuracy=e["test_accuracy"], train_accuracy=e.get("train_accuracy"),
                   undertrained=bool(e.get("undertrained")), recipe=recipe.get("name") if isinstance(recipe, dict) else recipe,
                   primary_attack=p.get("name"), auc=p.get("auc"), auc_ci=p.get("auc_ci"), tpr_at_fpr=dict(p.get("tpr_at_fpr") or {}),
                   tpr_ci_at_fpr=dict(p.get("tpr_at_fpr_ci") or {}),
                   unresolved_fprs=list((e.get("attacks", {}).get(p.get("name"), {}) or {}).get("unresolved_fprs", [])),
                   epsilon_lower_bound=b.get("value"), claimed_epsilon=e.get("claimed_epsilon"),
                   privacy_statement=e.get("privacy_statement", ""), raw=e)

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
        return f"{100 * v:.1f}%" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "") + (" †" if k in self.unresolved_fprs else "")


@dataclass(frozen=True)
class AuditResults:
    """An audit's results: dataset, configuration, one ``DefenseResult`` per defense, and the
    whole ``results.json`` record in ``raw``. ``path`` is the folder it was read from."""

    dataset: str
    config: dict
    defenses: List[DefenseResult]
    raw: dict = field(repr=False, compare=False, default_factory=dict)
    path: Optional[Path] = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, results: dict, path=None) -> "AuditResults":
        if not isinstance(results, dict) or not isinstance(results.get("defenses"), list):
            raise UserError("not an mi_defense results record (no 'defenses' list)")
        try:
            check_results(results)
        except ResultsError as exc:
            raise UserError(f"results{'' if path is None else ' in ' + str(path)}: {exc}; re-run the audit to rewrite them") from None
        return cls(results["dataset"], results.get("config", {}), [DefenseResult.from_entry(e) for e in results["defenses"]],
                   results, Path(path) if path is not None else None)

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
        return cls.from_dict(load_results(folder), folder)

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
            auc = "-" if d.auc is None else f"{d.auc:.3f}" + (f" [{d.auc_ci[0]:.3f}, {d.auc_ci[1]:.3f}]" if d.auc_ci else "")
            eps = "-" if d.epsilon_lower_bound is None else f"{d.epsilon_lower_bound:.2f}"
            lines.append(f"{d.name:<{w}}{train:>10}{100 * d.test_accuracy:>8.1f}%  {d.primary_attack or '-':<19}{auc:<22}"
                         f"{d.tpr_text(1e-3):<24}{eps:>7}" + ("  undertrained" if d.undertrained else ""))
        if any(k in d.unresolved_fprs for d in self.defenses for k in d.tpr_at_fpr if abs(float(k) - 1e-3) < 1e-12):
            lines.append("† FPR below 1/#non-members: the TPR at zero false positives")
        return "\n".join(lines)


def load_results(out_dir) -> dict:
    """``out_dir/results.json``, checked against the schema the report reads (``audit.results_check``)."""
    p = Path(out_dir) / "results.json"
    if not p.is_file():
        raise UserError(f"{p}: no results.json; run 'mi-defense audit --out {out_dir}' (or 'mi-defense run') first")
    rewrite = f"re-run 'mi-defense audit --out {out_dir}' to rewrite it (cached runs are reused)"
    try:
        results = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: not valid JSON ({exc}); re-run the audit to rewrite it") from None
    except RecursionError:
        raise UserError(f"{p}: nested too deeply to be a results file; {rewrite}") from None
    if not isinstance(results, dict) or "defenses" not in results:
        raise UserError(f"{p}: not an mi_defense results file (no 'defenses')")
    if results.get("schema") != SCHEMA:
        raise UserError(f"{p}: results schema {str(results.get('schema'))[:40]!r}, this version reads {SCHEMA!r}; re-score it with "
                        f"'mi-defense audit --out {out_dir}' (cached runs are reused)")
    if not results["defenses"]:
        raise UserError(f"{p}: holds no defenses; run the audit with at least one --defense")
    entries = results["defenses"] if isinstance(results["defenses"], list) else []
    missing = sorted({k for e in entries if isinstance(e, dict)
                      for k in ("name", "defense", "test_accuracy", "attacks", "privacy_statement") if k not in e}
                     | {k for k in ("dataset", "config", "split", "versions", "class_names", "input_shape") if k not in results})
    if missing:
        raise UserError(f"{p}: results file lacks {', '.join(missing)}; {rewrite}")
    try:
        return check_results(results)
    except ResultsError as exc:
        raise UserError(f"{p}: {exc}; {rewrite}") from None
