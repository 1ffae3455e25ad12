"""Networks: FRePo's ConvNet for images and an MLP for tabular data.

ConvNet ("Dataset Distillation using Neural Feature Regression", Zhou et al. 2022):
``depth`` blocks; block ``i`` has ``width * 2**i`` channels and is
``[normalisation (blocks after the first only)] -> 3x3 conv (bias) -> ReLU -> 2x2 avg pool``.
``norm="group"`` is group normalisation ("Group Normalization", Wu & He 2018) with 16
groups (fewer when the channels do not divide): it normalises each example on its own, so
unlike batch normalisation it keeps per-example gradients independent, as DP-SGD needs
("Unlocking High-Accuracy Differentially Private Image Classification through Scale",
De et al. 2022).
For 1-channel 28x28 input the first convolution pads by 3 (so MNIST gives 4x4 features
at depth 3); other convolutions use 'same' padding. The flattened output of the last
block is the penultimate *feature* vector on which FRePo builds its kernel; a Dense
layer maps it to the class outputs. Weights are LeCun-normal, biases zero.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

from mi_defense.errors import UserError
from mi_defense.tfenv import tf

NORMS = ("none", "batch", "instance", "layer", "group")
GROUPS = 16  # group normalisation's groups (De et al.)


def _norm_layer(norm: str, name: str, bn_momentum: float = 0.9, channels: int = 0):
    if norm == "batch":  # Keras' momentum is the old statistics' weight, as Flax's (FRePo's reference Conv uses 0.1)
        return tf.keras.layers.BatchNormalization(momentum=bn_momentum, epsilon=1e-5, name=name)
    if norm == "instance":
        return tf.keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    if norm == "layer":
        return tf.keras.layers.LayerNormalization(axis=[1, 2, 3], epsilon=1e-5, name=name)
    if norm == "group":
        return tf.keras.layers.GroupNormalization(groups=math.gcd(GROUPS, channels) or 1, epsilon=1e-5, name=name)
    return None


def _kinit(seed: Optional[int], i: int):
    return tf.keras.initializers.LecunNormal(seed=None if seed is None else seed * 1000 + i)


def check_depth(input_shape, depth: int) -> None:
    """Refuse a ConvNet deeper than the images allow (each block halves their size)."""
    if len(input_shape) != 3:
        return
    h, w, c = input_shape
    side = min(h, w) + (4 if (c == 1 and h == 28 and w == 28) else 0)
    max_depth = int(math.floor(math.log2(side))) if side >= 2 else 0
    if depth > max_depth:
        raise UserError(f"{h}x{w} images support a ConvNet depth of at most {max_depth} (each block halves the size); "
                        f"lower depth from {depth}")


class FeatureModel(tf.keras.Model):
    """A network whose output is ``head(features(x))``; FRePo's kernel uses ``features``."""

    def call(self, x, training=False):
        return self.head(self.features(x, training=training))

    @property
    def feature_dim(self) -> int:
        return int(self.head.kernel.shape[0])


@tf.custom_gradient
def conv3x3_relu(x, kernel, bias):
    """``relu(conv_same(x, K) + b)`` for a 3x3 kernel at stride 1, whose input gradient is
    itself a forward convolution.

    With ``z = conv_same(x, K) + b`` and ``dz = dy * 1[z > 0]``, the gradients are
    ``dx = conv_same(dz, K')`` with ``K'[i, j, o, c] = K[2 - i, 2 - j, c, o]`` (the kernel
    flipped in space, its channel axes swapped; exact for odd kernels at stride 1 and
    'same' padding), ``dK`` the usual filter gradient and ``db = sum dz``. The value is
    that of the built-in gradient up to float rounding; the input gradient runs as the
    device's forward convolution kernel, which on CPU (oneDNN) is much faster than its
    ``Conv2DBackpropInput`` on the ConvNet's layers (FRePo's step went from 0.85 to 0.65 s,
    ``reports/bench/conv-input-grad/``), and is cuDNN's forward convolution on a GPU.
    FRePo's meta-gradient and every training step take it.
    """
    y = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias))

    def grad(dy):
        dz = tf.raw_ops.ReluGrad(gradients=dy, features=y)
        dx = tf.nn.conv2d(dz, tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2]), 1, "SAME")
        dk = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel), out_backprop=dz,
                                             strides=[1, 1, 1, 1], padding="SAME")
        return dx, dk, tf.reduce_sum(dz, axis=[0, 1, 2])

    return y, grad


class ConvNet(FeatureModel):
    """FRePo's ConvNet. ``features(x)`` returns the penultimate features."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, width: int = 128, depth: int = 3,
                 norm: str = "none", seed: Optional[int] = None, name: str = "convnet", bn_momentum: float = 0.9):
        super().__init__(name=name)
        if norm not in NORMS:
            raise UserError(f"unknown normalisation '{norm}'; use one of {', '.join(NORMS)}")
        if depth < 1 or width < 1:
            raise UserError("ConvNet depth and width must be positive")
        self.config = dict(input_shape=tuple(int(s) for s in input_shape), num_classes=int(num_classes),
                           width=int(width), depth=int(depth), norm=norm)
        h, w, c = self.config["input_shape"]
        self.pad_first = c == 1 and h == 28 and w == 28
        check_depth(self.config["input_shape"], depth)
        self.blocks = []
        for i in range(depth):
            norm_l = _norm_layer(norm, f"norm{i}", bn_momentum, width * 2 ** (i - 1)) if i > 0 else None
            conv = tf.keras.layers.Conv2D(width * 2 ** i, 3, padding="valid" if (i == 0 and self.pad_first) else "same",
                                          kernel_initializer=_kinit(seed, i), bias_initializer="zeros", name=f"conv{i}")
            self.blocks.append((norm_l, conv))
            for layer in (norm_l, conv):
                if layer is not None:
                    setattr(self, layer.name, layer)  # track for Keras
        self.head = tf.keras.layers.Dense(num_classes, kernel_initializer=_kinit(seed, depth), bias_initializer="zeros",
                                          name="head")
        self(tf.zeros((1, h, w, c)))  # build

    def features(self, x, training=False):
        for i, (norm_l, conv) in enumerate(self.blocks):
            if norm_l is not None:
                x = norm_l(x, training=training)
            if i == 0 and self.pad_first:
                x = tf.nn.relu(conv(tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]])))  # 'valid'
            else:
                if not conv.built:  # as the layer's own call would build it, under its name
                    with tf.name_scope(conv.name):
                        conv.build(x.shape)
                x = conv3x3_relu(x, tf.convert_to_tensor(conv.kernel), tf.convert_to_tensor(conv.bias))
            x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
        return tf.reshape(x, [tf.shape(x)[0], -1])

    def conv_flops_per_example(self) -> int:
        """Multiply-accumulates x2 of the convolutions and the head, forward pass."""
        h, w, c = self.config["input_shape"]
        if self.pad_first:
            h, w = h + 6 - 2, w + 6 - 2
        flops = 0
        for _, conv in self.blocks:
            cout = conv.filters
            flops += 2 * h * w * 9 * c * cout
            c, h, w = cout, h // 2, w // 2
        flops += 2 * self.feature_dim * self.config["num_classes"]
        return flops


class MLP(FeatureModel):
    """A ReLU multilayer perceptron; ``features(x)`` is the last hidden layer."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, width: int = 256, depth: int = 2,
                 norm: str = "none", seed: Optional[int] = None, name: str = "mlp"):
        super().__init__(name=name)
        self.config = dict(input_shape=tuple(int(s) for s in input_shape), num_classes=int(num_classes),
                           width=int(width), depth=int(depth), norm=norm)
        self.hidden = [tf.keras.layers.Dense(width, activation="relu", kernel_initializer=_kinit(seed, i),
                                             name=f"dense{i}")
                       for i in range(depth)]
        for layer in self.hidden:
            setattr(self, layer.name, layer)
        self.head = tf.keras.layers.Dense(num_classes, kernel_initializer=_kinit(seed, depth), name="head")
        self(tf.zeros((1,) + self.config["input_shape"]))

    def features(self, x, training=False):
        for layer in self.hidden:
            x = layer(x)
        return x

    def conv_flops_per_example(self) -> int:
        return sum(2 * int(v.shape[0]) * int(v.shape[1]) for v in self.trainable_variables if len(v.shape) == 2)


def build_model(input_shape, num_classes: int, width: int = 128, depth: int = 3, norm: str = "none",
                seed: Optional[int] = None, bn_momentum: float = 0.9):
    """A ConvNet for image input ``(H, W, C)``, an MLP for feature vectors ``(D,)``."""
    if len(input_shape) == 3:
        return ConvNet(input_shape, num_classes, width=width, depth=depth, norm=norm, seed=seed,
                       bn_momentum=bn_momentum)
    return MLP(input_shape, num_classes, width=width, depth=min(depth, 3), norm=norm, seed=seed)


def fresh_weights(model: tf.keras.Model, seed) -> List[tf.Tensor]:
    """New initial values for every variable of ``model`` (graph-safe, stateless).

    ``seed`` is a shape-[2] int tensor. Kernels get LeCun-normal values (truncated normal,
    std ``sqrt(1/fan_in) / 0.8796``, as Keras' ``LecunNormal``), biases and shifts zero,
    scales and running variances one.
    """
    out = []
    for i, v in enumerate(model.variables):
        name = v.name.split("/")[-1].split(":")[0]
        shape = v.shape
        if name == "kernel":
            fan_in = int(math.prod(shape[:-1]))
            std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
            s = tf.stack([seed[0], seed[1] * 1009 + i])
            out.append(tf.random.stateless_truncated_normal(shape, seed=s, stddev=std, dtype=v.dtype))
        elif name in ("gamma", "moving_variance"):
            out.append(tf.ones(shape, v.dtype))
        else:  # bias, beta, moving_mean
            out.append(tf.zeros(shape, v.dtype))
    return out
