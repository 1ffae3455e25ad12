"""DP-SGD ("Deep Learning with Differential Privacy", Abadi et al. 2016) with
tensorflow-privacy, on a ConvNet (``dpsgd``) or on fixed ScatterNet features (``dpsgd-linear``).

**Mechanism.** The model is tensorflow-privacy's DP Keras model (``make_dp_model_class``):
per-example gradients by ``tf.vectorized_map``, each clipped to L2 norm ``C``, summed, plus
Gaussian noise ``N(0, sigma^2 C^2 I)``, divided by the expected batch size ``B``. Batches
are drawn by Poisson sampling (each member independently with probability ``q = B / n``)
and padded with zero-weight examples to a fixed size ``cap``, so the compiled step never
retraces; a batch larger than ``cap`` is truncated (``sampling_cap`` makes that rare enough
to be covered by delta, see below). ``sigma`` is calibrated with ``dp_accounting``'s RDP
accountant ("Renyi Differential Privacy of the Sampled Gaussian Mechanism", Mironov,
Talwar & Zhang 2019) over the actual number of steps.

**Secret randomness.** The Poisson sampling and the noise come from a Philox generator
whose whole state is drawn from the operating system's entropy (``mi_defense.entropy``)
at every ``fit``, never from the run's public seed (from which anyone could regenerate and
subtract the noise). The seed only initialises the weights, which is data-independent.

**Recipes.** ``dpsgd``: FRePo's ConvNet with group normalisation (no batch statistics,
which would mix examples), cross-entropy, SGD with momentum, large batches, cosine decay
and an exponential moving average of the weights, after "Unlocking High-Accuracy
Differentially Private Image Classification through Scale" (De et al. 2022) scaled to a
CPU. ``dpsgd-linear``: a linear classifier with cross-entropy on the group-normalised
scattering transform (``mi_defense.features.scatter``), "Differentially Private Learning
Needs Better Features (or Much More Data)" (Tramer & Boneh 2021). Batch, epochs, learning
rate and clipping norm come from ``config.presets.DPSGD_RECIPES``, tuned at epsilon 1 and 8
on training images disjoint from the reference audits' members (``reports/dpsgd-recipes/``);
the spec's ``eps`` picks the recipe tuned nearest to it (on a log scale), and ``clip,
batch, steps, epochs, lr`` override it. A tabular (MLP) model keeps an untuned Adam recipe.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Optional, Tuple

import numpy as np

from mi_defense.accounting import calibrate_noise, check_delta, dp_delta, epsilon_for  # noqa: F401  (re-exported)
from mi_defense.config import (DPSGD_RECIPES, DPSGD_STEPS, DPSGD_TUNING, EPSILON, FINITE_POSITIVE, POSITIVE_WHOLE,
                               DPSGDRecipe, dpsgd_recipe)
from mi_defense.defenses.base import Defense, DefenseResult, StepNoise
from mi_defense.models import ConvNet, MLP
from mi_defense.tfenv import tf
from mi_defense.training.evaluate import accuracy
from mi_defense.training.schedules import WarmupCosine

TRUNCATION_SHARE = 0.01  # the share of delta that covers truncated batches


def sampling_cap(n: int, q: float, steps: int, epsilon: float, delta: float,
                 share: float = TRUNCATION_SHARE) -> Tuple[int, float]:
    """The smallest batch cap ``c`` whose truncation probability ``p`` meets
    ``(1 + e^epsilon) p <= share * delta``; returns ``(c, p)``.

    A Poisson batch of a data set of ``m`` records holds ``K ~ Binomial(m, q)`` of them;
    truncating it above ``c`` happens in one of ``T`` steps with probability at most
    ``p = T P[K > c]`` (union bound), evaluated at ``m = n + 1``, the largest neighbour under
    add/remove adjacency. The truncated mechanism ``M'`` equals the untruncated ``M`` outside
    that event, so for every output set ``S``
    ``P[M'(D) in S] <= P[M(D) in S] + p <= e^epsilon P[M(D') in S] + delta' + p
    <= e^epsilon P[M'(D') in S] + delta' + (1 + e^epsilon) p``;
    with ``delta' = (1 - share) delta`` for the accountant the total is at most ``delta``.
    """
    from scipy.stats import binom

    m = n + 1
    caps = np.arange(m + 1)
    p = steps * binom.sf(caps, m, min(q, 1.0))  # T P[K > c] for every c
    p[m] = 0.0                                   # K <= m always
    cap = int(np.argmax(p <= share * delta / (1.0 + np.exp(min(epsilon, 700.0)))))
    return cap, float(p[cap])


def _dp_class(base, rng: Optional[tf.random.Generator] = None, expected_batch: Optional[float] = None):
    """tensorflow-privacy's DP version of ``base``. With ``rng``, the noise is drawn from that
    (secret) generator and the noisy sum is divided by ``expected_batch`` instead of the
    padded batch's size; without it, tensorflow-privacy's own step."""
    from tensorflow_privacy.privacy.keras_models.dp_keras_model import make_dp_model_class

    cls = make_dp_model_class(base)
    if rng is None:
        return cls

    class SecretNoiseDPModel(cls):
        def _reduce_per_example_grads(self, stacked_grads):
            summed = tf.reduce_sum(stacked_grads, axis=0)
            if self._noise_multiplier > 0:
                summed += rng.normal(tf.shape(summed), stddev=self._l2_norm_clip * self._noise_multiplier,
                                     dtype=summed.dtype)
            return summed / expected_batch

    SecretNoiseDPModel.__name__ = "DP" + base.__name__
    return SecretNoiseDPModel


def _optimizer(r: DPSGDRecipe, steps: int):
    lr = WarmupCosine(r.lr, int(r.warmup * steps), steps) if r.warmup or r.optimizer == "sgd" else r.lr
    ema = dict(use_ema=True, ema_momentum=r.ema) if r.ema else {}
    if r.optimizer == "adam":
        return tf.keras.optimizers.Adam(lr, **ema)
    return tf.keras.optimizers.SGD(lr, momentum=r.momentum, **ema)


def _xent(y_true, logits):
    return tf.nn.softmax_cross_entropy_with_logits(labels=y_true, logits=logits)


class DPSGD(Defense):
    name = "dpsgd"
    kind = "convnet"                      # the model family whose recipes apply (tabular data: mlp)
    _constraints = {"epsilon": EPSILON, "clip": FINITE_POSITIVE, "batch": POSITIVE_WHOLE, "steps": POSITIVE_WHOLE,
                    "epochs": FINITE_POSITIVE, "lr": FINITE_POSITIVE, "delta": FINITE_POSITIVE}
    required = ("epsilon",)
    example = "dpsgd:eps=8"
    noise_scale = 1.0                     # 1 always; the one-run canary audit sets 0 to show it catches a missing noise

    def __init__(self, ctx, **params):
        super().__init__(ctx, **params)
        # dpsgd (dpsgd-linear keeps its own model), before training
        if ctx.build_model is not None and self.kind == "convnet":
            from mi_defense.defenses.own_model import check_dp_layers

            check_dp_layers(ctx.build_model.probe(ctx.input_shape, ctx.num_classes), ctx.build_model.source)

    def _kind(self) -> str:
        return self.kind if len(self.ctx.input_shape) == 3 else "mlp"

    def recipe(self, n: int) -> Tuple[DPSGDRecipe, int]:
        """The tuned recipe for this epsilon with the spec's overrides, and its number of steps."""
        p = self.params
        r = dpsgd_recipe(self._kind(), p["epsilon"])
        over = {k: p[k] for k in ("clip", "lr", "epochs") if k in p}
        if "batch" in p:
            over["batch"] = int(p["batch"])
        if over:
            r = replace(r, name=r.name + "+" + ",".join(f"{k}={v:g}" for k, v in sorted(over.items())), **over)
        r = replace(r, batch=int(min(r.batch, n)))
        steps = p.get("steps") or self.ctx.real_steps
        if not steps:
            steps = int(math.ceil(r.epochs * n / r.batch)) if r.epochs else DPSGD_STEPS
        return r, int(steps)

    def calibration(self, n: int) -> Tuple[DPSGDRecipe, int, float, float, float]:
        """``(recipe, steps, delta, delta', sigma)`` on ``n`` members: the noise multiplier that
        reaches the spec's epsilon at ``delta' = (1 - TRUNCATION_SHARE) delta`` over the recipe's
        steps at sampling rate ``batch / n`` (the rest of delta covers the capped batches)."""
        delta = check_delta(self.params.get("delta", dp_delta(n)), n, f"defense '{self.name}': delta")
        r, steps = self.recipe(n)
        delta_acc = (1.0 - TRUNCATION_SHARE) * delta
        return r, steps, delta, delta_acc, calibrate_noise(self.params["epsilon"], r.batch / n, steps, delta_acc)

    def step_noise(self, n_private: int) -> StepNoise:
        r, _, delta, _, sigma = self.calibration(n_private)
        return StepNoise("dpsgd", sigma, r.clip, delta, float(self.params["epsilon"]))

    @staticmethod
    def _tuning(r: DPSGDRecipe) -> str:
        tuned = {v.name for k, v in DPSGD_RECIPES.items() if k[1] is not None}
        if r.name in tuned:
            return DPSGD_TUNING
        if r.name.split("+")[0] in tuned:
            return "settings overridden by the defense spec; the default recipe was " + DPSGD_TUNING
        return "untuned"

    def resolved(self):
        return {"recipe_name": self.recipe(10 ** 9)[0].name}

    def planned(self, n_train: int) -> list:
        from mi_defense.progress import Phase

        r, steps = self.recipe(n_train)
        return [Phase("dpsgd", f"{self.name} steps at expected batch {r.batch}", int(steps))]

    def build(self, x: np.ndarray, seed: int, r: DPSGDRecipe, sigma: float, rng, batch: float):
        """``(dp_model, train_inputs, released_model)``: the DP model and the inputs it trains
        on (the members themselves), and the model an attacker queries (the same)."""
        cfg = self.ctx.train
        if self.ctx.build_model is not None:  # the user's model, inside tensorflow-privacy's DP Keras model
            from mi_defense.defenses.own_model import check_dp_layers

            net = self.ctx.build_model(self.ctx.input_shape, self.ctx.num_classes, seed)
            check_dp_layers(net, self.ctx.build_model.source)
            inputs = tf.keras.Input(self.ctx.input_shape)
            model = _dp_class(tf.keras.Model, rng, batch)(r.clip, sigma, None, False, None, inputs=inputs,
                                                          outputs=net(inputs))
            return model, x, model
        base = ConvNet if len(self.ctx.input_shape) == 3 else MLP
        norm = "group" if base is ConvNet else "none"
        model = _dp_class(base, rng, batch)(r.clip, sigma, None, False, None, self.ctx.input_shape,
                                            self.ctx.num_classes, width=cfg.width, depth=cfg.depth, norm=norm,
                                            seed=seed)
        return model, x, model

    def describe(self, r: DPSGDRecipe, steps: int, n: int, sigma: float) -> dict:
        cfg = self.ctx.train
        if self.ctx.build_model is not None:
            # named with its layers below
            return {"architecture": "your model", "norm": "the model's own", "feature_map": "none"}
        arch = (f"ConvNet width {cfg.width} depth {cfg.depth}, group normalisation" if self._kind() == "convnet"
                else f"MLP width {cfg.width} depth {min(cfg.depth, 3)}")
        return {"architecture": arch, "norm": "group" if self._kind() == "convnet" else "none", "feature_map": "none",
                "width": cfg.width, "depth": cfg.depth}

    def fit(self, x, y, seed) -> DefenseResult:
        from mi_defense.entropy import secret_key
        from mi_defense.progress import progress

        t0 = time.time()
        n = len(x)
        epsilon = self.params["epsilon"]
        r, steps, delta, delta_acc, sigma = self.calibration(n)
        q = r.batch / n
        achieved = epsilon_for(sigma, q, steps, delta_acc)
        cap, p_trunc = sampling_cap(n, q, steps, max(achieved, epsilon), delta)
        rng = tf.random.Generator.from_state(secret_key(3), "philox")  # sampling and noise: OS entropy, never stored
        model, inputs, released = self.build(x, seed, r, sigma * self.noise_scale, rng, float(r.batch))
        opt = _optimizer(r, steps)
        model.compile(optimizer=opt, loss=_xent)
        xs = tf.constant(inputs, tf.float32)
        ys = tf.one_hot(tf.constant(y, tf.int32), self.ctx.num_classes)

        @tf.function
        def step_fn():
            ids = tf.where(rng.uniform([n]) < q)[:, 0]                  # Poisson sampling
            count = tf.shape(ids)[0]
            ids = tf.concat([ids, tf.zeros([cap], tf.int64)], 0)[:cap]
            w = tf.cast(tf.range(cap) < count, tf.float32)              # padding has weight 0
            model.train_step((tf.gather(xs, ids), tf.gather(ys, ids), w))
            return count

        overflow = 0
        for s in progress(range(steps), desc=f"{self.name} eps={epsilon:g}", disable=not self.ctx.progress,
                          leave=False):
            overflow += int(step_fn()) > cap
            if self.ctx.on_step is not None and (s + 1) % 100 == 0:
                self.ctx.on_step(s + 1, released)
        if r.ema:
            opt.finalize_variable_values(model.trainable_variables)  # the moving average: post-processing
        released.train_steps = steps
        epochs = steps * r.batch / n
        sched = (f"{int(r.warmup * steps)}-step warm-up, cosine decay to 0" if (r.warmup or r.optimizer == "sgd")
                 else "constant")
        opt_text = f"SGD momentum {r.momentum:g}" if r.optimizer == "sgd" else "Adam"
        arch = self.describe(r, steps, n, sigma)
        statement = (f"(epsilon={achieved:.3g}, delta={delta:.3g})-differential privacy for each member (add/remove "
                     f"one record) over {steps} steps of DP-SGD with Poisson sampling at rate q={q:.4g} (expected "
                     f"batch {r.batch}), noise multiplier {sigma:.4g}, per-example clipping norm {r.clip:g}: the RDP "
                     f"accountant of dp_accounting gives epsilon at delta'={delta_acc:.3g}, and batches are padded to "
                     f"{cap} and truncated above it with probability at most p={p_trunc:.2g} over the whole run "
                     f"(binomial tail at n+1, union bound over steps), (1+e^eps) p <= {TRUNCATION_SHARE:g} delta, so "
                     "delta' + (1+e^eps) p <= delta. q, the number of steps and delta were set from the number of "
                     f"members, n={n}, which is treated as public with the list of classes: the guarantee is that of "
                     "the mechanism with these settings fixed, and protects which records are members, not how many. "
                     "Sampling and noise came from the operating system's entropy, not "
                     f"from the run seed; {self.ctx.normalisation}. The guarantee covers the model weights and "
                     "anything computed from them alone (not the train accuracy recorded for the audit).")
        recipe = {"name": r.name, "description": f"DP-SGD: {arch['architecture']}, cross-entropy, {opt_text} "
                  f"lr {r.lr:g} ({sched}), weight moving average {r.ema or 'none'}, Poisson batches of expected size "
                  f"{r.batch}, {steps} steps ({epochs:.1f} epochs), clipping norm {r.clip:g}, noise multiplier "
                  f"{sigma:.3g}, no augmentation",
                  "loss": "xent", "optimizer": opt_text, "lr": r.lr, "schedule": sched, "ema": r.ema, "batch": r.batch,
                  "steps": steps, "epochs": round(epochs, 2), "clip": r.clip, "augment": "none", **arch,
                  "tuning": self._tuning(r)}
        recorded = self.recorded(recipe, released)
        return DefenseResult(released, None, {
            "n_train": int(n), "train_steps": steps, "train_accuracy": accuracy(released, x, y),
            "seconds": time.time() - t0,
            "epsilon": achieved, "target_epsilon": epsilon, "delta": delta, "accountant_delta": delta_acc,
            "noise_multiplier": sigma, "clip": r.clip, "sampling_rate": q, "expected_batch": r.batch, "batch_cap": cap,
            "truncation_probability": p_trunc, "truncated_batches": overflow, "recipe_name": r.name,
            "accountant": "dp_accounting RDP (Poisson-subsampled Gaussian)", "sampling": "Poisson",
            "randomness": "sampling and noise from operating-system entropy (secret, not recorded); "
                          "the seed initialises the weights",
            **recorded, "dp_model": "tensorflow_privacy make_dp_model_class (vectorized_map)",
            # set only by an audit's deliberate break
            **({"noise_scale": self.noise_scale} if self.noise_scale != 1.0 else {}),
            "privacy_statement": statement})


class DPSGDLinear(DPSGD):
    """DP-SGD on a linear classifier over fixed ScatterNet features (Tramer & Boneh)."""

    name = "dpsgd-linear"
    kind = "scatter-linear"
    example = "dpsgd-linear:eps=1"

    def _kind(self) -> str:
        return self.kind

    def build(self, x, seed, r, sigma, rng, batch):
        from mi_defense.features.scatter import LinearHead, ScatterLinear, scatter_features

        released = ScatterLinear(self.ctx.input_shape, self.ctx.num_classes)
        feats = scatter_features(released.scatter, x)      # fixed, data-independent: computed once
        model = _dp_class(LinearHead, rng, batch)(r.clip, sigma, None, False, None, released.head, feats.shape[1])
        return model, feats, released

    def model_summary(self, model) -> dict:
        from mi_defense.defenses.own_model import summary

        return summary(model, "mi_defense ScatterNet linear")  # its own architecture, whatever the audit's model

    def recorded(self, recipe, model, note=""):
        return {"recipe": recipe, "model": self.model_summary(model)}

    def describe(self, r, steps, n, sigma):
        from mi_defense.features.scatter import DESCRIPTION

        return {"architecture": f"linear classifier on {DESCRIPTION}", "norm": "group (27 groups, no parameters)",
                "feature_map": DESCRIPTION}
