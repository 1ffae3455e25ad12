"""What an audit does, validated on construction: ``AuditConfig`` and its TOML loader."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple

import attacks
from attacks.metrics import DEFAULT_FPRS
from mi_defense.config import DistillConfig, TrainConfig, load_toml, replace_checked
from mi_defense.defenses import DefenseSpec
from mi_defense.errors import UserError
from mi_defense.recipes import RealRecipe


@dataclass(frozen=True)
class AuditConfig:
    dataset: str = "digits"
    data_dir: Optional[str] = None
    members: Optional[int] = None          # default: half of the available pool
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
    confidence: float = 0.95               # of the empirical epsilon lower bounds
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    real_recipe: RealRecipe = field(default_factory=RealRecipe)

    def __post_init__(self):
        self.validate()

    def validate(self) -> "AuditConfig":
        _whole(self.references, "references", 0)
        _whole(self.targets, "targets", 1)
        _whole(self.seed, "seed", 0)
        _whole(self.bootstrap, "bootstrap", 0)
        for k in ("members", "nonmembers", "test", "real_steps"):
            if getattr(self, k) is not None:
                _whole(getattr(self, k), k, 1)
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
        known = set(attacks.THRESHOLD + attacks.TRAINED + attacks.REFERENCE + ["release_pixel", "release_feature"])
        bad = [a for a in self.attacks if a not in known]
        if bad:
            raise UserError(f"unknown attack(s) {', '.join(bad)}; choose from {', '.join(sorted(known))}")
        model_attacks = attacks.THRESHOLD + attacks.TRAINED + (attacks.REFERENCE if self.references else [])
        if self.primary_attack is not None and self.primary_attack not in model_attacks:
            raise UserError(f"primary_attack '{self.primary_attack}' is not an attack on the model"
                            f"{' with 0 reference runs' if not self.references else ''}; choose from {', '.join(model_attacks)}")
        if self.release_attack not in ("release_pixel", "release_feature"):
            raise UserError(f"release_attack '{self.release_attack}' unknown; use release_pixel or release_feature")
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


def _whole(value, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{name} must be a whole number >= {low}, got {value!r}")


def load_audit_config(path, base: AuditConfig) -> AuditConfig:
    """``[audit]`` keys plus optional ``[train]``, ``[distill]`` and ``[real_recipe]`` tables;
    unknown keys are rejected."""
    raw = load_toml(path)
    unknown = sorted(set(raw) - {"audit", "train", "distill", "real_recipe"})
    if unknown:
        raise UserError(f"{path}: unknown table(s) {', '.join(unknown)}; use [audit], [train], [distill], [real_recipe]")
    audit = dict(raw.get("audit", {}))
    for k in ("defenses", "attacks", "fprs"):
        if k in audit:
            audit[k] = tuple(audit[k])
    if "train" in raw:
        audit["train"] = replace_checked(base.train, f"{path} [train]", **raw["train"])
    if "distill" in raw:
        audit["distill"] = replace_checked(base.distill, f"{path} [distill]", **raw["distill"])
    if "real_recipe" in raw:
        audit["real_recipe"] = replace_checked(base.real_recipe, f"{path} [real_recipe]", **raw["real_recipe"])
    cfg = base
    nested = {k: audit.pop(k) for k in ("train", "distill", "real_recipe", "defenses", "attacks", "fprs") if k in audit}
    cfg = replace_checked(cfg, f"{path} [audit]", **audit)
    return dataclasses.replace(cfg, **nested)
