"""Every attack by name: what it needs and how it scores.

``REGISTRY[name]`` is an ``Attack``: ``needs`` is the kind of input it scores from
(``"outputs"``: the target's outputs, ``AttackInputs``; ``"reference"``: reference runs,
``ReferenceInputs``; ``"release"``: a released set, ``ReleaseInputs``) and ``score(inputs,
**options)`` returns one score per example, larger meaning "more likely a member".
Release attacks exist per space (``release_pixel``, ``release_feature``, or any space a
``ReleaseInputs`` carries) and are resolved by ``get``; those on a release statistic
(``RELEASE_STATISTIC``: the KRR loss, and every statistic calibrated over reference
releases, ``attacks.release_lira``) are registered by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np

from attacks import lira, release, release_lira, rmia, signals, trained


@dataclass(frozen=True)
class Attack:
    name: str
    needs: str                        # outputs | reference | release
    score: Callable[..., np.ndarray]  # (inputs, seed=, n_jobs=, rmia_a=) -> scores


def _threshold(name):
    return lambda inp, **_: signals.membership_scores(inp)[name]


def _trained(model):
    return lambda inp, seed=0, n_jobs=None, **_: trained.trained_scores(inp, model, seed=seed, n_jobs=n_jobs)


def _lira(online: bool, fixed: bool):
    def score(r, **_):
        t, refs = r.logit_signal()
        return lira.lira_from_signal(t, refs, r.reference_in, online=online, fixed_variance=fixed)
    return score


def offline_a(reference, rmia_a: Optional[float]) -> float:
    """Offline RMIA's ``a``: as given, else tuned on the reference runs alone."""
    return rmia.tune_a(reference.probabilities()[1], reference.reference_in) if rmia_a is None else rmia_a


def _rmia(online: bool):
    def score(r, rmia_a=None, **_):
        a = rmia.A_DEFAULT if online else offline_a(r, rmia_a)  # online RMIA has no a
        t, refs = r.probabilities()
        return rmia.rmia_scores(t, refs, r.reference_in, online=online, a=a)
    return score


def _release(space):
    return lambda rel, **_: release.release_scores(rel.candidates[space], rel.synthetic[space])


def _statistic(stat: str, calibrate: bool):
    if calibrate:
        return lambda rel, **_: release_lira.calibrated_scores(rel, stat)
    return lambda rel, **_: release_lira.uncalibrated_scores(rel, stat)


THRESHOLD = ["threshold_loss", "threshold_confidence", "threshold_entropy", "threshold_modified_entropy",
             "threshold_logit_confidence"]
TRAINED = ["trained_lr", "trained_mlp", "trained_gb", "trained_knn"]
REFERENCE = ["lira_online", "lira_online_fixed", "lira_offline", "lira_offline_fixed", "rmia", "rmia_online"]

REGISTRY: Dict[str, Attack] = {}
for _n in THRESHOLD:
    REGISTRY[_n] = Attack(_n, "outputs", _threshold(_n))
for _n in TRAINED:
    REGISTRY[_n] = Attack(_n, "outputs", _trained(_n.split("_", 1)[1]))
for _n, _online, _fixed in (("lira_online", True, False), ("lira_online_fixed", True, True),
                            ("lira_offline", False, False), ("lira_offline_fixed", False, True)):
    REGISTRY[_n] = Attack(_n, "reference", _lira(_online, _fixed))
REGISTRY["rmia"] = Attack("rmia", "reference", _rmia(online=False))
REGISTRY["rmia_online"] = Attack("rmia_online", "reference", _rmia(online=True))
RELEASE_PREFIX = "release_"
# name -> (statistic, calibrated over reference releases)
RELEASE_STATISTIC = {"release_krr": ("krr", False), "release_lira_pixel": ("pixel", True),
                     "release_lira_random_feature": ("random_feature", True), "release_lira_krr": ("krr", True),
                     "release_lira_model_feature": ("model_feature", True)}
for _n, (_stat, _cal) in RELEASE_STATISTIC.items():
    REGISTRY[_n] = Attack(_n, "release", _statistic(_stat, _cal))
RELEASE = ["release_pixel", "release_feature"] + list(RELEASE_STATISTIC)

DESCRIPTIONS = {
    "threshold_loss": "the target's cross-entropy loss on the example (lower: member)",
    "threshold_confidence": "the probability the target gives to the true class",
    "threshold_entropy": "the entropy of the target's prediction (lower: member)",
    "threshold_modified_entropy": "Song & Mittal's modified entropy, which uses the true label",
    "threshold_logit_confidence": "log(p / (1 - p)) of the true class, LiRA's signal without reference runs",
    "trained_lr": "logistic regression trained on half of the examples' sorted outputs, scored on the other half",
    "trained_mlp": "a small neural network, trained as trained_lr",
    "trained_gb": "gradient-boosted trees (histogram gradient boosting), trained as trained_lr",
    "trained_knn": "k nearest neighbours, trained as trained_lr",
    "lira_online": "LiRA: Gaussians per example from the reference runs with and without it (needs about 64 runs)",
    "lira_online_fixed": "LiRA online with one variance for all examples (the default primary attack below 64 runs)",
    "lira_offline": "LiRA from the reference runs that did not train on the example only",
    "lira_offline_fixed": "LiRA offline with one variance for all examples",
    "rmia": "RMIA: the example's likelihood ratio against population examples (offline, a tuned on the references)",
    "rmia_online": "RMIA with the reference runs that trained on the example too",
    "release_pixel": "distance from the candidate to its nearest released image, in pixels (the default release "
                     "attack)",
    "release_feature": "the same distance in the target model's penultimate features",
    "release_krr": "the loss of the candidate's label under the release's kernel ridge regression predictor "
                   "(FRePo's objective, fixed random-feature kernel; lower: member)",
    "release_lira_pixel": "release_pixel calibrated LiRA-style: the candidate's distance compared with its distances "
                          "to reference releases distilled with and without it",
    "release_lira_random_feature": "the nearest-release distance in a fixed random-feature space, calibrated over "
                                   "reference releases",
    "release_lira_krr": "release_krr calibrated over reference releases",
    "release_lira_model_feature": "release_feature (each run's own model's features) calibrated over reference "
                                  "releases",
}


def release_missing(name: str, rel) -> str:
    """What the release inputs ``rel`` lack for the release attack ``name`` (empty: nothing)."""
    if name in RELEASE_STATISTIC:
        stat, calibrate = RELEASE_STATISTIC[name]
        return release_lira.missing(stat, rel, calibrate)
    space = name[len(RELEASE_PREFIX):]
    return "" if space in rel.candidates else f"space '{space}'"


def get(name: str) -> Optional[Attack]:
    """The attack called ``name`` (``release_<space>`` for any space), or None."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name.startswith(RELEASE_PREFIX) and len(name) > len(RELEASE_PREFIX):
        return Attack(name, "release", _release(name[len(RELEASE_PREFIX):]))
    return None
