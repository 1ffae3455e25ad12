"""Scoring of an audit's cached runs: every attack, the declared evidence, ``results.json``'s
content and the signals export, computed from the set-up (``audit.setup``) and the run
cache; nothing here writes (``audit.core`` writes what ``score`` returns).

* Every attack against each target; LiRA/RMIA on the scaled logit from the logits (of the
  stored query views with ``augmented_queries``); release attacks calibrated over the
  reference runs' released sets only (``attacks.release_lira``); leave-one-out over the
  reference runs (from 4 of them).
* The declared evidence (``audit.evidence``): the primary attack (also its leave-one-out
  mean), the release attack for defenses that release data, the epsilon lower bound, the
  strongest attack and release attack chosen on held-out examples.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

import attacks
from attacks.metrics import class_slices, summarise_over_targets
from mi_defense.accounting import dp_delta
from mi_defense.auditing import artifacts, canary_record, plan, signals
from mi_defense.auditing.cache import RunCache
from mi_defense.auditing.evidence import declared_evidence, leave_one_out_audit, strongest_release
from mi_defense.auditing.inputs import query_logits, release_inputs
from mi_defense.auditing.results import SCHEMA
from mi_defense.auditing.setup import AuditSetup, config_dict
from mi_defense.io import package_versions
from mi_defense.tfenv import machine

UNDERTRAINED_BELOW = 0.95  # an undefended target under this train accuracy underestimates leakage


@dataclass(frozen=True)
class Scored:
    """What scoring produced, for the orchestrator to write."""

    results: dict                       # results.json
    signals: dict                       # the keyword arguments of ``signals.save`` (signals.npz)
    files: artifacts.Files              # per-example scores and artifacts, by path relative to the audit folder


def load(setup: AuditSetup, cache: RunCache, spec, run) -> dict:
    """A cached run that must be there and fit the defense as now resolved and the audit's
    plan (``RunCache.load``)."""
    return cache.load(spec, run, setup.defenses[spec.key].resolved(), plan.train_positions(setup, run))


def score(setup: AuditSetup, cache: RunCache, counts: Optional[Dict[str, int]] = None,
          canaries: Sequence[dict] = ()) -> Scored:
    """Score every cached run; ``counts``: what ``Audit.run`` trained, ``canaries``: the canary
    audits recorded beside the audit (``canary_record``)."""
    cfg, ds, split = setup.cfg, setup.ds, setup.split
    t0 = time.time()
    entries, exported, files = [], {}, {}
    for spec in setup.specs:
        targets = [load(setup, cache, spec, r) for r in plan.targets(cfg.targets)]
        refs = [load(setup, cache, spec, r) for r in plan.references(cfg.references)]
        scored = [score_target(setup, tgt, refs) for tgt in targets]
        per_target, release = [res for res, _ in scored], scored[0][1]
        stats = attacks.release_lira.statistics(release) if release is not None and refs else None
        exported[spec.key] = signals.defense_arrays(targets, refs, setup.y_u, stats)
        main, meta = per_target[0], targets[0]["meta"]
        scores, written = artifacts.scores(setup, spec, main)
        files.update(written)
        evidence = declared_evidence(main, scores, setup.membership, cfg.primary,
                                     cfg.release_attack if setup.defenses[spec.key].releases else None,
                                     cfg.confidence, dp_delta(setup.n_members), cfg.seed, cfg.fprs, cfg.bootstrap)
        evidence["strongest_release_attack"] = strongest_release(scores, setup.membership, cfg.fprs, cfg.bootstrap,
                                                                 cfg.seed)
        released, written = artifacts.release(setup, spec, targets[0])
        files.update(written)
        train_acc = meta.get("train_accuracy")
        entry = {
            "name": str(spec), "key": spec.key, "defense": spec.name, "params": spec.spelled_params,
            "test_accuracy": meta["test_accuracy"], "train_accuracy": train_acc,
            "generalization_gap": None if train_acc is None else train_acc - meta["test_accuracy"],
            "recipe": meta.get("recipe"),
            "undertrained": bool(spec.name == "none" and train_acc is not None and train_acc < UNDERTRAINED_BELOW),
            "claimed_epsilon": meta.get("epsilon"),
            # mi-defense canary --into OUT, the audits of this defense at its settings
            "canary_audits": canary_record.for_defense(list(canaries), spec, meta.get("noise_multiplier")),
            **evidence,
            "attacks": main,
            "released_artifact": released,
            "privacy_statement": meta["privacy_statement"],
            "metadata": {k: v for k, v in meta.items()
                         if k not in ("privacy_statement", "auc_over_steps", "train_positions")},
            "auc_over_steps": meta.get("auc_over_steps", []),
        }
        for pt in per_target[1:]:
            for r in pt.values():
                r.pop("scores", None)
        if cfg.targets > 1:
            entry["over_targets"] = {name: summarise_over_targets([pt[name] for pt in per_target]) for name in main}
            entry["test_accuracy_over_targets"] = [t["meta"]["test_accuracy"] for t in targets]
        if len(refs) >= 4:
            entry["leave_one_out"], entry["leave_one_out_primary"] = leave_one_out(setup, refs)
        entry["wall_seconds_all_runs"] = float(sum(r["meta"].get("wall_seconds") or 0.0 for r in targets + refs))
        entries.append(entry)
    results = {
        "schema": SCHEMA,
        "dataset": ds.name,
        "class_names": ds.class_names,
        "input_shape": list(ds.input_shape),
        "config": config_dict(cfg),
        "split": {"hash": split.hash, "seed": split.seed, "n_members": setup.n_members,
                  "n_nonmembers": int(len(split.nonmembers)), "n_test": int(len(split.test)),
                  "test_source": split.test_source, "dataset_fingerprint": split.dataset_fingerprint},
        "data_files": ds.files,
        "versions": package_versions(),
        "machine": machine(),  # the machine that scored; training may have run elsewhere (--shard)
        "timings": {"scoring_seconds": time.time() - t0,
                    "training_seconds": {e["name"]: e["metadata"].get("wall_seconds") for e in entries},
                    "training_seconds_all_runs": {e["name"]: e["wall_seconds_all_runs"] for e in entries},
                    **({"runs": counts} if counts is not None else {})},
        "defenses": entries,
    }
    export = dict(labels=setup.y_u, membership=setup.membership, reference_in=setup.masks[:, :cfg.references],
                  per_defense=exported,
                  scoring={"seed": cfg.seed, "fprs": list(cfg.fprs), "augmented_queries": cfg.augmented_queries})
    return Scored(results, export, files)


def score_target(setup: AuditSetup, tgt: dict, refs: List[dict]) -> Tuple[dict, Optional["attacks.ReleaseInputs"]]:
    """Every attack on one target (``attacks.run``'s results) and the release inputs it used."""
    cfg, y_u, membership = setup.cfg, setup.y_u, setup.membership
    logits = tgt["logits"].astype(np.float64)
    slices = class_slices(y_u, setup.ds.num_classes)
    init = tgt.get("released_init_universe_positions")
    if init is not None and len(init):
        slices["init_members"] = init
    inputs = attacks.AttackInputs(labels=y_u, membership=membership, logits=logits, slices=slices)
    q = cfg.augmented_queries
    reference = attacks.ReferenceInputs.from_logits(query_logits(tgt, q), [query_logits(r, q) for r in refs], y_u,
                                                    setup.masks[:, :len(refs)], membership, slices) if refs else None
    release = release_inputs(setup.transform, setup.x_u, y_u, setup.ds.num_classes, membership, setup.masks, tgt,
                             refs, slices) if "released_x" in tgt else None
    applicable = attacks.available(inputs, reference, release)
    # e.g. no release attack without a release; an empty list runs nothing (never "all")
    names = [n for n in (cfg.attacks or applicable) if n in applicable]
    res = attacks.run(inputs, attacks=names, fprs=cfg.fprs, reference=reference,
                      release_inputs=release, bootstrap=cfg.bootstrap, seed=cfg.seed, n_jobs=cfg.n_jobs,
                      return_scores=True)
    if "release_feature_distance" in tgt and (not cfg.attacks or "release_feature" in cfg.attacks):
        score = -tgt["release_feature_distance"]
        res["release_feature"] = attacks.metrics.evaluate(score, membership, cfg.fprs, bootstrap=cfg.bootstrap,
                                                          seed=cfg.seed, slices=slices, name="release_feature")
        res["release_feature"]["scores"] = score.tolist()
    return res, release


def leave_one_out(setup: AuditSetup, refs: List[dict]) -> Tuple[dict, Optional[dict]]:
    c = setup.cfg
    return leave_one_out_audit([query_logits(r, c.augmented_queries) for r in refs], [r["logits"] for r in refs],
                               setup.y_u, setup.masks[:, :len(refs)], c.attacks, c.primary, c.fprs, c.seed, c.n_jobs)
