"""Settings from presets, TOML files and flags: ``load_toml``, ``replace_checked`` (unknown
keys rejected with the list of valid ones) and the resolvers, one per stage:
``resolve_distill_config`` (``distill`` and the Python API; ``resolve_distill_preset`` also
names the preset chosen) and ``resolve_audit_config``
(``audit``, ``run``, ``canary --one-run`` and ``mi_defense.audit``)."""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Tuple

from mi_defense.config.distill import DistillConfig
from mi_defense.config.presets import DISTILL_DP_DEFAULTS, DISTILL_PRESETS, RUN_PRESETS, SMALL_DATA
from mi_defense.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from mi_defense.config.audit import AuditConfig


def field_names(cls) -> Tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def replace_checked(obj, where: str = "config", **changes):
    """``dataclasses.replace`` that rejects unknown keys and coerces simple types."""
    valid = {f.name: f for f in fields(obj)}
    unknown = sorted(set(changes) - set(valid))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    clean = {}
    for k, v in changes.items():
        if v is None:
            continue
        default = getattr(obj, k)
        if valid[k].type in ("Any", Any):
            clean[k] = v
            continue
        if isinstance(default, bool) and not isinstance(v, bool):
            raise UserError(f"{where}: {k} must be true or false, got {v!r}")
        if isinstance(default, int) and not isinstance(default, bool) and not isinstance(v, int):
            raise UserError(f"{where}: {k} must be a whole number, got {v!r}")
        if isinstance(default, float) and not isinstance(v, (int, float)):
            raise UserError(f"{where}: {k} must be a number, got {v!r}")
        clean[k] = float(v) if isinstance(default, float) else v
    return dataclasses.replace(obj, **clean)


def load_toml(path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such config file")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{p}: invalid TOML ({exc}); fix the syntax") from None


# ---------------------------------------------------------------- distillation
def choose_distill_preset(preset: str, n_members: Optional[int], private: bool) -> str:
    """``preset``, with ``"auto"`` resolved: ``"small"`` for fewer than ``SMALL_DATA``
    members, else ``"quick"``. A DP run (``private``) always gets ``"quick"``: its settings,
    which the release publishes, never depend on the private data."""
    if preset != "auto":
        return preset
    return "small" if not private and n_members is not None and n_members < SMALL_DATA else "quick"


def resolve_distill_preset(preset: str, where: str, n_members: Optional[int] = None,
                           **changes) -> Tuple[str, DistillConfig]:
    """The preset chosen (``"auto"`` resolved by ``n_members``, ``choose_distill_preset``)
    and the distillation settings: that preset, then DP-FRePo's defaults for it when
    ``epsilon`` is set (``DISTILL_DP_DEFAULTS``), then ``changes`` (None values ignored;
    ``where`` names their source in errors). Validated."""
    preset = choose_distill_preset(preset, n_members, changes.get("epsilon") is not None)
    if preset not in DISTILL_PRESETS:
        raise UserError(f"unknown preset '{preset}'; use one of auto, {', '.join(DISTILL_PRESETS)}")
    base = DISTILL_PRESETS[preset]
    if changes.get("epsilon") is not None:
        base = dataclasses.replace(base, **DISTILL_DP_DEFAULTS.get(preset, {}))
    return preset, replace_checked(base, where, **changes)


def resolve_distill_config(preset: str, where: str, n_members: Optional[int] = None, **changes) -> DistillConfig:
    """The distillation settings of ``resolve_distill_preset``, without the preset's name."""
    return resolve_distill_preset(preset, where, n_members, **changes)[1]


# ---------------------------------------------------------------- audits
def load_audit_config(path, base: "AuditConfig") -> "AuditConfig":
    """``[audit]`` keys plus optional ``[train]``, ``[distill]`` and ``[real_recipe]`` tables;
    unknown keys are rejected."""
    raw = load_toml(path)
    unknown = sorted(set(raw) - {"audit", "train", "distill", "real_recipe"})
    if unknown:
        raise UserError(f"{path}: unknown table(s) {', '.join(unknown)}; "
                        "use [audit], [train], [distill], [real_recipe]")
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


def _with(cfg: "AuditConfig", where: str, changes: dict) -> "AuditConfig":
    """``changes`` applied to ``cfg``: lists as tuples and nested configs as given, every
    other key type-checked by ``replace_checked`` (unknown keys rejected)."""
    bad = [k for k in _LISTS if k in changes and not isinstance(changes[k], (list, tuple))]
    if bad:
        raise UserError(f"{where}: {bad[0]} must be a list, got {changes[bad[0]]!r}")
    changes = {k: tuple(v) if k in _LISTS else v for k, v in changes.items()}
    nested = {k: changes.pop(k) for k in _NESTED if k in changes}
    return dataclasses.replace(replace_checked(cfg, where, **changes), **nested)


def resolve_audit_config(preset: Optional[str] = "quick", toml=None, where: str = "command line",
                         base: Optional["AuditConfig"] = None, **changes) -> "AuditConfig":
    """The one resolver behind ``audit``, ``run`` and ``mi_defense.audit``: a preset, then a
    TOML file, then explicit settings (``None`` means "not given"). ``width``/``depth`` set
    the ConvNets of both training and distillation. A preset's split sizes belong to its
    dataset: on another dataset the members default to half the pool, at most the preset's
    number. ``base`` replaces the preset (and is taken as given: no dataset resizing)."""
    from mi_defense.config.audit import AuditConfig

    if preset is not None and preset not in RUN_PRESETS:
        raise UserError(f"unknown preset '{preset}'; use one of {', '.join(RUN_PRESETS)}")
    changes = {k: v for k, v in changes.items() if v is not None}
    if base is None:
        base = AuditConfig() if preset is None else AuditConfig(**RUN_PRESETS[preset])
        if "dataset" in changes and changes["dataset"] != base.dataset:
            base = dataclasses.replace(base, dataset=changes["dataset"], members=None, nonmembers=None,
                                       max_members=base.members or base.max_members)
    cfg = load_audit_config(toml, base) if toml else base
    if (preset is not None and RUN_PRESETS[preset].get("primary_attack") == cfg.primary_attack
            and "primary_attack" not in changes and ({"references", "attacks"} & set(changes))):
        # a preset's declared attack was chosen for its reference count and attack list: another
        # count or list declares the default for it instead (AuditConfig.primary)
        cfg = dataclasses.replace(cfg, primary_attack=None)
    model = {k: changes.pop(k) for k in ("width", "depth") if k in changes}
    if model:
        cfg = dataclasses.replace(cfg, train=replace_checked(cfg.train, where, **model),
                                  distill=replace_checked(cfg.distill, where, **model))
    changes.update({k: (changes[k],) for k in _LISTS if isinstance(changes.get(k), str)})  # one name, not its letters
    return _with(cfg, where, changes)
