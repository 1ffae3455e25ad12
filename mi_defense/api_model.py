"""``audit_model``: membership inference against a model you already trained.

The attacks score the given model's outputs on its members and on non-members it never
saw. With ``train=fit`` (your own training function, ``fit(model, x, y, seed)``), reference
runs repeat your training on halves of that universe drawn in complementary pairs
(``data.split.universe_masks``: every example is in exactly half of the runs), each on a
fresh copy of the model (``tf.keras.models.clone_model``: the same architecture, new
weights), which gives LiRA and RMIA ("Membership Inference Attacks From First Principles",
"Low-Cost High-Power Membership Inference Attacks"). Without ``train``, only the attacks
that need no reference runs (threshold and trained attacks), which are much weaker at low
false-positive rates.

>>> found = mi_defense.audit_model(model, members=(x_in, y_in), nonmembers=(x_out, y_out),  # doctest: +SKIP
...                                train=fit, references=16)
>>> found["lira_online_fixed"]["auc"]                                                       # doctest: +SKIP
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

from mi_defense.errors import UserError

SCHEMA = "mi_defense.results_model/1"


def _pair(value, name: str) -> Tuple[np.ndarray, np.ndarray]:
    try:
        x, y = value
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a pair (x, y) of arrays") from None
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim != 1 or len(x) != len(y) or not np.issubdtype(y.dtype, np.integer) or len(y) < 2:
        raise UserError(f"{name}: give x (N, ...) and integer classes y (N,) for N >= 2 examples; got x {x.shape}, "
                        f"y {y.dtype} {y.shape}")
    return x, y


def _outputs(model, x: np.ndarray, batch: int = 1000) -> Tuple[np.ndarray, str]:
    """The model's outputs on ``x`` as logits: probabilities (rows of non-negative values
    summing to one) become their logarithm, which gives the same softmax."""
    from mi_defense.tfenv import tf

    out = np.concatenate([np.asarray(model(tf.constant(x[i:i + batch], tf.float32), training=False), np.float64)
                          for i in range(0, len(x), batch)])
    if not np.all(np.isfinite(out)):
        raise UserError("the model's outputs hold NaN or infinite values; audit a model that trained without diverging")
    if out.min() >= 0 and np.abs(out.sum(axis=1) - 1).max() < 1e-3:
        return np.log(np.clip(out, 1e-30, None)), "probabilities (their logarithm used as logits)"
    return out, "logits"


def _reference_logits(model, train: Callable, x_u, y_u, masks, seed: int, log) -> list:
    """One fresh copy of ``model`` per reference run, trained by ``train`` on the run's half."""
    from mi_defense.tfenv import tf

    refs = []
    for r in range(masks.shape[1]):
        run_seed = seed * 1000 + r + 1
        tf.keras.utils.set_random_seed(run_seed)  # the copy's initial weights, and the user's training
        try:
            copy = tf.keras.models.clone_model(model)
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise UserError(f"tf.keras.models.clone_model cannot copy this model ({str(exc).splitlines()[0][:120]}); "
                            "build it with tf.keras.Sequential or the functional API, or give get_config to your "
                            "subclass") from None
        t0 = time.time()
        trained = train(copy, x_u[masks[:, r]], y_u[masks[:, r]], run_seed)
        trained = copy if trained is None else trained
        if not isinstance(trained, tf.keras.Model):
            raise UserError(f"train returned a {type(trained).__name__}; return the trained Keras model (or None, "
                            "having trained the copy)")
        refs.append(_outputs(trained, x_u)[0])
        log(f"reference run {r + 1}/{masks.shape[1]}: trained on {int(masks[:, r].sum())} examples in "
            f"{time.time() - t0:.0f} s")
    return refs


def audit_model(model, *, members, nonmembers, train: Optional[Callable] = None, references: int = 16,
                out: Union[str, Path, None] = None, attacks: Optional[Sequence[str]] = None,
                fprs: Optional[Sequence[float]] = None, bootstrap: int = 200, seed: int = 0, n_jobs: int = 1,
                log: Optional[Callable[[str], None]] = None) -> dict:
    """Attack a trained Keras model with the membership-inference suite.

    Args:
        model: the trained ``tf.keras.Model``; its outputs are logits (probabilities are
            taken as their logarithm).
        members: ``(x, y)``, examples the model was trained on (model input space, integer classes).
        nonmembers: ``(x, y)``, examples of the same distribution it never saw.
        train: ``fit(model, x, y, seed)``, your training function: it trains the fresh,
            uncompiled copy ``model`` of your architecture on ``(x, y)`` as you trained the
            original (compile, fit) and returns it (or None). None: no reference runs.
        references: reference runs with ``train`` (even, at least 2; 16 or more to publish).
        out: a folder to write ``results_model.json`` into (the results, the model's
            architecture with its layers, and the settings) and the short report
            ``report_model.md`` / ``report_model.html`` (the architecture, every attack's AUC
            and TPR at the low FPRs, the reference runs, what the audit cannot show); None:
            nothing is written.
        attacks: attack names (default: every attack the inputs allow).
        fprs: the false-positive rates at which TPRs are read (default ``attacks.DEFAULT_FPRS``).
        bootstrap: bootstrap resamples of the confidence intervals.
        seed: seed of the reference halves, the copies' weights and the bootstrap.
        n_jobs: parallel jobs of the trained attacks.
        log: where to send one-line messages (default: nowhere).

    Returns:
        ``{attack name: result}`` as ``attacks.run`` gives it (AUC with its interval, TPR at
        each FPR, advantage, per-class slices).
    """
    import attacks as suite
    from attacks.lira import default_attack
    from attacks.metrics import DEFAULT_FPRS, class_slices
    from mi_defense.data.split import universe_masks
    from mi_defense.defenses.own_model import layer_details, summary
    from mi_defense.io import check_writable_dir, package_versions, write_json
    from mi_defense.tfenv import tf

    log = log or (lambda s: None)
    if not isinstance(model, tf.keras.Model):
        raise UserError(f"model must be a trained tf.keras.Model, got {type(model).__name__}")
    (xm, ym), (xn, yn) = _pair(members, "members"), _pair(nonmembers, "nonmembers")
    if xm.shape[1:] != xn.shape[1:]:
        raise UserError(f"members are {xm.shape[1:]}, non-members {xn.shape[1:]}: give both in the model's input shape")
    if train is not None and not callable(train):
        raise UserError(f"train must be a function fit(model, x, y, seed), got {type(train).__name__}")
    if train is not None and (references < 2 or references % 2):
        raise UserError(f"references={references}: give an even number of reference runs, at least 2 (16 or more to "
                        "publish)")
    if out is not None:
        check_writable_dir(out, "out")
    x_u, y_u = np.concatenate([xm, xn]), np.concatenate([ym, yn]).astype(np.int64)
    membership = np.arange(len(y_u)) < len(ym)
    logits, outputs = _outputs(model, x_u)
    num_classes = logits.shape[1]
    if logits.ndim != 2 or y_u.min() < 0 or y_u.max() >= num_classes:
        raise UserError(f"the model's output has shape {logits.shape}; expected (N, C) with every class of y below "
                        f"C = {num_classes}")
    slices = class_slices(y_u, num_classes)
    masks, refs = np.zeros((len(y_u), 0), bool), []
    if train is not None:
        masks = universe_masks(len(y_u), references, seed=seed + 7)
        refs = _reference_logits(model, train, x_u, y_u, masks, seed, log)
    inputs = suite.AttackInputs(labels=y_u, membership=membership, logits=logits, slices=slices)
    reference = suite.ReferenceInputs.from_logits(logits, refs, y_u, masks, membership, slices) if refs else None
    applicable = suite.available(inputs, reference)
    unknown = [a for a in (attacks or []) if a not in applicable]
    if unknown:
        raise UserError(f"attack(s) {', '.join(unknown)} cannot run "
                        f"here{' (no reference runs without train)' if not refs else ''}; "
                        f"choose from {', '.join(applicable)}")
    fprs = tuple(fprs or DEFAULT_FPRS)
    results = suite.run(inputs, attacks=list(attacks) if attacks else applicable, fprs=fprs, reference=reference,
                        bootstrap=bootstrap, seed=seed, n_jobs=n_jobs)
    if out is not None:
        from mi_defense.reporting.model_report import write_model_report

        primary = default_attack(len(refs))
        record = {
            "schema": SCHEMA, "model": {**summary(model, type(model).__name__), "layer_details": layer_details(model)},
            "outputs": outputs, "n_members": int(membership.sum()), "n_nonmembers": int((~membership).sum()),
            "references": len(refs),
            "reference_training": getattr(train, "__qualname__", None) if train is not None else None,
            "primary_attack": primary if primary in results else next(iter(results), None),
            "config": {"seed": seed, "fprs": list(fprs), "bootstrap": bootstrap, "attacks": list(results)},
            "versions": package_versions(), "attacks": results}
        write_json(Path(out) / "results_model.json", record)
        write_model_report(record, out)
        log(f"wrote {Path(out) / 'results_model.json'}, report_model.md and report_model.html")
    return results
