"""Attacks on a released synthetic set: distance to the nearest synthetic example.

If a synthetic image is a barely-moved copy of the real member it was initialised from,
that member sits unusually close to the release. The score of a candidate ``x`` is
``-min_s ||x - s||_2`` over the synthetic examples ``s`` (larger = more member-like), in
pixel space or in the feature space of a model trained on the synthetic data.
"""
from __future__ import annotations

import numpy as np


def nearest_distance(candidates: np.ndarray, synthetic: np.ndarray, batch: int = 2048) -> np.ndarray:
    """Euclidean distance from each candidate to its nearest synthetic example."""
    c = np.asarray(candidates, np.float64).reshape(len(candidates), -1)
    s = np.asarray(synthetic, np.float64).reshape(len(synthetic), -1)
    if c.shape[1] != s.shape[1]:
        raise ValueError(f"candidates have {c.shape[1]} dimensions, the synthetic set {s.shape[1]}; use the same space")
    s2 = (s ** 2).sum(axis=1)
    out = np.empty(len(c))
    for i in range(0, len(c), batch):
        cb = c[i:i + batch]
        d2 = (cb ** 2).sum(axis=1)[:, None] - 2 * cb @ s.T + s2[None, :]
        out[i:i + batch] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def release_scores(candidates: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    return -nearest_distance(candidates, synthetic)
