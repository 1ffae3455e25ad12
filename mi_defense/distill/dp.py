"""DP-FRePo: FRePo whose released synthetic set is (epsilon, delta)-differentially private.

One outer step of DP-FRePo, for ``N`` private examples:

1. every private example joins the real batch independently with probability
   ``q = batch_real / N`` (Poisson sampling, from a secret seed);
2. each sampled example's gradient of its KRR loss term with respect to the synthetic
   *features and labels* ``(F_s, Y_s)`` is clipped to norm ``C`` (closed form:
   ``distill.dp_krr``), the clipped gradients are summed and Gaussian noise
   ``N(0, sigma^2 C^2 I)`` is added, then divided by the expected batch ``q N``;
3. the noisy gradient is carried back to the synthetic pixels through the network
   (evaluated on synthetic images only) and added to the label-margin gradient, which
   involves no private data; LAMB updates the set as in FRePo.

Why it is private: step 2 is the Poisson-subsampled Gaussian mechanism; everything else
reads only the previous (already private) synthetic set and the step's noisy release, so
it is post-processing. The pool models train only on synthetic images, real features are
computed in inference mode (no batch statistic couples examples), the start copies no
member (``init=noise``, ``smooth-noise`` or a public set), and no choice is made on private data (no
best-checkpoint selection). ``dp_accounting``'s RDP accountant gives ``epsilon`` over the
actual number of steps and sampling rate (``mi_defense.accounting``).

Clipping in feature space rather than pixel space: the per-example gradient with respect
to ``(F_s, Y_s)`` has a closed form whose norm costs ``O(n^2 + n d)`` per example, while
a per-example gradient with respect to the pixels needs one backward pass through the
network per real example. Feature-space noise is also projected by the network's Jacobian
onto the directions the pixels can move, rather than spread over every pixel.

The sampling and noise seeds are drawn from the operating system's entropy and kept only
in the (private) checkpoint: a seed written into the release would let anyone regenerate
the noise. Per-step losses on the private batch are not recorded.
"""
from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass

import numpy as np

from mi_defense.accounting import calibrate_noise, dp_delta, epsilon_for
from mi_defense.config import DistillConfig
from mi_defense.distill.dp_krr import clipped_gradient_sum
from mi_defense.distill.krr import label_margin_loss
from mi_defense.tfenv import tf


@dataclass(frozen=True)
class DPPlan:
    """The mechanism DP-FRePo runs and the guarantee it gives."""

    epsilon: float            # achieved by the accountant (at most the target)
    target_epsilon: float
    delta: float
    noise_multiplier: float   # sigma
    sampling_rate: float      # q
    steps: int
    clip: float
    n_private: int

    @classmethod
    def for_config(cls, cfg: DistillConfig, n_private: int) -> "DPPlan":
        q = min(1.0, cfg.batch_real / n_private)
        delta = cfg.delta if cfg.delta is not None else dp_delta(n_private)
        sigma = calibrate_noise(cfg.epsilon, q, cfg.steps, delta)
        return cls(epsilon_for(sigma, q, cfg.steps, delta), float(cfg.epsilon), delta, sigma, q, cfg.steps, cfg.clip, n_private)

    @property
    def expected_batch(self) -> float:
        return self.sampling_rate * self.n_private

    def statement(self, normalisation: str = "the input normalisation is fixed, not fitted to the private data") -> str:
        """The guarantee in words; ``normalisation`` says how the inputs were normalised."""
        return (f"(epsilon={self.epsilon:.3g}, delta={self.delta:.3g})-differential privacy for each of the {self.n_private} "
                f"private examples, by the RDP accountant of dp_accounting over {self.steps} DP-FRePo steps with Poisson "
                f"sampling at rate q={self.sampling_rate:.4g} (expected batch {self.expected_batch:.0f}), noise multiplier "
                f"{self.noise_multiplier:.4g} and per-example clipping norm {self.clip:g} on the gradient with respect to the "
                "synthetic features and labels. The start copied no member. The guarantee covers the synthetic set and "
                f"everything computed from it; {normalisation}.")

    def to_json(self) -> dict:
        return {**asdict(self), "expected_batch": self.expected_batch, "accountant": "dp_accounting RDP (Poisson-subsampled Gaussian)",
                "clipped": "per-example gradient of the KRR loss with respect to the synthetic features and labels",
                "statement": self.statement()}


def secret_key() -> np.ndarray:
    """Two 63-bit seeds from the operating system's entropy (sampling, noise)."""
    return np.array([secrets.randbits(63), secrets.randbits(63)], np.int64)


def private_gradients(fr, plan: DPPlan, key, step):
    """DP-FRePo's gradients for ``fr.learnable`` (see the module docstring): a list of
    tensors and whether they are finite. ``fr`` is a ``FRePo`` built with ``cfg.epsilon``."""
    cfg = fr.cfg
    take = tf.random.stateless_uniform([fr.n_real], tf.stack([key[0], step])) < plan.sampling_rate
    ids = tf.where(take)[:, 0]
    f_t = tf.stop_gradient(fr.model.features(fr.real.take(ids), training=False))
    y_t = tf.gather(fr.y_real, ids)
    with tf.GradientTape() as tape:
        f_s, ys = fr.synthetic_features()
        g_f, g_y, _ = clipped_gradient_sum(tf.stop_gradient(f_s), tf.stop_gradient(ys), f_t, y_t, cfg.reg, plan.clip)
        std = plan.noise_multiplier * plan.clip
        g_f = g_f + std * tf.random.stateless_normal(tf.shape(g_f), tf.stack([key[1], 2 * step]), dtype=tf.float64)
        g_y = g_y + std * tf.random.stateless_normal(tf.shape(g_y), tf.stack([key[1], 2 * step + 1]), dtype=tf.float64)
        scale = 1.0 / plan.expected_batch
        g_f, g_y = tf.cast(g_f * scale, tf.float32), tf.cast(g_y * scale, tf.float32)
        lab = label_margin_loss(fr.y_syn, fr.num_classes) if cfg.learn_labels else tf.constant(0.0)
        # d/d(learnable) of <g_f, F_s> + <g_y, Y_s> + margin: the noisy gradient carried back through the network
        surrogate = tf.reduce_sum(g_f * f_s) + tf.reduce_sum(g_y * ys) + lab
    grads = tape.gradient(surrogate, fr.learnable)
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
    return grads, finite
