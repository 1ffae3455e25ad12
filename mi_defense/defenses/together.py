"""Fit one defense on several training sets, training the models together in one graph.

An audit's reference runs repeat one defense on many halves of the universe. Each run's
``Defense.prepare`` (for FRePo: the distillation) happens on its own; the models are then
trained together by ``training.stacked.train_models``, which equals training them one by one
with the same seeds, to float tolerance. Runs that cannot be stacked (DP-SGD trains its
own way; a normalised ConvNet; an MLP on tabular data; a model of the user's) are fitted
one by one, so the result never depends on whether they were grouped.

Training together pays where one small model leaves the device mostly idle (a GPU). On
a CPU one width-32 ConvNet already keeps the cores busy, and ``mi-defense bench train``
measures the stacked graph slower there; the audit's default is one run at a time.
"""
from __future__ import annotations

import dataclasses
import time
from typing import List, Sequence, Tuple

import numpy as np

from mi_defense.defenses.base import Defense, DefenseResult, TrainingJob


def _same_recipe(jobs: Sequence[TrainingJob]) -> bool:
    first = jobs[0]
    return all(dataclasses.replace(j.cfg, seed=0) == dataclasses.replace(first.cfg, seed=0)
               and j.x.shape == first.x.shape and j.y.shape == first.y.shape for j in jobs)


def can_train_together(jobs: Sequence[TrainingJob]) -> bool:
    """Whether ``training.stacked.train_models`` can train these prepared jobs' models in one graph."""
    from mi_defense.training.stacked import stackable

    return len(jobs) > 1 and _same_recipe(jobs) and stackable(jobs[0].cfg, jobs[0].x)


def fit_together(defense: Defense, data: Sequence[Tuple[np.ndarray, np.ndarray, int]]) -> List[DefenseResult]:
    """``[defense.fit(x, y, seed) for x, y, seed in data]``, with the models trained
    together when their jobs allow it. Each result's ``seconds`` is its own preparation
    plus an equal share of the joint training; ``trained_together`` records the group size."""
    if len(data) == 1:
        return [defense.fit(*data[0])]
    jobs, prep = [], []
    for x, y, seed in data:
        t0 = time.time()
        jobs.append(defense.prepare(x, y, seed))
        prep.append(time.time() - t0)
        if jobs[-1] is None:  # this defense trains its own way: one by one (the first job prepared nothing)
            return [defense.fit(*d) for d in data]
    if not can_train_together(jobs) or defense.ctx.build_model is not None:  # a model of the user's: one by one
        return [j.finish(defense.train(j)) for j in jobs]
    from mi_defense.training.stacked import train_models

    t0 = time.time()
    models = train_models([j.x for j in jobs], [j.y for j in jobs], defense.ctx.num_classes, jobs[0].cfg,
                          seeds=[j.cfg.seed for j in jobs])
    share = (time.time() - t0) / len(jobs)
    results = []
    for job, model, p in zip(jobs, models, prep):
        t1 = time.time()
        res = job.finish(model)
        res.metadata.update(seconds=p + share + time.time() - t1, trained_together=len(jobs))
        results.append(res)
    return results

