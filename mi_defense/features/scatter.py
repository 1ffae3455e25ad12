"""ScatterNet features: a fixed wavelet scattering transform, then group normalisation.

"Differentially Private Learning Needs Better Features (or Much More Data)" (Tramer &
Boneh 2021) trains linear models with DP-SGD on the scattering transform of "Invariant
Scattering Convolution Networks" (Bruna & Mallat 2013). For an image ``x`` and Morlet
wavelets ``psi_{j,l}`` at scales ``j < J`` and angles ``l < L``, with the Gaussian low-pass
``phi_J`` and subsampling by ``2^J``,

    S0 x = x * phi_J,
    S1 x = |x * psi_{j1,l1}| * phi_J,
    S2 x = ||x * psi_{j1,l1}| * psi_{j2,l2}| * phi_J      (j2 > j1),

so ``1 + J L + L^2 J (J - 1) / 2`` channels (81 for ``J = 2, L = 8``) of size
``H / 2^J x W / 2^J`` per input channel (81 x 7 x 7 for 28 x 28 MNIST). Nothing in it is
learned or fitted to data, so computing it on private examples spends no privacy.

Tramer & Boneh then normalise each example on its own: ``G`` groups of consecutive
channels, each centred and scaled to unit variance over its channels and pixels, no
learned scale or shift (``group_normalize``). Per-example, data-independent, free.

The transform is kymatio's (``kymatio.tensorflow.Scattering2D``). The wavelets have zero
mean, so ``S1``, ``S2`` ignore a shift of the pixels and scale with them, and the group
normalisation divides the scale out again (up to its ``eps``): images rescaled as
``a x + b`` (the standardised pixels of an audit's model space) give the features of the
pixels up to the low-pass channel ``S0``, which carries the shift.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mi_defense.models import FeatureModel
from mi_defense.tfenv import tf

J, L, GROUPS = 2, 8, 27  # Tramer & Boneh's ScatterNet for 28 x 28 / 32 x 32 images


def _kymatio_scattering2d():
    """kymatio 0.3.0's TensorFlow ``Scattering2D``. kymatio imports SciPy's ``sph_harm`` for
    its 3-D transform (unused here), which SciPy 1.15 renamed ``sph_harm_y``; the old name
    is restored for that import when it is missing."""
    import scipy.special

    if not hasattr(scipy.special, "sph_harm"):
        scipy.special.sph_harm = lambda m, n, theta, phi: scipy.special.sph_harm_y(n, m, phi, theta)
    from kymatio.tensorflow import Scattering2D

    return Scattering2D


def n_channels(j: int = J, angles: int = L) -> int:
    """Scattering channels per input channel up to order 2: ``1 + J L + L^2 J (J - 1) / 2`` (``L`` = ``angles``)."""
    return 1 + j * angles + angles * angles * j * (j - 1) // 2


def group_normalize(s, groups: int = GROUPS, eps: float = 1e-5):
    """Group normalisation without learned parameters ("Group Normalization", Wu & He 2018).

    ``s``: ``(B, K, h, w)``. The ``K`` channels are cut into ``groups`` groups of ``K / G``
    consecutive channels; each group ``g`` of each example becomes
    ``(s - mu_g) / sqrt(var_g + eps)`` with ``mu_g``, ``var_g`` the mean and (biased)
    variance over the group's channels and pixels.
    """
    s = tf.convert_to_tensor(s, tf.float32)
    b, k, h, w = (tf.shape(s)[0], s.shape[1], s.shape[2], s.shape[3])
    g = tf.reshape(s, [b, groups, k // groups, h, w])
    mean, var = tf.nn.moments(g, axes=[2, 3, 4], keepdims=True)
    return tf.reshape((g - mean) * tf.math.rsqrt(var + eps), [b, k, h, w])


class ScatterFeatures(tf.keras.layers.Layer):
    """Images ``(B, H, W, C)`` -> flattened, group-normalised scattering features
    ``(B, C * K * H/2^J * W/2^J)``. No weights; ``trainable`` is False."""

    def __init__(self, input_shape: Sequence[int], j: int = J, groups: int = GROUPS, name: str = "scatter"):
        super().__init__(name=name, trainable=False)
        h, w, c = (int(v) for v in input_shape)
        self.j, self.c, self.groups = j, c, groups
        self.k = c * n_channels(j)
        if self.k % groups:
            raise ValueError(f"{self.k} scattering channels do not split into {groups} groups")
        self.scattering = _kymatio_scattering2d()(J=j, shape=(h, w), L=L)
        self.out_shape = (self.k, h // 2 ** j, w // 2 ** j)

    @property
    def dim(self) -> int:
        return int(np.prod(self.out_shape))

    def call(self, x):
        x = tf.transpose(tf.convert_to_tensor(x, tf.float32), [0, 3, 1, 2])  # (B, C, H, W)
        s = self.scattering(x)                                                 # (B, C, K0, h, w)
        s = tf.reshape(s, [tf.shape(x)[0], self.k, self.out_shape[1], self.out_shape[2]])
        return tf.reshape(group_normalize(s, self.groups), [tf.shape(x)[0], self.dim])


def scatter_features(layer: ScatterFeatures, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """``layer(x)`` in batches, as float32 (one compiled graph per layer)."""
    fn = getattr(layer, "_compiled", None)
    if fn is None:
        fn = tf.function(lambda b: layer(b))
        object.__setattr__(layer, "_compiled", fn)  # not a tracked attribute of the layer
    out = [fn(tf.constant(x[i:i + batch], tf.float32)).numpy() for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros((0, layer.dim), np.float32)


DESCRIPTION = (f"the scattering transform (kymatio Scattering2D, J={J}, L={L}, order 2) with group normalisation "
               f"({GROUPS} groups, no learned parameters)")


class LinearHead(tf.keras.Model):
    """``f -> head(f)`` on precomputed features: the part of ``ScatterLinear`` DP-SGD trains."""

    def __init__(self, head: tf.keras.layers.Dense, dim: int, name: str = "linear"):
        super().__init__(name=name)
        self.head = head
        self(tf.zeros((1, int(dim))))

    def call(self, f, training=False):
        return self.head(f)


class ScatterLinear(FeatureModel):
    """Images -> ``ScatterFeatures`` (fixed) -> Dense logits. Only the Dense layer has weights
    (initialised to zero, so nothing depends on a seed)."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, name: str = "scatter_linear"):
        super().__init__(name=name)
        self.config = dict(input_shape=tuple(int(s) for s in input_shape), num_classes=int(num_classes),
                           feature_map=DESCRIPTION)
        self.scatter = ScatterFeatures(input_shape)
        self.head = tf.keras.layers.Dense(num_classes, kernel_initializer="zeros", bias_initializer="zeros",
                                          name="head")
        self(tf.zeros((1,) + self.config["input_shape"]))

    def features(self, x, training=False):
        return self.scatter(x)
