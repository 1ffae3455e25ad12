"""DP-FRePo: FRePo whose released synthetic set is (epsilon, delta)-differentially private.

One outer step of DP-FRePo, for ``N`` private examples:

1. every private example joins the real batch independently with probability
   ``q = batch_real / N`` (Poisson sampling, from a secret seed);
2. each sampled example's gradient of its KRR loss term is clipped to norm ``C`` in one of
   two spaces (``config.CLIP_SPACES``, ``DistillConfig.clip_space``; their mechanisms are
   ``SURROGATES``): with respect to the KRR *readout* ``h = Y_s^T (K_ss + rho I)^-1 F_s``
   (default; ``distill.dp_readout``) or with respect to the synthetic *features and
   labels* ``(F_s, Y_s)`` (``distill.dp_krr``); the
   clipped gradients are summed and Gaussian noise ``N(0, sigma^2 C^2 I)`` is added, then
   divided by the expected batch ``q N``;
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

Where to clip. Not the pixels: a per-example gradient with respect to the synthetic images
needs one backward pass through the network per real example. With respect to
``(F_s, Y_s)`` the per-example gradient has a closed form whose norm costs ``O(n^2 + n d)``
per example, and its noise is projected by the network's Jacobian onto the directions the
pixels can move. With respect to the readout ``h`` (``C x d``) the per-example gradient is
the rank-one ``r_i f_i^T``: its norm is ``||r_i|| ||f_i||``, and the noise lives in ``C d``
dimensions instead of ``n_s (d + C)`` (5 760 against 58 600 for 10 images per class of 10
classes and 576 features), for the same unclipped gradient. The readout is the default:
at the ``quick`` budget (README, DP-FRePo) it scored 10-11 points higher at epsilon 10 on
MNIST and Fashion-MNIST (one set each), and at epsilon 1 (two sets each) about 5 higher on
Fashion-MNIST and the same on MNIST.

The sampling and noise seeds are drawn from the operating system's entropy and kept only
in the (private) checkpoint: a seed written into the release would let anyone regenerate
the noise. Per-step losses on the private batch are not recorded.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from mi_defense.accounting import calibrate_noise, check_delta, dp_delta, epsilon_for
from mi_defense.config import CLIP_SPACES, DistillConfig
from mi_defense.distillation.dp_krr import clipped_gradient_sum
from mi_defense.distillation.dp_readout import clipped_readout_sum, krr_readout
from mi_defense.distillation.krr import label_margin_loss
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
    clip_space: str = "readout"  # CLIP_SPACES key

    @classmethod
    def for_config(cls, cfg: DistillConfig, n_private: int) -> "DPPlan":
        q = min(1.0, cfg.batch_real / n_private)
        delta = check_delta(cfg.delta, n_private, "delta") if cfg.delta is not None else dp_delta(n_private)
        sigma = calibrate_noise(cfg.epsilon, q, cfg.steps, delta)
        return cls(epsilon_for(sigma, q, cfg.steps, delta), float(cfg.epsilon), delta, sigma, q, cfg.steps, cfg.clip,
                   n_private, cfg.clip_space)

    @property
    def expected_batch(self) -> float:
        return self.sampling_rate * self.n_private

    def statement(self, normalisation: str = "the input normalisation is fixed, not fitted to the private data") -> str:
        """The guarantee in words; ``normalisation`` says how the inputs were normalised."""
        return (f"(epsilon={self.epsilon:.3g}, delta={self.delta:.3g})-differential privacy for each private record "
                f"under adding or removing one record, by the RDP accountant of dp_accounting over {self.steps} "
                f"DP-FRePo steps with Poisson sampling at rate q={self.sampling_rate:.4g} (expected batch "
                f"{self.expected_batch:.0f}), noise multiplier {self.noise_multiplier:.4g} and per-example clipping "
                f"norm {self.clip:g} on the gradient with respect to {CLIP_SPACES[self.clip_space]}. The number of "
                f"private records, N={self.n_private}, and the list of classes are treated as public: N sets q and the "
                "normalisation by the expected batch, and the guarantee is that of the mechanism with these settings "
                "fixed; it protects which records were used, not how many. Sampling and noise "
                "were drawn from the operating system's entropy and are not published. The start copied no member; "
                f"{normalisation}. The guarantee covers the released synthetic set and everything computed from it; "
                "the run record kept with the data holder (split, seeds, timings) is not covered and must not be "
                "released.")

    def to_json(self) -> dict:
        return {**asdict(self), "expected_batch": self.expected_batch,
                "accountant": "dp_accounting RDP (Poisson-subsampled Gaussian)",
                "adjacency": "add or remove one record", "n_private_is_public": True,
                "clipped": f"per-example gradient of the KRR loss with respect to {CLIP_SPACES[self.clip_space]}",
                "statement": self.statement()}


def secret_key():
    """Two 63-bit seeds from the operating system's entropy (sampling, noise)."""
    from mi_defense.entropy import secret_key as draw

    return draw(2)


def _noise(g, std, seed):
    return g + std * tf.random.stateless_normal(tf.shape(g), seed, dtype=tf.float64)


def _feature_space(fr, plan: DPPlan, key, step, f_s, ys, f_t, y_t):
    """Clip ``dl_i/d(F_s, Y_s)`` (``distill.dp_krr``); the noisy sum's inner product with ``(F_s, Y_s)``."""
    g_f, g_y, _ = clipped_gradient_sum(tf.stop_gradient(f_s), tf.stop_gradient(ys), f_t, y_t, fr.cfg.reg, plan.clip)
    std = plan.noise_multiplier * plan.clip
    g_f = tf.cast(_noise(g_f, std, tf.stack([key[1], 2 * step])) / plan.expected_batch, tf.float32)
    g_y = tf.cast(_noise(g_y, std, tf.stack([key[1], 2 * step + 1])) / plan.expected_batch, tf.float32)
    return tf.reduce_sum(g_f * f_s) + tf.reduce_sum(g_y * ys)


def _readout_space(fr, plan: DPPlan, key, step, f_s, ys, f_t, y_t):
    """Clip ``dl_i/dh = r_i f_i^T`` (``distill.dp_readout``); the noisy sum's inner product with ``h(F_s, Y_s)``."""
    h = krr_readout(tf.cast(f_s, tf.float64), tf.cast(ys, tf.float64), fr.cfg.reg)
    g, _ = clipped_readout_sum(tf.stop_gradient(h), f_t, y_t, plan.clip)
    g = _noise(g, plan.noise_multiplier * plan.clip, tf.stack([key[1], 2 * step])) / plan.expected_batch
    return tf.cast(tf.reduce_sum(g * h), tf.float32)


# The mechanism of each clipping space (``config.CLIP_SPACES`` names them and what each
# clips): ``surrogate(fr, plan, key, step, F_s, Y_s, F_t, Y_t)`` returns a scalar whose
# gradient with respect to the synthetic set is the noisy, clipped KRR gradient.
SURROGATES = {"readout": _readout_space, "features": _feature_space}


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
        lab = label_margin_loss(fr.y_syn, fr.num_classes) if cfg.learn_labels else tf.constant(0.0)
        # d/d(learnable) of the noisy gradient's surrogate + margin: carried back through the network
        surrogate = SURROGATES[plan.clip_space](fr, plan, key, step, f_s, ys, f_t, y_t) + lab
    grads = tape.gradient(surrogate, fr.learnable)
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
    return grads, finite
