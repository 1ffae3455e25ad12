"""An audit's signals in one small file (``OUT/signals.npz``), so every attack can be scored
again without training anything.

The run cache (``OUT/cache``) holds each run's full outputs and the released sets; it is
large and stays with the machine. ``signals.npz`` keeps what the attacks read:

* common: ``labels`` (N,), ``membership`` (N,) (the target's members, the positive
  class), ``reference_in`` (N, M) (example n in reference run m's training set);
* per defense (prefix ``<key>/``): ``target_logits`` (T, N, C) of its T targets,
  ``scaled_logit`` (N, 1 + M), the scaled logit ``z_y - logsumexp_{i != y} z_i`` of the
  first target (column 0) and of each reference run (LiRA's and RMIA's signal, since
  ``p_y = sigmoid(scaled logit)``), ``test_accuracy`` (T,); for a defense that releases a
  set, ``release_<statistic>`` (N, 1 + M): each candidate's release statistic
  (``attacks.release_lira``: nearest distance in pixels and in random features, the
  kernel-regression loss, the distance in the run's own model features) against the
  target's release (column 0) and each reference release.

``rescore`` rebuilds the attack inputs from these and runs any attack of the suite on the
model or the release (LiRA/RMIA from the scaled logits; ``release_pixel`` and
``release_feature`` as the negated statistic of the target's release).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

import attacks
from attacks.metrics import DEFAULT_FPRS
from mi_defense.errors import UserError
from mi_defense.io import NPZ_READ_ERRORS, write_npz

FILE = "signals.npz"
# release attacks that are the target's statistic alone, negated (nearer = member)
_UNCALIBRATED = {"release_pixel": "pixel", "release_feature": "model_feature"}


@dataclass(frozen=True)
class DefenseSignals:
    target_logits: np.ndarray           # (T, N, C)
    scaled_logit: np.ndarray            # (N, 1 + M): target 0, then the reference runs
    test_accuracy: np.ndarray           # (T,)
    release: Dict[str, np.ndarray]      # statistic -> (N, 1 + M); empty when nothing is released


@dataclass(frozen=True)
class Signals:
    labels: np.ndarray
    membership: np.ndarray
    reference_in: np.ndarray
    defenses: Dict[str, DefenseSignals]
    scoring: dict                       # the audit's seed, FPRs and query views, as it scored

    def __post_init__(self):
        n, m = len(self.labels), self.reference_in.shape[1]
        for key, d in self.defenses.items():
            shapes = [d.target_logits.shape[1], d.scaled_logit.shape[0], *[s.shape[0] for s in d.release.values()]]
            cols = [d.scaled_logit.shape[1], *[s.shape[1] for s in d.release.values()]]
            if set(shapes) != {n} or set(cols) != {1 + m} or self.membership.shape != (n,):
                raise UserError(f"signals of defense {key} do not match {n} examples and {m} reference runs; "
                                "the file is damaged: export it again from the audit's cache")


def defense_arrays(targets: Sequence[dict], refs: Sequence[dict], labels: np.ndarray,
                   release_statistics: Optional[Dict[str, tuple]] = None) -> Dict[str, np.ndarray]:
    """One defense's arrays from its cached runs (``logits`` of each) and the release
    statistics of its first target (``{statistic: (target (N,), references (N, M))}``)."""
    from attacks.signals import run_signals

    runs = [np.asarray(r["logits"], np.float64) for r in [targets[0], *refs]]
    out = {"target_logits": np.stack([t["logits"] for t in targets]).astype(np.float32),
           "scaled_logit": run_signals(runs, labels)[:, :, 0].astype(np.float32),
           "test_accuracy": np.array([t["meta"]["test_accuracy"] for t in targets], np.float64)}
    for stat, (tgt, ref) in (release_statistics or {}).items():
        if ref is not None and ref.shape[1] == len(refs):
            out[f"release_{stat}"] = np.column_stack([tgt, ref]).astype(np.float32)
    return out


def save(path, labels, membership, reference_in, per_defense: Dict[str, Dict[str, np.ndarray]], scoring: dict) -> None:
    """Write the signals file (atomically); ``per_defense`` maps a defense key to ``defense_arrays``;
    ``scoring``: the audit's ``seed``, ``fprs`` and ``augmented_queries``."""
    arrays = {"labels": np.asarray(labels, np.int64), "membership": np.asarray(membership, bool),
              "reference_in": np.asarray(reference_in, bool), "defenses": np.array(json.dumps(list(per_defense))),
              "scoring": np.array(json.dumps(scoring))}
    for key, d in per_defense.items():
        arrays.update({f"{key}/{name}": a for name, a in d.items()})
    write_npz(path, compressed=True, **arrays)


def load(path) -> Signals:
    """The signals file at ``path`` as a typed record; a one-line error when absent or damaged."""
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        defenses = {}
        for key in json.loads(str(a["defenses"])):
            release = {k[len(key) + 9:]: a[k] for k in a if k.startswith(f"{key}/release_")}
            defenses[key] = DefenseSignals(a[f"{key}/target_logits"], a[f"{key}/scaled_logit"],
                                           a[f"{key}/test_accuracy"], release)
        return Signals(a["labels"], a["membership"], a["reference_in"], defenses, json.loads(str(a["scoring"])))
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; an audit writes {FILE} beside its results.json") from None
    except (*NPZ_READ_ERRORS, KeyError, ValueError, TypeError):
        raise UserError(f"{path} is not an audit's signals file (damaged or another format)") from None


def rescore(signals: Signals, key: str, names: Optional[Sequence[str]] = None, fprs=None,
            bootstrap: int = 200, seed: Optional[int] = None) -> dict:
    """Attacks ``names`` (None: every one the signals allow) on defense ``key``'s first target,
    as ``attacks.run`` returns them; ``fprs`` and ``seed`` default to the audit's own."""
    if key not in signals.defenses:
        raise UserError(f"no defense {key} in the signals; choose from {', '.join(signals.defenses)}")
    fprs = tuple(fprs or signals.scoring.get("fprs") or DEFAULT_FPRS)
    seed = signals.scoring.get("seed", 0) if seed is None else seed
    d, m = signals.defenses[key], signals.reference_in.shape[1]
    inputs = attacks.AttackInputs(labels=signals.labels, membership=signals.membership, logits=d.target_logits[0])
    reference = attacks.ReferenceInputs(target=d.scaled_logit[:, 0], references=d.scaled_logit[:, 1:],
                                        reference_in=signals.reference_in, membership=signals.membership,
                                        labels=signals.labels, signal="logit") if m else None
    release = None
    if d.release:
        given = {stat: (s[:, 0].astype(np.float64), s[:, 1:].astype(np.float64)) for stat, s in d.release.items()}
        release = attacks.ReleaseInputs(candidates={}, synthetic={}, membership=signals.membership,
                                        labels=signals.labels, reference_in=signals.reference_in if m else None,
                                        given_statistics=given)
    plain = {a: s for a, s in _UNCALIBRATED.items() if s in d.release}
    applicable = set(attacks.available(inputs, reference, release)) | set(plain)
    if signals.scoring.get("augmented_queries", "none") != "none":
        applicable -= set(attacks.REFERENCE)  # the audit scored these on query views the file does not hold
    missing = [n for n in (names or []) if n not in applicable]
    if missing:
        raise UserError(f"{', '.join(missing)} cannot be scored from these signals; "
                        f"choose from {', '.join(sorted(applicable))}")
    names = list(names or sorted(applicable))
    out = attacks.run(inputs, attacks=[n for n in names if n not in plain], fprs=fprs, reference=reference,
                      release_inputs=release, bootstrap=bootstrap, seed=seed, n_jobs=1)
    for n in names:
        if n in plain:
            out[n] = attacks.metrics.evaluate(attacks.release_lira.uncalibrated_scores(release, plain[n]),
                                              signals.membership, fprs, bootstrap=bootstrap, seed=seed, name=n)
    return out


def path_in(out_dir) -> Path:
    return Path(out_dir) / FILE
