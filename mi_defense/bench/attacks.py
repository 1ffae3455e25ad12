"""Benchmark of the attack suite: wall time and AUC of every attack on simulated outputs."""
from __future__ import annotations

import time
from typing import Optional

import numpy as np

from mi_defense.bench.common import load_average, peak_rss_mb
from mi_defense.io import package_versions, write_json


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

    import attacks
    from attacks import trained

    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(load)]
    for p in spinners:
        p.start()
    try:
        return _bench_attacks(attacks, trained, n_members, n_nonmembers, num_classes, seed, n_jobs, bootstrap, out,
                              limit_threads, load, load_average())
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
            s = trained.trained_scores(inp, name.split("_", 1)[1], seed=seed, n_jobs=n_jobs,
                                       limit_threads=limit_threads)
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
