"""Attack power with fewer reference runs, re-scored from an audit's signals (``bench references``)."""
import numpy as np
import pytest

from mi_defense.auditing import signals
from mi_defense.bench.references import bench_references, best_at, draw_runs, pairs_of
from mi_defense.errors import UserError


def _signals(tmp_path, leak: float, m: int = 8, n: int = 400, seed: int = 0):
    """Paired reference runs (run 2j and 2j+1 complementary); a member's scaled logit rises by ``leak``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    membership = rng.random(n) < 0.5
    half = np.stack([rng.random(n) < 0.5 for _ in range(m // 2)], axis=1)
    ref_in = np.empty((n, m), bool)
    ref_in[:, 0::2], ref_in[:, 1::2] = half, ~half
    base = rng.normal(0, 1, n)[:, None]
    inside = np.column_stack([membership, ref_in])
    scaled = (base + rng.normal(0, 0.3, (n, 1 + m)) + leak * inside).astype(np.float32)
    logits = rng.normal(0, 1, (1, n, 10)).astype(np.float32)
    d = {"target_logits": logits, "scaled_logit": scaled, "test_accuracy": np.array([0.9])}
    path = tmp_path / "signals.npz"
    signals.save(path, labels, membership, ref_in, {"none": d}, {"seed": 0, "fprs": [1e-3, 1e-2]})
    return path, ref_in


def test_pairs_are_found_and_draws_keep_them_whole(tmp_path):
    _, ref_in = _signals(tmp_path, 1.0)
    pairs = pairs_of(ref_in)
    assert sorted(pairs) == [(0, 1), (2, 3), (4, 5), (6, 7)]
    runs = draw_runs(pairs, 4, np.random.default_rng(0))
    assert len(runs) == 4 and all((r ^ 1) in runs for r in runs)  # two whole pairs: every example IN exactly twice
    assert np.all(ref_in[:, runs].sum(axis=1) == 2)
    assert len(draw_runs(pairs, 3, np.random.default_rng(0))) == 3


def test_a_leaking_model_is_found_with_few_runs_and_a_silent_one_is_not(tmp_path):
    path, _ = _signals(tmp_path, 1.5)
    r = bench_references(path, counts=(2, 4), draws=3)
    assert r["full"]["lira_online"]["auc"] > 0.8
    name, share = best_at(r, 4)
    assert share > 0.8 and r["by_count"]["4"][name]["auc"]["std"] >= 0
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    path0, _ = _signals(quiet, 0.0)
    r0 = bench_references(path0, counts=(2,), draws=3)
    assert abs(r0["full"]["lira_online"]["auc"] - 0.5) < 0.08  # no signal, no finding


def test_counts_outside_the_audit_are_refused(tmp_path):
    path, _ = _signals(tmp_path, 1.0)
    with pytest.raises(UserError, match="between 1 and 7"):
        bench_references(path, counts=(8,))
    with pytest.raises(UserError, match="no defense"):
        bench_references(path, defense="frepo")
