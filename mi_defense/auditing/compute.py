"""One run of an audit, computed from its set-up: train a defense on the run's training set
and return what its cache file holds, ``(meta, arrays)``. Nothing here writes; any executor
can call it anywhere the set-up is (``audit.executors``), and the orchestrator writes.

* A target run trains on the members and records its attack AUC over the training steps
  (``auc_over_steps``); a reference run trains on its half of the universe
  (``setup.masks[:, m]``).
* ``compute_runs`` trains the reference runs of one defense together in one graph where the
  defense allows it (``defenses.together``); targets always train alone.
* Each run's outputs: logits on the universe (and on its augmented query views when the
  audit asks for them), the positions it trained on, its test accuracy, and what it
  released (the synthetic set, its initialisation's members, each candidate's distance to
  it in the run's model features).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Dict, List, Tuple

import numpy as np

import attacks
from mi_defense.auditing.plan import RunId, train_positions
from mi_defense.auditing.setup import AuditSetup
from mi_defense.config import DefenseSpec
from mi_defense.defenses import make_defense

Output = Tuple[dict, Dict[str, np.ndarray]]


def compute_run(setup: AuditSetup, spec: DefenseSpec, run: RunId) -> Output:
    """Train one run and return what its cache file holds ``(meta, arrays)``."""
    from mi_defense.training.evaluate import predict

    pos = train_positions(setup, run)
    history = []
    ctx = setup.ctx
    if run.is_target:
        def on_step(step, model):
            logits = predict(model, setup.x_u)
            history.append((step, attacks.metrics.auc(-attacks.signals.cross_entropy(logits, setup.y_u),
                                                      setup.membership)))
        ctx = dataclasses.replace(ctx, on_step=on_step)
    t0 = time.time()
    result = make_defense(spec, ctx).fit(setup.x_u[pos], setup.y_u[pos], run.seed(setup.cfg.seed))
    return outputs(setup, spec, run, pos, result, history, time.time() - t0)


def compute_runs(setup: AuditSetup, spec: DefenseSpec, runs: List[RunId]) -> List[Output]:
    """``[compute_run(setup, spec, r) for r in runs]``, the reference runs' models trained
    together in one graph where the defense allows it (``defenses.together``); targets, which
    record their attack AUC during training, always train alone."""
    from mi_defense.defenses.together import fit_together

    refs = [r for r in runs if not r.is_target]
    if len(refs) < 2:
        return [compute_run(setup, spec, r) for r in runs]
    out = {r: compute_run(setup, spec, r) for r in runs if r.is_target}
    pos = [train_positions(setup, r) for r in refs]
    results = fit_together(make_defense(spec, setup.ctx),
                           [(setup.x_u[p], setup.y_u[p], r.seed(setup.cfg.seed)) for r, p in zip(refs, pos)])
    for r, p, res in zip(refs, pos, results):
        out[r] = outputs(setup, spec, r, p, res, [], res.metadata["seconds"])
    return [out[r] for r in runs]


def outputs(setup: AuditSetup, spec: DefenseSpec, run: RunId, pos: np.ndarray, result, history: list,
            seconds: float) -> Output:
    """A fitted run's cache entry: its outputs on the universe, test accuracy and metadata."""
    from mi_defense.training.evaluate import predict

    t0 = time.time()
    x_u, cfg = setup.x_u, setup.cfg
    logits_u = predict(result.model, x_u)
    test_acc = float(np.mean(np.argmax(predict(result.model, setup.x_test), axis=1) == setup.y_test))
    arrays = {"logits": logits_u.astype(np.float32), "train_positions": pos.astype(np.int64)}
    if cfg.augmented_queries != "none":
        arrays["logits_queries"] = np.stack([predict(result.model, v) for v in
                                             attacks.queries.views(x_u, cfg.augmented_queries)]).astype(np.float32)
    rel = result.released
    if rel is not None:
        feats = predict(result.model, x_u, features=True)
        syn_feats = predict(result.model, rel["x"], features=True)
        arrays["release_feature_distance"] = attacks.release.nearest_distance(feats, syn_feats)
        arrays["released_x"] = rel["x"].astype(np.float32)
        arrays["released_y"] = rel["y"].astype(np.float32)
        arrays["released_labels"] = np.asarray(rel["labels"], np.int64)
        arrays["released_init_universe_positions"] = (pos[rel["init_positions"]].astype(np.int64)
                                                      if len(rel["init_positions"]) else np.zeros(0, np.int64))
    meta = dict(result.metadata, test_accuracy=test_acc, run=str(run), defense=str(spec), seed=run.seed(cfg.seed),
                wall_seconds=seconds + time.time() - t0, auc_over_steps=history)
    return meta, arrays
