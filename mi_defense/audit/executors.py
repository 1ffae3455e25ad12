"""Who trains an audit's runs: this process, or a Ray cluster.

Every run (one defense on one training set, ``audit.plan``) is an independent task whose
whole output is ``(meta, arrays)`` from ``Audit.compute_run``; the run cache is the only
meeting point. Executors differ only in where ``compute_run`` executes:

* ``local`` (default): one run after the other in this process.
* ``ray``: each run is a Ray task ("Ray: A Distributed Framework for Emerging AI
  Applications", Moritz et al., OSDI 2018). The driver connects with ``ray.init(address)``
  (``--ray-address``, else ``$RAY_ADDRESS``, else a local Ray runtime on this machine),
  submits every missing run, and writes each returned result into the cache itself, as it
  arrives (atomically). Workers therefore need the package and the dataset (the same
  ``--data-dir`` path or ``$MI_DEFENSE_DATA``), not the output folder: no shared
  filesystem is required. Tasks take one CPU, and a GPU share (``gpus_per_task``, by
  default 1 when the cluster has GPUs); a task whose worker dies is retried
  (``max_retries``); an error raised by the training itself is reported, not retried.
* ``--shard i/n`` (``Audit.run(shard=...)``) stays the way for batch schedulers: each job
  trains its share into a shared output folder, and one last call without ``--shard``
  merges and scores (a Slurm job array: ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``).
"""
from __future__ import annotations

import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mi_defense.errors import UserError

FAULT_ENV = "MI_DEFENSE_FAULT_ONCE"  # testing the retry path: a worker exits once (marker file)


def remaining_minutes(todo, seconds: Dict[str, List[float]]) -> float:
    """Minutes the runs in ``todo`` should take: each defense's mean run time so far, the
    mean over all defenses for a defense not yet timed."""
    every = [t for ts in seconds.values() for t in ts]
    default = sum(every) / len(every)
    return sum(np.mean(seconds[s.key]) if s.key in seconds else default for s, _ in todo) / 60


class Executor:
    """Runs ``audit.compute_run`` for every ``(spec, run)`` in ``todo`` and writes each result
    into ``audit.cache``; returns how many runs it trained."""

    name = ""

    def run(self, audit, todo: Sequence[Tuple[object, object]], stop_after_runs: Optional[int] = None) -> int:
        raise NotImplementedError


class LocalExecutor(Executor):
    name = "local"

    def run(self, audit, todo, stop_after_runs=None) -> int:
        from mi_defense.progress import progress

        trained = 0
        seconds: Dict[str, List[float]] = {}
        for k, (spec, run) in enumerate(progress(todo, desc="audit runs", unit="run", disable=not audit.progress or not todo,
                                                 dynamic_ncols=True)):
            if stop_after_runs is not None and trained >= stop_after_runs:
                break
            t0 = time.time()
            audit.train_run(spec, run)
            trained += 1
            first = spec.key not in seconds
            seconds.setdefault(spec.key, []).append(time.time() - t0)
            if first and k + 1 < len(todo):
                audit.log(f"{spec} {run} took {seconds[spec.key][0]:.0f} s; about {remaining_minutes(todo[k + 1:], seconds):.0f} min "
                          f"left for {len(todo) - k - 1} run(s) (estimated from the first run of each defense)")
        return trained


# --------------------------------------------------------------------------- Ray
_WORKER_AUDITS: Dict[str, object] = {}  # per worker process: the audit set-up, built once


def _compute_on_worker(cfg, out_dir: str, spec_text: str, kind: str, index: int):
    """A Ray task's body: rebuild the audit's set-up (once per worker process) and train one run."""
    marker = os.environ.get(FAULT_ENV)
    if marker and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker dies mid-task, as a preempted node would
    from mi_defense.audit.core import Audit
    from mi_defense.audit.plan import RunId
    from mi_defense.defenses import DefenseSpec

    key = repr((cfg, out_dir))
    if key not in _WORKER_AUDITS:
        _WORKER_AUDITS.clear()
        _WORKER_AUDITS[key] = Audit(cfg, out_dir, progress=False, log=lambda s: None, writes=False)
    return _WORKER_AUDITS[key].compute_run(DefenseSpec.parse(spec_text), RunId(kind, index))


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: Optional[str] = None, gpus_per_task: Optional[float] = None, max_retries: int = 3,
                 runtime_env: Optional[dict] = None):
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.gpus_per_task = gpus_per_task
        self.max_retries = max_retries
        self.runtime_env = runtime_env

    def _ray(self):
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine unless asked for
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'mi-defense[ray]'") from None
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, runtime_env=self.runtime_env, log_to_driver=False, include_dashboard=False)
            except ConnectionError as exc:
                raise UserError(f"cannot reach the Ray cluster at {self.address}: {exc}; check --ray-address or RAY_ADDRESS") from None
        return ray

    def run(self, audit, todo, stop_after_runs=None) -> int:
        if not todo:
            return 0
        from mi_defense.progress import progress

        ray = self._ray()
        gpus = self.gpus_per_task
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=self.max_retries, retry_exceptions=False)(_compute_on_worker)
        todo = list(todo)[:stop_after_runs] if stop_after_runs is not None else list(todo)
        cfg = audit.cfg
        pending = {task.remote(cfg, str(audit.out), str(spec), run.kind, run.index): (spec, run) for spec, run in todo}
        audit.log(f"ray: {len(pending)} run(s) submitted to {self.address or 'a local Ray runtime'} "
                  f"({ray.cluster_resources().get('CPU', 0):.0f} CPUs, {gpus:g} GPU per task)")
        bar = progress(total=len(pending), desc="audit runs (ray)", unit="run", disable=not audit.progress, dynamic_ncols=True)
        trained = 0
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                spec, run = pending.pop(done[0])
                try:
                    meta, arrays = ray.get(done[0])
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.as_instanceof_cause() if hasattr(exc, "as_instanceof_cause") else exc
                    if isinstance(cause, UserError):
                        raise UserError(str(cause).splitlines()[0]) from None
                    raise
                except ray.exceptions.WorkerCrashedError:
                    raise UserError(f"{spec} {run}: the Ray worker died {self.max_retries + 1} times; see the Ray logs") from None
                audit.cache.write(spec, run, meta, **arrays)  # the driver writes: no shared filesystem needed
                trained += 1
                bar.update(1)
        finally:
            bar.close()
            for ref in pending:
                ray.cancel(ref)
        return trained


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(name: str, **options) -> Executor:
    """An executor by name (``local`` or ``ray``); ``options`` go to its constructor."""
    if name not in EXECUTORS:
        raise UserError(f"--executor '{name}' unknown; use {' or '.join(EXECUTORS)}")
    if name == "local":
        return LocalExecutor()
    return EXECUTORS[name](**options)
