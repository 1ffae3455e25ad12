"""The private examples FRePo's outer step draws its real batch from, held compactly.

Kept as the dataset's uint8 pixels (a quarter of the memory of float32) with the input
transform applied to the drawn batch inside the step, in the same float32 operations as
``Transform.__call__`` (``x / 255``, minus the per-channel mean, divided by the deviation,
then the ZCA matrix when there is one): the batch is the same, and the whole pool never
exists in float. Arrays that are not uint8 pixels (already transformed, or float images)
are kept as float32 in model space.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from mi_defense.data.transforms import Transform
from mi_defense.tfenv import tf


class RealPool:
    """``x`` is uint8 pixels with ``transform`` (kept as uint8), or model-space inputs
    (``transform=None``; kept as float32). ``take(ids)`` returns model-space rows."""

    def __init__(self, x: np.ndarray, transform: Optional[Transform] = None):
        self.compact = transform is not None and x.dtype == np.uint8 and transform.scale_uint8
        self.transform = transform
        self.shape = tuple(x.shape)
        if self.compact:
            self.x = tf.constant(x)
            self.mean = tf.constant(transform.mean, tf.float32)
            self.std = tf.constant(transform.std, tf.float32)
            self.zca = None if transform.zca is None else tf.constant(transform.zca, tf.float32)
        else:
            self.x = tf.constant(transform(x) if transform is not None else x, tf.float32)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * (1 if self.compact else 4)

    def take(self, ids):
        """Model-space float32 rows ``ids`` of the pool."""
        x = tf.gather(self.x, ids)
        if not self.compact:
            return x
        z = (tf.cast(x, tf.float32) / 255.0 - self.mean) / self.std
        if self.zca is not None:
            z = tf.reshape(tf.matmul(tf.reshape(z, [tf.shape(z)[0], -1]), self.zca), tf.shape(z))
        return z
