import numpy as np
import pytest

from mi_defense.cli import main
from mi_defense.models import ConvNet, MLP, conv3x3_relu, fresh_weights
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


def test_conv3x3_relu_gradients_equal_the_builtin_ones():
    """The input gradient computed as a forward convolution with the flipped, transposed
    kernel agrees with TensorFlow's own gradient of relu(conv + b), in value and in graph mode."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 9, 7, 5)), tf.float32)  # odd, non-square sizes catch a wrong flip or padding
    k = tf.constant(rng.normal(size=(3, 3, 5, 6)), tf.float32)
    b = tf.constant(rng.normal(size=(6,)), tf.float32)
    w = tf.constant(rng.normal(size=(3, 9, 7, 6)), tf.float32)  # a non-uniform upstream gradient

    def grads(f):
        with tf.GradientTape() as tape:
            tape.watch([x, k, b])
            y = f(x, k, b)
            loss = tf.reduce_sum(w * y)
        return [y] + tape.gradient(loss, [x, k, b])

    ref = grads(lambda x, k, b: tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME") + b))
    for got in (grads(conv3x3_relu), tf.function(lambda: grads(conv3x3_relu))()):
        for a, r in zip(got, ref):
            np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-5, atol=1e-5)
    assert np.abs(ref[1].numpy()).max() > 1.0  # the comparison is not between zeros


def test_convnet_variables_keep_their_layer_names():
    """Layers built outside their own call keep the names checkpoints and ``fresh_weights`` see."""
    m = ConvNet((32, 32, 3), 10, width=4, depth=2, norm="batch")
    names = [v.name for v in m.variables]
    assert names[:2] == ["convnet/conv0/kernel:0", "convnet/conv0/bias:0"] and "convnet/conv1/kernel:0" in names


def test_mlp_and_fresh_weights():
    m = MLP((12,), 2, width=16, depth=2)
    assert m.feature_dim == 16
    w = fresh_weights(m, tf.constant([0, 1], tf.int64))
    w2 = fresh_weights(m, tf.constant([0, 1], tf.int64))
    w3 = fresh_weights(m, tf.constant([0, 2], tf.int64))
    assert all(np.array_equal(a, b) for a, b in zip(w, w2))
    assert not np.allclose(w[0], w3[0])
    std = float(tf.math.reduce_std(fresh_weights(ConvNet((8, 8, 1), 2, width=64, depth=2),
                                                 tf.constant([1, 1], tf.int64))[2]))
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
