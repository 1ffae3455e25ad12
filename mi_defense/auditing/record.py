"""An audit's ``results.json`` as frozen dataclasses: the record the report renders.

``AuditRecord`` is the whole file: the dataset, the configuration, the split, the versions and
one ``DefenseEntry`` per defense. A defense entry holds its utility (test accuracy, accuracy on
the members), every attack's ``AttackResult`` (AUC with its bootstrap CI, the TPR at each FPR
with its CI, the FPRs below 1/#non-members that the non-members cannot resolve) and its
``Evidence``: the attacks declared before scoring (primary, release) as ``AttackSummary``, the
strongest attack selected on held-out examples, the Clopper-Pearson lower bound on epsilon and
the leave-one-out mean over reference runs as targets.

The fields the report reads are typed; the rest of each JSON object (the configuration, a
defense's metadata, an attack's ROC curve and slices, the bound's per-attack details) stays a
dict. Every class round-trips: ``X.from_json(d).to_json() == d``, keys in their order, a key
absent stays absent and a null stays null; a typed field set later (``dataclasses.replace``) on
a key the JSON lacked is written after the keys it had. ``AuditRecord`` is checked against the
schema the report reads (``results_check``) whenever one is constructed, so a record made by
``dataclasses.replace`` is checked again. Records of earlier versions of the schema are brought
to the current one by ``auditing.migrate`` before they are read.
"""
from __future__ import annotations

import copy
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Dict, FrozenSet, List, Optional, Tuple

from mi_defense.auditing.results_check import check_results

_OWN = ("extra", "keys", "checked")  # bookkeeping, not JSON keys
# Set while ``AuditRecord.from_json`` constructs a record of the JSON it has just checked.
_READ_CHECKED: ContextVar[bool] = ContextVar("_READ_CHECKED", default=False)


def _extra():
    return field(default_factory=dict, repr=False)


def _keys():
    return field(default=None, repr=False, compare=False)


class _Json:
    """``from_json``/``to_json`` for a dataclass whose typed fields are the JSON keys of the same
    name. ``extra`` holds the keys it does not type, ``keys`` the JSON keys in their order as read
    (None: built in code). ``to_json`` writes the keys listed in ``keys`` (a typed field that is
    None as null), then what they leave out: the typed fields that are not None, then ``extra``."""

    _TUPLES: ClassVar[Tuple[str, ...]] = ()          # JSON lists held as tuples
    _PARTS: ClassVar[Dict[str, type]] = {}            # a JSON object held as one typed part
    _PART_MAPS: ClassVar[Dict[str, type]] = {}        # {name: object} held as {name: part}
    _PART_LISTS: ClassVar[Dict[str, type]] = {}       # [object, ...] held as a tuple of parts
    _GROUPS: ClassVar[Dict[str, type]] = {}           # a part built from several keys of this object

    @classmethod
    def _typed(cls) -> List[str]:
        return [f.name for f in fields(cls) if f.name not in _OWN and f.name not in cls._GROUPS]

    @classmethod
    def _grouped(cls) -> Dict[str, str]:
        """JSON key -> the group field that holds it."""
        return {k: g for g, part in cls._GROUPS.items() for k in part._typed()}

    @classmethod
    def from_json(cls, d: dict):
        typed, grouped = cls._typed(), cls._grouped()
        kw = {n: cls._read(n, d[n]) for n in typed if n in d}
        kw.update({g: part.from_json({k: d[k] for k in part._typed() if k in d}) for g, part in cls._GROUPS.items()})
        return cls(**kw, extra={k: v for k, v in d.items() if k not in typed and k not in grouped}, keys=tuple(d))

    @classmethod
    def _read(cls, name: str, v):
        if v is None:
            return None
        if name in cls._PARTS:
            return cls._PARTS[name].from_json(v)
        if name in cls._PART_MAPS:
            return {k: cls._PART_MAPS[name].from_json(x) for k, x in v.items()}
        if name in cls._PART_LISTS:
            return tuple(cls._PART_LISTS[name].from_json(x) for x in v)
        return tuple(v) if name in cls._TUPLES else v

    def _write(self, name: str):
        v = getattr(self, name)
        if v is None:
            return None
        if name in self._PARTS:
            return v.to_json()
        if name in self._PART_MAPS:
            return {k: x.to_json() for k, x in v.items()}
        if name in self._PART_LISTS:
            return [x.to_json() for x in v]
        return list(v) if name in self._TUPLES else v

    def to_json(self) -> dict:
        typed, grouped = self._typed(), self._grouped()
        groups = {g: getattr(self, g).to_json() for g in self._GROUPS}
        out = {}
        for k in self.keys or ():  # the keys read, in their order
            if k in typed:
                out[k] = self._write(k)
            elif k in grouped:
                if k in groups[grouped[k]]:
                    out[k] = groups[grouped[k]][k]
            elif k in self.extra:
                out[k] = self.extra[k]
        out.update((n, self._write(n)) for n in typed if n not in out and getattr(self, n) is not None)
        out.update((k, v) for g in groups.values() for k, v in g.items() if k not in out)
        out.update((k, v) for k, v in self.extra.items() if k not in out)
        return out


@dataclass(frozen=True)
class AttackResult(_Json):
    """One attack's full result (``attacks.metrics.evaluate``): members are the positive class.
    ``tpr_at_fpr`` maps each FPR (a string such as ``"0.001"``) to the TPR at it, ``unresolved_fprs``
    the FPRs below 1/#non-members, where the value is the TPR at zero false positives."""

    auc: Optional[float] = None
    auc_ci: Optional[Tuple[float, float]] = None
    advantage: Optional[float] = None
    tpr_at_fpr: Optional[Dict[str, Optional[float]]] = None
    tpr_at_fpr_ci: Optional[Dict[str, Optional[list]]] = None
    unresolved_fprs: Optional[Tuple[str, ...]] = None
    n_members: Optional[int] = None
    n_nonmembers: Optional[int] = None
    roc: Optional[dict] = field(default=None, repr=False)
    slices: Optional[Dict[str, dict]] = field(default=None, repr=False)  # per class, the members copied into a release
    extra: Dict[str, Any] = _extra()
    keys: Optional[Tuple[str, ...]] = _keys()

    _TUPLES = ("auc_ci", "unresolved_fprs")

    def unresolved(self, fpr: str) -> bool:
        """Whether ``fpr`` is below 1/#non-members for this attack."""
        return fpr in (self.unresolved_fprs or ())


@dataclass(frozen=True)
class AttackSummary(_Json):
    """A declared or selected attack's headline numbers (``audit.evidence.summary``): its AUC,
    its TPR at the declared FPR ``fpr``, their CIs and the TPR at every FPR."""

    name: Optional[str] = None
    auc: Optional[float] = None
    auc_ci: Optional[Tuple[float, float]] = None
    fpr: Optional[str] = None
    tpr: Optional[float] = None
    tpr_ci: Optional[Tuple[float, float]] = None
    tpr_at_fpr: Optional[Dict[str, Optional[float]]] = None
    tpr_at_fpr_ci: Optional[Dict[str, Optional[list]]] = None
    unresolved_fprs: Optional[Tuple[str, ...]] = None
    n_members: Optional[int] = None
    n_nonmembers: Optional[int] = None
    extra: Dict[str, Any] = _extra()  # e.g. selected_on / reported_on for the held-out strongest attack
    keys: Optional[Tuple[str, ...]] = _keys()

    _TUPLES = ("auc_ci", "tpr_ci", "unresolved_fprs")


@dataclass(frozen=True)
class EpsilonBound(_Json):
    """The audited lower bound on epsilon: one-sided Clopper-Pearson intervals on an attack's TPR
    and FPR at a threshold chosen on one half of the examples, computed on the other."""

    value: Optional[float] = None
    attack: Optional[str] = None
    confidence: Optional[float] = None
    extra: Dict[str, Any] = _extra()  # threshold, counts, per-attack bounds
    keys: Optional[Tuple[str, ...]] = _keys()


@dataclass(frozen=True)
class LeaveOneOut(_Json):
    """The primary attack over many targets: each reference run in turn, the others (but its
    complementary partner) its references; the mean AUC and TPR with their standard errors."""

    attack: Optional[str] = None
    targets: Optional[int] = None
    fpr: Optional[str] = None
    auc_mean: Optional[float] = None
    auc_se: Optional[float] = None
    tpr_mean: Optional[float] = None
    tpr_se: Optional[float] = None
    extra: Dict[str, Any] = _extra()
    keys: Optional[Tuple[str, ...]] = _keys()


@dataclass(frozen=True)
class Evidence(_Json):
    """What a defense's verdict rests on: the attacks declared before scoring (on the model and
    on a released set), the strongest attacks selected on held-out examples, the epsilon lower
    bound and the leave-one-out mean. Held in the defense's JSON object, one key each."""

    primary_attack: Optional[AttackSummary] = None
    release_attack: Optional[AttackSummary] = None
    strongest_attack: Optional[AttackSummary] = None
    strongest_release_attack: Optional[AttackSummary] = None
    epsilon_lower_bound: Optional[EpsilonBound] = None
    leave_one_out_primary: Optional[LeaveOneOut] = None
    extra: Dict[str, Any] = _extra()
    keys: Optional[Tuple[str, ...]] = _keys()

    _PARTS = {"primary_attack": AttackSummary, "release_attack": AttackSummary, "strongest_attack": AttackSummary,
              "strongest_release_attack": AttackSummary, "epsilon_lower_bound": EpsilonBound,
              "leave_one_out_primary": LeaveOneOut}


@dataclass(frozen=True)
class Recipe(_Json):
    """How a defense's model is trained (``config.recipes``)."""

    name: Optional[str] = None
    description: Optional[str] = None
    extra: Dict[str, Any] = _extra()
    keys: Optional[Tuple[str, ...]] = _keys()


@dataclass(frozen=True)
class DefenseEntry(_Json):
    """One defense of the audit: its utility, every attack's result and the evidence."""

    name: Optional[str] = None
    key: Optional[str] = None
    defense: Optional[str] = None
    params: Optional[dict] = None
    test_accuracy: Optional[float] = None
    train_accuracy: Optional[float] = None
    generalization_gap: Optional[float] = None
    recipe: Optional[Recipe] = None
    undertrained: Optional[bool] = None
    claimed_epsilon: Optional[float] = None
    privacy_statement: Optional[str] = None
    attacks: Optional[Dict[str, AttackResult]] = field(default=None, repr=False)
    evidence: Evidence = field(default_factory=Evidence)
    canary_audits: Optional[List[dict]] = None
    auc_over_steps: Optional[list] = field(default=None, repr=False)
    metadata: Optional[dict] = field(default=None, repr=False)
    extra: Dict[str, Any] = _extra()
    keys: Optional[Tuple[str, ...]] = _keys()

    _PARTS = {"recipe": Recipe}
    _PART_MAPS = {"attacks": AttackResult}
    _GROUPS = {"evidence": Evidence}

    def attack(self, name: Optional[str]) -> AttackResult:
        """The attack's result, an empty one when the entry does not hold it."""
        return (self.attacks or {}).get(name) or AttackResult()

    def unresolved_fprs_of(self, s: AttackSummary) -> FrozenSet[str]:
        """The FPRs below 1/#non-members for the declared or selected attack ``s``: those the
        entry's result of that attack lists and those ``s`` lists. At such an FPR a TPR is the TPR
        at zero false positives, not one measured at that FPR."""
        return frozenset(self.attack(s.name).unresolved_fprs or ()) | frozenset(s.unresolved_fprs or ())

    def unresolved(self, s: AttackSummary, fpr: Optional[str] = None) -> bool:
        """Whether ``s``'s TPR at ``fpr`` (default: its declared FPR) is unresolved (``unresolved_fprs_of``)."""
        return (s.fpr if fpr is None else fpr) in self.unresolved_fprs_of(s)


@dataclass(frozen=True)
class Split(_Json):
    """Members, non-members and test examples of the audit, and the split's seed and hash."""

    hash: Optional[str] = None
    seed: Optional[int] = None
    n_members: Optional[int] = None
    n_nonmembers: Optional[int] = None
    n_test: Optional[int] = None
    test_source: Optional[str] = None
    extra: Dict[str, Any] = _extra()
    keys: Optional[Tuple[str, ...]] = _keys()


@dataclass(frozen=True)
class RegeneratedRows(_Json):
    """Rows a later audit of the same split put in the record (``auditing.merge``)."""

    rows: Optional[Tuple[str, ...]] = None
    replaced: Optional[Tuple[str, ...]] = None
    dropped: Optional[Tuple[str, ...]] = None
    versions: Optional[dict] = None
    machine: Optional[dict] = field(default=None, repr=False)
    config: Optional[dict] = field(default=None, repr=False)
    extra: Dict[str, Any] = _extra()
    keys: Optional[Tuple[str, ...]] = _keys()

    _TUPLES = ("rows", "replaced", "dropped")


@dataclass(frozen=True)
class AuditRecord(_Json):
    """A whole ``results.json``. Constructing one checks it against the schema the report reads
    (``results_check.check_results``, a ``ResultsError`` naming the first bad field)."""

    schema: Optional[str] = None
    dataset: Optional[str] = None
    class_names: Optional[Tuple[str, ...]] = None
    input_shape: Optional[Tuple[int, ...]] = None
    config: Optional[dict] = field(default=None, repr=False)
    split: Optional[Split] = None
    data_files: Any = field(default=None, repr=False)
    versions: Optional[dict] = field(default=None, repr=False)
    machine: Optional[dict] = field(default=None, repr=False)
    timings: Optional[dict] = field(default=None, repr=False)
    defenses: Tuple[DefenseEntry, ...] = ()
    regenerated_rows: Optional[Tuple[RegeneratedRows, ...]] = None
    extra: Dict[str, Any] = _extra()
    keys: Optional[Tuple[str, ...]] = _keys()
    checked: bool = field(default=False, init=False, repr=False, compare=False)  # True once constructed

    _TUPLES = ("class_names", "input_shape")
    _PARTS = {"split": Split}
    _PART_LISTS = {"defenses": DefenseEntry, "regenerated_rows": RegeneratedRows}

    def __post_init__(self):
        if not _READ_CHECKED.get():  # built in code or by dataclasses.replace: check what it would write
            check_results(self.to_json())
        object.__setattr__(self, "checked", True)

    @classmethod
    def from_json(cls, d: dict) -> "AuditRecord":
        """The record of ``d`` (a ``results.json`` of the current schema: see ``auditing.migrate``),
        checked before any part of it is built (and so not again when it is constructed). The
        record holds its own copy: changing ``d`` afterwards does not change it."""
        check_results(d)
        token = _READ_CHECKED.set(True)
        try:
            return super().from_json(copy.deepcopy(d))
        finally:
            _READ_CHECKED.reset(token)

    def to_json(self) -> dict:
        """The ``results.json`` content, a copy the caller may change without changing the record."""
        return copy.deepcopy(super().to_json())

    def entry(self, name: str) -> DefenseEntry:
        for e in self.defenses:
            if e.name == name:
                return e
        raise KeyError(f"no defense {name!r}; the audit holds {', '.join(e.name for e in self.defenses)}")
