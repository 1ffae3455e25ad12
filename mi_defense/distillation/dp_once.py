"""DP-FRePo released once: the statistic, its noise and its accounting, as pure functions.

The private members enter only through a statistic computed ``K`` times, once under each of
``K`` fixed random ConvNets ``phi_1 .. phi_K`` (chosen without private data, never trained),
and released with Gaussian noise. The synthetic set is then optimised against the cached
noisy statistics for as many steps as help: that optimisation reads no private data, so it
is post-processing and spends nothing ("Differentially Private Dataset Condensation",
NDPDC; "Improving Noise Efficiency in Privacy-preserving Dataset Distillation", Dosser).

**The statistic.** With ``u(x) = phi(x) / ||phi(x)||`` the unit-norm embedding of a member,
the release under one network is, for every class ``c``,

    S_c = sum_{i: y_i = c} u(x_i)  (+ N(0, sigma^2 I)),   n_c = |{i: y_i = c}|  (+ N(0, sigma^2)),

and the synthetic set matches the noisy class means ``S_c / n_c`` with its own class means
of ``u`` (distribution matching). Adding or removing one member changes one ``S_c`` by a
unit vector and one ``n_c`` by 1, so the L2 sensitivity of ``(S, n)`` is ``sqrt(2)``
without any clipping (``SENSITIVITY``); the noise standard deviation is ``sigma sqrt(2)``.
The class counts are released with noise too, so the number of members is not published.

With ``augmentations = A > 0``, ``u(x)`` is the mean of ``x``'s unit embeddings under ``A``
augmentations drawn once per network from the run seed and shared by every member: still a
function of that member alone, of norm at most 1, so the sensitivity is unchanged.

**Why not FRePo's own statistic.** For a frozen feature map, FRePo's KRR loss over the
members is ``sum_i ||h f_i - y_i||^2 = tr(h A h^T) - 2 tr(h B) + sum_i ||y_i||^2`` with
``A = sum_i f_i f_i^T``, ``B = sum_i f_i y_i^T`` (``krr_statistics``,
``krr_loss_from_statistics``) and ``h`` the synthetic set's readout. ``B`` is the class-sum
statistic above (centred); ``A`` is ``d x d``, and at epsilon 1 its noise has a spectral norm
(about ``2 sigma sqrt(2 d)``) comparable to the signal's eigenvalues. Measured on MNIST's
tuning half (``reports/dp-frepo-once``): 32.8 % with ``(A, B)`` against 92.3 % with the class
means, and 35.5 % for ``(A, B)`` with almost no noise, so the objective under random
features, not only the noise, limits it.

**Accounting.** ``K`` full-batch Gaussian releases compose exactly to one Gaussian
mechanism with ``mu = sqrt(K) / sigma`` ("Gaussian Differential Privacy", Dong, Roth & Su),
whose ``(epsilon, delta)`` curve is closed-form (``mi_defense.accounting.gaussian_delta``):
``OncePlan``. The default ``delta`` is ``1e-5``, never a function of the number of members
(that would publish it); with more than 35 112 members, where ``1e-5`` is no longer below
``1/n^1.1``, ``delta`` must be given.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from mi_defense.accounting import calibrate_composed_gaussian, check_delta, composed_gaussian_epsilon, dp_delta
from mi_defense.errors import UserError

SENSITIVITY = math.sqrt(2.0)  # one member: a unit vector in one class sum, 1 in one class count
UNIT_MARGIN = 1e-9  # embeddings are scaled to norm 1 - UNIT_MARGIN: rounding never exceeds SENSITIVITY
NETWORK_NORM = "instance"  # per-image normalisation: one member's embedding depends on that member only
DEFAULT_DELTA = 1e-5  # public: not derived from the number of members


# ---------------------------------------------------------------- pure functions (numpy)
def unit_rows(f: np.ndarray) -> np.ndarray:
    """``u_i = f_i / ||f_i||`` (a zero row stays zero): every member's embedding has norm 1."""
    f = np.asarray(f, np.float64)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def class_sums(u: np.ndarray, y: np.ndarray, num_classes: int):
    """``(S, n)``: ``S[c] = sum_{i: y_i = c} u_i`` (``C x d``) and ``n[c] = |{i: y_i = c}|``."""
    y = np.asarray(y, np.int64)
    onehot = np.eye(num_classes)[y]
    return onehot.T @ np.asarray(u, np.float64), onehot.sum(axis=0)


def class_means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``S_c / max(n_c, 1)``: the noisy class means (a noisy count below 1 is read as 1)."""
    return sums / np.maximum(np.asarray(counts, np.float64), 1.0)[:, None]


def matching_loss(u_syn: np.ndarray, labels_syn: np.ndarray, means: np.ndarray) -> float:
    """Distribution matching ``sum_c ||mean_{j: l_j = c} u_j - m_c||^2`` of the synthetic
    embeddings ``u_syn`` against the (noisy) class means ``m``."""
    s, n = class_sums(u_syn, labels_syn, len(means))
    return float(np.sum((class_means(s, n) - means) ** 2))


def krr_statistics(f: np.ndarray, y: np.ndarray):
    """``(A, B) = (sum_i f_i f_i^T, sum_i f_i y_i^T)`` for features ``f`` (``N x d``) and
    targets ``y`` (``N x C``): the private data's only entry into FRePo's KRR loss."""
    f, y = np.asarray(f, np.float64), np.asarray(y, np.float64)
    return f.T @ f, f.T @ y


def krr_loss_from_statistics(h: np.ndarray, A: np.ndarray, B: np.ndarray, yy: float) -> float:
    """``tr(h A h^T) - 2 tr(h B) + yy`` with ``yy = sum_i ||y_i||^2``: equal to the KRR loss
    ``sum_i ||h f_i - y_i||^2`` of the readout ``h`` (``C x d``) on the data ``(A, B)`` came from."""
    return float(np.trace(h @ A @ h.T) - 2.0 * np.trace(h @ B) + yy)


# ---------------------------------------------------------------- the plan and its guarantee
@dataclass(frozen=True)
class OncePlan:
    """The mechanism DP-FRePo ``mechanism=once`` runs and the guarantee it gives."""

    epsilon: float            # achieved by the accountant (at most the target)
    target_epsilon: float
    delta: float
    noise_multiplier: float   # sigma: noise standard deviation sigma * SENSITIVITY per coordinate
    networks: int             # K releases, one per random network
    steps: int                # optimisation steps against the cached statistics (post-processing)
    augmentations: int = 0    # A > 0: u(x) is the mean of unit embeddings under A fixed augmentations

    @classmethod
    def for_config(cls, cfg, n_private: int) -> "OncePlan":
        """The plan for ``cfg`` (a ``DistillConfig`` with ``epsilon``) and ``n_private``
        members, which only checks ``delta`` (below ``1/n``; the default ``DEFAULT_DELTA``
        needs ``n`` at most 35 112, where it is still below ``1/n^1.1``)."""
        if cfg.delta is not None:
            delta = check_delta(cfg.delta, n_private, "delta")
        elif dp_delta(n_private) < DEFAULT_DELTA:
            raise UserError(f"mechanism=once with {n_private} members needs delta set (--delta): the default "
                            f"{DEFAULT_DELTA:g} is not far enough below 1/n, and a default computed from n would "
                            f"publish n; give a value below 1/N^1.1 for a public upper bound N, e.g. "
                            f"{dp_delta(10 ** len(str(n_private))):.1g} for N = {10 ** len(str(n_private))}")
        else:
            delta = DEFAULT_DELTA
        sigma = calibrate_composed_gaussian(cfg.epsilon, cfg.networks, delta)
        return cls(composed_gaussian_epsilon(sigma, cfg.networks, delta), float(cfg.epsilon), delta, sigma,
                   cfg.networks, cfg.steps, cfg.augmentations)

    @property
    def embedding_text(self) -> str:
        """What one record contributes to a class sum, in words."""
        if not self.augmentations:
            return "unit-norm embeddings"
        return (f"embeddings, each the mean of its unit-norm embeddings under {self.augmentations} augmentations "
                "drawn without private data and shared by every record (norm at most 1),")

    @property
    def noise_std(self) -> float:
        return self.noise_multiplier * SENSITIVITY

    def statement(self, normalisation: str = "the input normalisation is fixed, not fitted to the private data") -> str:
        """The guarantee in words; ``normalisation`` says how the inputs were normalised."""
        return (f"(epsilon={self.epsilon:.3g}, delta={self.delta:.3g})-differential privacy for each private record "
                f"under adding or removing one record, for {self.networks} full-batch Gaussian releases, one per "
                f"fixed random network chosen without private data: the per-class sums of the records' "
                f"{self.embedding_text} and the per-class counts (L2 sensitivity sqrt(2)), with noise multiplier "
                f"{self.noise_multiplier:.4g}; their composition is exactly mu-Gaussian DP with mu = sqrt("
                f"{self.networks})/{self.noise_multiplier:.4g} (Dong, Roth & Su), converted to (epsilon, delta) in "
                f"closed form. The synthetic set was then optimised for {self.steps} steps against the noisy class "
                "means only (post-processing). The number of records is not published (the released counts are "
                "noisy, and delta does not depend on it); the list of classes is treated as public. The noise "
                "generator was seeded with 128 bits of the "
                "operating system's entropy, which are not kept. The start copied no "
                f"member; {normalisation}. The guarantee covers the released synthetic set and everything "
                "computed from it; the run record kept with the data holder (split, seeds, timings) is not covered "
                "and must not be released.")

    def to_json(self) -> dict:
        plan = asdict(self)
        if not self.augmentations:  # the format of runs without augmentations stays as it was
            plan.pop("augmentations")
        return {**plan, "mechanism": "once", "sensitivity": SENSITIVITY,
                "networks_are": f"random ConvNets of the settings' width and depth ({NETWORK_NORM} normalisation "
                                "after the first block) for images, MLPs for feature vectors; never trained",
                "accountant": "exact composition of Gaussian mechanisms (mu-GDP, mu = sqrt(networks) / "
                              "noise_multiplier), closed-form (epsilon, delta)",
                "adjacency": "add or remove one record", "n_private_is_public": False,
                "released": f"per-class sums of random-ConvNet {self.embedding_text.rstrip(',')} and per-class "
                            "counts, once per network", "statement": self.statement()}


def noisy_statistics(sums: np.ndarray, counts: np.ndarray, std: float, rng: np.random.Generator):
    """``(S + N(0, std^2), n + N(0, std^2))``: the Gaussian mechanism on one network's statistic."""
    return (sums + std * rng.standard_normal(np.shape(sums)),
            np.asarray(counts, np.float64) + std * rng.standard_normal(np.shape(counts)))


__all__ = ["DEFAULT_DELTA", "NETWORK_NORM", "SENSITIVITY", "UNIT_MARGIN", "OncePlan", "class_means", "class_sums",
           "krr_loss_from_statistics", "krr_statistics", "matching_loss", "noisy_statistics", "unit_rows"]
