"""Benchmark of training several models: one at a time (``training.loop.train_model``) against
together in one graph (``training.stacked.train_models``), in model-steps per second."""
from __future__ import annotations

import time
from typing import Optional

import numpy as np

from mi_defense.bench.common import device_name, load_average, peak_rss_mb
from mi_defense.io import package_versions, write_json

WARMUP_STEPS = 100  # steps before the clock starts: tracing and the first calls are not timed


def bench_train(dataset: str = "mnist", models: int = 8, width: int = 32, depth: int = 3, train_size: int = 500,
                batch: int = 256, steps: int = 300, data_dir: Optional[str] = None, out: Optional[str] = None) -> dict:
    """Model-steps per second of ``models`` ConvNets (FRePo's evaluation protocol, each on
    its own random ``train_size`` examples), trained one at a time and together; timed
    from step ``WARMUP_STEPS`` to ``steps``."""
    import dataclasses

    from mi_defense.config import TrainConfig
    from mi_defense.data import Transform, default_transform_kind, load_dataset
    from mi_defense.errors import UserError
    from mi_defense.training.loop import train_model
    from mi_defense.training.stacked import train_models
    from mi_defense.training.targets import targets_for

    if steps <= WARMUP_STEPS:
        raise UserError(f"--steps {steps}: give more than the {WARMUP_STEPS} untimed warm-up steps")
    ds = load_dataset(dataset, data_dir)
    if train_size > len(ds.x_train):
        raise UserError(f"--train-size {train_size}: {ds.name} has {len(ds.x_train)} training images")
    t = Transform.fit(ds.x_train, default_transform_kind(ds.input_shape))
    rng = np.random.default_rng(0)
    sets = [rng.choice(len(ds.x_train), train_size, replace=False) for _ in range(models)]
    xs = [t(ds.x_train[s]) for s in sets]
    ys = [targets_for(ds.y_train[s], ds.num_classes) for s in sets]
    cfg = TrainConfig(width=width, depth=depth, steps=steps, batch=batch)
    seeds = list(range(models))
    timed = steps - WARMUP_STEPS
    load_before = load_average()

    seq_seconds = 0.0
    for r in range(models):
        mark = {}
        t0 = time.perf_counter()
        train_model(xs[r], ys[r], ds.num_classes, dataclasses.replace(cfg, seed=seeds[r]),
                    on_step=lambda step, _m, mark=mark: (mark.setdefault("t", time.perf_counter())
                                                         if step == WARMUP_STEPS else None))
        seq_seconds += time.perf_counter() - mark.get("t", t0)
    mark = {}
    train_models(xs, ys, ds.num_classes, cfg, seeds,
                 on_step=lambda step: mark.setdefault("t", time.perf_counter()) if step == WARMUP_STEPS else None)
    many_seconds = time.perf_counter() - mark["t"]
    seq = models * timed / seq_seconds
    many = models * timed / many_seconds
    result = {"benchmark": "train", "dataset": ds.name, "models": models, "width": width, "depth": depth,
              "train_size": train_size, "batch": min(batch, train_size), "steps": steps, "timed_steps": timed,
              "one_at_a_time_model_steps_per_second": seq, "batched_model_steps_per_second": many,
              "speedup": many / seq, "loadavg_1min_before": load_before, "loadavg_1min_after": load_average(),
              "peak_rss_mb": peak_rss_mb(), "device": device_name(), "versions": package_versions()}
    if out:
        write_json(out, result)
    return result
