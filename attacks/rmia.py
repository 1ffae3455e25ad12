"""RMIA: "Low-Cost High-Power Membership Inference Attacks" (Zarifzadeh, Liu, Mahloujifar,
Shokri, ICML 2024).

Pairwise likelihood ratio of ``x`` against population samples ``z``:

    LR_theta(x) = p(x | theta) / p(x),     p(x) = mean_m p(x | theta_m)
    Score(x)    = Pr_z[ LR_theta(x) / LR_theta(z) >= gamma ]

with ``p(x | theta)`` the probability the model gives to the true label. Offline (OUT
reference runs only), the missing IN runs are approximated linearly:
``p(x) = 0.5 * ((1 + a) * p_OUT(x) + (1 - a))``, with ``a`` tuned per dataset (the paper
uses 0.2 - 0.6 for its image sets; 0.3 by default here). With A augmentation queries,
``p(x | theta)`` and ``p(x)`` are averaged over the queries.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def rmia_scores(target_p: np.ndarray, ref_p: np.ndarray, ref_in: np.ndarray, online: bool = False,
                a: float = 0.3, gamma: float = 1.0, population: Optional[np.ndarray] = None) -> np.ndarray:
    """RMIA scores (larger = member). ``population`` is a boolean mask of the examples used
    as ``z`` (default: all examples)."""
    pt = target_p.mean(axis=1)  # (N,)
    r = ref_p.mean(axis=2)  # (N, M)
    if online:
        px = r.mean(axis=1)
    else:
        out = ~ref_in
        cnt = out.sum(axis=1)
        p_out = np.where(cnt > 0, (r * out).sum(axis=1) / np.maximum(cnt, 1), r.mean(axis=1))
        px = 0.5 * ((1.0 + a) * p_out + (1.0 - a))
    lr = pt / np.maximum(px, 1e-30)
    z = lr if population is None else lr[np.asarray(population, bool)]
    z = np.sort(z)
    # LR(x) / LR(z) >= gamma  <=>  LR(z) <= LR(x) / gamma
    return np.searchsorted(z, lr / gamma, side="right") / float(len(z))
