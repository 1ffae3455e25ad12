"""DP-SGD ("Deep Learning with Differential Privacy", Abadi et al. 2016) with
tensorflow-privacy.

The model is tensorflow-privacy's DP Keras model (``make_dp_model_class`` around the same
ConvNet / MLP the other defenses use): per-example gradients by ``tf.vectorized_map``,
each clipped to L2 norm ``C``, summed, plus Gaussian noise of standard deviation
``sigma * C``. (tensorflow-privacy's jacobian-based DP optimisers run out of memory on
ConvNets; this path does not.)

Batches are drawn by Poisson sampling (each member independently with probability
``q = batch / n``), padded to a fixed size with zero-weight examples so the compiled step
never retraces, which is exactly the sampling the accountant assumes. The noise
multiplier ``sigma`` is calibrated with ``dp_accounting``'s RDP accountant to reach the
target epsilon at ``delta = min(1e-5, 1 / n^1.1)`` over the actual number of steps.
"""
from __future__ import annotations

import math
import time

from mi_defense.accounting import calibrate_noise, dp_delta, epsilon_for  # noqa: F401  (re-exported)
from mi_defense.defenses.base import Defense, DefenseResult
from mi_defense.models import ConvNet, MLP
from mi_defense.tfenv import tf
from mi_defense.train import accuracy, mse_loss, targets_for


def _dp_class(base):
    from tensorflow_privacy.privacy.keras_models.dp_keras_model import make_dp_model_class

    return make_dp_model_class(base)


class DPSGD(Defense):
    name = "dpsgd"
    allowed = ("eps", "clip", "batch", "steps", "lr")
    numeric = {"eps": float, "clip": float, "batch": int, "steps": int, "lr": float}
    required = ("eps",)
    example = "dpsgd:eps=8"

    def fit(self, x, y, seed) -> DefenseResult:
        t0 = time.time()
        p = self.params
        eps, clip = float(p["eps"]), float(p.get("clip", 1.0))
        n = len(x)
        batch = int(min(p.get("batch", 64), n))
        steps = int(p.get("steps") or self.ctx.real_steps or 1000)
        lr = float(p.get("lr", 1e-3))
        q = batch / n
        delta = dp_delta(n)
        sigma = calibrate_noise(eps, q, steps, delta)
        achieved = epsilon_for(sigma, q, steps, delta)
        cap = int(math.ceil(batch + 5 * math.sqrt(batch) + 5))  # Poisson batch sizes above this are ~impossible
        cfg = self.ctx.train
        base = ConvNet if len(self.ctx.input_shape) == 3 else MLP
        tf.random.set_seed(seed)
        model = _dp_class(base)(clip, sigma, None, False, None, self.ctx.input_shape, self.ctx.num_classes,
                                width=cfg.width, depth=cfg.depth, norm="none", seed=seed)
        model.compile(optimizer=tf.keras.optimizers.Adam(lr),
                      loss=lambda yt, yp: mse_loss(yp, yt))
        xs = tf.constant(x, tf.float32)
        ys = tf.constant(targets_for(y, self.ctx.num_classes), tf.float32)

        @tf.function
        def step_fn(step):
            seed_t = tf.stack([tf.constant(seed, tf.int64), step])
            take = tf.random.stateless_uniform([n], seed_t) < q          # Poisson sampling
            ids = tf.boolean_mask(tf.range(n), take)
            count = tf.shape(ids)[0]
            ids = tf.concat([ids, tf.zeros([cap], tf.int32)], 0)[:cap]
            w = tf.cast(tf.range(cap) < count, tf.float32)              # padding has weight 0
            model.train_step((tf.gather(xs, ids), tf.gather(ys, ids), w))
            return count

        from mi_defense.progress import progress

        overflow = 0
        for s in progress(range(steps), desc=f"dpsgd eps={eps:g}", disable=not self.ctx.progress, leave=False):
            overflow += int(step_fn(tf.constant(s, tf.int64))) > cap
            if self.ctx.on_step is not None and (s + 1) % 100 == 0:
                self.ctx.on_step(s + 1, model)
        model.train_steps = steps
        statement = (f"(epsilon={achieved:.3g}, delta={delta:.3g})-differential privacy for each member, by the RDP accountant of "
                     f"dp_accounting over {steps} steps of DP-SGD with Poisson sampling at rate q={q:.4g} (expected batch {batch}), "
                     f"noise multiplier {sigma:.4g}, per-example clipping norm {clip:g}. Batch sizes above {cap} were truncated "
                     f"{overflow} time(s); the guarantee covers the model weights and everything computed from them.")
        return DefenseResult(model, None, {
            "n_train": int(n), "train_steps": steps, "train_accuracy": accuracy(model, x, y), "seconds": time.time() - t0,
            "epsilon": achieved, "target_epsilon": eps, "delta": delta, "noise_multiplier": sigma, "clip": clip,
            "sampling_rate": q, "expected_batch": batch, "accountant": "dp_accounting RDP (Poisson-subsampled Gaussian)",
            "sampling": "Poisson", "truncated_batches": overflow,
            "recipe": {"name": "dpsgd", "description": f"DP-SGD: MSE on centred one-hot labels, Adam {lr:g} (constant), Poisson "
                       f"batches of expected size {batch}, {steps} steps ({steps * batch / n:.0f} epochs), clipping norm {clip:g}, "
                       f"noise multiplier {sigma:.3g}, no augmentation", "loss": "mse", "lr": lr, "batch": batch, "steps": steps,
                       "epochs": round(steps * batch / n, 2), "augment": "none", "width": cfg.width, "depth": cfg.depth}, "dp_model": "tensorflow_privacy make_dp_model_class (vectorized_map)",
            "privacy_statement": statement})
