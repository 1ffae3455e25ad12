"""Per-example membership signals from a target's outputs, oriented so that a larger
value means "more likely a member".

* loss: cross-entropy ``-log p_y`` (score: its negative);
* confidence: ``p_y``;
* entropy: ``-sum_i p_i log p_i`` (score: its negative);
* modified entropy ("Systematic Evaluation of Privacy Risks of Machine Learning Models",
  Song & Mittal 2021): ``-(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)`` (score: its negative);
* logit-scaled confidence ``log(p_y / (1 - p_y))``, LiRA's signal ("Membership Inference
  Attacks From First Principles", Carlini et al. 2022), computed stably from logits as
  ``z_y - logsumexp_{i != y} z_i`` (``scaled_logit``): from probabilities clipped at
  ``1 - 1e-12`` it could not exceed about 27.6, where a model fitted to its training set
  puts its members.
"""
from __future__ import annotations

import numpy as np

from attacks.inputs import AttackInputs

_EPS = 1e-12


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def probabilities(inp: AttackInputs) -> np.ndarray:
    return inp.probs if inp.probs is not None else softmax(inp.logits)


def true_class(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return p[np.arange(len(labels)), labels]


def scaled_logit(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``phi = z_y - logsumexp_{i != y} z_i``, which equals ``log(p_y / (1 - p_y))`` for
    ``p = softmax(z)`` without ever forming ``p`` (so it is not capped where ``p_y`` rounds
    to 1). ``logits`` ``(..., N, C)``, ``labels`` ``(N,)``; returns ``(..., N)``."""
    z = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    zy = np.take_along_axis(z, np.broadcast_to(labels[:, None], z.shape[:-1] + (1,)), axis=-1)[..., 0]
    others = z.copy()
    np.put_along_axis(others, np.broadcast_to(labels[:, None], z.shape[:-1] + (1,)), -np.inf, axis=-1)
    m = others.max(axis=-1)
    return zy - (m + np.log(np.exp(others - m[..., None]).sum(axis=-1)))


def run_signals(logits_per_run, labels: np.ndarray) -> np.ndarray:
    """``(N, M, A)`` scaled logits of M runs, each given as logits ``(N, C)`` or, with A
    query views, ``(A, N, C)``."""
    return np.stack([np.atleast_2d(scaled_logit(z, labels)).T for z in logits_per_run], axis=1)


def logit_scaled_confidence(inp: AttackInputs) -> np.ndarray:
    """``log p_y - log(1 - p_y)``; from logits as ``z_y - logsumexp_{i != y} z_i``."""
    if inp.logits is not None:
        return scaled_logit(inp.logits, inp.labels)
    py = np.clip(true_class(inp.probs, inp.labels), _EPS, 1 - _EPS)
    return np.log(py) - np.log1p(-py)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``logsumexp(z) - z_y`` per example, computed stably."""
    z = np.asarray(logits, np.float64)
    m = z.max(axis=1)
    return m + np.log(np.exp(z - m[:, None]).sum(axis=1)) - true_class(z, labels)


def loss(inp: AttackInputs) -> np.ndarray:
    if inp.loss is not None:
        return inp.loss
    if inp.logits is not None:
        return cross_entropy(inp.logits, inp.labels)
    return -np.log(np.clip(true_class(inp.probs, inp.labels), _EPS, None))


def entropy(p: np.ndarray) -> np.ndarray:
    return -np.sum(p * np.log(np.clip(p, _EPS, None)), axis=1)


def modified_entropy(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    py = true_class(p, labels)
    log_1mp = np.log(np.clip(1 - p, _EPS, None))
    mask = np.ones_like(p, bool)
    mask[np.arange(len(labels)), labels] = False
    return -(1 - py) * np.log(np.clip(py, _EPS, None)) - np.sum(np.where(mask, p * log_1mp, 0.0), axis=1)


def membership_scores(inp: AttackInputs) -> dict:
    """Every threshold signal as a score (larger = more member-like)."""
    p = probabilities(inp)
    return {
        "threshold_loss": -loss(inp),
        "threshold_confidence": true_class(p, inp.labels),
        "threshold_entropy": -entropy(p),
        "threshold_modified_entropy": -modified_entropy(p, inp.labels),
        "threshold_logit_confidence": logit_scaled_confidence(inp),
    }


def sigmoid(phi: np.ndarray) -> np.ndarray:
    """``p = 1 / (1 + e^-phi)``: the true-class probability from the scaled logit."""
    from scipy.special import expit

    return expit(np.asarray(phi, np.float64))


def logit_scale(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` elementwise for probabilities, clipped away from 0 and 1."""
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)
