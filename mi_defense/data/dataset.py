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

    ``x_*`` are images ``(N, H, W, C)`` or float features ``(N, D)``; ``y_*`` are int64 class
    indices in ``0..num_classes-1``; every class has a training example (checked unless the
    dataset is one of the registry's, ``registered``, whose class list is its own).

    The pixel range of images is decided once here, for the training and test images
    together (``pixel_scale``): uint8 images are 0..255 and stay uint8; float images whose
    values all lie in [0, 1] are pixels in [0, 1]; float images with a value above 1 and
    none outside [0, 255] are 0..255 pixels and become uint8 (rounded to the nearest
    integer, lossless for whole-number pixels), so they take exactly the path the same
    uint8 images take; float images outside [0, 255] are refused. Every later step sees
    uint8 pixels or float pixels in [0, 1].
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    class_names: List[str]
    kind: str = "image"  # "image" or "tabular"
    files: Dict[str, str] = field(default_factory=dict)  # file -> SHA-256
    # A dataset of the registry: its class list is the dataset's own, not read from its labels.
    registered: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self):
        validate_xy(self.x_train, self.y_train, len(self.class_names), f"{self.name} training set")
        if (self.x_test is None) != (self.y_test is None):
            raise DataError(f"{self.name}: x_test and y_test must be given together")
        if self.x_test is not None:
            validate_xy(self.x_test, self.y_test, len(self.class_names), f"{self.name} test set")
            if self.x_test.shape[1:] != self.x_train.shape[1:]:
                raise DataError(f"{self.name}: test examples have shape {self.x_test.shape[1:]}, "
                                f"training examples {self.x_train.shape[1:]}; they must match")
        if not self.registered:
            check_every_class(self.y_train, self.class_names, f"{self.name} training set")
        if self.x_train.ndim == 4:
            arrays = [self.x_train] + ([self.x_test] if self.x_test is not None else [])
            if pixel_scale(arrays, self.name) == 255:
                self.x_train, self.x_test = (None if a is None else _to_uint8(a) for a in (self.x_train, self.x_test))

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
        raise DataError(f"{where}: labels out of range (min {int(y.min())}, max {int(y.max())}, "
                        f"expected 0..{num_classes - 1}); relabel the classes as 0..C-1")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating):
            raise DataError(f"{where}: examples have dtype {x.dtype}; use uint8 images or float features")
        if not np.all(np.isfinite(x)):
            bad = int(np.sum(~np.isfinite(x).reshape(len(x), -1).all(axis=1)))
            raise DataError(f"{where}: {bad} examples contain NaN or infinite values; clean or drop them")


def check_every_class(y: np.ndarray, class_names: List[str], where: str) -> None:
    """Refuse classes without a training example (labels with gaps such as {0, 2, 5}): each
    class would get synthetic images and a place in every model's output learned from nothing."""
    present = np.unique(y)
    if len(present) == len(class_names):
        return
    seen = set(present.tolist())
    empty = [str(class_names[c]) for c in range(len(class_names)) if c not in seen]
    shown = ", ".join(empty[:8]) + (f" and {len(empty) - 8} more" if len(empty) > 8 else "")
    labels = ", ".join(str(int(v)) for v in present[:8]) + (", ..." if len(present) > 8 else "")
    raise DataError(f"{where}: class(es) {shown} of 0..{len(class_names) - 1} have no example (labels used: {labels}); "
                    "relabel the classes as 0..K-1 without gaps, e.g. y = numpy.unique(y, return_inverse=True)[1]")


def pixel_scale(arrays: List[np.ndarray], where: str) -> int:
    """255 when float images are 0..255 pixels (a value above 1, none outside [0, 255]), 1
    when they are uint8 pixels or float pixels in [0, 1]; float images outside [0, 255]
    are refused."""
    kinds = {a.dtype == np.uint8 for a in arrays}
    if kinds == {True}:
        return 1
    if len(kinds) > 1:
        raise DataError(f"{where}: uint8 training images beside float test images (or the reverse); "
                        "give both as one dtype")
    lo = min(float(a.min()) for a in arrays)
    hi = max(float(a.max()) for a in arrays)
    if lo < 0 or hi > 255:
        raise DataError(f"{where}: float images hold values in [{lo:g}, {hi:g}]; images must be pixels: uint8 0..255, "
                        "or float in [0, 1] (or 0..255, rounded to uint8 on loading); "
                        "give raw pixels, not standardised ones")
    return 255 if hi > 1 else 1


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Float pixels 0..255 as uint8, rounded to the nearest integer (chunk by chunk: no float64 copy)."""
    out = np.empty(x.shape, np.uint8)
    for i in range(0, len(x), 4096):
        np.rint(x[i:i + 4096], out=out[i:i + 4096], casting="unsafe")
    return out
