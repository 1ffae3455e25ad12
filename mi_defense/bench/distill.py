"""Benchmark of FRePo's outer step: time, memory, and how much of the machine it uses.

The step's work is counted in convolution FLOPs (``ConvNet.conv_flops_per_example``)
plus the kernel products: the real batch is a forward pass, the synthetic set a forward
pass and an input gradient (about 2x) and the kernels ``K_ss``, ``K_ts`` with their
gradients, the online model's Adam step a forward and a full backward pass (about 3x).
The machine's own single-precision rate is measured in the same process with
``tf.matmul`` at several sizes, before and after the timed steps, the best rate of all
being the reference (a virtual machine's rate drifts: a reference taken in a slow
moment would flatter the step), and the step's
achieved rate is reported as a fraction of it, for the whole step and for each of its
three phases timed alone.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import numpy as np

from mi_defense.bench.common import device_name, load_average, peak_rss_mb
from mi_defense.io import package_versions, write_json


def _median_seconds(fn: Callable, reps: int) -> float:
    """Median wall time of ``fn()`` after one warm-up call; ``fn`` returns a small tensor
    whose value is fetched, so asynchronous devices are timed to completion."""
    fn().numpy()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn().numpy()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


MATMUL_SIZES = (1024, 2048, 3072)


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    """The device's float32 matrix-multiply rate: ``2 n^3`` FLOPs per ``n x n`` product."""
    from mi_defense.tfenv import tf

    a = tf.random.stateless_normal([n, n], [1, 2])
    b = tf.random.stateless_normal([n, n], [3, 4])
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    return 2.0 * n ** 3 / _median_seconds(f, reps) / 1e9


def matmul_rates(sizes=MATMUL_SIZES, reps: int = 5) -> dict:
    """The float32 matmul rate at several square sizes, ``{str(n): GFLOP/s}`` (the
    machine's attainable rate depends on the size: cache blocking, threading). The step's
    fraction is taken of the best, so it is never flattered by an unlucky reference size."""
    return {str(n): matmul_gflops(n, reps) for n in sizes}


def _phases(fr, batch_real: int, reps: int) -> dict:
    """Seconds and FLOPs of the step's three phases, each timed alone: the real batch's
    features (inference mode), the meta-gradient (synthetic features, KRR loss and its
    gradient with respect to the images and labels), and the online model's Adam step."""
    from mi_defense.distillation.krr import krr_loss, label_margin_loss
    from mi_defense.tfenv import tf

    fwd = fr.model.conv_flops_per_example()
    ids = tf.random.stateless_uniform([batch_real], [5, 6], maxval=fr.n_real, dtype=tf.int64)
    fr.pool.load(tf.constant(0, tf.int64))
    x_t = fr.real.take(ids)
    f_t = tf.constant(fr.model.features(x_t, training=False))
    y_t = tf.gather(fr.y_real, ids)

    def meta():
        with tf.GradientTape() as tape:
            f_s, ys = fr.synthetic_features()
            loss = krr_loss(f_s, ys, f_t, y_t, fr.cfg.reg) + label_margin_loss(fr.y_syn, fr.num_classes)
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, fr.learnable)])

    n_syn = fr.n_syn * (2 if fr.flip else 1)
    n_online = min(fr.n_syn, fr.cfg.max_online_batch)
    xs, ys = fr.x_syn[:n_online], fr.y_syn[:n_online]
    d = fr.model.feature_dim
    krr = 3 * 2 * d * (n_syn * n_syn + batch_real * n_syn)  # kernels forward and backward; the solve is negligible
    fns = {
        "real_features": (lambda: tf.reduce_sum(fr.model.features(fr.real.take(ids), training=False)),
                          fwd * batch_real),
        "meta_gradient": (meta, 2 * fwd * n_syn + krr),
        "online_step": (lambda: fr.pool.online_step(tf.constant(0, tf.int64), xs, ys), 3 * fwd * n_online),
    }
    out = {}
    for name, (fn, flops) in fns.items():
        s = _median_seconds(tf.function(fn), reps)
        out[name] = {"seconds": s, "gflop": flops / 1e9, "gflops_per_second": flops / 1e9 / s}
    return out


def bench_distill(dataset: str = "mnist", width: int = 64, ipc: int = 10, steps: int = 20,
                  batch_real: Optional[int] = None, pool_norm: str = "batch", warmup: int = 3,
                  data_dir: Optional[str] = None, jit: bool = False, out: Optional[str] = None) -> dict:
    """Seconds per FRePo outer step (median after warm-up), achieved GFLOP/s of the step and
    of each phase as a fraction of the measured matmul rate, feature-extractor throughput,
    device, and resident memory at three points: TensorFlow imported (the runtime's
    baseline), the data loaded, and the peak over the outer steps (before the phase and
    throughput tests, whose batches would otherwise set the peak)."""
    from mi_defense.config import DistillConfig
    from mi_defense.data import Transform, default_transform_kind, load_dataset
    from mi_defense.distillation.frepo import FRePo, choose_init_indices
    from mi_defense.tfenv import tf

    rss_tf = peak_rss_mb()
    load_before = load_average()
    ds = load_dataset(dataset, data_dir)
    transform = Transform.fit(ds.x_train, default_transform_kind(ds.input_shape))
    y = ds.y_train
    batch_real = batch_real or (256 if width <= 64 else 1024)
    cfg = DistillConfig(ipc=ipc, steps=max(steps + warmup, 1), width=width, batch_real=batch_real, pool_norm=pool_norm,
                        jit=jit)
    init = choose_init_indices(y, ipc, ds.num_classes, 0)
    rss_data = peak_rss_mb()
    fr = FRePo(cfg, ds.x_train, y, ds.num_classes, transform(ds.x_train[init]), y[init], log=lambda s: None,
               transform=transform)
    # measured before and after the steps: a host slowed in one window cannot flatter the fraction
    rates_before = matmul_rates()
    times = []
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        fr.step(s)
        if s >= warmup:
            times.append(time.perf_counter() - t0)
    step_s = float(np.median(times))
    rss_steps = peak_rss_mb()
    rates_after = matmul_rates()
    by_size = {n: max(rates_before[n], rates_after[n]) for n in rates_after}
    matmul = max(by_size.values())
    phases = _phases(fr, batch_real, reps=max(3, min(steps, 10)))
    for p in phases.values():
        p["fraction_of_matmul"] = p["gflops_per_second"] / matmul
        p["share_of_step_time"] = p["seconds"] / step_s
    feats = tf.function(lambda b: fr.model.features(b, training=False))
    xb = tf.constant(transform(ds.x_train[:1024]))
    img_s = 1024 / _median_seconds(lambda: tf.reduce_sum(feats(xb)), 3)
    flops = sum(p["gflop"] for p in phases.values())
    result = {"benchmark": "distill", "dataset": ds.name, "width": width, "depth": cfg.depth, "ipc": ipc,
              "pool_norm": pool_norm, "pool_size": cfg.pool_size, "batch_real": batch_real, "jit": jit,
              "steps_timed": steps, "seconds_per_step_median": step_s, "seconds_per_step_all": times,
              "feature_images_per_second": img_s, "step_gflop": flops, "achieved_gflops_per_second": flops / step_s,
              "matmul_gflops_per_second": matmul,
              "matmul_gflops_per_second_by_size": by_size, "matmul_before_steps": rates_before,
              "matmul_after_steps": rates_after, "fraction_of_matmul": flops / step_s / matmul, "phases": phases,
              "real_pool": {"dtype": "uint8" if fr.real.compact else "float32", "mb": fr.real.nbytes / 2 ** 20},
              "peak_rss_mb": rss_steps, "peak_rss_mb_with_phase_tests": peak_rss_mb(),
              "rss_mb_tensorflow_imported": rss_tf, "peak_rss_mb_data_ready": rss_data,
              "tensorflow_share_of_peak": rss_tf / rss_steps, "loadavg_1min_before": load_before,
              "loadavg_1min_after": load_average(), "device": device_name(), "versions": package_versions()}
    if out:
        write_json(out, result)
    return result
