"""An audit's set-up (``AuditSetup``), prepared and checked once, before anything is written.

``prepare`` loads the dataset, parses and builds every defense (a bare ``subset`` sized
once, ``audit.plan``), chooses the input normalisation, draws the split and the reference
masks, and refuses an audit that cannot run: attacks that apply to no defense, a model too
deep for the inputs, a distillation that cannot fit in memory, a folder whose
``split.json`` or ``training_config.json`` holds another split or other training settings,
or whose ``results.json`` reports defenses this audit would drop. It writes nothing: the
orchestrator (``audit.core``) writes ``split.json`` and ``training_config.json`` from the
set-up. The set-up is frozen and pickles (the Ray executor ships it to its workers once).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

import attacks
from mi_defense.auditing import plan
from mi_defense.auditing.inputs import audit_transform
from mi_defense.config import DefenseSpec, augment_name
from mi_defense.config.audit import AuditConfig, changed_settings
from mi_defense.data import Dataset, Split, Transform, load_dataset, make_split, universe_masks
from mi_defense.defenses import Defense, DefenseContext, make_defense
from mi_defense.errors import UserError
from mi_defense.io import read_json, to_json
from mi_defense.models import check_depth

# Settings that change what the cached runs contain; the rest (attacks, bootstrap,
# FPRs, defense list, n_jobs) only change scoring and may differ between calls.
# ``max_members`` only shapes the split, which split.json guards.
SCORING_ONLY = ("attacks", "bootstrap", "fprs", "n_jobs", "defenses", "data_dir", "primary_attack", "release_attack",
                "confidence", "max_members")
# Bump when the reference-run design changes (which examples each run trains on).
REFERENCE_DESIGN = "complementary-pairs/1"


def config_dict(cfg: AuditConfig) -> dict:
    return dataclasses.asdict(cfg)


@dataclass(frozen=True, eq=False)
class AuditSetup:
    """Everything an audit's runs and scoring read, fixed before the first run.

    The universe is the split's members followed by its non-members; ``membership`` marks
    the members, ``masks[:, m]`` the universe examples reference run ``m`` trains on."""

    cfg: AuditConfig
    ds: Dataset
    specs: Tuple[DefenseSpec, ...]          # every size resolved (``plan.resolve_subset_size``)
    defenses: Dict[str, Defense]            # built once per spec key, for their settings (runs build their own)
    transform: Transform                    # the one input normalisation (``inputs.audit_transform``)
    ctx: DefenseContext
    split: Split
    universe: np.ndarray                    # dataset indices: members, then non-members
    membership: np.ndarray                  # (N,) bool
    x_u: np.ndarray                         # the universe in model space
    y_u: np.ndarray
    x_test: np.ndarray                      # the test examples in model space
    y_test: np.ndarray
    masks: np.ndarray                       # (N, references) bool
    training_config: dict                   # the settings that shape the cached runs (training_config.json)

    @property
    def n_members(self) -> int:
        return len(self.split.members)


def prepare(cfg: AuditConfig, out_dir, progress: bool = True, log=print) -> AuditSetup:
    """The audit's set-up for ``cfg`` in ``out_dir``, every check done; writes nothing. Every
    check runs before anything is written, so a failed audit leaves no file that could decide
    the next one's split or settings."""
    cfg = cfg.validate()
    out = Path(out_dir)
    ds = load_dataset(cfg.dataset, cfg.data_dir)
    specs = [DefenseSpec.parse(d) for d in cfg.defenses]
    transform = audit_transform(cfg.transform, ds.x_train, ds.input_shape, any(s.claims_dp for s in specs))
    ctx = DefenseContext(ds.num_classes, ds.input_shape, cfg.train, cfg.real_steps, cfg.distill, progress=progress,
                         build_model=cfg.model,  # the user's model (defenses.own_model), None: the ConvNet / MLP
                         real_recipe=cfg.real_recipe, fixed_normalisation=transform.is_fixed)
    made = {s: make_defense(s, ctx) for s in specs if not plan.sized_later(s)}  # rejects bad parameters
    ipc = next((made[s].params.get("ipc", cfg.distill.ipc)  # checked spec values
                for s in specs if s.name == "frepo"), 10)
    specs = plan.resolve_subset_size(specs, ipc * ds.num_classes)  # `subset` matches the first FRePo set
    defenses = {s.key: made.get(s) or make_defense(s, ctx) for s in specs}
    plan.check_kept_results(out, specs)
    check_depth(ds.input_shape, cfg.train.depth)
    if any(d.releases for d in defenses.values()):
        check_depth(ds.input_shape, cfg.distill.depth)
    check_attacks(cfg, defenses)
    if cfg.augmented_queries != "none" and len(ds.input_shape) != 3:
        raise UserError(f"augmented_queries = '{cfg.augmented_queries}' needs images; "
                        f"{cfg.dataset} holds feature vectors")
    split = draw_split(cfg, ds, out)
    universe = np.r_[split.members, split.nonmembers]
    n_members = len(split.members)
    x_test, y_test = split.test_data(ds)
    log(f"split: {n_members} members, {len(split.nonmembers)} held-out non-members, {len(split.test)} test "
        f"examples ({'the test set' if split.test_source == 'test' else 'held back from the pool'}); seed {cfg.seed}")
    masks = (universe_masks(len(universe), cfg.references, seed=cfg.seed + 7) if cfg.references
             else np.zeros((len(universe), 0), bool))
    plan.check_memory(defenses.values(), n_members, len(universe), ds.input_shape, ds.num_classes)
    settings = training_config(cfg, transform, out)
    return AuditSetup(cfg=cfg, ds=ds, specs=tuple(specs), defenses=defenses, transform=transform, ctx=ctx, split=split,
                      universe=universe, membership=np.arange(len(universe)) < n_members,
                      x_u=transform(ds.x_train[universe]), y_u=ds.y_train[universe], x_test=transform(x_test),
                      y_test=y_test, masks=masks, training_config=settings)


def training_config(cfg: AuditConfig, transform: Transform, out: Path) -> dict:
    """The settings that shape the cached runs; refuse a folder holding runs of other settings."""
    settings = {k: v for k, v in config_dict(cfg).items() if k not in SCORING_ONLY}
    settings["reference_design"] = REFERENCE_DESIGN
    if settings.get("augmented_queries") == "none":  # runs without query views, as every folder before the setting
        settings.pop("augmented_queries")
    settings.pop("transform", None)  # as resolved: a fitted normalisation is what every folder before the setting holds
    if transform.is_fixed:
        settings["transform"] = "fixed"
    settings = json.loads(to_json(settings))
    if isinstance(settings.get("distill"), dict):  # the learning rate in effect, whether set or implied by the init
        settings["distill"]["lr"] = cfg.distill.image_lr
    path = out / "training_config.json"
    if path.is_file():
        old = {k: v for k, v in read_json(path, "the audit folder's training settings").items()
               if k not in SCORING_ONLY}
        for table in ("train", "real_recipe"):  # a recorded true/false/old name: the style it meant (dsa, none)
            rec = old.get(table)
            if isinstance(rec, dict) and "augment" in rec:
                old[table] = dict(rec, augment=augment_name(rec["augment"], str(path)))
        diff = changed_settings(old, settings)
        if diff:
            raise UserError(f"{out} holds runs trained with other settings ({', '.join(diff)} differ); "
                            "use a new --out folder or the same settings")
    return settings


def check_attacks(cfg: AuditConfig, defenses: Dict[str, Defense]) -> None:
    """Requested attacks must apply to at least one defense (an attack on a released set
    needs a defense that releases one; LiRA and RMIA need reference runs)."""
    if not cfg.attacks:
        return
    possible = set(attacks.THRESHOLD + attacks.TRAINED)
    if cfg.references:
        possible |= set(attacks.REFERENCE)
    if any(d.releases for d in defenses.values()):
        possible |= set(attacks.registry.RELEASE)
    if not possible & set(cfg.attacks):
        raise UserError(f"none of the requested attacks ({', '.join(cfg.attacks)}) applies to these defenses"
                        f"{' with 0 reference runs' if not cfg.references else ''}; "
                        f"choose from {', '.join(sorted(possible))}")


def _pool(cfg: AuditConfig, ds: Dataset) -> int:
    """Training images the split draws from (a test set is held out of them when the data has none)."""
    return len(ds.x_train) - (0 if ds.x_test is not None else (cfg.test or len(ds.x_train) // 5))


def member_count(cfg: AuditConfig, ds: Dataset) -> int:
    """The audit's number of members: the configured one, else half the pool (at most ``max_members``)."""
    pool = _pool(cfg, ds)
    return cfg.members if cfg.members is not None else min(pool // 2, cfg.max_members or pool)


def draw_split(cfg: AuditConfig, ds: Dataset, out: Path) -> Split:
    """The configured split; a ``split.json`` already in the folder must be that very split."""
    pool = _pool(cfg, ds)
    n_m = member_count(cfg, ds)
    n_n = cfg.nonmembers if cfg.nonmembers is not None else min(n_m, pool - n_m)
    split = make_split(ds, n_m, n_n, cfg.test, seed=cfg.seed)
    path = out / "split.json"
    if path.is_file():
        saved = Split.load(path)
        saved.check(ds)
        if saved.hash != split.hash:
            raise UserError(f"{path} holds another split ({len(saved.members)} members, "
                            f"{len(saved.nonmembers)} non-members, {len(saved.test)} test, seed {saved.seed}) "
                            f"than this audit asks for ({n_m}, {n_n}, {len(split.test)}, seed {cfg.seed}); "
                            "use a new --out folder or the same settings")
    return split
