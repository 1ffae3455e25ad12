"""DP-FRePo ``mechanism=once``: release noisy class means once, then optimise the set for free.

Two phases (the statistic, its sensitivity and its accounting are in ``distill.dp_once``):

1. **Release.** ``K = networks`` ConvNets of the pool's width and depth with instance
   normalisation after the first block (per image, so no statistic couples two members;
   MLPs for feature vectors) are initialised at random and never trained. Under each, every
   member's embedding is normalised to unit norm (with ``augmentations = A > 0``: the mean
   of its unit embeddings under ``A`` DSA augmentations drawn once per network and applied
   to every member alike, "Dataset Condensation with Differentiable Siamese Augmentation":
   a function of that member alone, of norm at most 1) and summed per class, in batches of
   ``batch_real`` on the device; the ``C x d`` sums and the class counts get Gaussian noise
   of standard deviation ``sigma sqrt(2)`` from a generator seeded with 128 bits of the
   operating system's entropy, which are not kept. The noisy class means are all that is kept.
2. **Optimisation.** ``steps`` LAMB steps on the synthetic images (rate ``image_lr``, cosine
   decay to ``lr_final_ratio``), network ``t mod K`` at step ``t``: the squared distance from
   the synthetic class means of the same embeddings (with ``A > 0``, under the same ``A``
   augmentations) to the noisy means. It reads no private data (post-processing). Labels
   stay at the centred one-hot; no pool is trained. The augmentations are drawn from the
   run seed: the sensitivity holds for any fixed augmentations, so they protect nothing.

The private checkpoint (``checkpoint.npz`` in the run record) holds the noisy means from the
end of phase 1 on, so a resumed run never draws a second release, and one distiller draws
at most one.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from mi_defense.config import DistillConfig
from mi_defense.distillation.dp_once import NETWORK_NORM, UNIT_MARGIN, OncePlan, class_means, noisy_statistics
from mi_defense.distillation.frepo import DistillState, label_scale, read_checkpoint
from mi_defense.distillation.lamb import lamb_update
from mi_defense.distillation.real_pool import RealPool
from mi_defense.errors import UserError
from mi_defense.io import write_npz
from mi_defense.models import build_model
from mi_defense.progress import duration_text, progress as progress_bar
from mi_defense.tfenv import tf
from mi_defense.training.augment import augment
from mi_defense.training.schedules import cosine_lr
from mi_defense.training.targets import centred_onehot

LOSS_EVERY = 50  # steps between recorded losses (distances to the released, already private, means)


def noise_generator() -> np.random.Generator:
    """The release's noise generator, seeded with 128 bits of the operating system's entropy."""
    from mi_defense.entropy import os_seed

    return np.random.default_rng(os_seed(128))


def _unit(f):
    """Rows scaled to norm at most 1, in float64 and shrunk by ``UNIT_MARGIN`` so that rounding
    cannot take one member's contribution past the sensitivity the noise is calibrated to."""
    f = tf.cast(f, tf.float64)
    return f * ((1.0 - UNIT_MARGIN) / tf.maximum(tf.norm(f, axis=1, keepdims=True), 1e-12))


class OnceDistiller:
    """Phase 1 (``release``) and phase 2 (``run``) of the module docstring for ``cfg`` (with
    ``epsilon`` and ``mechanism="once"``). ``x_real`` are pixels with ``transform``, else
    model-space inputs; ``x_init`` the data-independent start in model space."""

    def __init__(self, cfg: DistillConfig, x_real: np.ndarray, y_real: np.ndarray, num_classes: int,
                 x_init: np.ndarray, labels: np.ndarray, transform=None, log=print):
        if not (cfg.private and cfg.releases_once):
            raise UserError("the release-once distiller needs epsilon set and mechanism=once")
        self.cfg, self.num_classes, self.log = cfg, num_classes, log
        self.real = RealPool(x_real, transform)
        self.y_real = np.asarray(y_real, np.int64)
        self.labels = np.asarray(labels, np.int64)
        self.dp = OncePlan.for_config(cfg, len(x_real))
        self.state = DistillState()
        self.run_hash = ""
        self.flip = False  # no random flips of the pool's kind (augmentations, if any, are the embedding's own)
        shape = tuple(x_real.shape[1:])
        self.rgb = len(shape) == 3 and shape[-1] == 3
        if cfg.augmentations and len(shape) != 3:
            raise UserError("augmentations apply to images; feature vectors have none: leave augmentations at 0")
        self.networks = [build_model(shape, num_classes, width=cfg.width, depth=cfg.depth, norm=NETWORK_NORM,
                                     seed=(cfg.seed + 7919 * k) % 2 ** 31) for k in range(cfg.networks)]
        self.x_syn = tf.Variable(np.asarray(x_init, np.float32), name="x_syn")
        self.opt_m = tf.Variable(tf.zeros_like(self.x_syn), trainable=False)
        self.opt_v = tf.Variable(tf.zeros_like(self.x_syn), trainable=False)
        self.means: Optional[np.ndarray] = None  # K x C x d, float32 once released
        self._sums = {}  # network -> its noise-free class sums (private; never written)

    # ---------------------------------------------------------------- phase 1
    def _class_sums(self, k: int, bar=None) -> np.ndarray:
        """``S`` (``C x d``, float64) of network ``k``: the per-class sums of the members' ``u``.
        Every batch is computed at the full ``batch_real`` (the last one padded with zeros,
        dropped after), so that no member's embedding is computed at another batch size when
        a neighbouring data set ends its last batch elsewhere."""
        net, C, b = self.networks[k], self.num_classes, self.cfg.batch_real
        y = tf.constant(self.y_real)

        @tf.function
        def add(total, lo, hi):
            ids = tf.range(lo, hi)
            x = self.real.take(ids)
            pad = tf.concat([[[0, b - (hi - lo)]], tf.zeros([tf.rank(x) - 1, 2], tf.int32)], axis=0)
            u = self._embedding(net, tf.pad(x, pad), k)[: hi - lo]
            return total + tf.math.unsorted_segment_sum(u, tf.gather(y, ids), C)

        total = tf.zeros([C, net.feature_dim], tf.float64)
        n = len(self.real)
        for lo in range(0, n, b):
            total = add(total, tf.constant(lo, tf.int32), tf.constant(min(n, lo + b), tf.int32))
            if bar is not None:
                bar.update(1)
        return total.numpy()  # one C x d copy per network

    def _embedding(self, net, x, k: int):
        """``u(x)`` for each row of ``x`` under network ``k`` (float64): its unit embedding, or
        with ``A`` augmentations the mean of its unit embeddings under network ``k``'s ``A``
        augmentations (norm at most 1: a mean of unit vectors). Each augmentation's parameters
        are drawn once from the run seed and shared by every image (``augment(shared=True)``),
        so a row's ``u`` depends on that row alone: not on its batch, its position or the
        other members, and one member moves the class sums by ``u`` of that member only."""
        a_count = self.cfg.augmentations
        if not a_count:
            return _unit(net.features(x, training=False))
        total = 0.0
        for a in range(a_count):
            seed = tf.constant([self.cfg.seed, k * 1_000_003 + a], tf.int64)
            total += _unit(net.features(augment(x, seed, self.rgb, shared=True), training=False))
        return total / a_count

    def noisy_statistic(self, k: int, rng: np.random.Generator, bar=None):
        """The Gaussian mechanism of network ``k``: its class sums and counts, each with noise
        of standard deviation ``noise_std`` from ``rng`` (the release's code path; the
        canary audit of ``auditing.canary`` calls it many times on neighbouring inputs)."""
        if k not in self._sums:
            self._sums[k] = self._class_sums(k, bar)
        counts = np.bincount(self.y_real, minlength=self.num_classes)
        return noisy_statistics(self._sums[k], counts, self.dp.noise_std, rng)

    def release(self, progress: bool = True) -> None:
        """Phase 1: the noisy class means of every network (``self.means``); at most once."""
        if self.means is not None:
            raise UserError("this distiller has released its statistics already; a second release would spend the "
                            "privacy budget again")
        cfg, n = self.cfg, len(self.real)
        rng = noise_generator()
        batches = -(-n // cfg.batch_real)
        if progress:
            self.log(f"DP-FRePo (once): releasing the noisy class means of {n} members under {cfg.networks} random "
                     f"networks of width {cfg.width} (noise multiplier {self.dp.noise_multiplier:.3g}); the time it "
                     "takes follows after the first network")
        bar = progress_bar(total=cfg.networks * batches, desc="release", unit="batch", disable=not progress,
                           dynamic_ncols=True)
        means, t0 = [], time.time()
        for k in range(cfg.networks):
            means.append(class_means(*self.noisy_statistic(k, rng, bar)))
            del self._sums[k]
            if k == 0 and progress and cfg.networks > 1:
                took = time.time() - t0
                left = duration_text(took * (cfg.networks - 1))
                self.log(f"the first network took {duration_text(took)}; about {left} left for the release "
                         f"(--networks {max(1, cfg.networks // 2)} halves it)")
        bar.close()
        self.means = np.stack(means).astype(np.float32)

    # ---------------------------------------------------------------- phase 2
    def _step_fn(self, k: int):
        cfg, net, C = self.cfg, self.networks[k], self.num_classes
        target = tf.constant(self.means[k])
        labels = tf.constant(self.labels)

        @tf.function
        def step(t):
            with tf.GradientTape() as tape:
                u = tf.cast(self._embedding(net, self.x_syn, k), tf.float32)
                mu = tf.math.unsorted_segment_mean(u, labels, C)
                loss = tf.reduce_sum(tf.square(mu - target))
            g = tape.gradient(loss, self.x_syn)
            lr = cosine_lr(t, cfg.steps, cfg.image_lr, cfg.lr_final_ratio)
            p, m, v = lamb_update(self.x_syn, g, self.opt_m, self.opt_v, t + 1, lr, b1=cfg.lamb_b1)
            self.x_syn.assign(p)
            self.opt_m.assign(m)
            self.opt_v.assign(v)
            return loss
        return step

    def save_checkpoint(self, path) -> None:
        history = np.array([[h["step"], h["loss"]] for h in self.state.history], np.float64).reshape(-1, 2)
        write_npz(path, x_syn=self.x_syn.numpy(), lamb_m=self.opt_m.numpy(), lamb_v=self.opt_v.numpy(),
                  once_means=self.means, step=np.array(self.state.step), seconds=np.array(self.state.seconds),
                  run_hash=np.array(self.run_hash), history=history)

    def load_checkpoint(self, path) -> None:
        z = read_checkpoint(path)
        if str(z.get("run_hash", "")) != self.run_hash or "once_means" not in z:
            raise UserError(f"{path}: checkpoint was made with other settings or another split; start without --resume "
                            "(or in a new --out folder), or resume with the settings it was made with")
        self.x_syn.assign(z["x_syn"])
        self.opt_m.assign(z["lamb_m"])
        self.opt_v.assign(z["lamb_v"])
        self.means = z["once_means"]
        self.state.step, self.state.seconds = int(z["step"]), float(z["seconds"])
        self.state.history = [{"step": int(a), "loss": float(b)} for a, b in z["history"]]

    def run(self, checkpoint: Optional[Path] = None, resume: bool = False, progress: bool = True,
            stop_after: Optional[int] = None, **_unused) -> DistillState:
        """Phase 1 unless a resumed checkpoint holds it, then phase 2 up to ``cfg.steps`` (or
        ``stop_after``), checkpointing after the release and every ``checkpoint_every`` steps."""
        cfg = self.cfg
        t0 = time.time()
        if resume and checkpoint is not None and Path(checkpoint).is_file() and self.means is None:
            self.load_checkpoint(checkpoint)
            self.log(f"resumed from {checkpoint} at step {self.state.step} (the release is reused, not redrawn)")
        elif self.means is None:
            self.release(progress)
            self.state.seconds += time.time() - t0
            t0 = time.time()
            if checkpoint is not None:
                self.save_checkpoint(checkpoint)
        end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
        fns = [self._step_fn(k) for k in range(cfg.networks)]
        bar = progress_bar(total=cfg.steps, initial=self.state.step, desc="DP-FRePo (once)", unit="step",
                           disable=not progress, dynamic_ncols=True)
        while self.state.step < end:
            t = self.state.step
            loss = fns[t % cfg.networks](tf.constant(t, tf.int64))
            self.state.step += 1
            if self.state.step % LOSS_EVERY == 0 or self.state.step == cfg.steps:  # one host read per LOSS_EVERY
                self.state.history.append({"step": self.state.step, "loss": float(loss)})
            bar.update(1)
            if cfg.checkpoint_every and checkpoint is not None and self.state.step % cfg.checkpoint_every == 0:
                self.state.seconds += time.time() - t0
                t0 = time.time()
                self.save_checkpoint(checkpoint)
        bar.close()
        if not np.all(np.isfinite(self.x_syn.numpy())):
            raise UserError(f"DP-FRePo (once): the synthetic set is not finite after step {self.state.step}; lower the "
                            "learning rate (--lr)")
        self.state.seconds += time.time() - t0
        return self.state

    def synthetic(self):
        """``(images in model space, centred one-hot labels)`` as numpy arrays."""
        y = centred_onehot(tf.constant(self.labels), self.num_classes, label_scale(self.num_classes))
        return self.x_syn.numpy(), y.numpy()
