"""Defenses against membership inference, behind one interface (``base.Defense``).

``none`` (no defense), ``subset:n=K`` (a random real subset), ``dpsgd:eps=E`` (DP-SGD with
tensorflow-privacy on a group-normalised ConvNet), ``dpsgd-linear:eps=E`` (DP-SGD on a
linear classifier over fixed ScatterNet features) and ``frepo:ipc=K`` (FRePo distillation,
then training on the synthetic set only). A spec (``dpsgd:eps=8``) is parsed by
``mi_defense.config.DefenseSpec``; each defense declares its parameters' constraints.
"""
from __future__ import annotations

from typing import Dict, Type

from mi_defense.config import DefenseSpec
from mi_defense.defenses.base import Defense, DefenseContext, DefenseResult
from mi_defense.errors import UserError

REGISTRY: Dict[str, Type[Defense]] = {}


def register(cls: Type[Defense]) -> Type[Defense]:
    """Add a defense class (used by tests and by users with their own defenses)."""
    REGISTRY[cls.name] = cls
    return cls


def _builtin():
    from mi_defense.defenses.baselines import NoDefense, Subset
    from mi_defense.defenses.dpsgd import DPSGD, DPSGDLinear
    from mi_defense.defenses.frepo import FRePoDefense

    for cls in (NoDefense, Subset, DPSGD, DPSGDLinear, FRePoDefense):
        REGISTRY.setdefault(cls.name, cls)


def make_defense(spec: DefenseSpec, ctx: DefenseContext) -> Defense:
    _builtin()
    if spec.name not in REGISTRY:
        raise UserError(f"unknown defense '{spec.name}'; use one of {', '.join(REGISTRY)} "
                        "(e.g. none, subset:n=100, dpsgd:eps=8, dpsgd-linear:eps=1, frepo:ipc=10)")
    return REGISTRY[spec.name](ctx, **spec.kwargs)


__all__ = ["Defense", "DefenseContext", "DefenseResult", "REGISTRY", "register", "make_defense"]
