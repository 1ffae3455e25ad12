"""What the attacks see of an audit's runs: the inputs' normalisation, each run's query
logits, and the released sets in pixel space calibrated by the reference releases.

``audit_transform`` chooses the one input normalisation every defense of an audit shares:
``fitted`` (per-channel statistics of the whole training pool) or ``fixed`` ([0, 1] pixels
to [-1, 1], no statistic of the data). ``auto`` is ``fixed`` when a defense claims
differential privacy: a normalisation fitted to a pool that holds the members is computed
from them, and the DP guarantee would not cover the model an attacker queries.
"""
from __future__ import annotations

from typing import List

import numpy as np

import attacks
from mi_defense.data import Transform, default_transform_kind
from mi_defense.errors import UserError


def audit_transform(kind: str, x_train: np.ndarray, input_shape, claims_dp: bool) -> Transform:
    """The audit's input normalisation for ``kind`` (``auto``, ``fitted`` or ``fixed``). The
    fixed map needs pixels (uint8, or floats in [0, 1]); ``auto`` falls back to the fitted one
    on other data (e.g. standardised tables), which each DP statement then says."""
    pixels = x_train.dtype == np.uint8 or (float(np.min(x_train)) >= 0.0 and float(np.max(x_train)) <= 1.0)
    if kind == "fixed" and not pixels:
        raise UserError("transform = \"fixed\" maps [0, 1] pixels to [-1, 1], and this data holds values outside "
                        "[0, 1]; use transform = \"fitted\" (a DP guarantee then does not cover the normalisation)")
    if kind == "fixed" or (kind == "auto" and claims_dp and pixels):
        return Transform.fixed(input_shape[-1], x_train.dtype == np.uint8)
    return Transform.fit(x_train, default_transform_kind(input_shape))


def query_logits(run: dict, augmented: str) -> np.ndarray:
    """A run's logits on the universe: ``(A, N, C)`` the stored query views unless ``augmented``
    is ``none``, else ``(N, C)``."""
    if augmented != "none" and "logits_queries" not in run:
        raise UserError(f"run {run['meta'].get('run')} holds no augmented queries; "
                        "use a new --out folder for augmented_queries")
    return run["logits"] if augmented == "none" else run["logits_queries"]


def release_pixel_space(transform: Transform, x_model: np.ndarray, released_x: np.ndarray):
    """Candidates and released images in the same pixel space, both mapped back through
    the one transform (so uint8 and float copies of a dataset give the same distances)."""
    flat = lambda a: np.asarray(a, np.float64).reshape(len(a), -1)
    return flat(transform.inverse(x_model)), flat(transform.inverse(released_x))


def release_inputs(transform: Transform, x_u: np.ndarray, y_u: np.ndarray, num_classes: int, membership: np.ndarray,
                   masks: np.ndarray, tgt: dict, refs: List[dict], slices: dict) -> "attacks.ReleaseInputs":
    """The target's released set against the universe in pixels, calibrated by the reference
    runs' released sets only (``attacks.release_lira.with_references``)."""
    refs = [r for r in refs if "released_x" in r]
    rel = lambda r: (release_pixel_space(transform, x_u[:1], r["released_x"])[1], r["released_y"],
                     r.get("release_feature_distance"))
    return attacks.release_lira.with_references(release_pixel_space(transform, x_u, tgt["released_x"])[0], y_u,
                                                num_classes, membership, rel(tgt), [rel(r) for r in refs],
                                                masks[:, :len(refs)], slices)
