"""FRePo's model pool: ``P`` models trained online on the synthetic set, reset in turn.

All pool models share one Keras network (the *working model*); their weights, Adam
moments and step counters live in stacked variables ``[P, ...]``, and the selected
model's weights are copied in and out by index, so the compiled step is traced once.

Reset rule: counters start staggered at ``0, K/P, 2K/P, ...`` for ``K =
max_online_updates``. After each outer step the selected model is re-initialised (its
counter returns to 0) if its counter has reached ``K``; otherwise it takes one Adam step
on the synthetic set and its counter grows by one.
"""
from __future__ import annotations

import numpy as np

from mi_defense.models import fresh_weights
from mi_defense.tfenv import tf


def initial_counters(pool_size: int, max_online_updates: int) -> np.ndarray:
    stride = max(max_online_updates // pool_size, 1)
    return (np.arange(pool_size) * stride % max(max_online_updates, 1)).astype(np.int64)


def next_counter(counter: int, max_online_updates: int):
    """``(reset, new_counter)`` for a selected model: the pool's reset rule, as a pure function."""
    if counter >= max_online_updates:
        return True, 0
    return False, counter + 1


def adam_update(p, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8):
    t = tf.cast(t, p.dtype)
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * tf.square(g)
    p = p - lr * (m / (1.0 - tf.pow(b1, t))) / (tf.sqrt(v / (1.0 - tf.pow(b2, t))) + eps)
    return p, m, v


class ModelPool:
    """Stacked weights of ``pool_size`` copies of ``model`` (created inside the strategy scope)."""

    def __init__(self, model: tf.keras.Model, pool_size: int, max_online_updates: int, lr: float, seed: int):
        self.model = model
        self.pool_size = pool_size
        self.max_online_updates = max_online_updates
        self.lr = lr
        self.seed = seed
        self.vars = list(model.variables)
        self.trainable_ids = [i for i, v in enumerate(self.vars) if v.trainable]
        per_model = [[w.numpy() for w in fresh_weights(model, tf.constant([seed, -(k + 1)], tf.int64))]
                     for k in range(pool_size)]
        self.weights = [tf.Variable(np.stack([pm[i] for pm in per_model]), trainable=False, name=f"pool_w{i}")
                        for i in range(len(self.vars))]
        self.m = [tf.Variable(tf.zeros_like(self.weights[i]), trainable=False, name=f"pool_m{i}")
                  for i in self.trainable_ids]
        self.v = [tf.Variable(tf.zeros_like(self.weights[i]), trainable=False, name=f"pool_v{i}")
                  for i in self.trainable_ids]
        self.counters = tf.Variable(initial_counters(pool_size, max_online_updates), trainable=False,
                                    name="pool_counters")
        self.resets = tf.Variable(tf.zeros([pool_size], tf.int64), trainable=False, name="pool_resets")

    # -- state as arrays, for checkpoints ----------------------------------------
    def state_variables(self):
        return {**{f"pool_w{i}": w for i, w in enumerate(self.weights)},
                **{f"pool_m{i}": w for i, w in enumerate(self.m)},
                **{f"pool_v{i}": w for i, w in enumerate(self.v)},
                "pool_counters": self.counters, "pool_resets": self.resets}

    # -- graph-side operations -----------------------------------------------------
    def load(self, idx):
        """Copy model ``idx``'s weights into the working model."""
        for var, stack in zip(self.vars, self.weights):
            var.assign(tf.gather(stack, idx))

    def _store(self, idx, values, stacks):
        for stack, val in zip(stacks, values):
            stack.scatter_nd_update([[idx]], val[None])

    def reinit(self, idx, step):
        fresh = fresh_weights(self.model, tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64) + 1]))
        self._store(idx, fresh, self.weights)
        zeros = [tf.zeros_like(self.weights[i][0]) for i in self.trainable_ids]
        self._store(idx, zeros, self.m)
        self._store(idx, zeros, self.v)
        self.counters.scatter_nd_update([[idx]], tf.zeros([1], tf.int64))
        self.resets.scatter_nd_update([[idx]], [self.resets[idx] + 1])

    def online_step(self, idx, x, y):
        """One Adam step of model ``idx`` on ``(x, y)``, MSE loss, normalisation in training mode."""
        t = self.counters[idx] + 1
        train_vars = [self.vars[i] for i in self.trainable_ids]
        with tf.GradientTape() as tape:
            out = self.model(x, training=True)  # updates batch-norm running statistics
            loss = tf.reduce_mean(0.5 * tf.reduce_sum(tf.square(out - y), axis=1))
        grads = tape.gradient(loss, train_vars)
        for j, (var, g) in enumerate(zip(train_vars, grads)):
            m = tf.gather(self.m[j], idx)
            v = tf.gather(self.v[j], idx)
            p, m, v = adam_update(var, g, m, v, t, self.lr)
            var.assign(p)
            self.m[j].scatter_nd_update([[idx]], m[None])
            self.v[j].scatter_nd_update([[idx]], v[None])
        # write back all weights (trainable and running statistics)
        self._store(idx, [v.read_value() for v in self.vars], self.weights)
        self.counters.scatter_nd_update([[idx]], [t])
        return loss

    def advance(self, idx, step, x, y):
        """The reset rule: re-initialise model ``idx`` at its limit, else train it one step."""
        def reset():
            self.reinit(idx, step)
            return tf.constant(0.0)

        def train():
            return self.online_step(idx, x, y)

        return tf.cond(self.counters[idx] >= self.max_online_updates, reset, train)
