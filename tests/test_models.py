import numpy as np
import pytest

from mi_defense.cli import main
from mi_defense.models import ConvNet, MLP, fresh_weights
from mi_defense.tfenv import tf


def test_convnet_features_and_parameters_width128_depth3():
    m = ConvNet((28, 28, 1), 10, width=128, depth=3, norm="none")
    # padding 3 on 28x28 -> 32x32 -> 16 -> 8 -> 4; last block has 128*4 channels
    assert m.feature_dim == 4 * 4 * 512
    expected = (9 * 1 * 128 + 128) + (9 * 128 * 256 + 256) + (9 * 256 * 512 + 512) + (8192 * 10 + 10)
    assert m.count_params() == expected == 1558538
    assert m.features(tf.zeros((2, 28, 28, 1))).shape == (2, 8192)


@pytest.mark.parametrize("norm", ["batch", "instance", "layer"])
def test_convnet_norms_only_after_first_block(norm):
    m = ConvNet((8, 8, 1), 3, width=4, depth=3, norm=norm)
    names = {v.name.split("/")[1] for v in m.variables}
    assert "norm0" not in names and {"norm1", "norm2"} <= names
    assert m(tf.ones((2, 8, 8, 1)), training=True).shape == (2, 3)


def test_mlp_and_fresh_weights():
    m = MLP((12,), 2, width=16, depth=2)
    assert m.feature_dim == 16
    w = fresh_weights(m, tf.constant([0, 1], tf.int64))
    w2 = fresh_weights(m, tf.constant([0, 1], tf.int64))
    w3 = fresh_weights(m, tf.constant([0, 2], tf.int64))
    assert all(np.array_equal(a, b) for a, b in zip(w, w2))
    assert not np.allclose(w[0], w3[0])
    std = float(tf.math.reduce_std(fresh_weights(ConvNet((8, 8, 1), 2, width=64, depth=2), tf.constant([1, 1], tf.int64))[2]))
    assert abs(std - np.sqrt(1.0 / (9 * 64))) < 0.15 * np.sqrt(1.0 / (9 * 64))  # LeCun normal


def test_cli_help_and_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for cmd in ("data", "distill", "evaluate", "audit", "run", "report", "bench"):
        assert cmd in out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "mi-defense" in capsys.readouterr().out
