"""RMIA: "Low-Cost High-Power Membership Inference Attacks" (Zarifzadeh, Liu, Mahloujifar,
Shokri, ICML 2024).

Pairwise likelihood ratio of ``x`` against population samples ``z``:

    LR_theta(x) = p(x | theta) / p(x),     p(x) = mean_m p(x | theta_m)
    Score(x)    = Pr_z[ LR_theta(x) / LR_theta(z) >= gamma ]

with ``p(x | theta)`` the probability the model gives to the true label. Offline (OUT
reference runs only), the missing IN runs are approximated linearly:
``p(x) = 0.5 * ((1 + a) * p_OUT(x) + (1 - a))``. ``a`` depends on the data and the
training; as in the paper it is chosen with the reference runs alone (``tune_a``): each
reference run in turn plays the target, the others except its complementary partner its
references, and the ``a`` with the highest mean AUC wins. The target's membership is never used. \
With A augmentation queries,
``p(x | theta)`` and ``p(x)`` are averaged over the queries.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from attacks.metrics import auc

A_GRID = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))
A_DEFAULT = 0.3  # used when fewer than two reference runs are available to tune it


def rmia_scores(target_p: np.ndarray, ref_p: np.ndarray, ref_in: np.ndarray, online: bool = False,
                a: float = A_DEFAULT, gamma: float = 1.0, population: Optional[np.ndarray] = None) -> np.ndarray:
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


def held_out_references(ref_in: np.ndarray, m: int) -> list:
    """The runs that may serve as references when run ``m`` plays the target: every other
    run except a complementary partner (a run trained on exactly the examples ``m`` left
    out, as ``data.split.universe_masks`` draws them in pairs). With the partner among
    them, every member of ``m`` would be IN one run fewer among its references than every
    non-member, a trace of ``m``'s membership in the inclusion pattern itself."""
    ref_in = np.asarray(ref_in, bool)
    return [k for k in range(ref_in.shape[1]) if k != m and not np.array_equal(ref_in[:, k], ~ref_in[:, m])]


def tune_a(ref_p: np.ndarray, ref_in: np.ndarray, grid: Sequence[float] = A_GRID, gamma: float = 1.0) -> float:
    """Offline ``a`` from the reference runs only: run m is the target, the other runs
    except its complementary partner (``held_out_references``) its references, membership
    is ``ref_in[:, m]``; the grid value with the highest mean AUC over m (ties: the
    smallest). ``A_DEFAULT`` when no run has references left."""
    ref_p = np.asarray(ref_p, float)
    if ref_p.ndim == 2:
        ref_p = ref_p[:, :, None]
    ref_in = np.asarray(ref_in, bool)
    m_runs = ref_p.shape[1]
    others_of = {m: held_out_references(ref_in, m) for m in range(m_runs) if 0 < ref_in[:, m].sum() < len(ref_in)}
    usable = [m for m, o in others_of.items() if o]
    if m_runs < 2 or not usable:
        return A_DEFAULT
    mean_auc = []
    for a in grid:
        aucs = []
        for m in usable:
            others = others_of[m]
            s = rmia_scores(ref_p[:, m], ref_p[:, others], ref_in[:, others], online=False, a=a, gamma=gamma)
            aucs.append(auc(s, ref_in[:, m]))
        mean_auc.append(np.mean(aucs))
    return float(grid[int(np.argmax(mean_auc))])
