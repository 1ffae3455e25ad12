"""Who trains an audit's runs: this process, or a Ray cluster.

Every run (one defense on one training set, ``audit.plan``) is an independent task whose
whole output is ``(meta, arrays)`` from ``audit.compute``, computed from the audit's set-up
(``audit.setup.AuditSetup``). An executor hands each finished run to ``on_done(spec, run,
meta, arrays)``, the orchestrator's one writer (``audit.core``, into the run cache); the run
cache is the only meeting point. Executors differ only in where the runs are computed:

* ``local`` (default): one run after the other in this process.
* ``ray``: each run is a Ray task ("Ray: A Distributed Framework for Emerging AI
  Applications", Moritz et al., OSDI 2018). The driver connects with ``ray.init(address)``
  (``--ray-address``, else ``$RAY_ADDRESS``, else a local Ray runtime on this machine),
  puts the set-up into the object store once (``ray.put``: workers neither load the
  dataset nor draw the split again), submits every missing run, and hands each returned
  result to ``on_done`` as it arrives. Workers therefore need the package, not the dataset
  nor the output folder: no shared filesystem is required. Tasks take one CPU, and a GPU
  share (``gpus_per_task``, by default 1 when the cluster has GPUs); a task whose worker
  dies is retried (``max_retries``); an error raised by the training itself is reported,
  not retried.
* ``--shard i/n`` (``Audit.run(shard=...)``) stays the way for batch schedulers: each job
  trains its share into a shared output folder, and one last call without ``--shard``
  merges and scores (a Slurm job array: ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``).
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import pickle
import time
from typing import Callable, List, Optional, Sequence, Tuple

from mi_defense.auditing import workplan
from mi_defense.config import Whole
from mi_defense.errors import UserError

OnDone = Callable[..., None]  # on_done(spec, run, meta, arrays): the orchestrator writes the run

FAULT_ENV = "MI_DEFENSE_FAULT_ONCE"  # testing the retry path: a worker exits once (marker file)


def groups(todo: Sequence[Tuple[object, object]], together: int) -> List[Tuple[object, list]]:
    """``todo`` as ``(spec, runs)`` groups in order: up to ``together`` consecutive reference
    runs of one defense per group (trained in one graph), every target run alone."""
    out: List[Tuple[object, list]] = []
    for spec, run in todo:
        last = out[-1] if out else None
        if (together > 1 and last is not None and last[0] == spec and not run.is_target and not last[1][0].is_target
                and len(last[1]) < together):
            last[1].append(run)
        else:
            out.append((spec, [run]))
    return out


class Executor:
    """Computes every ``(spec, run)`` in ``todo`` from the audit's set-up (``compute.compute_runs``)
    and hands each result to ``on_done(spec, run, meta, arrays)``; returns how many runs it
    trained. ``together``: up to this many reference runs of one defense train their models in
    one graph (``defenses.together``). ``progress``: show a progress bar; ``log``: one line
    at a time."""

    name = ""

    def __init__(self, together: int = 1):
        Whole(1).check(together, "--together")
        self.together = together

    def check(self) -> None:
        """Fail, before the audit writes anything, when this executor cannot run (a one-line ``UserError``)."""

    def run(self, setup, todo: Sequence[Tuple[object, object]], on_done: OnDone, stop_after_runs: Optional[int] = None,
            progress: bool = True, log: Callable[[str], None] = print) -> int:
        raise NotImplementedError


class LocalExecutor(Executor):
    name = "local"

    def run(self, setup, todo, on_done, stop_after_runs=None, progress=True, log=print) -> int:
        from mi_defense.auditing.compute import compute_runs  # here: choosing an executor does not import TensorFlow
        from mi_defense.progress import progress as progress_bar

        todo = list(todo)[:stop_after_runs] if stop_after_runs is not None else list(todo)
        phases = workplan.planned(setup, todo)
        if todo:
            log(workplan.describe(todo, phases))
        trained = 0
        clock, timed = workplan.WorkClock(), set()
        bar = progress_bar(total=len(todo), desc="audit runs", unit="run", disable=not progress or not todo,
                           dynamic_ncols=True)
        for spec, runs in groups(todo, self.together):
            t0 = time.time()
            for run, (meta, arrays) in zip(runs, compute_runs(setup, spec, runs)):
                on_done(spec, run, meta, arrays)
                clock.observe(spec.key, phases[trained], meta)
                trained += 1
            bar.update(len(runs))
            if spec.key not in timed and trained < len(todo):  # after the first run(s) of each defense
                timed.add(spec.key)
                log(f"{spec} {runs[0]} took {(time.time() - t0) / len(runs):.0f} s"
                    f"{' per run' if len(runs) > 1 else ''}; {clock.text(todo[trained:], phases[trained:])}")
        bar.close()
        return trained


# --------------------------------------------------------------------------- Ray
def _compute_on_worker(setup, spec, runs):
    """A Ray task's body: train a group of runs of ``spec`` from the set-up the driver put
    into the object store (no progress bars on a worker)."""
    marker = os.environ.get(FAULT_ENV)
    if marker and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker dies mid-task, as a preempted node would
    from mi_defense.auditing.compute import compute_runs

    quiet = dataclasses.replace(setup, ctx=dataclasses.replace(setup.ctx, progress=False))
    return compute_runs(quiet, spec, runs)


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: Optional[str] = None, gpus_per_task: Optional[float] = None, max_retries: int = 3,
                 runtime_env: Optional[dict] = None, together: int = 1):
        super().__init__(together)
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        check_ray_address(self.address)
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
                ray.init(address=self.address, runtime_env=self.runtime_env, log_to_driver=False,
                         include_dashboard=False)
            except (ConnectionError, TimeoutError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UserError(f"cannot reach the Ray cluster at {self.address or 'a local Ray runtime'} ({first}); "
                                "check --ray-address or RAY_ADDRESS") from None
        return ray

    def check(self) -> None:
        """Ray importable, and the cluster (or a local runtime) joined."""
        self._ray()

    def run(self, setup, todo, on_done, stop_after_runs=None, progress=True, log=print) -> int:
        if not todo:
            return 0
        from mi_defense.progress import progress as progress_bar

        ray = self._ray()
        gpus = self.gpus_per_task
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=self.max_retries,
                          retry_exceptions=False)(_compute_on_worker)
        todo = list(todo)[:stop_after_runs] if stop_after_runs is not None else list(todo)
        if todo:
            log(workplan.describe(todo, workplan.planned(setup, todo)))
        try:
            shared = ray.put(setup)  # once: every task reads it from the object store
        except (TypeError, pickle.PicklingError) as exc:  # e.g. a user's model builder that does not pickle
            why = str(exc.__cause__ or exc).strip().splitlines()[0][:200]
            raise UserError(f"the audit's set-up cannot be sent to the Ray workers (it does not pickle: {why}); "
                            "use --executor local") from None
        pending = {task.remote(shared, spec, list(runs)): (spec, runs) for spec, runs in groups(todo, self.together)}
        log(f"ray: {len(todo)} run(s) in {len(pending)} task(s) submitted to {self.address or 'a local Ray runtime'} "
            f"({ray.cluster_resources().get('CPU', 0):.0f} CPUs, {gpus:g} GPU per task)")
        bar = progress_bar(total=len(pending), desc="audit runs (ray)", unit="run", disable=not progress,
                           dynamic_ncols=True)
        trained = 0
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                spec, runs = pending.pop(done[0])
                try:
                    computed = ray.get(done[0])
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.as_instanceof_cause() if hasattr(exc, "as_instanceof_cause") else exc
                    if isinstance(cause, UserError):
                        raise UserError(str(cause).splitlines()[0]) from None
                    raise
                except ray.exceptions.WorkerCrashedError:
                    raise UserError(f"{spec} {', '.join(map(str, runs))}: the Ray worker died "
                                    f"{self.max_retries + 1} times; see the Ray logs") from None
                for run, (meta, arrays) in zip(runs, computed):
                    on_done(spec, run, meta, arrays)  # the driver writes: no shared filesystem needed
                trained += len(runs)
                bar.update(len(runs))
        finally:
            bar.close()
            for ref in pending:
                ray.cancel(ref)
        return trained


def check_ray_address(address: Optional[str]) -> None:
    """Refuse an address Ray cannot parse: it takes ``auto``, ``local``, ``HOST:PORT`` or
    ``ray://HOST[:PORT]`` (``HOST`` a name, an IPv4 address or ``[IPv6]``)."""
    if address is None or address in ("auto", "local"):
        return
    import re

    host = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    m = re.fullmatch(rf"ray://{host}(?::(\d{{1,5}}))?|{host}:(\d{{1,5}})", address)
    port = None if m is None else (m.group(1) or m.group(2))
    if m is None or (port is not None and not 0 < int(port) < 65536):
        raise UserError(f"Ray address {address!r} (--ray-address or RAY_ADDRESS) is not one; "
                        "give HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:10001, auto or local")


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(name: str, **options) -> Executor:
    """An executor by name (``local`` or ``ray``); ``options`` go to its constructor
    (``together`` for both; ``address``, ``gpus_per_task``, ... for Ray)."""
    if not isinstance(name, str) or name not in EXECUTORS:
        raise UserError(f"executor (--executor) {name!r} unknown; use {' or '.join(EXECUTORS)}")
    accepted = [p for p in inspect.signature(EXECUTORS[name].__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise UserError(f"executor option(s) {', '.join(unknown)} unknown for the {name} executor; "
                        f"it takes {', '.join(accepted)}")
    return EXECUTORS[name](**options)
