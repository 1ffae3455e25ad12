"""Invertible, serialisable preprocessing transforms.

Images are first scaled to [0, 1]. ``Standardize`` subtracts a per-channel mean and
divides by a per-channel standard deviation. ``ZCA`` whitens flattened images with
``W = U diag((s + eps)^-1/2) U^T``, where ``U diag(s) U^T`` is the covariance of the
standardised training images and ``eps = 0.1 * mean(s)``: the regularised ZCA used by
FRePo ("Dataset Distillation using Neural Feature Regression") and by KIP for RGB sets.
The transform fitted on the training pool is applied to every split and saved with
every artifact, so synthetic images can be mapped back to pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from mi_defense.errors import DataError


def _to_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def _channel_moments(x: np.ndarray, chunk: int = 4096):
    """Per-channel mean and standard deviation (float64) of ``x`` scaled as ``_to_float``
    does, in two passes over chunks: no float copy of the whole set."""
    n_ch = x.shape[-1]
    count = x.size // n_ch
    total = np.zeros(n_ch)
    for i in range(0, len(x), chunk):
        total += _to_float(x[i:i + chunk]).reshape(-1, n_ch).sum(axis=0, dtype=np.float64)
    mean = total / count
    sq = np.zeros(n_ch)
    for i in range(0, len(x), chunk):
        d = _to_float(x[i:i + chunk]).reshape(-1, n_ch).astype(np.float64) - mean
        sq += np.einsum("ij,ij->j", d, d)
    return mean, np.sqrt(sq / count)


@dataclass
class Transform:
    """Per-channel standardisation, optionally followed by regularised ZCA whitening."""

    kind: str  # "standardize" or "zca"
    scale_uint8: bool
    mean: np.ndarray
    std: np.ndarray
    zca: Optional[np.ndarray] = None
    zca_inv: Optional[np.ndarray] = None

    @classmethod
    def fit(cls, x: np.ndarray, kind: str = "standardize", zca_reg: float = 0.1) -> "Transform":
        if kind not in ("standardize", "zca"):
            raise DataError(f"unknown transform '{kind}'; use standardize or zca")
        scale = x.dtype == np.uint8
        mean64, std64 = _channel_moments(x)
        mean = mean64.astype(np.float32)
        std = std64.astype(np.float32)
        std = np.where(std < 1e-6, 1.0, std).astype(np.float32)
        t = cls(kind, scale, mean, std)
        if kind == "zca":
            xf = _to_float(x)
            z = ((xf - mean) / std).reshape(len(xf), -1).astype(np.float64)
            cov = z.T @ z / len(z)
            s, u = np.linalg.eigh(cov)
            s = np.clip(s, 0.0, None)
            eps = zca_reg * s.mean()
            t.zca = ((u * (1.0 / np.sqrt(s + eps))) @ u.T).astype(np.float32)
            t.zca_inv = ((u * np.sqrt(s + eps)) @ u.T).astype(np.float32)
        return t

    @classmethod
    def fixed(cls, n_channels: int, scale_uint8: bool = True) -> "Transform":
        """Map [0, 1] pixels to [-1, 1] with no statistic of the data: the normalisation of a
        differentially private release, which must not be fitted to the private set."""
        return cls("standardize", scale_uint8, np.full(n_channels, 0.5, np.float32),
                   np.full(n_channels, 0.5, np.float32))

    @property
    def is_fixed(self) -> bool:
        """True for ``Transform.fixed``'s data-independent map (mean and deviation 0.5, no ZCA)."""
        return self.zca is None and bool(np.all(self.mean == 0.5) and np.all(self.std == 0.5))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = _to_float(x)  # always a new array (astype copies), so the input is never changed
        z -= self.mean  # in place: one array the size of the input, the same values as (x - mean) / std
        z /= self.std
        if self.zca is not None:
            z = (z.reshape(len(z), -1) @ self.zca).reshape(z.shape)
        return z.astype(np.float32, copy=False)

    def inverse(self, z: np.ndarray, to_uint8: bool = False) -> np.ndarray:
        """Map model-space inputs back to the original space ([0, 1] pixels for images)."""
        z = np.asarray(z, np.float32)
        if self.zca_inv is not None:
            z = (z.reshape(len(z), -1) @ self.zca_inv).reshape(z.shape)
        x = z * self.std + self.mean
        if to_uint8:
            return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
        return x

    def to_arrays(self, prefix: str = "transform_") -> Dict[str, np.ndarray]:
        out = {f"{prefix}kind": np.array(self.kind), f"{prefix}scale_uint8": np.array(self.scale_uint8),
               f"{prefix}mean": self.mean, f"{prefix}std": self.std}
        if self.zca is not None:
            out[f"{prefix}zca"] = self.zca
            out[f"{prefix}zca_inv"] = self.zca_inv
        return out

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "transform_") -> "Transform":
        zca = arrays[f"{prefix}zca"] if f"{prefix}zca" in arrays else None
        zinv = arrays[f"{prefix}zca_inv"] if f"{prefix}zca_inv" in arrays else None
        return cls(str(arrays[f"{prefix}kind"]), bool(arrays[f"{prefix}scale_uint8"]),
                   np.asarray(arrays[f"{prefix}mean"]), np.asarray(arrays[f"{prefix}std"]), zca, zinv)


def default_transform_kind(input_shape) -> str:
    """ZCA for RGB images (as FRePo does), per-channel standardisation otherwise."""
    return "zca" if len(input_shape) == 3 and input_shape[-1] == 3 else "standardize"
