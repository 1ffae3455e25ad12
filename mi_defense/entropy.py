"""Randomness that protects privacy: drawn from the operating system's entropy.

A differentially private mechanism's guarantee rests on its sampling and noise being
unpredictable. A seed that anyone can read (a default of 0, or one written into a
release) lets them regenerate the noise and subtract it, and a split seed lets them
rebuild the member list. DP runs therefore draw such seeds here, keep them only in the
private run record (so a resumed run repeats itself), and never publish them.
"""
from __future__ import annotations

import secrets

import numpy as np


def os_seed(bits: int = 63) -> int:
    """A ``bits``-bit seed from ``secrets`` (the operating system's entropy). Seeds that
    feed Keras initialisers (which multiply them) take 31 bits."""
    return secrets.randbits(bits)


def secret_key(n: int = 2) -> np.ndarray:
    """``n`` 63-bit seeds from the operating system's entropy, as int64 (for stateless TF ops)."""
    return np.array([os_seed() for _ in range(n)], np.int64)
