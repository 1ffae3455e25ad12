"""FRePo's outer loop: learn a synthetic set by neural feature regression.

Each outer step (all randomness is a stateless function of ``(seed, step)``, so a
resumed run repeats an uninterrupted one):

1. pick a pool model uniformly and copy its weights into the working model;
2. draw a real batch; its features ``F_t`` (inference mode) are constants;
3. compute the KRR loss (``distill.krr``) plus the label-margin hinge, and update the
   synthetic images and labels with LAMB under a cosine learning-rate decay (the labels
   at their own rate, ``label_rate``);
4. apply the pool's reset rule to the selected model: re-initialise it, or train it
   one Adam step on the just-updated synthetic set.

The step is one ``tf.function`` run through a ``tf.distribute`` strategy: each replica
takes a slice of the real batch and the synthetic-set gradients are averaged, so several
GPUs are used without code changes. A non-finite loss or a failed Cholesky factorisation
leaves the state untouched and the step is retried with the kernel in float64: inside the
same graph when the failure shows as NaN (a GPU), from Python when the factorisation
raises (a CPU). The loop reads the steps' losses and flags only every ``SYNC_EVERY``
steps, so a GPU is not stalled by a host read after each step.

With ``cfg.epsilon`` set (DP-FRePo, ``distill.dp``), step 2 draws a Poisson batch from a
secret seed and step 3 uses per-example clipped, noised gradients; the rest is unchanged.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from mi_defense.config import DistillConfig
from mi_defense.data.transforms import Transform
from mi_defense.distillation.krr import krr_loss, label_margin_loss
from mi_defense.distillation.lamb import lamb_update
from mi_defense.distillation.pool import ModelPool
from mi_defense.distillation.real_pool import RealPool
from mi_defense.errors import UserError
from mi_defense.io import NPZ_READ_ERRORS, write_npz
from mi_defense.models import build_model
from mi_defense.tfenv import tf
from mi_defense.training.schedules import cosine_lr
from mi_defense.training.targets import centred_onehot


SYNC_EVERY = 10  # outer steps launched between reads of their loss and finiteness flags


class NumericsError(UserError):
    """The distillation loss stayed non-finite even in float64."""


def choose_init_indices(y: np.ndarray, ipc: int, num_classes: int, seed: int) -> np.ndarray:
    """``ipc`` indices per class into ``y`` (class-major order), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(num_classes):
        pool = np.flatnonzero(y == c)
        if len(pool) < ipc:
            raise UserError(f"class {c} has {len(pool)} examples, fewer than ipc={ipc}; lower --ipc or add data")
        out.append(np.sort(rng.choice(pool, ipc, replace=False)))
    return np.concatenate(out).astype(np.int64)


def label_scale(num_classes: int) -> float:
    return 1.0 / float(np.sqrt(num_classes / 10.0))


@dataclass
class DistillState:
    step: int = 0
    history: List[Dict[str, float]] = field(default_factory=list)
    f64_retries: int = 0
    seconds: float = 0.0


def read_checkpoint(path) -> Dict[str, np.ndarray]:
    """Every array of a checkpoint; a truncated or corrupt file is a one-line ``UserError``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except NPZ_READ_ERRORS as exc:
        raise UserError(f"{path}: checkpoint is corrupt or truncated ({type(exc).__name__}); "
                        "delete it and start without --resume") from None


class FRePo:
    """Distil ``(x_real, y_real)`` into ``ipc`` synthetic examples per class.

    ``x_real`` is uint8 pixels with their ``transform`` (kept as uint8, transformed batch by
    batch: ``distill.real_pool``) or already in model input space (``transform=None``);
    ``x_init``/``y_init`` are the initial synthetic examples in model space (real members,
    public data or noise).
    """

    def __init__(self, cfg: DistillConfig, x_real: np.ndarray, y_real: np.ndarray, num_classes: int,
                 x_init: np.ndarray, y_init: np.ndarray, strategy: Optional[tf.distribute.Strategy] = None,
                 log: Callable[[str], None] = print, transform: Optional[Transform] = None):
        self.cfg = cfg.validate()
        self.num_classes = num_classes
        self.log = log
        self.strategy = strategy or tf.distribute.get_strategy()
        n_rep = self.strategy.num_replicas_in_sync
        if cfg.batch_real % n_rep:
            raise UserError(f"batch_real={cfg.batch_real} must be divisible by the {n_rep} replicas")
        input_shape = tuple(x_real.shape[1:])
        self.flip = cfg.flip if cfg.flip is not None else (len(input_shape) == 3 and input_shape[-1] == 3)
        self.n_real = len(x_real)
        self.n_syn = len(x_init)
        self.state = DistillState()
        self.run_hash = ""  # what the checkpoint must have been made with (settings and data); set by the caller
        scale = label_scale(num_classes)
        with self.strategy.scope():
            self.real = RealPool(x_real, transform)
            self.y_real = centred_onehot(tf.constant(y_real), num_classes)
            self.model = build_model(input_shape, num_classes, width=cfg.width, depth=cfg.depth, norm=cfg.pool_norm,
                                     seed=cfg.seed, bn_momentum=cfg.pool_bn_momentum)
            self.x_syn = tf.Variable(x_init.astype(np.float32), name="x_syn")
            self.y_syn = tf.Variable(centred_onehot(tf.constant(y_init), num_classes, scale), name="y_syn",
                                     trainable=cfg.learn_labels)
            self.learnable = [self.x_syn] + ([self.y_syn] if cfg.learn_labels else [])
            self.opt_m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.learnable]
            self.opt_v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.learnable]
        # The pool's stacked weights are touched only in cross-replica context (copied into the
        # mirrored working model by index), so they are ordinary, unmirrored variables.
        self.pool = ModelPool(self.model, cfg.pool_size, cfg.max_online_updates, cfg.online_lr, cfg.seed)
        self.dp = None
        if cfg.private:  # DP-FRePo: see distill.dp
            from mi_defense.distillation.dp import DPPlan, secret_key

            self.dp = DPPlan.for_config(cfg, self.n_real)
            self.dp_key = tf.Variable(secret_key(), trainable=False, name="dp_key")
        spec = [tf.TensorSpec([], tf.int64)]
        # float32 with the float64 retry inside the graph (no host round-trip per step), and
        # float64 alone for a Cholesky failure that raises (CPU) instead of giving NaN (GPU)
        self._auto = tf.function(self._auto_step, jit_compile=cfg.jit or None, input_signature=spec)
        self._float64_step = tf.function(lambda step: self._step(step, tf.float64), jit_compile=cfg.jit or None,
                                         input_signature=spec)

    # ---------------------------------------------------------------- the step
    def _seed(self, step, k: int):
        return tf.stack([tf.constant(self.cfg.seed, tf.int64), step * 8 + k])

    def synthetic_features(self):
        """``(F_s, Y_s)``: features and labels of the synthetic set, with its horizontal
        flips appended when ``flip`` (call under a tape to differentiate)."""
        xs, ys = self.x_syn, self.y_syn
        if self.flip:
            xs = tf.concat([xs, tf.image.flip_left_right(xs)], axis=0)
            ys = tf.concat([ys, ys], axis=0)
        return self.model.features(xs, training=False), ys

    def _replica_loss_and_grads(self, x_t, y_t, dtype):
        ctx = tf.distribute.get_replica_context()
        n = ctx.num_replicas_in_sync
        per = self.cfg.batch_real // n
        r = ctx.replica_id_in_sync_group
        if not isinstance(r, int):
            r = tf.cast(r, tf.int32)
        x_t = x_t[r * per:(r + 1) * per]
        y_t = y_t[r * per:(r + 1) * per]
        f_t = tf.stop_gradient(self.model.features(x_t, training=False))
        with tf.GradientTape() as tape:
            f_s, ys = self.synthetic_features()
            krr = krr_loss(tf.cast(f_s, dtype), tf.cast(ys, dtype), tf.cast(f_t, dtype), tf.cast(y_t, dtype),
                           self.cfg.reg)
            krr = tf.cast(krr, tf.float32)
            lab = label_margin_loss(self.y_syn, self.num_classes) if self.cfg.learn_labels else tf.constant(0.0)
            loss = krr + lab
        grads = tape.gradient(loss, self.learnable)
        return loss, krr, grads

    def _step(self, step, dtype):
        cfg = self.cfg
        strategy = tf.distribute.get_strategy()
        idx = tf.random.stateless_uniform([], self._seed(step, 0), minval=0, maxval=cfg.pool_size, dtype=tf.int64)
        self.pool.load(idx)
        if self.dp is not None:  # the private batch's loss is not reported
            from mi_defense.distillation.dp import private_gradients

            grads, finite = private_gradients(self, self.dp, self.dp_key, step)
            loss = krr = tf.constant(float("nan"))
        else:
            ids = tf.random.stateless_uniform([cfg.batch_real], self._seed(step, 1), minval=0, maxval=self.n_real,
                                              dtype=tf.int64)
            x_t = self.real.take(ids)
            y_t = tf.gather(self.y_real, ids)
            loss, krr, grads = strategy.run(self._replica_loss_and_grads, args=(x_t, y_t, dtype))
            loss = strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None)
            krr = strategy.reduce(tf.distribute.ReduceOp.MEAN, krr, axis=None)
            grads = [strategy.reduce(tf.distribute.ReduceOp.MEAN, g, axis=None) for g in grads]
            finite = tf.math.is_finite(loss)
            for g in grads:
                finite = finite & tf.reduce_all(tf.math.is_finite(g))

        def apply():
            rates = (cfg.image_lr, cfg.label_rate)  # x_syn, then y_syn when learned
            for var, g, m, v, rate in zip(self.learnable, grads, self.opt_m, self.opt_v, rates):
                lr = cosine_lr(step, cfg.steps, rate, cfg.lr_final_ratio)
                p, m_new, v_new = lamb_update(var, g, m, v, step + 1, lr, b1=cfg.lamb_b1)
                var.assign(p)
                m.assign(m_new)
                v.assign(v_new)
            xs, ys = self.x_syn.read_value(), self.y_syn.read_value()
            if self.n_syn > cfg.max_online_batch:
                sel = tf.argsort(tf.random.stateless_uniform([self.n_syn], self._seed(step, 2)))[:cfg.max_online_batch]
                xs, ys = tf.gather(xs, sel), tf.gather(ys, sel)
            online = self.pool.advance(idx, step, xs, ys)
            return online

        online = tf.cond(finite, apply, lambda: tf.constant(float("nan")))
        return {"loss": loss, "krr": krr, "online_loss": online, "finite": finite, "model": idx}

    def _auto_step(self, step):
        """The float32 step; if its loss or gradient is not finite (state untouched), the
        same step with the kernel in float64, in the same graph. ``retried`` says which ran."""
        out = self._step(step, tf.float32)
        keys = sorted(out)

        def keep():
            return [out[k] for k in keys] + [tf.constant(False)]

        def retry():
            again = self._step(step, tf.float64)
            return [again[k] for k in keys] + [tf.constant(True)]

        values = tf.cond(out["finite"], keep, retry)
        return {**dict(zip(keys, values[:-1])), "retried": values[-1]}

    def _launch(self, step: int) -> Dict[str, tf.Tensor]:
        """Dispatch outer ``step`` without waiting for its values (``_collect`` reads them).
        A Cholesky failure that raises (CPU; a GPU gives NaN, retried in the graph) is retried
        here in float64."""
        s = tf.constant(step, tf.int64)
        try:
            return self._auto(s)
        except tf.errors.InvalidArgumentError as exc:
            self.log(f"step {step}: {str(exc).splitlines()[0]} in float32; "
                     "retrying this step with the kernel in float64")
            self.state.f64_retries += 1
            try:
                out = self._float64_step(s)
            except tf.errors.InvalidArgumentError as exc2:
                raise NumericsError(f"step {step}: kernel solve failed in float64 too "
                                    f"({str(exc2).splitlines()[0]})") from None
            return {**out, "retried": tf.constant(False)}  # counted and logged above

    def _collect(self, step: int, out: Dict[str, tf.Tensor]) -> Dict[str, float]:
        """The values of a launched step (a host round-trip); count an in-graph float64 retry;
        raise if the step was not finite even in float64 (its update was skipped)."""
        values = {k: float(v) for k, v in out.items()}
        if values.pop("retried"):
            self.log(f"step {step}: non-finite loss or gradient in float32; "
                     "retried this step with the kernel in float64")
            self.state.f64_retries += 1
        if not values["finite"]:
            raise NumericsError(f"step {step}: loss is not finite even in float64; "
                                "lower the learning rate or raise reg")
        return values

    def step(self, step: int) -> Dict[str, float]:
        """Run outer step ``step`` and wait for it; retry in float64 on a non-finite loss or a
        failed Cholesky factorisation."""
        return self._collect(step, self._launch(step))

    # ---------------------------------------------------------------- state
    def state_variables(self) -> Dict[str, tf.Variable]:
        d = {"x_syn": self.x_syn, "y_syn": self.y_syn}
        for i, (m, v) in enumerate(zip(self.opt_m, self.opt_v)):
            d[f"lamb_m{i}"] = m
            d[f"lamb_v{i}"] = v
        d.update(self.pool.state_variables())
        if self.dp is not None:
            d["dp_key"] = self.dp_key  # secret; lives only in the private checkpoint
        return d

    def save_checkpoint(self, path) -> None:
        arrays = {k: v.numpy() for k, v in self.state_variables().items()}
        arrays["step"] = np.array(self.state.step)
        arrays["f64_retries"] = np.array(self.state.f64_retries)
        arrays["seconds"] = np.array(self.state.seconds)
        arrays["run_hash"] = np.array(self.run_hash)
        arrays["history"] = np.array([[h["step"], h["loss"], h["krr"]] for h in self.state.history],
                                     np.float64).reshape(-1, 3)
        write_npz(path, **arrays)

    def load_checkpoint(self, path) -> None:
        z = read_checkpoint(path)
        if str(z.get("run_hash", "")) != self.run_hash:
            raise UserError(f"{path}: checkpoint was made with other settings or another split; start without --resume "
                            "(or in a new --out folder), or resume with the settings it was made with")
        for k, var in self.state_variables().items():
            if k not in z or z[k].shape != tuple(var.shape):
                raise UserError(f"{path}: checkpoint does not match this configuration ({k}); "
                                "start without --resume or use the same settings")
            var.assign(z[k])
        self.state.step = int(z["step"])
        self.state.f64_retries = int(z["f64_retries"])
        self.state.seconds = float(z["seconds"])
        self.state.history = [{"step": int(a), "loss": float(b), "krr": float(c)}
                              for a, b, c in z.get("history", np.zeros((0, 3)))]

    # ---------------------------------------------------------------- loop
    def run(self, checkpoint: Optional[Path] = None, resume: bool = False, progress: bool = True,
            tensorboard_dir: Optional[str] = None, stop_after: Optional[int] = None) -> DistillState:
        """Run outer steps up to ``cfg.steps`` (or ``stop_after``), checkpointing atomically."""
        from mi_defense.progress import Estimate, progress as progress_bar

        cfg = self.cfg
        if resume and checkpoint is not None and Path(checkpoint).is_file():
            self.load_checkpoint(checkpoint)
            self.log(f"resumed from {checkpoint} at step {self.state.step}")
        end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
        writer = tf.summary.create_file_writer(str(tensorboard_dir)) if tensorboard_dir else None
        bar = progress_bar(total=cfg.steps, initial=self.state.step, desc="FRePo", unit="step", disable=not progress,
                           dynamic_ncols=True)
        half = max(1, cfg.steps // 2)
        estimate = Estimate(end, self.state.step, what="FRePo", unit="outer step", warmup=SYNC_EVERY,
                            window=2 * SYNC_EVERY,
                            knob=f"--steps {half} (steps={half} from Python) halves it, "
                                 "a smaller --batch-real or --width cuts each step")
        if progress and end > self.state.step:
            self.log(f"FRePo: {end - self.state.step} outer steps planned, {cfg.ipc} images per class, "
                     f"{cfg.batch_real} real images per step, a pool of {cfg.pool_size} ConvNets of width {cfg.width}; "
                     f"the time they take follows after {3 * SYNC_EVERY} steps")
        report_loss = self.dp is None  # DP-FRePo's loss on private batches is never recorded
        pending = []  # launched steps whose values are read every SYNC_EVERY steps, not after each

        def collect():
            for done, launched in pending:
                out = self._collect(done, launched)
                if report_loss and ((done + 1) % 10 == 0 or done + 1 == end):
                    self.state.history.append({"step": done + 1, "loss": out["loss"], "krr": out["krr"]})
                if writer is not None and report_loss:
                    with writer.as_default(step=done + 1):
                        tf.summary.scalar("loss", out["loss"])
                        tf.summary.scalar("krr_loss", out["krr"])
            if pending and report_loss:
                bar.set_postfix(loss=f"{out['loss']:.4f}")
            pending.clear()

        t0 = time.perf_counter()
        try:
            while self.state.step < end:
                pending.append((self.state.step, self._launch(self.state.step)))
                self.state.step += 1
                bar.update(1)
                due = checkpoint is not None and cfg.checkpoint_every and self.state.step % cfg.checkpoint_every == 0
                if due or self.state.step % SYNC_EVERY == 0 or self.state.step == end:
                    collect()
                    said = estimate.update(self.state.step)
                    if said and progress:
                        self.log(said)
                if due:
                    self.state.seconds += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    self.save_checkpoint(checkpoint)
        finally:
            bar.close()
            self.state.seconds += time.perf_counter() - t0
        if checkpoint is not None and self.state.step == cfg.steps:
            self.save_checkpoint(checkpoint)
        return self.state

    def synthetic(self):
        """``(images in model space, learned labels)`` as numpy arrays."""
        return self.x_syn.numpy(), self.y_syn.numpy()
