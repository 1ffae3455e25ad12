"""Benchmarks, written as JSON: FRePo's outer step (``distill``), the attack suite
(``attacks``) and several models trained together (``train``).

Speed and memory figures belong here, not in the tests.
"""
from mi_defense.bench.attacks import bench_attacks
from mi_defense.bench.common import device_name, peak_rss_mb
from mi_defense.bench.distill import bench_distill
from mi_defense.bench.train import bench_train

__all__ = ["bench_attacks", "bench_distill", "bench_train", "device_name", "peak_rss_mb"]
