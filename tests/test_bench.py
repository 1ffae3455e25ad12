"""The benchmarks' bookkeeping (their figures are measurements, so no speed is asserted)."""
import pytest
import json

from mi_defense.bench import bench_distill
from mi_defense.data import load_dataset


@pytest.mark.slow
def test_bench_distill_reports_phases_memory_and_the_matmul_rate(tmp_path):
    out = tmp_path / "d.json"
    r = bench_distill("digits", width=8, ipc=2, steps=2, warmup=1, out=str(out))
    assert json.loads(out.read_text())["seconds_per_step_median"] == r["seconds_per_step_median"]
    assert set(r["phases"]) == {"real_features", "meta_gradient", "online_step"}
    assert abs(sum(p["gflop"] for p in r["phases"].values()) - r["step_gflop"]) < 1e-9
    by_size = r["matmul_gflops_per_second_by_size"]
    # the best size is the reference
    assert len(by_size) >= 3 and r["matmul_gflops_per_second"] == max(by_size.values())
    for n, rate in by_size.items():  # ... of the two windows, before and after the timed steps
        assert rate == max(r["matmul_before_steps"][n], r["matmul_after_steps"][n])
    for p in r["phases"].values():
        assert abs(p["fraction_of_matmul"] - p["gflops_per_second"] / r["matmul_gflops_per_second"]) < 1e-9
    pixels = load_dataset("digits").x_train.size
    assert r["real_pool"]["dtype"] == "uint8" and round(r["real_pool"]["mb"] * 2 ** 20) == pixels  # one byte a pixel
    assert r["rss_mb_tensorflow_imported"] <= r["peak_rss_mb_data_ready"] <= r["peak_rss_mb"]
