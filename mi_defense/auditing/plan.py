"""What an audit trains: its defenses with every size resolved, typed run ids and the list of runs.

A bare ``subset`` is expanded once, here, to ``subset:n=K`` (K: the first FRePo set's
size, ``ipc x classes``), so its cache folder, results and report all name the size it
trained. Each defense has ``targets`` target runs (trained on the members) and ``references``
reference runs (trained on the halves of the universe given by ``universe_masks``). A run
id prints as its cache file's stem (``target0``, ``ref3``) and is never parsed back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from mi_defense.config import DefenseSpec


def sized_later(spec: DefenseSpec) -> bool:
    """A bare ``subset``: its size is the first FRePo set's (``resolve_subset_size``)."""
    return spec.name == "subset" and "n" not in spec.kwargs


def resolve_subset_size(specs: Sequence[DefenseSpec], size: int) -> List[DefenseSpec]:
    """``specs`` with every ``subset`` that has no ``n`` given ``n=size``."""
    return [DefenseSpec(s.name, (("n", int(size)),) + s.params) if sized_later(s) else s for s in specs]


@dataclass(frozen=True)
class RunId:
    kind: str    # "target" | "ref"
    index: int

    def __post_init__(self):
        if self.kind not in ("target", "ref") or self.index < 0:
            raise ValueError(f"bad run id {self.kind}{self.index}")

    @property
    def is_target(self) -> bool:
        return self.kind == "target"

    def seed(self, base: int) -> int:
        """Target t: ``base + 1000 t``; reference m: ``base + 1 + m`` (distinct for fewer than 999 references)."""
        return base + (1000 * self.index if self.is_target else 1 + self.index)

    def __str__(self) -> str:
        return f"{self.kind}{self.index}"


def targets(n: int) -> List[RunId]:
    return [RunId("target", t) for t in range(n)]


def references(n: int) -> List[RunId]:
    return [RunId("ref", m) for m in range(n)]


def train_positions(setup, run: RunId) -> np.ndarray:
    """The universe positions ``run`` trains on (``setup``: the audit's ``AuditSetup``): the
    members for a target, its mask's for a reference run."""
    if run.is_target:
        return np.arange(setup.n_members)
    return np.flatnonzero(setup.masks[:, run.index])


def jobs(specs: Sequence, n_targets: int, n_references: int) -> List[Tuple[object, RunId]]:
    """Every (defense, run) to train, defense by defense, targets first."""
    return [(spec, run) for spec in specs for run in targets(n_targets) + references(n_references)]


def check_memory(defenses, n_members: int, n_universe: int, input_shape, num_classes: int) -> None:
    """Refuse, before anything is trained or written, an audit one of whose distillations
    cannot fit in this machine's memory (``distill.memory``): each defense that distils
    (its ``config`` is a ``DistillConfig``) distils its model-space (float32) training set,
    the members for a target run and half the universe for a reference run, so the larger
    of the two is checked."""
    from mi_defense.config import DistillConfig
    from mi_defense.distillation.memory import check_memory as check

    for d in defenses:
        cfg = d.config(0) if callable(getattr(d, "config", None)) else None
        if isinstance(cfg, DistillConfig):  # a defense that distils (another kind of release has no such estimate)
            check(cfg, max(n_members, n_universe // 2), input_shape, num_classes, 4)


def check_kept_results(out_dir, specs) -> None:
    """Refuse, before anything is trained, an audit whose scoring would drop defenses that the
    folder's ``results.json`` reports (the report would silently lose them)."""
    import json
    from pathlib import Path

    from mi_defense.errors import UserError

    path = Path(out_dir) / "results.json"
    try:
        names = [e["name"] for e in json.loads(path.read_text())["defenses"]]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no results yet, or a damaged file that scoring rewrites
    dropped = [n for n in names if n not in {str(s) for s in specs}]
    if dropped:
        raise UserError(f"{path} reports {', '.join(dropped)}, which this audit does not list: scoring would drop "
                        f"{'it' if len(dropped) == 1 else 'them'} from the results and the report; add "
                        f"{'that --defense' if len(dropped) == 1 else 'those --defense specs'} "
                        "(cached runs are reused) or write to a new --out folder")
