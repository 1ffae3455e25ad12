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
* attacks on a released synthetic set (``release_<space>``: nearest-synthetic distance).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np

from attacks import epsilon, lira, metrics, registry, release, rmia, signals, trained
from attacks.inputs import AttackInputError, AttackInputs, ReferenceInputs, as_mask, _membership
from attacks.metrics import DEFAULT_FPRS

from attacks.registry import REFERENCE, REGISTRY, THRESHOLD, TRAINED


@dataclass
class ReleaseInputs:
    """Candidates and the released synthetic set, in one or more spaces (``pixel``, ``feature``)."""

    candidates: Dict[str, np.ndarray]
    synthetic: Dict[str, np.ndarray]
    membership: np.ndarray
    slices: Dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        if set(self.candidates) != set(self.synthetic) or not self.candidates:
            raise AttackInputError("release inputs need the same, non-empty set of spaces for candidates and synthetic data")
        n = len(next(iter(self.candidates.values())))
        for k, c in self.candidates.items():
            if len(c) != n:
                raise AttackInputError(f"release space '{k}': {len(c)} candidates, expected {n}")
            if not np.all(np.isfinite(c)) or not np.all(np.isfinite(self.synthetic[k])):
                raise AttackInputError(f"release space '{k}' contains NaN or infinite values")
        self.membership = _membership(self.membership, n)
        self.slices = {k: as_mask(v, n, f"slice '{k}'") for k, v in self.slices.items()}


def available(inputs=None, reference=None, release_inputs=None) -> list:
    names = []
    if inputs is not None:
        names += THRESHOLD + TRAINED
    if reference is not None:
        names += REFERENCE
    if release_inputs is not None:
        names += [f"release_{k}" for k in release_inputs.candidates]
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
    if given is None or (attack.needs == "release" and name[len(registry.RELEASE_PREFIX):] not in given.candidates):
        kind, what = _NEEDS[attack.needs]
        raise AttackInputError(f"attack '{name}' needs {kind} ({what}"
                               + (f" with space '{name[len(registry.RELEASE_PREFIX):]}')" if attack.needs == "release" else ")"))
    s = attack.score(given, seed=seed, n_jobs=n_jobs, rmia_a=rmia_a)
    return s, given.membership, given.slices


def run(inputs: Optional[AttackInputs] = None, attacks: Optional[Sequence[str]] = None, fprs: Sequence[float] = DEFAULT_FPRS,
        reference: Optional[ReferenceInputs] = None, release_inputs: Optional[ReleaseInputs] = None,
        bootstrap: int = 200, seed: int = 0, n_jobs: Optional[int] = None, return_scores: bool = False,
        rmia_a: Optional[float] = None) -> dict:
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
           "THRESHOLD", "TRAINED", "REFERENCE", "REGISTRY", "DEFAULT_FPRS", "metrics", "signals", "lira", "rmia", "trained",
           "release", "registry", "epsilon"]
