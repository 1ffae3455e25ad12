"""A membership-inference attack suite on numpy and scikit-learn.

``attacks.run(...)`` scores every requested attack and returns a JSON-serialisable dict
``{attack name: result}`` (schema in the README). Members are the positive class.

Families:

* threshold attacks on loss, confidence, entropy, modified entropy and logit-scaled
  confidence (``threshold_*``);
* trained attack models (``trained_lr``, ``trained_mlp``, ``trained_gb``, ``trained_knn``);
* LiRA, online/offline with per-example or fixed variance (``lira_online``,
  ``lira_online_fixed``, ``lira_offline``, ``lira_offline_fixed``);
* RMIA, offline and online (``rmia``, ``rmia_online``);
* attacks on a released synthetic set (``release_<space>``: nearest-synthetic distance;
  ``release_krr``: the loss under the release's kernel ridge regression predictor), and
  the same statistics calibrated over reference releases (``release_lira_*``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from attacks import epsilon, lira, metrics, queries, registry, release, release_lira, rmia, signals, trained
from attacks.inputs import AttackInputError, AttackInputs, ReferenceInputs, as_mask, _membership
from attacks.metrics import DEFAULT_FPRS

from attacks.registry import REFERENCE, REGISTRY, THRESHOLD, TRAINED


@dataclass
class ReleaseInputs:
    """Candidates and the released synthetic set, in one or more spaces (``pixel``, ``feature``).

    For the KRR loss and the calibrated attacks (``attacks.release_lira``): ``labels`` (N,)
    of the candidates, ``num_classes``, ``synthetic_targets`` (S, C) the released label
    vectors; ``reference_synthetic`` / ``reference_targets`` the M reference releases (pixel
    space) and ``reference_in`` (N, M) whether each candidate was in the half a reference
    release was distilled from. ``given_statistics``: ``{name: (target (N,), references
    (N, M))}`` statistics computed by the caller (e.g. in each run's model features).
    """

    candidates: Dict[str, np.ndarray]
    synthetic: Dict[str, np.ndarray]
    membership: np.ndarray
    slices: Dict[str, np.ndarray] = field(default_factory=dict)
    labels: Optional[np.ndarray] = None
    num_classes: Optional[int] = None
    synthetic_targets: Optional[np.ndarray] = None
    reference_synthetic: Sequence[np.ndarray] = ()
    reference_targets: Sequence[np.ndarray] = ()
    reference_in: Optional[np.ndarray] = None
    given_statistics: Dict[str, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if set(self.candidates) != set(self.synthetic) or not (self.candidates or self.given_statistics):
            raise AttackInputError("release inputs need the same, non-empty set of spaces for candidates and synthetic "
                                   "data (or given statistics alone)")
        n = (len(next(iter(self.candidates.values()))) if self.candidates
             else len(next(iter(self.given_statistics.values()))[0]))
        for k, c in self.candidates.items():
            if len(c) != n:
                raise AttackInputError(f"release space '{k}': {len(c)} candidates, expected {n}")
            if not np.all(np.isfinite(c)) or not np.all(np.isfinite(self.synthetic[k])):
                raise AttackInputError(f"release space '{k}' contains NaN or infinite values")
        self.membership = _membership(self.membership, n)
        self.slices = {k: as_mask(v, n, f"slice '{k}'") for k, v in self.slices.items()}
        self._check_calibration(n)

    def _check_calibration(self, n: int) -> None:
        if self.labels is not None:
            self.labels = np.asarray(self.labels)
            if self.labels.shape != (n,) or not np.issubdtype(self.labels.dtype, np.integer):
                raise AttackInputError(f"release labels must be integers of shape ({n},), got {self.labels.dtype} "
                                       f"{self.labels.shape}")
            self.num_classes = int(self.num_classes or self.labels.max() + 1)
            if self.labels.min() < 0 or self.labels.max() >= self.num_classes:
                raise AttackInputError(f"release labels must lie in 0..{self.num_classes - 1}")
        if self.synthetic_targets is not None and self.num_classes is not None and "pixel" in self.synthetic:
            if np.shape(self.synthetic_targets) != (len(self.synthetic["pixel"]), self.num_classes):
                raise AttackInputError(f"synthetic_targets must have shape (released images, {self.num_classes}), "
                                       f"got {np.shape(self.synthetic_targets)}")
        m = len(self.reference_synthetic)
        given_refs = any(r is not None for _, r in self.given_statistics.values())
        if m != len(self.reference_targets) or (m > 0 and self.reference_in is None) or \
                (self.reference_in is not None and not (m or given_refs)):
            raise AttackInputError("give reference_synthetic, reference_targets and reference_in together, one release "
                                   "per run")
        for name, (t, r) in self.given_statistics.items():
            if np.shape(t) != (n,) or (r is not None and np.shape(r)[0] != n):
                raise AttackInputError(f"given statistic '{name}' must be (N,) for the target and (N, M) for the "
                                       "references")
        if self.reference_in is not None:
            self.reference_in = np.asarray(self.reference_in, bool)
            widths = {m} if m else set()
            widths |= {np.shape(r)[1] for _, r in self.given_statistics.values() if r is not None}
            if self.reference_in.shape[0] != n or {self.reference_in.shape[1]} != widths:
                raise AttackInputError(f"reference_in has shape {self.reference_in.shape}, expected ({n}, M) with M "
                                       f"the number of reference releases ({sorted(widths)})")
            for name, x in [*zip([f"reference release {i}" for i in range(m)], self.reference_synthetic),
                            *[(f"given statistic '{k}'", v) for k, vs in self.given_statistics.items() for v in vs
                              if v is not None]]:
                if not np.all(np.isfinite(x)):
                    raise AttackInputError(f"{name} contains NaN or infinite values")


def available(inputs=None, reference=None, release_inputs=None) -> list:
    names = []
    if inputs is not None:
        names += THRESHOLD + TRAINED
    if reference is not None:
        names += REFERENCE
    if release_inputs is not None:
        names += [f"release_{k}" for k in release_inputs.candidates]
        names += [n for n in registry.RELEASE_STATISTIC if not registry.release_missing(n, release_inputs)]
    return names


_NEEDS = {"outputs": ("AttackInputs", "the target's outputs"), "reference": ("ReferenceInputs", "reference runs"),
          "release": ("ReleaseInputs", "a released set")}


def scores_for(name: str, inputs: Optional[AttackInputs] = None, reference: Optional[ReferenceInputs] = None,
               release_inputs: Optional[ReleaseInputs] = None, seed: int = 0, n_jobs: Optional[int] = None,
               rmia_a: Optional[float] = None):
    """``(scores, membership, slices)`` of one attack. ``rmia_a``: RMIA's offline ``a``
    (None: tuned on the reference runs, ``rmia.tune_a``)."""
    attack = registry.get(name)
    if attack is None:
        raise AttackInputError(f"unknown attack '{name}'; available: {', '.join(registry.REGISTRY)}, release_<space>")
    given = {"outputs": inputs, "reference": reference, "release": release_inputs}[attack.needs]
    if given is None:
        kind, what = _NEEDS[attack.needs]
        raise AttackInputError(f"attack '{name}' needs {kind} ({what})")
    if attack.needs == "release" and registry.release_missing(name, given):
        raise AttackInputError(f"attack '{name}' needs ReleaseInputs (a released set) with "
                               f"{registry.release_missing(name, given)}")
    s = attack.score(given, seed=seed, n_jobs=n_jobs, rmia_a=rmia_a)
    return s, given.membership, given.slices


def run(inputs: Optional[AttackInputs] = None, attacks: Optional[Sequence[str]] = None,
        fprs: Sequence[float] = DEFAULT_FPRS, reference: Optional[ReferenceInputs] = None,
        release_inputs: Optional[ReleaseInputs] = None, bootstrap: int = 200, seed: int = 0,
        n_jobs: Optional[int] = None, return_scores: bool = False, rmia_a: Optional[float] = None) -> dict:
    """Run ``attacks`` (``None``: every attack the given inputs allow; an empty list runs
    nothing); ``{name: result}``.

    ``rmia_a`` fixes offline RMIA's ``a``; by default it is tuned on the reference runs
    alone and reported as the result's ``a``.

    With ``return_scores=True`` each result also carries ``scores`` (per example, as a list).
    """
    names = list(attacks) if attacks is not None else available(inputs, reference, release_inputs)
    out = {}
    for name in names:
        a = registry.offline_a(reference, rmia_a) if name == "rmia" and reference is not None else rmia_a
        s, membership, slices = scores_for(name, inputs, reference, release_inputs, seed, n_jobs, a)
        res = metrics.evaluate(s, membership, fprs, bootstrap=bootstrap, seed=seed, slices=slices, name=name)
        if name == "rmia":
            res["a"] = float(a)
        if return_scores:
            res["scores"] = np.asarray(s, float).tolist()
        out[name] = res
    return out


__all__ = ["AttackInputs", "ReferenceInputs", "ReleaseInputs", "AttackInputError", "run", "scores_for", "available",
           "THRESHOLD", "TRAINED", "REFERENCE", "REGISTRY", "DEFAULT_FPRS", "metrics", "signals", "lira", "rmia",
           "trained", "release", "release_lira", "queries", "registry", "epsilon"]
