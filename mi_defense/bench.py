"""Benchmarks, written as JSON: FRePo's outer step and the attack suite.

Speed and memory figures belong here, not in the tests.
"""
from __future__ import annotations

import resource
import time
from typing import Optional

import numpy as np

from mi_defense.io import package_versions, write_json


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _device() -> str:
    from mi_defense.tfenv import tf

    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name


def bench_distill(dataset: str = "mnist", width: int = 64, ipc: int = 10, steps: int = 20, batch_real: Optional[int] = None,
                  pool_norm: str = "batch", warmup: int = 3, data_dir: Optional[str] = None, jit: bool = False,
                  out: Optional[str] = None) -> dict:
    """Seconds per FRePo outer step (median after warm-up), feature-extractor throughput,
    achieved GFLOP/s of the step (convolution FLOPs), device, and resident memory at three
    points: TensorFlow imported (the runtime's baseline), the data loaded and transformed,
    and the peak over the outer steps (measured before the throughput test, whose batch of
    1024 would otherwise set the peak)."""
    from mi_defense.config import DistillConfig
    from mi_defense.data import Transform, default_transform_kind, load_dataset
    from mi_defense.distill.frepo import FRePo, choose_init_indices
    from mi_defense.tfenv import tf

    rss_tf = peak_rss_mb()
    ds = load_dataset(dataset, data_dir)
    x = Transform.fit(ds.x_train, default_transform_kind(ds.input_shape))(ds.x_train)
    y = ds.y_train
    batch_real = batch_real or (256 if width <= 64 else 1024)
    cfg = DistillConfig(ipc=ipc, steps=max(steps + warmup, 1), width=width, batch_real=batch_real, pool_norm=pool_norm, jit=jit)
    init = choose_init_indices(y, ipc, ds.num_classes, 0)
    rss_data = peak_rss_mb()
    fr = FRePo(cfg, x, y, ds.num_classes, x[init], y[init], log=lambda s: None)
    times = []
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        fr.step(s)
        if s >= warmup:
            times.append(time.perf_counter() - t0)
    step_s = float(np.median(times))
    rss_steps = peak_rss_mb()
    feats = tf.function(lambda b: fr.model.features(b, training=False))
    xb = tf.constant(x[:1024])
    feats(xb)
    t0 = time.perf_counter()
    reps = 3
    for _ in range(reps):
        feats(xb).numpy()
    img_s = reps * 1024 / (time.perf_counter() - t0)
    n_syn = len(init) * (2 if fr.flip else 1)
    n_online = min(len(init), cfg.max_online_batch)
    fwd = fr.model.conv_flops_per_example()
    # real batch: forward; synthetic set: forward + input gradient (~2x); online step: forward + backward (~3x)
    flops = fwd * (batch_real + 2 * n_syn + 3 * n_online)
    result = {"benchmark": "distill", "dataset": ds.name, "width": width, "depth": cfg.depth, "ipc": ipc,
              "pool_norm": pool_norm, "pool_size": cfg.pool_size, "batch_real": batch_real, "jit": jit,
              "steps_timed": steps, "seconds_per_step_median": step_s, "seconds_per_step_all": times,
              "feature_images_per_second": img_s, "step_gflop": flops / 1e9, "achieved_gflops_per_second": flops / 1e9 / step_s,
              "peak_rss_mb": rss_steps, "peak_rss_mb_with_throughput_test": peak_rss_mb(),
              "rss_mb_tensorflow_imported": rss_tf, "peak_rss_mb_data_ready": rss_data,
              "tensorflow_share_of_peak": rss_tf / rss_steps, "device": _device(), "versions": package_versions()}
    if out:
        write_json(out, result)
    return result


def _spin(stop) -> None:  # pragma: no cover - runs in a child process
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) % 2147483648


def bench_attacks(n_members: int = 20000, n_nonmembers: int = 20000, num_classes: int = 10, seed: int = 0,
                  n_jobs: Optional[int] = -1, bootstrap: int = 200, out: Optional[str] = None,
                  limit_threads: bool = True, load: int = 0) -> dict:
    """Wall time of every threshold attack and the four trained attacks on simulated outputs.

    ``limit_threads=False`` lets the native BLAS/OpenMP pools take every core (the
    behaviour without threadpoolctl); ``load`` busy processes run alongside, as on a
    shared machine."""
    import multiprocessing as mp
    import os

    import attacks
    from attacks import trained

    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(load)]
    for p in spinners:
        p.start()
    try:
        return _bench_attacks(attacks, trained, n_members, n_nonmembers, num_classes, seed, n_jobs, bootstrap, out,
                              limit_threads, load, os.getloadavg()[0])
    finally:
        stop.set()
        for p in spinners:
            p.join()


def _bench_attacks(attacks, trained, n_members, n_nonmembers, num_classes, seed, n_jobs, bootstrap, out,
                   limit_threads, load, loadavg_before) -> dict:

    rng = np.random.default_rng(seed)
    n = n_members + n_nonmembers
    labels = rng.integers(0, num_classes, n)
    member = np.arange(n) < n_members
    logits = rng.normal(0, 1, (n, num_classes))
    logits[np.arange(n), labels] += 1.0 + 0.5 * member
    inp = attacks.AttackInputs(labels=labels, membership=member, logits=logits)
    timings, aucs = {}, {}
    t_all = time.perf_counter()
    for name in attacks.THRESHOLD + attacks.TRAINED:
        t0 = time.perf_counter()
        if name in attacks.TRAINED:
            s = trained.trained_scores(inp, name.split("_", 1)[1], seed=seed, n_jobs=n_jobs, limit_threads=limit_threads)
            aucs[name] = attacks.metrics.evaluate(s, member, bootstrap=bootstrap, seed=seed)["auc"]
        else:
            aucs[name] = attacks.run(inp, attacks=[name], bootstrap=bootstrap, n_jobs=n_jobs)[name]["auc"]
        timings[name] = time.perf_counter() - t0
    result = {"benchmark": "attacks", "n_members": n_members, "n_nonmembers": n_nonmembers, "num_classes": num_classes,
              "bootstrap": bootstrap, "n_jobs": n_jobs, "limit_threads": limit_threads, "load_processes": load,
              "loadavg_1min_before": loadavg_before, "seconds": timings, "seconds_total": time.perf_counter() - t_all,
              "auc": aucs, "peak_rss_mb": peak_rss_mb(), "versions": package_versions()}
    if out:
        write_json(out, result)
    return result
