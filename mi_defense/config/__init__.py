"""Configuration, one package for every stage: frozen dataclasses validated on
construction, their presets, and their resolvers from presets, TOML files and flags.

- ``params``: declared constraints (``Interval``, ``Whole``, ``Options``, ...) and
  ``check_fields``; each settings class lists its own in ``_constraints``. ``EPSILON`` is
  the one check of every privacy budget.
- ``train``: ``TrainConfig``, ``RealRecipe``, ``DPSGDRecipe``
- ``distill``: ``DistillConfig`` (FRePo and DP-FRePo), ``CLIP_SPACES``, ``MECHANISMS``
- ``defense``: ``DefenseSpec`` (``dpsgd:eps=8``) and ``check_spec_params``
- ``audit``: ``AuditConfig``
- ``presets``: every preset and tuned default, by stage
- ``toml``: ``load_toml``, ``replace_checked``, ``resolve_distill_config``, ``resolve_audit_config``

Unknown keys are rejected with the list of valid ones; the resolved configuration is
written beside every output. The package sits below everything else in ``mi_defense`` (it
imports only ``errors`` and ``io``) and never imports TensorFlow. ``audit`` imports the
attack suite, so its names (``AuditConfig``, ``TRANSFORMS``, ``changed_settings``) load on
first use.
"""
import importlib

from mi_defense.config.defense import SPELLINGS, DefenseSpec, check_spec_params, spelled
from mi_defense.config.distill import (CLIP_SPACES, MECHANISMS, NOISE_INIT_LR, NOISE_INITS, REAL_INIT_LR, STRATEGIES,
                                      DistillConfig)
from mi_defense.config.params import (EPSILON, FINITE_POSITIVE, NONNEG, POSITIVE, POSITIVE_WHOLE, AllOf, Constraint,
                                      Interval, OrNone, Options, Satisfies, Whole, check_fields)
from mi_defense.config.presets import (DISTILL_DP_DEFAULTS, DISTILL_PRESETS, DPSGD_RECIPES, DPSGD_STEPS, DPSGD_TUNING,
                                       EVAL_BUDGETS, RUN_PRESETS, SMALL_DATA, TRAIN_PRESETS, EvalBudget, dpsgd_recipe,
                                       eval_budget)
from mi_defense.config.toml import (choose_distill_preset, field_names, load_audit_config, load_toml, replace_checked,
                                    resolve_audit_config, resolve_distill_config)
from mi_defense.config.train import (AUGMENT_ALIASES, AUGMENT_MODES, LOSS_NAMES, NORMS, DPSGDRecipe, RealRecipe,
                                     TrainConfig, augment_name)

_AUDIT_NAMES = ("AuditConfig", "TRANSFORMS", "changed_settings")  # loaded on first use (config.audit imports attacks)

__all__ = [
    "AuditConfig", "TRANSFORMS", "changed_settings",
    "SPELLINGS", "DefenseSpec", "check_spec_params", "spelled",
    "CLIP_SPACES", "MECHANISMS", "NOISE_INIT_LR", "NOISE_INITS", "REAL_INIT_LR", "STRATEGIES", "DistillConfig",
    "EPSILON", "FINITE_POSITIVE", "NONNEG", "POSITIVE", "POSITIVE_WHOLE", "AllOf", "Constraint", "Interval", "OrNone",
    "Options", "Satisfies", "Whole", "check_fields",
    "DISTILL_DP_DEFAULTS", "DISTILL_PRESETS", "DPSGD_RECIPES", "DPSGD_STEPS", "DPSGD_TUNING", "RUN_PRESETS",
    "EVAL_BUDGETS", "EvalBudget", "SMALL_DATA", "TRAIN_PRESETS", "dpsgd_recipe", "eval_budget",
    "choose_distill_preset", "field_names", "load_audit_config", "load_toml", "replace_checked", "resolve_audit_config",
    "resolve_distill_config",
    "AUGMENT_ALIASES", "AUGMENT_MODES", "LOSS_NAMES", "NORMS", "DPSGDRecipe", "RealRecipe", "TrainConfig",
    "augment_name",
]


def __getattr__(name):
    if name in _AUDIT_NAMES:
        return getattr(importlib.import_module("mi_defense.config.audit"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
