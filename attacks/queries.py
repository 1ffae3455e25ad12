"""Augmented queries: the transformed copies of each example a model is queried on.

"Membership Inference Attacks From First Principles" (Carlini et al. 2022, section VI)
queries the target and every reference model on several augmentations of an example
(the ones training applies: horizontal flips and small shifts) and fits one Gaussian per
query; a member is fitted on all its training-time views, so the likelihood ratio
averaged over the queries separates members better than one query does.

``KINDS`` (numpy only; images ``(N, H, W, C)``):

* ``none``: the example itself (one query);
* ``shifts``: the example and its shifts by one pixel up, down, left and right (five);
* ``flips_shifts``: those five and their horizontal mirror images (ten; for data whose
  training flips images: a mirrored digit is another symbol).

Shifted-in border pixels repeat the edge (no constant fill, which would be a pixel value
the data never has).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
KINDS = {"none": 1, "shifts": len(_SHIFTS), "flips_shifts": 2 * len(_SHIFTS)}


def shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images ``x`` (N, H, W, C) moved by ``dy`` rows and ``dx`` columns, edges repeated:
    ``out[:, i, j] = x[:, clip(i - dy), clip(j - dx)]``."""
    h, w = x.shape[1], x.shape[2]
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return x[:, rows][:, :, cols]


def views(x: np.ndarray, kind: str) -> Iterator[np.ndarray]:
    """The ``KINDS[kind]`` query views of the images ``x``, one array (N, H, W, C) at a time."""
    if kind not in KINDS:
        raise ValueError(f"augmented queries '{kind}' unknown; use one of {', '.join(KINDS)}")
    x = np.asarray(x)
    if kind != "none" and x.ndim != 4:
        raise ValueError(f"augmented queries need images (N, H, W, C), got shape {x.shape}")
    if kind == "none":
        yield x
        return
    for flip in ((False, True) if kind == "flips_shifts" else (False,)):
        base = x[:, :, ::-1] if flip else x
        for dy, dx in _SHIFTS:
            yield shift(base, dy, dx)
