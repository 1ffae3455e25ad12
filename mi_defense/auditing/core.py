"""An audit in stages (``Audit``, ``run_audit``): the one place that writes an audit's folder.

1. ``setup.prepare``: load the dataset, build the defenses, draw the split and every check,
   writing nothing; then ``Audit`` writes ``split.json`` and ``training_config.json``.
2. ``Audit.run``: the runs missing from the cache (or stale) are computed by an executor
   (``executors``: this process or Ray), each with ``compute.compute_runs``, and handed
   back one by one; ``Audit`` writes each into the run cache as it arrives.
3. ``Audit.score``: ``scoring.score`` scores the cached runs; ``Audit`` writes the
   per-example scores and artifacts, ``signals.npz`` and, last, ``results.json``.

* **Universe**: the split's members followed by its non-members.
* **Targets**: each defense trained on the members (``targets`` seeds), queried on the
  universe; its test accuracy is the utility, its train accuracy and the gap are recorded
  with the training recipe.
* **Reference runs** (for LiRA and RMIA) repeat the whole defense pipeline (for FRePo:
  distil, then train on the synthetic set) on halves of the universe drawn in
  complementary pairs (``data.split.universe_masks``); each example is in exactly half of
  the runs.
* Every run's outputs on the universe are cached in ``OUT/cache/<defense>/<run>.npz``
  (written atomically), so attacks are re-scored without retraining and a killed audit
  resumes where it stopped. ``shard=(i, n)`` runs only every n-th run starting at i, so
  machines sharing ``OUT`` can split the work; a later call without a shard trains what
  is missing, merges and scores.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import numpy as np

from mi_defense.auditing import canary_record, plan, scoring, signals
from mi_defense.auditing.cache import RunCache
from mi_defense.auditing.compute import compute_runs
from mi_defense.auditing.plan import RunId
from mi_defense.auditing.record import AuditRecord
from mi_defense.auditing.setup import AuditSetup, prepare
from mi_defense.config import DefenseSpec
from mi_defense.config.audit import AuditConfig
from mi_defense.io import clean_stale_temp, to_json, write_json, write_npz, write_text

if TYPE_CHECKING:
    from mi_defense.auditing.executors import Executor


def _from_setup(name: str) -> property:
    return property(lambda self: getattr(self.setup, name), doc=f"``AuditSetup.{name}`` of this audit's set-up.")


class Audit:
    """One audit in ``out_dir``; ``run()`` trains what is missing, ``score()`` writes results.json.

    The set-up's parts read as the audit's own attributes (``audit.specs``, ``audit.split``, ...)."""

    cfg, ds, specs, defenses = _from_setup("cfg"), _from_setup("ds"), _from_setup("specs"), _from_setup("defenses")
    transform, ctx, split, universe = (_from_setup("transform"), _from_setup("ctx"), _from_setup("split"),
                                       _from_setup("universe"))
    n_members, membership, masks = _from_setup("n_members"), _from_setup("membership"), _from_setup("masks")
    x_u, y_u, x_test, y_test = _from_setup("x_u"), _from_setup("y_u"), _from_setup("x_test"), _from_setup("y_test")

    def __init__(self, cfg: AuditConfig, out_dir, progress: bool = True, log=print,
                 executor: Optional["Executor"] = None):
        self.out = Path(out_dir)
        self.cache = RunCache(self.out)
        self.progress = progress
        self.log = log
        self.setup: AuditSetup = prepare(cfg, self.out, progress=progress, log=log)
        if executor is not None:
            executor.check()  # e.g. Ray importable and its cluster reachable
        self.out.mkdir(parents=True, exist_ok=True)
        if not (self.out / "split.json").is_file():
            self.setup.split.save(self.out / "split.json")
        if not (self.out / "training_config.json").is_file():
            write_json(self.out / "training_config.json", self.setup.training_config)

    def jobs(self) -> List[Tuple[DefenseSpec, RunId]]:
        return plan.jobs(self.specs, self.cfg.targets, self.cfg.references)

    def _stale(self, spec: DefenseSpec, run: RunId, cached: Optional[dict] = None) -> Optional[str]:
        """Why the cached run (``{"meta": ..., **arrays}``, read from the cache unless given)
        cannot be reused, or None."""
        return self.cache.stale(spec, run, self.defenses[spec.key].resolved(), plan.train_positions(self.setup, run),
                                cached)

    def _load(self, spec, run) -> dict:
        return scoring.load(self.setup, self.cache, spec, run)

    # ------------------------------------------------------------------ training
    def _write_run(self, spec: DefenseSpec, run: RunId, meta: dict, arrays: Dict[str, np.ndarray]) -> None:
        """The one writer of the run cache: every executor hands its finished runs here."""
        self.cache.write(spec, run, meta, **arrays)

    def train_run(self, spec: DefenseSpec, run: RunId) -> None:
        (meta, arrays), = compute_runs(self.setup, spec, [run])
        self._write_run(spec, run, meta, arrays)

    def todo(self, shard: Optional[Tuple[int, int]] = None) -> Tuple[List[Tuple[DefenseSpec, RunId]], int]:
        """The runs missing from the cache or stale (this shard's share when given), and how many jobs there are."""
        removed = clean_stale_temp(self.out)
        if removed:
            self.log(f"removed {removed} temporary file(s) left by a killed writer")
        jobs = self.jobs()
        if shard is not None:
            i, n = shard
            jobs = jobs[i::n]
        todo = []
        for s, r in jobs:
            if self.cache.has(s, r):
                why = self._stale(s, r)
                if why is None:
                    continue
                self.log(f"{why}; training it again")
            todo.append((s, r))
        if len(jobs) - len(todo):
            self.log(f"{len(jobs) - len(todo)} of {len(jobs)} runs found in the cache; {len(todo)} to train")
        return todo, len(jobs)

    def run(self, shard: Optional[Tuple[int, int]] = None, stop_after_runs: Optional[int] = None,
            executor: Optional["Executor"] = None) -> Dict[str, int]:
        """Train the runs that are missing from the cache (only this shard's share when given)
        with ``executor`` (in this process by default)."""
        from mi_defense.auditing.executors import LocalExecutor

        todo, total = self.todo(shard)
        trained = (executor or LocalExecutor()).run(self.setup, todo, self._write_run, stop_after_runs,
                                                    progress=self.progress, log=self.log)
        return {"trained": trained, "cached": total - len(todo), "total": total}

    # ------------------------------------------------------------------ scoring
    def score(self, counts: Optional[Dict[str, int]] = None) -> dict:
        """Score every cached run and write the per-example scores, the artifacts,
        ``signals.npz`` and, last, ``results.json``; ``counts``: what ``run`` trained."""
        scored = scoring.score(self.setup, self.cache, counts, canary_record.load_canaries(self.out))
        # the record the report reads, as it will be written (non-finite numbers as null), checked before any write
        text = to_json(scored.results)
        AuditRecord.from_json(json.loads(text))
        for path, arrays in scored.files.items():
            write_npz(self.out / path, **arrays)
        signals.save(signals.path_in(self.out), **scored.signals)
        write_text(self.out / "results.json", text)
        return scored.results


def run_audit(cfg: AuditConfig, out_dir, shard: Optional[Tuple[int, int]] = None, progress: bool = True, log=print,
              executor: Optional["Executor"] = None) -> Optional[dict]:
    """Train what is missing (this shard's share only, when given) with ``executor`` (in this
    process by default; ``audit.executors``), then score unless sharded."""
    a = Audit(cfg, out_dir, progress=progress, log=log, executor=executor)
    counts = a.run(shard=shard, executor=executor)
    if shard is not None:
        log(f"shard {shard[0]}/{shard[1]}: trained {counts['trained']} run(s), {counts['cached']} already cached; "
            f"run the audit again without --shard to merge and score")
        return None
    return a.score(counts)
