"""An audit's planned work, and the time it will take from the per-step cost of each kind of work.

Each defense says what one run of it computes (``Defense.planned(n_train)``): a list of
phases (``progress.Phase``), each a number of steps of one kind. A FRePo run is a distillation plus a training
on the synthetic set, the undefended model and the random subset a training, DP-SGD its
own private steps. Steps of one kind cost about the same whatever the defense (a training
step at batch 128 is one, whether the batch holds members or synthetic images), so the
seconds per step of a kind, measured on the first finished run that has it, price that
kind in every run still to do. A run's metadata records its seconds (``seconds``) and,
when it has several phases, those of each but the last (``<phase>_seconds``, e.g.
``distill_seconds``); the last phase is charged what the others leave, including what the
defense computes after training (the members' accuracy), so its rate is slightly high.
What a run spends outside the defense (queries on the universe, the test accuracy) is its
overhead, averaged over the finished runs.

The time left is the planned steps of every run still to do times the rates, plus the
overhead: from the planned work of each run kind, not from the mean of the runs finished
so far (which comes in low while the expensive kinds have not run yet). A kind not yet
timed is named, and the estimate then says "at least".
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mi_defense.auditing.plan import train_positions
from mi_defense.progress import Phase, duration_text


def planned(setup, todo) -> List[Tuple[Phase, ...]]:
    """The phases of every run in ``todo``, each on the examples it trains on (``plan.train_positions``);
    empty for a defense that does not say its work."""
    return [tuple(setup.defenses[spec.key].planned(len(train_positions(setup, run)))) for spec, run in todo]


def describe(todo, phases: Sequence[Tuple[Phase, ...]]) -> str:
    """One line: each defense's number of runs and the work of one run."""
    seen: Dict[str, Tuple[int, Tuple[Phase, ...]]] = {}
    for (spec, _), ph in zip(todo, phases):
        count, first = seen.get(str(spec), (0, ph))
        seen[str(spec)] = (count + 1, first)
    parts = []
    for name, (count, ph) in seen.items():
        work = " + ".join(f"{p.steps} {p.kind}" for p in ph) or "work not stated"
        parts.append(f"{name}: {count} run(s) of {work}")
    return "planned work: " + "; ".join(parts)


class WorkClock:
    """Seconds per step of each kind of work, learned from finished runs, and the time left."""

    def __init__(self):
        self.rates: Dict[str, List[float]] = {}
        self.overheads: List[float] = []
        self.by_defense: Dict[str, List[float]] = {}  # whole-run seconds, for defenses that state no work

    def observe(self, key: str, phases: Sequence[Phase], meta: dict) -> None:
        """Learn from one finished run of defense ``key`` with planned ``phases`` and metadata ``meta``."""
        total = meta.get("seconds")
        wall = meta.get("wall_seconds", total)
        if wall is not None:
            self.by_defense.setdefault(key, []).append(float(wall))
        if total is None:
            return
        if meta.get("wall_seconds") is not None:
            self.overheads.append(max(0.0, float(meta["wall_seconds"]) - float(total)))
        recorded = {p.name: meta.get(f"{p.name}_seconds") for p in phases}
        unrecorded = [p for p in phases if recorded[p.name] is None]
        if len(unrecorded) == 1:  # the last phase: what the run's seconds leave after the recorded ones
            recorded[unrecorded[0].name] = float(total) - sum(float(v) for v in recorded.values() if v is not None)
        for p in phases:
            if recorded[p.name] is not None and p.steps > 0:
                self.rates.setdefault(p.kind, []).append(max(0.0, float(recorded[p.name])) / p.steps)

    def seconds_left(self, todo, phases: Sequence[Tuple[Phase, ...]]) -> Tuple[float, List[str]]:
        """Seconds the runs in ``todo`` should take, and the kinds of work (or defenses) not yet timed."""
        rate = {k: float(np.mean(v)) for k, v in self.rates.items()}
        overhead = float(np.mean(self.overheads)) if self.overheads else 0.0
        total, untimed = 0.0, []
        for (spec, _), ph in zip(todo, phases):
            if not ph:
                runs = self.by_defense.get(spec.key)
                if runs:
                    total += float(np.mean(runs))
                elif str(spec) not in untimed:
                    untimed.append(str(spec))
                continue
            total += overhead
            for p in ph:
                if p.kind in rate:
                    total += p.steps * rate[p.kind]
                elif p.kind not in untimed:
                    untimed.append(p.kind)
        return total, untimed

    def text(self, todo, phases: Sequence[Tuple[Phase, ...]]) -> Optional[str]:
        """``about N min left for R run(s)``, or ``at least`` naming what is not timed yet; None with nothing to do."""
        if not todo:
            return None
        seconds, untimed = self.seconds_left(todo, phases)
        if not untimed:
            return f"about {duration_text(seconds)} left for {len(todo)} run(s), from their planned work"
        return (f"at least {duration_text(seconds)} left for {len(todo)} run(s), from their planned work "
                f"(not timed yet: {', '.join(untimed)})")
