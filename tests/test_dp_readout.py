"""DP-FRePo clipping with respect to the KRR readout: the readout is the KRR predictor, the
clipped sum matches automatic differentiation, and one example moves it by at most C."""
import numpy as np
import pytest

from mi_defense.config import CLIP_SPACES, DistillConfig
from mi_defense.distillation.dp import SURROGATES, DPPlan
from mi_defense.distillation.dp_krr import CLIP_MARGIN
from mi_defense.distillation.dp_readout import clipped_readout_sum, krr_readout
from mi_defense.distillation.krr import krr_loss, krr_predict
from mi_defense.errors import UserError
from mi_defense.tfenv import tf


def _problem(seed=0, n=7, d=5, b=6, c=3):
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.standard_normal(s)) for s in ((n, d), (n, c), (b, d), (b, c))]


def test_the_readout_is_the_krr_predictor():
    f_s, y_s, f_t, _ = _problem()
    h = krr_readout(f_s, y_s, 0.1)
    assert h.shape == (3, 5)
    np.testing.assert_allclose(tf.matmul(f_t, h, transpose_b=True).numpy(), krr_predict(f_s, y_s, f_t, 0.1).numpy(),
                               rtol=1e-10)


def test_clipped_readout_sum_matches_autodiff_example_by_example():
    f_s, y_s, f_t, y_t = _problem(1)
    h = krr_readout(f_s, y_s, 1e-3)
    per = []
    for i in range(6):
        with tf.GradientTape() as tape:
            tape.watch(h)
            loss = 0.5 * tf.reduce_sum(tf.square(tf.matmul(f_t[i:i + 1], h, transpose_b=True) - y_t[i:i + 1]))
        per.append(tape.gradient(loss, h).numpy())
    norms = np.array([np.linalg.norm(g) for g in per])
    clip = float(np.median(norms))  # some clipped, some not
    g, got = clipped_readout_sum(h, f_t, y_t, clip)
    np.testing.assert_allclose(got.numpy(), norms, rtol=1e-10)
    c = np.minimum(1.0, clip * (1 - CLIP_MARGIN) / norms)
    np.testing.assert_allclose(g.numpy(), sum(ci * gi for ci, gi in zip(c, per)), rtol=1e-10, atol=1e-12)
    # unclipped, carried back through h: the KRR loss's gradient with respect to the synthetic features and labels
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([f_s, y_s])
        hh = krr_readout(f_s, y_s, 1e-3)
        surrogate = tf.reduce_sum(clipped_readout_sum(tf.stop_gradient(hh), f_t, y_t, 1e30)[0] * hh) / 6
        loss = krr_loss(f_s, y_s, f_t, y_t, 1e-3)
    for a, b in zip(tape.gradient(surrogate, [f_s, y_s]), tape.gradient(loss, [f_s, y_s])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)


def test_changing_one_example_moves_the_readout_sum_by_at_most_its_share():
    f_s, y_s, f_t, y_t = _problem(2, b=12)
    h = krr_readout(f_s, y_s, 1e-6)
    clip = 0.05
    rng = np.random.default_rng(3)
    for i in range(5):
        ft2, yt2 = f_t.numpy().copy(), y_t.numpy().copy()
        ft2[i] = 50 * rng.standard_normal(ft2.shape[1])  # an outlier
        yt2[i] = rng.standard_normal(yt2.shape[1])
        other = clipped_readout_sum(h, tf.constant(ft2), tf.constant(yt2), clip)[0].numpy()
        removed = clipped_readout_sum(h, tf.constant(np.delete(ft2, i, 0)), tf.constant(np.delete(yt2, i, 0)),
                                      clip)[0].numpy()
        gone = np.linalg.norm(other - removed)
        assert clip * (1 - 2 * CLIP_MARGIN) < gone <= clip  # the outlier counts, clipped to C


def test_a_non_finite_example_contributes_nothing_to_the_readout_sum():
    f_s, y_s, f_t, y_t = _problem(4)
    h = krr_readout(f_s, y_s, 1e-6)
    ft = f_t.numpy().copy()
    ft[2, 0] = np.inf
    g, _ = clipped_readout_sum(h, tf.constant(ft), y_t, 1.0)
    keep = np.delete(np.arange(6), 2)
    ref, _ = clipped_readout_sum(h, tf.constant(ft[keep]), tf.gather(y_t, keep), 1.0)
    assert np.all(np.isfinite(g.numpy()))
    np.testing.assert_allclose(g.numpy(), ref.numpy(), atol=1e-12)


def test_clip_spaces_are_declared_once_each_has_a_mechanism_and_is_named_in_the_statement():
    assert set(SURROGATES) == set(CLIP_SPACES)
    for space in CLIP_SPACES:
        plan = DPPlan.for_config(DistillConfig(ipc=1, steps=10, batch_real=64, epsilon=2.0, clip_space=space), 3000)
        assert CLIP_SPACES[space] in plan.statement() and plan.to_json()["clip_space"] == space
    with pytest.raises(UserError, match="clip_space 'pixels' unknown; use readout or features"):
        DistillConfig(epsilon=1.0, clip_space="pixels")
