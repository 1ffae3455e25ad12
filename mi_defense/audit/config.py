"""What an audit does, validated on construction: ``AuditConfig`` and its TOML loader."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple

import attacks
from attacks.metrics import DEFAULT_FPRS
from mi_defense.config import DistillConfig, TrainConfig, check_whole, load_toml, replace_checked
from mi_defense.defenses import DefenseSpec
from mi_defense.errors import UserError
from mi_defense.training.recipes import RealRecipe


# The audit's one input normalisation: ``fitted`` to the training pool's per-channel
# statistics, ``fixed`` ([0, 1] pixels to [-1, 1]), or ``auto`` (fixed when a defense claims DP).
TRANSFORMS = ("auto", "fitted", "fixed")


@dataclass(frozen=True)
class AuditConfig:
    dataset: str = "digits"
    data_dir: Optional[str] = None
    members: Optional[int] = None          # default: half of the available pool, at most max_members
    max_members: Optional[int] = None      # cap on the default number of members (a preset's size on any dataset)
    nonmembers: Optional[int] = None       # default: as many as members
    test: Optional[int] = None             # default: the whole test set (or 20% of the pool)
    defenses: Tuple[str, ...] = ("none", "subset", "dpsgd:eps=8", "frepo:ipc=10")
    attacks: Tuple[str, ...] = ()          # empty: every attack the defense allows
    references: int = 4                    # reference runs per defense (even; 0 disables LiRA/RMIA)
    targets: int = 1
    seed: int = 0
    fprs: Tuple[float, ...] = DEFAULT_FPRS
    bootstrap: int = 200
    real_steps: Optional[int] = None       # DP-SGD steps (None: its default)
    n_jobs: int = -1
    primary_attack: Optional[str] = None   # declared before scoring; None: by the number of reference runs
    release_attack: str = "release_pixel"  # declared attack on a released set (defenses that release one)
    augmented_queries: str = "none"        # LiRA/RMIA query views (attacks.queries.KINDS); stored per run when not none
    confidence: float = 0.95               # of the empirical epsilon lower bounds
    transform: str = "auto"                # input normalisation (TRANSFORMS): auto is fixed when a defense claims DP
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    real_recipe: RealRecipe = field(default_factory=RealRecipe)

    def __post_init__(self):
        self.validate()

    def validate(self) -> "AuditConfig":
        check_whole(self.references, "references", 0)
        check_whole(self.targets, "targets", 1)
        check_whole(self.seed, "seed", 0)
        check_whole(self.bootstrap, "bootstrap", 0)
        for k in ("members", "max_members", "nonmembers", "test", "real_steps"):
            if getattr(self, k) is not None:
                check_whole(getattr(self, k), k, 1)
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int) or self.n_jobs == 0 or self.n_jobs < -1:
            raise UserError(f"n_jobs must be a positive whole number or -1 (all cores), got {self.n_jobs!r}")
        if self.references and (self.references < 2 or self.references % 2):
            raise UserError(f"references must be 0 or an even number >= 2, got {self.references}")
        if not self.fprs or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < 1 for f in self.fprs):
            raise UserError(f"fprs must be numbers strictly between 0 and 1, got {list(self.fprs)!r}")
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float)) or not 0 < self.confidence < 1:
            raise UserError(f"confidence must lie strictly between 0 and 1, got {self.confidence!r}")
        if not self.defenses:
            raise UserError("give at least one --defense")
        for d in self.defenses:
            DefenseSpec.parse(d)
        known = set(attacks.THRESHOLD + attacks.TRAINED + attacks.REFERENCE + attacks.registry.RELEASE)
        bad = [a for a in self.attacks if a not in known]
        if bad:
            raise UserError(f"unknown attack(s) {', '.join(bad)}; choose from {', '.join(sorted(known))}")
        model_attacks = attacks.THRESHOLD + attacks.TRAINED + (attacks.REFERENCE if self.references else [])
        if self.primary_attack is not None and self.primary_attack not in model_attacks:
            raise UserError(f"primary_attack '{self.primary_attack}' is not an attack on the model"
                            f"{' with 0 reference runs' if not self.references else ''}; choose from {', '.join(model_attacks)}")
        if self.release_attack not in attacks.registry.RELEASE:
            raise UserError(f"release_attack '{self.release_attack}' unknown; use one of {', '.join(attacks.registry.RELEASE)}")
        if self.transform not in TRANSFORMS:
            raise UserError(f"transform '{self.transform}' unknown; use one of {', '.join(TRANSFORMS)}")
        if self.augmented_queries not in attacks.queries.KINDS:
            raise UserError(f"augmented_queries '{self.augmented_queries}' unknown; use one of {', '.join(attacks.queries.KINDS)}")
        if self.attacks and self.primary_attack and self.primary_attack not in self.attacks:
            raise UserError(f"primary_attack {self.primary_attack} is excluded by --attack; add it or declare one of those attacks")
        return self

    @property
    def primary(self) -> str:
        """The attack on the model that the verdict, the frontier and the epsilon bound use,
        fixed by the configuration before any score exists. Default: LiRA online with a
        fixed (global) variance from 2 to 62 reference runs, where per-example variances are
        too noisy ("Membership Inference Attacks From First Principles", section VI),
        per-example variance from 64 runs on, the loss threshold without reference runs; when
        ``attacks`` excludes that, the first attack on the model that ``attacks`` lists."""
        if self.primary_attack:
            return self.primary_attack
        default = "lira_online" if self.references >= 64 else ("lira_online_fixed" if self.references else "threshold_loss")
        if self.attacks and default not in self.attacks:
            model_attacks = attacks.THRESHOLD + attacks.TRAINED + (attacks.REFERENCE if self.references else [])
            return next((a for a in self.attacks if a in model_attacks), default)
        return default


def load_audit_config(path, base: AuditConfig) -> AuditConfig:
    """``[audit]`` keys plus optional ``[train]``, ``[distill]`` and ``[real_recipe]`` tables;
    unknown keys are rejected."""
    raw = load_toml(path)
    unknown = sorted(set(raw) - {"audit", "train", "distill", "real_recipe"})
    if unknown:
        raise UserError(f"{path}: unknown table(s) {', '.join(unknown)}; use [audit], [train], [distill], [real_recipe]")
    audit = dict(raw.get("audit", {}))
    if "train" in raw:
        audit["train"] = replace_checked(base.train, f"{path} [train]", **raw["train"])
    if "distill" in raw:
        audit["distill"] = replace_checked(base.distill, f"{path} [distill]", **raw["distill"])
    if "real_recipe" in raw:
        audit["real_recipe"] = replace_checked(base.real_recipe, f"{path} [real_recipe]", **raw["real_recipe"])
    return _with(base, f"{path} [audit]", audit)


_LISTS = ("defenses", "attacks", "fprs")
_NESTED = _LISTS + ("train", "distill", "real_recipe")


def _with(cfg: AuditConfig, where: str, changes: dict) -> AuditConfig:
    """``changes`` applied to ``cfg``: lists as tuples and nested configs as given, every
    other key type-checked by ``replace_checked`` (unknown keys rejected)."""
    bad = [k for k in _LISTS if k in changes and not isinstance(changes[k], (list, tuple))]
    if bad:
        raise UserError(f"{where}: {bad[0]} must be a list, got {changes[bad[0]]!r}")
    changes = {k: tuple(v) if k in _LISTS else v for k, v in changes.items()}
    nested = {k: changes.pop(k) for k in _NESTED if k in changes}
    return dataclasses.replace(replace_checked(cfg, where, **changes), **nested)


def resolve_audit_config(preset: Optional[str] = "quick", toml=None, where: str = "command line",
                         base: Optional[AuditConfig] = None, **changes) -> AuditConfig:
    """The one resolver behind ``audit``, ``run`` and ``mi_defense.audit``: a preset, then a
    TOML file, then explicit settings (``None`` means "not given"). ``width``/``depth`` set
    the ConvNets of both training and distillation. A preset's split sizes belong to its
    dataset: on another dataset the members default to half the pool, at most the preset's
    number. ``base`` replaces the preset (and is taken as given: no dataset resizing)."""
    from mi_defense.presets import RUN_PRESETS

    if preset is not None and preset not in RUN_PRESETS:
        raise UserError(f"unknown preset '{preset}'; use one of {', '.join(RUN_PRESETS)}")
    changes = {k: v for k, v in changes.items() if v is not None}
    if base is None:
        base = AuditConfig() if preset is None else RUN_PRESETS[preset]
        if "dataset" in changes and changes["dataset"] != base.dataset:
            base = dataclasses.replace(base, dataset=changes["dataset"], members=None, nonmembers=None,
                                       max_members=base.members or base.max_members)
    cfg = load_audit_config(toml, base) if toml else base
    model = {k: changes.pop(k) for k in ("width", "depth") if k in changes}
    if model:
        cfg = dataclasses.replace(cfg, train=replace_checked(cfg.train, where, **model),
                                  distill=replace_checked(cfg.distill, where, **model))
    changes.update({k: (changes[k],) for k in _LISTS if isinstance(changes.get(k), str)})  # one name, not its letters
    return _with(cfg, where, changes).validate()


_TABLES = {"distill": DistillConfig, "train": TrainConfig, "real_recipe": RealRecipe}


def changed_settings(before: dict, now: dict) -> list:
    """Top-level keys whose settings differ between an audit folder's recorded training
    settings and this audit's (both as JSON-ready dicts). A field that a later version added
    to a settings table counts as unchanged while it holds its default value, so folders
    written before it existed keep their runs."""
    import json

    from mi_defense.io import to_json

    def trimmed(key, value, old):
        cls = _TABLES.get(key)
        if cls is None or not isinstance(value, dict) or not isinstance(old, dict):
            return value
        fresh = json.loads(to_json(dataclasses.asdict(cls())))
        return {k: v for k, v in value.items() if k in old or k not in fresh or v != fresh[k]}

    return sorted(k for k in set(before) | set(now) if before.get(k) != trimmed(k, now.get(k), before.get(k)))
