"""Learning-rate schedules: cosine decay (distillation's LAMB steps and the training loop)
and the training loop's linear warm-up followed by cosine decay."""
from __future__ import annotations

from mi_defense.tfenv import tf


def cosine_lr(step, total_steps, lr, final_ratio=0.1):
    """Cosine decay from ``lr`` to ``final_ratio * lr`` over ``total_steps``."""
    frac = tf.minimum(tf.cast(step, tf.float32) / float(max(total_steps, 1)), 1.0)
    return lr * (final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + tf.cos(3.141592653589793 * frac)))


class WarmupCosine(tf.keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``lr`` over ``warmup`` steps, then cosine decay to ``final_ratio * lr``
    (zero by default; FRePo's public evaluation code decays to 0.01x)."""

    def __init__(self, lr: float, warmup: int, total: int, final_ratio: float = 0.0):
        self.lr, self.warmup, self.total = lr, warmup, max(total, 1)
        self.final_ratio = float(final_ratio)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.lr * (step + 1.0) / float(max(self.warmup, 1))
        cos = cosine_lr(step - self.warmup, self.total - self.warmup, self.lr, self.final_ratio)
        return tf.where(step < self.warmup, warm, cos)

    def get_config(self):
        return {"lr": self.lr, "warmup": self.warmup, "total": self.total, "final_ratio": self.final_ratio}
