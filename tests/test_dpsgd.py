"""DP-SGD: the noise calibration and the clipped, padded per-example step it relies on."""
import numpy as np
import pytest

from mi_defense.defenses.dpsgd import DPSGD, _dp_class, calibrate_noise, dp_delta, epsilon_for
from mi_defense.defenses.base import DefenseContext
from mi_defense.config import TrainConfig
from mi_defense.models import MLP
from mi_defense.tfenv import tf
from mi_defense.train import mse_loss


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


def test_dpsgd_defense_states_its_guarantee():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    ctx = DefenseContext(2, (6,), TrainConfig(width=16, depth=1), real_steps=30)
    res = DPSGD(ctx, eps=4, batch=20).fit(x, y, seed=0)
    m = res.metadata
    assert m["epsilon"] <= 4 and m["delta"] == 1e-5 and m["sampling_rate"] == pytest.approx(0.1)
    # the stated epsilon is what the accountant gives for the noise actually used, and that noise is not excessive
    assert epsilon_for(m["noise_multiplier"], 0.1, 30, 1e-5) == pytest.approx(m["epsilon"])
    assert epsilon_for(0.98 * m["noise_multiplier"], 0.1, 30, 1e-5) > 4
    assert f"noise multiplier {m['noise_multiplier']:.4g}" in m["privacy_statement"]
    assert "(epsilon=" in m["privacy_statement"] and "Poisson" in m["privacy_statement"] and res.released is None


def _audit_dpsgd(tmp_path, name):
    from mi_defense.audit import AuditConfig, run_audit

    rng = np.random.default_rng(0)
    path = tmp_path / "random.npz"
    np.savez(path, x_train=rng.standard_normal((700, 12)).astype(np.float32), y_train=np.arange(700) % 10,
             x_test=rng.standard_normal((50, 12)).astype(np.float32), y_test=np.arange(50) % 10)
    cfg = AuditConfig(dataset=str(path), members=300, nonmembers=300, references=0, bootstrap=0, n_jobs=1,
                      defenses=("dpsgd:eps=1,clip=100,batch=60,steps=400,lr=0.003",), attacks=("threshold_loss",),
                      train=TrainConfig(width=256, depth=2))
    return run_audit(cfg, tmp_path / name, progress=False, log=lambda s: None)["defenses"][0]


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
