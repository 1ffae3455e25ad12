"""What an audit does, validated on construction: ``AuditConfig``. Its resolver (preset,
TOML, flags) is ``config.toml.resolve_audit_config``, its presets ``config.presets.RUN_PRESETS``.

This module imports the attack suite (``attacks``: the names an audit may declare), so
``mi_defense.config`` loads it only when one of its names is first used.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple

import attacks
from attacks.metrics import DEFAULT_FPRS
from attacks.queries import KINDS as QUERY_KINDS
from attacks.registry import RELEASE
from mi_defense.config.defense import DefenseSpec
from mi_defense.config.distill import DistillConfig
from mi_defense.config.params import AllOf, Interval, OrNone, Options, Satisfies, Whole, check_fields
from mi_defense.config.train import RealRecipe, TrainConfig
from mi_defense.errors import UserError

# The audit's one input normalisation: ``fitted`` to the training pool's per-channel
# statistics, ``fixed`` ([0, 1] pixels to [-1, 1]), or ``auto`` (fixed when a defense claims DP).
TRANSFORMS = ("auto", "fitted", "fixed")


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _fprs(v) -> bool:
    return bool(v) and all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f < 1 for f in v)


def _model_attacks(references: int) -> list:
    return attacks.THRESHOLD + attacks.TRAINED + (attacks.REFERENCE if references else [])


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
    model: Optional[str] = None            # the user's model, 'file.py:build' or 'package.module:build'
                                           # (defenses.own_model); None: ConvNet / MLP
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    real_recipe: RealRecipe = field(default_factory=RealRecipe)

    _constraints = {
        "references": AllOf(Whole(0), Satisfies(lambda r: r == 0 or (r >= 2 and r % 2 == 0),
                                                "0 or an even number >= 2")),
        "targets": Whole(1), "seed": Whole(0), "bootstrap": Whole(0),
        **{k: OrNone(Whole(1)) for k in ("members", "max_members", "nonmembers", "test", "real_steps")},
        "n_jobs": Satisfies(lambda v: _whole(v) and (v >= 1 or v == -1), "a positive whole number or -1 (all cores)"),
        "fprs": Satisfies(_fprs, "numbers strictly between 0 and 1"),
        "confidence": Interval(float, 0, 1, closed="neither"),
        "model": OrNone(Satisfies(lambda v: isinstance(v, str) and ":" in v,
                                  "'path/to/file.py:build' or 'package.module:build'")),
        "release_attack": Options(RELEASE), "transform": Options(TRANSFORMS), "augmented_queries": Options(QUERY_KINDS),
    }

    def __post_init__(self):
        self.validate()

    def validate(self) -> "AuditConfig":
        check_fields(self, "audit")
        if not self.defenses:
            raise UserError("give at least one --defense")
        for d in self.defenses:
            DefenseSpec.parse(d)
        known = set(attacks.THRESHOLD + attacks.TRAINED + attacks.REFERENCE + RELEASE)
        bad = [a for a in self.attacks if a not in known]
        if bad:
            raise UserError(f"unknown attack(s) {', '.join(bad)}; choose from {', '.join(sorted(known))}")
        model_attacks = _model_attacks(self.references)
        if self.primary_attack is not None and self.primary_attack not in model_attacks:
            raise UserError(f"primary_attack '{self.primary_attack}' is not an attack on the model"
                            f"{' with 0 reference runs' if not self.references else ''}; "
                            f"choose from {', '.join(model_attacks)}")
        if self.attacks and self.primary_attack and self.primary_attack not in self.attacks:
            raise UserError(f"primary_attack {self.primary_attack} is excluded by --attack; "
                            "add it or declare one of those attacks")
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
        default = attacks.lira.default_attack(self.references)
        if self.attacks and default not in self.attacks:
            return next((a for a in self.attacks if a in _model_attacks(self.references)), default)
        return default


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
