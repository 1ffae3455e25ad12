"""DP-SGD: the noise calibration, the batch cap, the secret randomness and the clipped,
padded per-example step it relies on."""
import math

import numpy as np
import pytest

from mi_defense.config import DPSGD_RECIPES, TrainConfig, dpsgd_recipe
from mi_defense.defenses.dpsgd import DPSGD, _dp_class, calibrate_noise, dp_delta, epsilon_for, sampling_cap
from mi_defense.defenses.base import DefenseContext
from mi_defense.errors import UserError
from mi_defense.models import MLP
from mi_defense.tfenv import tf
from mi_defense.training.targets import mse_loss


def test_delta_is_the_smaller_of_1e5_and_n_to_minus_1_1():
    assert dp_delta(1000) == 1e-5
    assert dp_delta(10 ** 6) == pytest.approx(10 ** -6.6)


@pytest.mark.parametrize("eps", [1.0, 8.0])
def test_noise_is_the_smallest_that_reaches_the_target_epsilon(eps):
    q, steps, delta = 64 / 1000, 500, 1e-5
    sigma = calibrate_noise(eps, q, steps, delta)
    assert epsilon_for(sigma, q, steps, delta) <= eps  # the guarantee holds
    assert epsilon_for(sigma * 0.99, q, steps, delta) > eps  # and no less noise would do
    # more steps or a larger sampling rate spend more privacy, so they need more noise
    assert calibrate_noise(eps, q, 2 * steps, delta) > sigma and calibrate_noise(eps, 2 * q, steps, delta) > sigma


def test_dp_step_clips_each_example_and_ignores_padding():
    """One step of the DP model with zero noise and plain SGD (lr 1) equals the average of
    the per-example gradients, each clipped to L2 norm C, over the padded batch; padding
    (weight 0) contributes nothing."""
    clip = 0.05
    model = _dp_class(MLP)(clip, 0.0, None, False, None, (5,), 3, width=8, depth=1, seed=0)
    model.compile(optimizer=tf.keras.optimizers.SGD(1.0), loss=lambda yt, yp: mse_loss(yp, yt))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((4, 5)), tf.float32)
    y = tf.constant(np.eye(3)[[0, 1, 2, 0]], tf.float32)
    w = tf.constant([1.0, 1.0, 1.0, 0.0])  # the last row is padding
    before = [v.numpy().copy() for v in model.trainable_variables]
    expected = [np.zeros_like(b) for b in before]
    norms = []
    for i in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(mse_loss(model(x[i:i + 1]), y[i:i + 1]))
        g = [t.numpy() for t in tape.gradient(loss, model.trainable_variables)]
        norm = np.sqrt(sum((t ** 2).sum() for t in g))
        norms.append(norm)
        expected = [e + t / max(norm / clip, 1.0) for e, t in zip(expected, g)]
    assert max(norms) > clip  # clipping is exercised
    model.train_step((x, y, w))
    for b, e, v in zip(before, expected, model.trainable_variables):
        np.testing.assert_allclose(b - v.numpy(), e / 4, rtol=1e-4, atol=1e-7)


def test_sampling_cap_known_answer():
    """Binomial(101, 0.3) over 50 steps at epsilon 2, delta 1e-4: the bound is
    0.01 delta / (1 + e^2) = 1.19e-7; by exact summation 50 P[K > 59] = 4.465e-8 meets it and
    50 P[K > 58] = 1.513e-7 does not, so the cap is 59."""
    cap, p = sampling_cap(100, 0.3, 50, 2.0, 1e-4)
    assert cap == 59 and p == pytest.approx(4.465248e-08, rel=1e-4)
    bound = 0.01 * 1e-4 / (1 + math.exp(2.0))
    from scipy.stats import binom

    assert p <= bound < 50 * binom.sf(cap - 1, 101, 0.3) == pytest.approx(1.5127893e-07, rel=1e-4)
    assert sampling_cap(100, 1.0, 50, 2.0, 1e-4) == (101, 0.0)  # full batches: never truncated


def _tabular(n=200, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


@pytest.mark.slow
def test_dpsgd_defense_states_its_guarantee():
    x, y = _tabular()
    ctx = DefenseContext(2, (6,), TrainConfig(width=16, depth=1), real_steps=30)
    res = DPSGD(ctx, epsilon=4, batch=20).fit(x, y, seed=0)
    m = res.metadata
    assert m["epsilon"] <= 4 and m["delta"] == 1e-5 and m["sampling_rate"] == pytest.approx(0.1)
    # the accountant runs at 0.99 delta; truncation is covered by the remaining 1 %
    assert m["accountant_delta"] == pytest.approx(0.99e-5)
    assert (1 + math.exp(m["epsilon"])) * m["truncation_probability"] <= 0.01 * m["delta"]
    # the stated epsilon is what the accountant gives for the noise actually used, and that noise is not excessive
    assert epsilon_for(m["noise_multiplier"], 0.1, 30, 0.99e-5) == pytest.approx(m["epsilon"])
    assert epsilon_for(0.98 * m["noise_multiplier"], 0.1, 30, 0.99e-5) > 4
    stated = m["privacy_statement"]
    assert f"noise multiplier {m['noise_multiplier']:.4g}" in stated and f"padded to {m['batch_cap']}" in stated
    assert "(epsilon=" in stated and "Poisson" in stated and "entropy" in stated and res.released is None
    assert "entropy" in m["randomness"] and m["recipe"]["loss"] == "xent"


def _fixed_noise(monkeypatch, sigma=1.0):
    """Skip the calibration's bisection (tested above): a fixed noise multiplier."""
    from mi_defense.defenses import dpsgd

    monkeypatch.setattr(dpsgd, "calibrate_noise", lambda eps, q, steps, delta: sigma)
    monkeypatch.setattr(dpsgd, "epsilon_for", lambda s, q, steps, delta: 4.0)


def test_delta_of_1_over_n_or_more_is_refused_in_one_line(monkeypatch):
    _fixed_noise(monkeypatch)
    x, y = _tabular()
    ctx = DefenseContext(2, (6,), TrainConfig(width=16, depth=1), real_steps=2)
    with pytest.raises(UserError) as err:
        DPSGD(ctx, epsilon=4, delta=0.005).fit(x, y, seed=0)
    assert "1/n" in str(err.value) and "\n" not in str(err.value)
    assert DPSGD(ctx, epsilon=4, delta=1e-4).fit(x, y, seed=0).metadata["delta"] == 1e-4


def _weights(x, y, seed, **params):
    ctx = DefenseContext(2, (6,), TrainConfig(width=16, depth=1), real_steps=5)
    return np.concatenate([v.numpy().ravel()
                           for v in DPSGD(ctx, epsilon=4, **params).fit(x, y, seed).model.trainable_variables])


@pytest.mark.slow
def test_noise_and_sampling_do_not_follow_the_public_seed(monkeypatch):
    """Two fits with the same seed differ (secret sampling and noise); with no noise and
    full batches (nothing random left but the seeded initialisation) they agree."""
    x, y = _tabular()
    _fixed_noise(monkeypatch, 1.0)
    assert not np.allclose(_weights(x, y, 3, batch=50), _weights(x, y, 3, batch=50))
    _fixed_noise(monkeypatch, 0.0)
    np.testing.assert_allclose(_weights(x, y, 3, batch=200), _weights(x, y, 3, batch=200), rtol=1e-5, atol=1e-6)


def test_recipes_follow_epsilon_and_accept_overrides():
    assert (dpsgd_recipe("convnet", 0.5) is DPSGD_RECIPES[("convnet", 1.0)]
            and dpsgd_recipe("convnet", 20) is DPSGD_RECIPES[("convnet", 8.0)])
    assert dpsgd_recipe("scatter-linear", 2.0) is DPSGD_RECIPES[("scatter-linear", 1.0)]
    assert dpsgd_recipe("scatter-linear", 3.0) is DPSGD_RECIPES[("scatter-linear", 8.0)]
    ctx = DefenseContext(10, (28, 28, 1), TrainConfig(width=8, depth=2))
    r, steps = DPSGD(ctx, epsilon=8, batch=100, lr=0.5).recipe(1000)
    assert (r.batch, r.lr, r.clip) == (100, 0.5, DPSGD_RECIPES[("convnet", 8.0)].clip)
    assert steps == math.ceil(r.epochs * 1000 / 100) and "batch=100" in r.name
    assert DPSGD(ctx, epsilon=8, steps=7).recipe(1000)[1] == 7


def _audit_dpsgd(tmp_path, name):
    from mi_defense.auditing import AuditConfig, run_audit

    rng = np.random.default_rng(0)
    path = tmp_path / "random.npz"
    np.savez(path, x_train=rng.standard_normal((700, 12)).astype(np.float32), y_train=np.arange(700) % 10,
             x_test=rng.standard_normal((50, 12)).astype(np.float32), y_test=np.arange(50) % 10)
    cfg = AuditConfig(dataset=str(path), members=300, nonmembers=300, references=0, bootstrap=0, n_jobs=1,
                      defenses=("dpsgd:eps=1,clip=100,batch=60,steps=400,lr=0.003",), attacks=("threshold_loss",),
                      train=TrainConfig(width=256, depth=2))
    return run_audit(cfg, tmp_path / name, progress=False, log=lambda s: None)["defenses"][0]


@pytest.mark.slow
def test_audited_epsilon_respects_dpsgd_and_catches_a_mechanism_without_noise(tmp_path, monkeypatch):
    """Random labels: only memorisation fits the members. Calibrated DP-SGD at epsilon 1
    stays below its claim; the same training with noise multiplier 0, still claiming
    epsilon 1, is caught by the audited lower bound."""
    from mi_defense.defenses import dpsgd

    honest = _audit_dpsgd(tmp_path, "honest")
    assert honest["claimed_epsilon"] <= 1.0
    assert honest["epsilon_lower_bound"]["value"] <= honest["claimed_epsilon"]
    monkeypatch.setattr(dpsgd, "calibrate_noise", lambda eps, q, steps, delta: 0.0)
    monkeypatch.setattr(dpsgd, "epsilon_for", lambda sigma, q, steps, delta: 1.0)  # the broken claim
    broken = _audit_dpsgd(tmp_path, "broken")
    assert broken["metadata"]["noise_multiplier"] == 0.0 and broken["claimed_epsilon"] == 1.0
    assert broken["train_accuracy"] > 0.9
    assert broken["epsilon_lower_bound"]["value"] > broken["claimed_epsilon"]
