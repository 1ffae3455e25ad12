"""What the attacker sees of a target, validated on entry.

``AttackInputs``: per example, the target's logits (or probabilities), the label, an
optional per-example loss, and the membership flag (members are the positive class in
every ROC). ``ReferenceInputs``: for reference-model attacks (LiRA, RMIA), the target's
signal on each universe example and the same signal from ``M`` reference runs, plus the
``N x M`` boolean mask "example n was in run m's training set". The signal is either the
true-class probability or, built from logits (``ReferenceInputs.from_logits``), the
scaled logit ``z_y - logsumexp_{i != y} z_i`` itself, which is not capped where the
probability rounds to 1. Optional augmentation queries add a last axis ``A`` (several
signal columns per example).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np


class AttackInputError(ValueError):
    """Attack inputs of the wrong shape, dtype or range."""


def _finite(name: str, a: np.ndarray) -> None:
    if not np.issubdtype(a.dtype, np.number):
        raise AttackInputError(f"{name} must be numeric, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise AttackInputError(f"{name} contains {int(np.sum(~np.isfinite(a)))} NaN or infinite values; drop or fix "
                               "those examples")


def _membership(m, n: int, name: str = "membership") -> np.ndarray:
    m = np.asarray(m)
    if m.shape != (n,):
        raise AttackInputError(f"{name} must have shape ({n},), got {m.shape}")
    if m.dtype != bool:
        if not np.all(np.isin(m, (0, 1))):
            raise AttackInputError(f"{name} must be boolean (or 0/1)")
        m = m.astype(bool)
    if m.all() or not m.any():
        raise AttackInputError(f"{name} must contain both members (True) and non-members (False)")
    return m


@dataclass
class AttackInputs:
    """Target outputs on members and non-members.

    Exactly one of ``logits`` / ``probs`` is given, shape ``(N, C)``; ``labels`` ``(N,)``
    integers in ``0..C-1``; ``membership`` ``(N,)`` bool; ``loss`` optional ``(N,)``;
    ``slices`` maps a name to a boolean mask or an index array over the N examples.
    """

    labels: np.ndarray
    membership: np.ndarray
    logits: Optional[np.ndarray] = None
    probs: Optional[np.ndarray] = None
    loss: Optional[np.ndarray] = None
    slices: Dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        if (self.logits is None) == (self.probs is None):
            raise AttackInputError("give exactly one of logits or probs")
        out = np.asarray(self.logits if self.logits is not None else self.probs, dtype=np.float64)
        if out.ndim != 2 or out.shape[1] < 2:
            raise AttackInputError(f"logits/probs must have shape (N, C) with C >= 2, got {out.shape}")
        _finite("logits" if self.logits is not None else "probs", out)
        n, c = out.shape
        if self.probs is not None:
            if out.min() < 0 or np.abs(out.sum(axis=1) - 1).max() > 1e-3:
                raise AttackInputError("probs must be non-negative and sum to 1 per row; pass logits= for raw outputs")
            self.probs = out
        else:
            self.logits = out
        labels = np.asarray(self.labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise AttackInputError(f"labels must be integers of shape ({n},), got {labels.dtype} {labels.shape}")
        if labels.min() < 0 or labels.max() >= c:
            raise AttackInputError(f"labels must lie in 0..{c - 1}, got {labels.min()}..{labels.max()}")
        self.labels = labels.astype(np.int64)
        self.membership = _membership(self.membership, n)
        if self.loss is not None:
            self.loss = np.asarray(self.loss, np.float64)
            if self.loss.shape != (n,):
                raise AttackInputError(f"loss must have shape ({n},), got {self.loss.shape}")
            _finite("loss", self.loss)
        self.slices = {k: as_mask(v, n, f"slice '{k}'") for k, v in self.slices.items()}

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return (self.logits if self.logits is not None else self.probs).shape[1]


def as_mask(v, n: int, name: str) -> np.ndarray:
    v = np.asarray(v)
    if v.dtype == bool:
        if v.shape != (n,):
            raise AttackInputError(f"{name}: boolean mask must have shape ({n},), got {v.shape}")
        return v
    if v.size and (not np.issubdtype(v.dtype, np.integer) or v.min() < 0 or v.max() >= n):
        raise AttackInputError(f"{name}: indices must be integers in 0..{n - 1}")
    m = np.zeros(n, bool)
    m[v.astype(np.int64)] = True
    return m


@dataclass
class ReferenceInputs:
    """Signals for reference-model attacks over a universe of N examples.

    ``target`` ``(N,)`` or ``(N, A)``: the target's signal on each example (A augmentation
    queries); ``references`` ``(N, M)`` or ``(N, M, A)``: the same for M reference runs;
    ``reference_in`` ``(N, M)`` bool; ``membership`` ``(N,)`` bool: in the target's
    training set (the ground truth being scored). ``signal``: ``"probability"`` (the
    true-class probability, in [0, 1]) or ``"logit"`` (the scaled logit, any real number).
    """

    target: np.ndarray
    references: np.ndarray
    reference_in: np.ndarray
    membership: np.ndarray
    labels: Optional[np.ndarray] = None
    slices: Dict[str, np.ndarray] = field(default_factory=dict)
    signal: str = "probability"

    @classmethod
    def from_logits(cls, target, references, labels, reference_in, membership, slices=None) -> "ReferenceInputs":
        """From the target's logits ``(N, C)`` (or ``(A, N, C)`` with A augmentation queries)
        and a list of M reference runs' logits of the same shape: the scaled logit of each."""
        from attacks.signals import run_signals

        shapes = {np.shape(z) for z in [target, *references]}
        if len(shapes) != 1:
            raise AttackInputError(f"target and reference logits must have one shape, got {sorted(shapes)}")
        labels = np.asarray(labels)
        return cls(target=run_signals([target], labels)[:, 0], references=run_signals(references, labels),
                   reference_in=reference_in, membership=membership, labels=labels, slices=slices or {}, signal="logit")

    def logit_signal(self):
        """``(target, references)`` as scaled logits ``log(p / (1 - p))`` (LiRA's signal)."""
        if self.signal == "logit":
            return self.target, self.references
        from attacks.signals import logit_scale

        return logit_scale(self.target), logit_scale(self.references)

    def probabilities(self):
        """``(target, references)`` as true-class probabilities (RMIA's signal)."""
        if self.signal == "probability":
            return self.target, self.references
        from attacks.signals import sigmoid

        return sigmoid(self.target), sigmoid(self.references)

    def __post_init__(self):
        t = np.asarray(self.target, np.float64)
        r = np.asarray(self.references, np.float64)
        if t.ndim == 1:
            t = t[:, None]
        if r.ndim == 2:
            r = r[:, :, None]
        if t.ndim != 2 or r.ndim != 3:
            raise AttackInputError(f"target must be (N,) or (N, A) and references (N, M) or (N, M, A); got {t.shape} "
                                   f"and {r.shape}")
        n, a = t.shape
        if r.shape[0] != n or r.shape[2] != a:
            raise AttackInputError(f"references have shape {r.shape}, expected ({n}, M, {a}) to match target {t.shape}")
        if r.shape[1] < 1:
            raise AttackInputError("need at least one reference run")
        if self.signal not in ("probability", "logit"):
            raise AttackInputError(f"signal must be 'probability' or 'logit', got {self.signal!r}")
        for name, x in (("target", t), ("references", r)):
            _finite(name, x)
            if self.signal == "probability" and (x.min() < 0 or x.max() > 1):
                raise AttackInputError(f"{name} must be probabilities of the true class in [0, 1]")
        mask = np.asarray(self.reference_in)
        if mask.shape != r.shape[:2] or mask.dtype != bool:
            raise AttackInputError(f"reference_in must be a boolean array of shape {r.shape[:2]}, got {mask.dtype} "
                                   f"{mask.shape}")
        self.target, self.references, self.reference_in = t, r, mask
        self.membership = _membership(self.membership, n)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, np.int64)
        self.slices = {k: as_mask(v, n, f"slice '{k}'") for k, v in self.slices.items()}

    @property
    def n(self) -> int:
        return self.target.shape[0]

    @property
    def m(self) -> int:
        return self.references.shape[1]
