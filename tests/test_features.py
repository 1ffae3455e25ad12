"""ScatterNet features: fixed, parameter-free, group-normalised; the linear DP-SGD defense on them."""
import numpy as np
import pytest

from mi_defense.features.scatter import ScatterFeatures, group_normalize, n_channels, scatter_features
from mi_defense.tfenv import tf


def test_channel_count_is_tramer_and_boneh_81_for_j2_l8():
    assert n_channels(2, 8) == 81 and n_channels(1, 8) == 9 and n_channels(3, 4) == 1 + 12 + 48


def test_group_normalize_known_answer():
    """Two groups of one 1x2 channel each: [1, 3] -> [-1, 1] (mean 2, variance 1) and
    [0, 0] -> [0, 0] (variance 0: the eps keeps it finite)."""
    s = np.array([[[[1.0, 3.0]], [[0.0, 0.0]]]], np.float32)          # (B=1, K=2, h=1, w=2)
    out = group_normalize(s, groups=2, eps=1e-12).numpy()
    np.testing.assert_allclose(out[0, 0, 0], [-1.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(out[0, 1, 0], [0.0, 0.0], atol=1e-5)


@pytest.mark.slow
def test_scatter_features_are_fixed():
    layer = ScatterFeatures((16, 16, 1))
    assert layer.out_shape == (81, 4, 4) and layer.dim == 81 * 16
    assert not layer.trainable_weights and not layer.weights
    x = np.random.default_rng(0).random((3, 16, 16, 1)).astype(np.float32)
    a, b = scatter_features(layer, x), scatter_features(ScatterFeatures((16, 16, 1)), x)
    np.testing.assert_array_equal(a, scatter_features(layer, x))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # each group of 3 consecutive scattering channels is centred and scaled, example by example
    raw = layer.scattering(tf.constant(x[..., 0])).numpy().reshape(3, 27, -1).astype(np.float64)
    want = (raw - raw.mean(axis=2, keepdims=True)) / np.sqrt(raw.var(axis=2, keepdims=True) + 1e-5)
    np.testing.assert_allclose(a.reshape(3, 27, -1), want, rtol=1e-3, atol=1e-3)


@pytest.mark.slow
def test_linear_dp_defense_end_to_end():
    from mi_defense.config import TrainConfig
    from mi_defense.config import DefenseSpec
    from mi_defense.defenses import DefenseContext, make_defense

    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    x = rng.random((40, 16, 16, 1)).astype(np.float32)
    x[y == 1, :8] += 1.0                                                 # class 1: bright top half
    ctx = DefenseContext(2, (16, 16, 1), TrainConfig(width=8, depth=2))
    res = make_defense(DefenseSpec.parse("dpsgd-linear:eps=8,steps=20,batch=20"), ctx).fit(x, y, seed=0)
    m = res.metadata
    assert m["epsilon"] <= 8 and m["delta"] == 1e-5 and m["noise_multiplier"] > 0
    assert "(epsilon=" in m["privacy_statement"] and "entropy" in m["privacy_statement"]
    assert "scattering" in m["recipe"]["feature_map"] and m["recipe"]["loss"] == "xent"
    logits = res.model(tf.constant(x)).numpy()
    assert logits.shape == (40, 2) and np.isfinite(logits).all()
    assert [v.name.split("/")[-1] for v in res.model.trainable_variables] == ["kernel:0", "bias:0"]
