"""Calibrated attacks on a released synthetic set.

A release statistic ``s_R(x)`` scores candidate ``x`` against a released set ``R``. Alone
(``attacks.release``) it flags near-copies of members and little else, because it cannot
tell an example that is close to every release (a typical digit) from one that is close
to this release because it was trained on. Calibrated as LiRA calibrates a model's
output ("Membership Inference Attacks From First Principles", Carlini et al. 2022), over
reference releases ``R_1..R_M`` distilled by the same pipeline from random halves of the
universe (``x`` IN half of them):

    t        = g(s_T(x)),       g(s) = log(s + c)
    Lambda(x) = log N(t; mu_in(x), sigma_in^2) - log N(t; mu_out(x), sigma_out^2)

with ``mu`` and ``sigma`` over the reference releases that did (IN) or did not (OUT) come
from a half holding ``x`` (``lira.lira_from_signal``; one variance shared by all
examples below 64 reference releases, as for the model). The target release is never
among the references. ``c`` is a thousandth of the statistic's median over the reference
releases (a floor for exact copies, whose statistic is 0).

Statistics (``STATISTICS``):

* ``pixel``: ``min_{s in R} ||x - s||_2``, the distance to the nearest released image;
* ``random_feature``: the same distance in a fixed random-feature space
  ``phi(x) = sqrt(2 / D) max(0, W x / r)``, ``W`` standard normal ``(D, d)`` drawn from a
  fixed seed, ``r`` the candidates' median norm: the random features of the first-order
  arc-cosine kernel ("Kernel Methods for Deep Learning", Cho & Saul 2009), the same map
  for every release;
* ``krr``: the candidate's loss under the release's kernel ridge regression predictor,
  the distillation objective of FRePo ("Dataset Distillation using Neural Feature
  Regression", Zhou, Nezhadarya & Ba 2022) with the kernel ``K = phi phi^T``:

      pred(x) = K_xS (K_SS + lambda tr(K_SS) / n_S I)^{-1} Y_S
      L(x)    = 1/2 || pred(x) - (onehot(y) - 1/C) ||^2

  ``Y_S`` the released label vectors; a release fitted to its members predicts their
  labels better than others' ("No Free Lunch in 'Privacy for Free': How does Dataset
  Condensation Help Privacy", Carlini, Feldman & Nasr; DOMIAS, "Membership Inference
  Attacks against Synthetic Data through Overfitting Detection", van Breugel et al. 2023);
* any statistic given per release by the caller (e.g. ``model_feature``: the distance in
  the penultimate features of the model each run trained on its own release).

Numpy only.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from attacks.lira import lira_from_signal
from attacks.release import nearest_distance

STATISTICS = ("pixel", "random_feature", "krr")
FEATURE_DIM = 1024
FEATURE_SEED = 0
KRR_REG = 1e-6          # lambda, relative to tr(K_SS) / n_S (FRePo's default)
FIXED_VARIANCE_BELOW = 64


def feature_map(x: np.ndarray, scale: float, dim: int = FEATURE_DIM, seed: int = FEATURE_SEED) -> np.ndarray:
    """``phi(x) = sqrt(2 / D) max(0, W x / scale)`` with ``W`` ``(D, d)`` standard normal from ``seed``."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    w = np.random.default_rng(seed).standard_normal((x.shape[1], dim))
    return np.sqrt(2.0 / dim) * np.maximum(x @ w / scale, 0.0)


def centred_onehot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``onehot(y) - 1/C``, FRePo's regression targets for real examples."""
    return np.eye(num_classes)[np.asarray(labels, np.int64)] - 1.0 / num_classes


def krr_loss(f_x: np.ndarray, y_x: np.ndarray, f_s: np.ndarray, y_s: np.ndarray, reg: float = KRR_REG) -> np.ndarray:
    """Per candidate ``1/2 ||K_xS (K_SS + reg tr(K_SS)/n_S I)^{-1} Y_S - Y_x||^2`` with
    ``K = F F^T`` (features ``f_x`` (N, D), ``f_s`` (S, D); targets ``y_x`` (N, C), ``y_s`` (S, C))."""
    k_ss = f_s @ f_s.T
    ridge = reg * np.trace(k_ss) / len(k_ss) + 1e-300
    alpha = np.linalg.solve(k_ss + ridge * np.eye(len(k_ss)), np.asarray(y_s, np.float64))
    pred = (f_x @ f_s.T) @ alpha
    return 0.5 * ((pred - y_x) ** 2).sum(axis=1)


class ReleaseStatistics:
    """Every statistic of one candidate set against any release; the candidates' features
    and targets are computed once."""

    def __init__(self, candidates: np.ndarray, labels: np.ndarray, num_classes: int):
        self.x = np.asarray(candidates, np.float64).reshape(len(candidates), -1)
        self.scale = float(np.median(np.linalg.norm(self.x, axis=1))) or 1.0
        self.f = feature_map(self.x, self.scale)
        self.y = centred_onehot(labels, num_classes)

    def of(self, synthetic: np.ndarray, targets: np.ndarray) -> Dict[str, np.ndarray]:
        """``{statistic: (N,)}`` of the candidates against the release ``(synthetic, targets)``."""
        s = np.asarray(synthetic, np.float64).reshape(len(synthetic), -1)
        f_s = feature_map(s, self.scale)
        return {"pixel": nearest_distance(self.x, s), "random_feature": nearest_distance(self.f, f_s),
                "krr": krr_loss(self.f, self.y, f_s, targets)}


def transform(stat: np.ndarray, ref_stats: np.ndarray) -> np.ndarray:
    """``g(s) = log(s + c)``, ``c`` a thousandth of the median of ``ref_stats`` (exact copies have ``s = 0``)."""
    c = 1e-3 * float(np.median(ref_stats)) or 1e-12
    return np.log(np.maximum(np.asarray(stat, np.float64), 0.0) + c)


def calibrated(target_stat: np.ndarray, ref_stats: np.ndarray, ref_in: np.ndarray,
               fixed_variance: bool = None) -> np.ndarray:
    """Online LiRA on ``g(statistic)`` (module docstring): ``target_stat`` (N,), ``ref_stats``
    (N, M) of the M reference releases, ``ref_in`` (N, M) bool. ``fixed_variance`` (None:
    below 64 reference releases) shares one variance across examples."""
    ref_stats = np.asarray(ref_stats, np.float64)
    if fixed_variance is None:
        fixed_variance = ref_stats.shape[1] < FIXED_VARIANCE_BELOW
    return lira_from_signal(transform(target_stat, ref_stats), transform(ref_stats, ref_stats), ref_in,
                            online=True, fixed_variance=fixed_variance)


def statistics(rel) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """``{statistic: (target (N,), references (N, M))}`` for a ``ReleaseInputs`` holding
    labels, released label vectors and reference releases (computed once, then cached on it)."""
    if "statistics" not in rel.cache:
        out = {}
        if "pixel" in rel.candidates and not missing("pixel", rel, calibrate=False):
            st = ReleaseStatistics(rel.candidates["pixel"], rel.labels, rel.num_classes)
            tgt = st.of(rel.synthetic["pixel"], rel.synthetic_targets)
            refs = [st.of(x, y) for x, y in zip(rel.reference_synthetic, rel.reference_targets)]
            out = {k: (tgt[k], np.stack([r[k] for r in refs], axis=1) if refs else None) for k in STATISTICS}
        out.update(rel.given_statistics)
        rel.cache["statistics"] = out
    return rel.cache["statistics"]


def with_references(candidates, labels, num_classes: int, membership, target, references, reference_in, slices=None):
    """``ReleaseInputs`` for the pixel space of ``candidates`` (N, ...) and the target release
    ``target = (images, label vectors, model-feature distances or None)``, calibrated by
    ``references`` (one such triple per reference release, ``reference_in`` (N, M)). The
    per-run model-feature distances become the ``model_feature`` statistic when every
    release has them."""
    from attacks import ReleaseInputs

    flat = lambda a: np.asarray(a, np.float64).reshape(len(a), -1)
    given = {}
    if references and all(r[2] is not None for r in [target, *references]):
        given["model_feature"] = (np.asarray(target[2], np.float64), np.stack([r[2] for r in references], axis=1))
    return ReleaseInputs(candidates={"pixel": flat(candidates)}, synthetic={"pixel": flat(target[0])},
                         membership=membership, slices=slices or {}, labels=labels, num_classes=num_classes,
                         synthetic_targets=target[1], reference_synthetic=[flat(r[0]) for r in references],
                         reference_targets=[r[1] for r in references],
                         reference_in=np.asarray(reference_in, bool) if references else None, given_statistics=given)


def missing(stat: str, rel, calibrate: bool) -> str:
    """What ``rel`` lacks for the statistic (empty when nothing)."""
    if stat in rel.given_statistics:
        return "" if not calibrate or rel.reference_in is not None else "reference releases"
    if stat not in STATISTICS:
        return f"the statistic '{stat}' for the target and every reference release"
    need = [("the pixel space", "pixel" in rel.candidates), ("candidate labels", rel.labels is not None),
            ("the released label vectors", rel.synthetic_targets is not None)]
    if calibrate:
        need.append(("reference releases", rel.reference_in is not None and len(rel.reference_synthetic) > 0))
    return ", ".join(what for what, ok in need if not ok)


def calibrated_scores(rel, stat: str) -> np.ndarray:
    """The calibrated attack on ``stat`` (larger = member)."""
    t, refs = statistics(rel)[stat]
    return calibrated(t, refs, rel.reference_in)


def uncalibrated_scores(rel, stat: str) -> np.ndarray:
    """``-s_T(x)``: the statistic against the target release alone (larger = member)."""
    return -statistics(rel)[stat][0]
