"""The in-memory dataset every loader returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from mi_defense.errors import DataError
from mi_defense.io import sha256_array


@dataclass
class Dataset:
    """A labelled dataset: a training pool and an optional separate test set.

    ``x_*`` are uint8 images ``(N, H, W, C)`` in [0, 255] or float32 features ``(N, D)``;
    ``y_*`` are int64 class indices in ``0..num_classes-1``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    class_names: List[str]
    kind: str = "image"  # "image" or "tabular"
    files: Dict[str, str] = field(default_factory=dict)  # file -> SHA-256

    def __post_init__(self):
        validate_xy(self.x_train, self.y_train, len(self.class_names), f"{self.name} training set")
        if (self.x_test is None) != (self.y_test is None):
            raise DataError(f"{self.name}: x_test and y_test must be given together")
        if self.x_test is not None:
            validate_xy(self.x_test, self.y_test, len(self.class_names), f"{self.name} test set")
            if self.x_test.shape[1:] != self.x_train.shape[1:]:
                raise DataError(f"{self.name}: test examples have shape {self.x_test.shape[1:]}, training examples {self.x_train.shape[1:]}; they must match")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])

    def fingerprint(self) -> str:
        """SHA-256 of the arrays as loaded (identifies the data in every artifact)."""
        arrays = [self.x_train, self.y_train] + ([self.x_test, self.y_test] if self.x_test is not None else [])
        return sha256_array(*arrays)


def validate_xy(x: np.ndarray, y: np.ndarray, num_classes: int, where: str) -> None:
    if x.ndim not in (2, 4):
        raise DataError(f"{where}: examples must be images (N, H, W, C) or feature vectors (N, D), got shape {x.shape}")
    if len(x) != len(y) or y.ndim != 1:
        raise DataError(f"{where}: {len(x)} examples but labels of shape {y.shape}; give one integer label per example")
    if len(x) == 0:
        raise DataError(f"{where}: no examples")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels have dtype {y.dtype}; labels must be integers 0..C-1")
    if y.min() < 0 or y.max() >= num_classes:
        raise DataError(f"{where}: labels out of range (min {int(y.min())}, max {int(y.max())}, expected 0..{num_classes - 1}); relabel the classes as 0..C-1")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating):
            raise DataError(f"{where}: examples have dtype {x.dtype}; use uint8 images or float features")
        if not np.all(np.isfinite(x)):
            bad = int(np.sum(~np.isfinite(x).reshape(len(x), -1).all(axis=1)))
            raise DataError(f"{where}: {bad} examples contain NaN or infinite values; clean or drop them")
