"""The Python API: ``distill``, ``load_distilled``, ``audit`` and ``report`` (``audit_model``: ``api_model``);
``distill_dataset`` and ``evaluate`` (a named dataset distilled into a folder, and FRePo's
evaluation of a released set); ``list_datasets`` and ``fetch_dataset``.

The ``mi-defense`` command line is a thin layer over these functions. Every argument after
the data is keyword-only; bad input raises ``mi_defense.UserError`` with a one-line
message naming the problem and the fix.

>>> import mi_defense
>>> released = mi_defense.distill(x_private, y_private, ipc=10)       # doctest: +SKIP
>>> released.save("release/distilled.npz")                            # doctest: +SKIP
>>> results = mi_defense.audit(dataset="digits", defenses=["none", "frepo:ipc=10"], out="audit")  # doctest: +SKIP
>>> results = mi_defense.audit(x, y, model="my_model.py:build", out="audit-mine")  # doctest: +SKIP
>>> mi_defense.report(results)                                        # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from mi_defense.auditing.results import AuditResults
from mi_defense.distillation.artifact import DistilledSet, load_distilled
from mi_defense.distillation.record import PRIVATE_DIR  # noqa: F401 (see below)
from mi_defense.errors import UserError

# The user's API. ``PRIVATE_DIR`` (the private run record's folder name) stays importable
# from here for the command line's messages, but is no part of it.
__all__ = ["AuditResults", "DistilledSet", "audit", "distill", "distill_dataset", "evaluate", "fetch_dataset",
           "list_datasets", "load_distilled", "report"]


def _quiet(*_args, **_kwargs) -> None:
    pass


def distill(x: np.ndarray, y: np.ndarray, *, ipc: int = 10, steps: Optional[int] = None, preset: str = "auto",
            class_names: Optional[Sequence[str]] = None, init: Optional[str] = None, seed: Optional[int] = None,
            progress: bool = False, log: Optional[Callable[[str], None]] = None, **settings) -> DistilledSet:
    """Distil a private image set with FRePo ("Dataset Distillation using Neural Feature Regression").

    Args:
        x: the private images, uint8 ``(N, H, W, C)`` in [0, 255] (or float32 already in [0, 1]).
        y: their integer classes ``0..K-1``, shape ``(N,)``.
        ipc: synthetic images per class.
        steps: outer steps (default: the preset's).
        preset: ``"auto"`` (the default): ``"small"`` for fewer than 20 000 images without
            ``epsilon``, else ``"quick"``; ``"small"`` (pool width 32, 1000 steps), ``"quick"``
            (width 64, real batch 256, 2000 steps) or ``"paper"`` (width 128, batch 1024, 20 000 steps).
        class_names: one name per class (default ``"0"``, ``"1"``, ...).
        init: ``"noise"`` (the default) starts from white Gaussian noise and copies no
            member; ``"smooth-noise"`` (the default with ``epsilon`` and ``quick``) from
            Gaussian noise blurred over 2 pixels;
            ``"real"`` copies ``ipc`` random members per class as the starting point (they
            are then exposed by the release, ``DistilledSet.exposed_members``, and an
            ``ExposureWarning`` is issued); or a path to a public ``.npz`` set.
        seed: seed of the initial set, the pool models and (without DP) the real batches;
            None: 0 without DP, and for DP-FRePo a secret one from the operating system's
            entropy (DP-FRePo's sampling and noise always come from that entropy). It is
            kept in ``DistilledSet.private``, never in the release.
        progress: show a progress bar on stderr.
        log: where to send one-line messages (default: nowhere).
        **settings: any other ``DistillConfig`` field (``width``, ``batch_real``, ``lr``, ...);
            ``epsilon=E`` (with ``delta``, ``clip``) distils with DP-FRePo, an
            (E, delta)-differentially private release (``mi_defense.distillation.dp``).

    Returns:
        The synthetic set (model space and pixels, learned labels, the transform), its
        public ``provenance`` (data-independent settings, privacy statement) and, kept
        apart, what must not be published: ``exposed_members`` and the run record
        ``private`` (seed, fingerprint of the private data, number of records, timings,
        loss history, versions). ``save`` writes only the public part;
        ``save_private_record`` the rest.
    """
    from mi_defense.config.toml import resolve_distill_preset
    from mi_defense.data.dataset import Dataset
    from mi_defense.distillation.api import (check_distillable, distil_members, make_strategy, release_provenance,
                                             transform_for)
    from mi_defense.entropy import os_seed
    from mi_defense.io import package_versions

    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4:
        raise UserError(f"x has shape {x.shape}; FRePo distils images (N, H, W, C) (add a channel axis to grey-scale "
                        "images)")
    n_classes = (len(class_names) if class_names is not None
                 else (int(y.max()) + 1 if y.size and np.issubdtype(y.dtype, np.integer) else 0))
    names = [str(c) for c in class_names] if class_names is not None else [str(c) for c in range(n_classes)]
    data = Dataset("private set", x, y, None, None, names)  # validates shapes, dtypes and labels
    if seed is None:
        seed = os_seed(31) if settings.get("epsilon") is not None else 0
    chosen, cfg = resolve_distill_preset(preset, "distill()", n_members=len(x), ipc=ipc, steps=steps, init=init,
                                         seed=seed, checkpoint_every=0, **settings)
    missing = [names[c] for c in range(n_classes) if np.sum(y == c) < (cfg.ipc if cfg.init == "real" else 1)]
    if missing:
        raise UserError(f"class(es) {', '.join(missing)} have too few images for ipc={cfg.ipc}; lower ipc or add "
                        "images")
    check_distillable(y, n_classes, cfg.ipc, names)
    transform = transform_for(cfg, data.x_train)
    t0 = time.time()
    res = distil_members(cfg, data.x_train, data.y_train, n_classes, transform, strategy=make_strategy(cfg.strategy),
                         log=log or _quiet, progress=progress)
    public = release_provenance(cfg, res.dp, len(res.init_positions))
    record = {"kind": "frepo-distill-run", "config": dataclasses.asdict(cfg), "preset": chosen, "seed": cfg.seed,
              "n_members": int(len(x)), "dataset_fingerprint": data.fingerprint(), "steps_done": res.state.step,
              "seconds": time.time() - t0,
              "final_loss": res.state.history[-1]["loss"] if res.state.history else None,
              "loss_history": res.state.history, "versions": package_versions(), "release": public}
    return DistilledSet(res.x, res.y, res.labels, transform, names, np.asarray(res.init_positions, np.int64), public,
                        record)


def distill_dataset(dataset: str = "digits", *, out: Union[str, Path], preset: str = "auto",
                    config: Union[str, Path, None] = None, data_dir: Optional[str] = None,
                    members: Optional[int] = None, split: Union[str, Path, None] = None, resume: bool = False,
                    progress: bool = False, tensorboard: bool = False, keep_checkpoint: bool = False,
                    log: Optional[Callable[[str], None]] = None, **settings) -> dict:
    """Distil the members of a named dataset into the folder ``out``: what ``mi-defense distill`` runs.

    Args:
        dataset: a registered dataset's name (``mi_defense.list_datasets``), an ``.npz`` file
            or an image folder.
        out: output folder: the release (``distilled.npz``, ``distilled.png``) and the
            private run record ``out/PRIVATE-do-not-release/`` (split, seeds, timings,
            checkpoint: never publish it).
        preset: as for ``distill``; with ``progress``, ``"auto"`` logs the preset it chose.
        config: a TOML file whose ``[distill]`` table applies below ``settings``.
        data_dir: folder holding dataset copies (default ``$MI_DEFENSE_DATA``).
        members: number of members (default: 90% of the training pool), drawn with the seed
            or, with ``epsilon``, with the operating system's entropy.
        split: a saved ``split.json`` to use instead of drawing one.
        resume: continue from the checkpoint in the private run record (a DP run also takes
            its secret seed and split from there).
        progress: show a progress bar on stderr.
        tensorboard: write TensorBoard scalars into the private run record.
        keep_checkpoint: keep the checkpoint after a finished distillation.
        log: where to send one-line messages (default: nowhere).
        **settings: ``DistillConfig`` fields (``ipc``, ``steps``, ``width``, ``epsilon``, ...;
            None: not given). Without ``epsilon`` the seed defaults to 0 and draws the split.

    Returns:
        The private run record (``run.json``): ``complete``, ``steps_done``, ``seconds``,
        ``final_loss``, ``n_members``, ``n_synthetic``, the resolved ``config``, ...
    """
    from mi_defense.distillation.api import distill_folder
    from mi_defense.io import check_writable_dir

    check_writable_dir(out, "out (--out)")
    return distill_folder(dataset, out, preset=preset, data_dir=data_dir, members=members,
                          split_path=None if split is None else str(split),
                          config_path=None if config is None else str(config), resume=resume, progress=progress,
                          tensorboard=tensorboard, keep_checkpoint=keep_checkpoint, log=log or _quiet, **settings)


def evaluate(distilled: Union[str, Path], dataset: str, *, models: Optional[int] = None, preset: Optional[str] = None,
             data_dir: Optional[str] = None, baseline_subset: bool = False, only_subset: bool = False,
             compare_width: int = 0, batched: bool = False, json_path: Union[str, Path, None] = None,
             progress: bool = False, log: Optional[Callable[[str], None]] = None, **settings) -> dict:
    """FRePo's evaluation of a released set: fresh ConvNets trained on it; their test accuracy.

    Args:
        distilled: a ``distilled.npz``; the private run record beside it, when present,
            gives the test share of the split and the width and depth it was made with.
        dataset: the dataset it was distilled from.
        models: fresh models per evaluated set (at least 1; default: 2 for a set distilled with
            the ``small`` preset within its pool width and steps, which also halves the
            protocol's steps unless ``steps`` is given; else 3).
        preset: a ``TRAIN_PRESETS`` name, ``"quick"`` or ``"paper"`` (default: the distillation's
            width and depth).
        data_dir: folder holding dataset copies.
        baseline_subset: also train on a random real subset of the same size, drawn per
            class from the distillation's members (needs the private run record).
        only_subset: train on that subset alone.
        compare_width: also evaluate with ConvNets of this width (e.g. 128, FRePo's
            published evaluation); 0: none.
        batched: train each group of models together in one graph.
        json_path: also write the result there as JSON (checked for writability first).
        progress: show progress, and log the plan and the time left.
        log: where to send one-line messages (default: nowhere).
        **settings: ``TrainConfig`` fields (``width``, ``depth``, ``steps``, ``seed``,
            ``augment``, ``lr_final_ratio``; None: not given).

    Returns:
        ``test_accuracy_mean``, ``test_accuracy_std``, ``n_train``, ``models``,
        ``train_config`` (absent with ``only_subset``), ``budget`` (``"small"`` or ``"full"``,
        ``config.EVAL_BUDGETS``); ``at_width`` and ``random_subset``
        when asked for. The subset's training-set indices (members of the private data) are
        never in the result: they are written into the private run record beside the set,
        ``PRIVATE-do-not-release/random-subset-seed<seed>.json``, whose path
        ``random_subset["members_file"]`` gives.
    """
    from mi_defense.config import TRAIN_PRESETS, OrNone, Options, Whole
    from mi_defense.distillation.evaluation import evaluate_distilled
    from mi_defense.io import check_writable_file

    if not isinstance(distilled, (str, Path)) or not str(distilled):
        raise UserError(f"distilled must be the path of a distilled.npz, got {distilled!r}")
    if not isinstance(dataset, (str, os.PathLike)) or not str(dataset):
        raise UserError("dataset must name the data the set was distilled from (a registered name, an .npz file or an "
                        f"image folder), got {dataset!r}")
    dataset = str(dataset)
    OrNone(Whole(1, description="a whole number >= 1 (train at least one model)")).check(models, "models", "evaluate")
    Whole(0, description="a whole number >= 0 (a ConvNet width, or 0 for none)").check(compare_width, "compare_width",
                                                                                       "evaluate")
    OrNone(Options(TRAIN_PRESETS)).check(preset, "preset", "evaluate")
    if json_path is not None:
        check_writable_file(json_path, "json_path (--json)")
    return evaluate_distilled(distilled, dataset, models=models, data_dir=data_dir, preset=preset, json_path=json_path,
                              baseline_subset=baseline_subset, progress=progress, compare_width=compare_width,
                              batched=batched, only_subset=only_subset, log=log or _quiet, **settings)


def audit(x=None, y=None, *, x_test=None, y_test=None, config=None, out: Union[str, Path],
          preset: Optional[str] = "quick", model=None, progress: bool = False,
          log: Optional[Callable[[str], None]] = None, executor: str = "local",
          executor_options: Optional[dict] = None, shard: Optional[Tuple[int, int]] = None,
          **settings) -> Optional[AuditResults]:
    """Train every defense, attack it with the membership-inference suite, write ``out/results.json``.

    Args:
        x: your data as an array (images ``(N, H, W, C)`` uint8 or float in [0, 1], or feature
            vectors ``(N, D)``), audited as a named dataset is: the split is drawn from it and
            recorded. The arrays are kept in ``out/PRIVATE-do-not-release/data.npz`` (never
            publish it), which the configuration's ``dataset`` then names. Without them,
            ``dataset=`` names the data (default: the preset's). An ``AuditConfig`` or a TOML
            path given first is taken as ``config``.
        y: the integer classes of ``x``, ``(N,)``.
        x_test: a test set beside them (default: a share of the pool is held back).
        y_test: its integer classes.
        config: an ``AuditConfig`` (used as given), a path to a TOML file with ``[audit]``/
            ``[train]``/``[distill]``/``[real_recipe]`` tables (applied over the preset), or
            None.
        out: output folder: ``results.json`` and the cache of every trained run (a second
            call with the same settings retrains nothing).
        preset: ``"quick"`` (small ConvNets, 4 reference runs, minutes on a CPU) or
            ``"standard"`` (the setting to publish) or ``"cheap"`` (``standard`` with 4 reference
            runs and RMIA online declared); ignored when ``config`` is an ``AuditConfig``.
        model: your architecture in place of the package's ConvNet (or MLP), for every model
            the defenses train except FRePo's distillation pool and ``dpsgd-linear``: a function
            ``build(input_shape, num_classes, seed) -> tf.keras.Model`` (uncompiled, logits out)
            or its name, ``"path/to/file.py:build"`` or ``"package.module:build"``. Each
            defense keeps its recipe; DP-SGD wraps the model in tensorflow-privacy's DP Keras
            model. Recorded in the configuration (a folder trained with another model is
            refused) and, with its layers and parameter count, in each defense's ``metadata``.
        progress: show progress on stderr.
        log: where to send one-line messages (default: nowhere).
        executor: ``"local"`` (this process) or ``"ray"`` (one Ray task per run; see
            ``mi_defense.auditing.executors``); ``executor_options`` go to its constructor
            (``together``: reference runs trained in one graph, for both; ``address``,
            ``gpus_per_task``, ``max_retries`` for Ray).
        shard: ``(i, n)``, whole numbers with ``0 <= i < n``: train only the i-th of n shares
            of the runs (into ``out``'s cache) and return None; a call without ``shard`` then
            trains what is missing, merges and scores.
        **settings: ``AuditConfig`` fields that override the rest (``dataset``, ``defenses``,
            ``members``, ``references``, ...), and ``width``/``depth`` for every ConvNet.

    Returns:
        The results (None for a ``shard``); ``AuditResults.summary()`` is the table the command line prints.
    """
    from mi_defense.api_inputs import check_shard, private_arrays, remove_written
    from mi_defense.auditing import run_audit
    from mi_defense.auditing.executors import make_executor
    from mi_defense.config import AuditConfig, resolve_audit_config
    from mi_defense.io import check_writable_dir

    if executor_options is not None and not isinstance(executor_options, dict):
        raise UserError(f"executor_options must be a dict of the executor's settings (e.g. {{'together': 2}}), "
                        f"got {type(executor_options).__name__}")
    runner = make_executor(executor, **(executor_options or {}))  # refused before anything is written
    if isinstance(x, (AuditConfig, str, Path)) and y is None and config is None:  # audit(config, out=...), as before
        x, config = None, x
    shard = check_shard(shard)
    check_writable_dir(out, "out (--out)")
    if model is not None:
        from mi_defense.defenses.own_model import register

        settings["model"] = model if isinstance(model, str) else register(model)
    created = None
    if x is not None:
        if settings.get("dataset") is not None:
            raise UserError("give the data as arrays (x, y) or as dataset=..., not both")
        path, new_file = private_arrays(Path(out), x, y, x_test, y_test)
        created = path if new_file else None
        settings["dataset"] = str(path)
    elif y is not None or x_test is not None or y_test is not None:
        raise UserError("y, x_test and y_test go with arrays x: give audit(x, y, ...)")
    try:
        if isinstance(config, AuditConfig):
            cfg = resolve_audit_config(base=config, where="audit()", **settings)
        elif config is None or isinstance(config, (str, Path)):
            cfg = resolve_audit_config(preset, config, where="audit()", **settings)
        else:
            raise UserError(f"config must be an AuditConfig, a TOML path or None, got {type(config).__name__}")
    except UserError:
        remove_written(created)  # nothing left behind by a call refused for its settings
        raise
    results = run_audit(cfg, out, shard=shard, progress=progress, log=log or _quiet, executor=runner)
    if results is None:  # a shard: nothing scored yet
        return None
    return AuditResults.from_dict(results, out)


def report(results: Union[AuditResults, str, Path], out: Union[str, Path, None] = None) -> Dict[str, Path]:
    """Render the report (``report.html``, ``report.md``, ``results.csv``, figures).

    Args:
        results: ``AuditResults`` or the audit's output folder (its ``results.json`` is
            rendered as found there when ``out`` is None).
        out: where to write (default: the audit's folder). Another folder gets a copy of
            ``results.json``; figures drawn from run artifacts need the audit's folder.

    Returns:
        The written files by name.
    """
    from mi_defense.io import check_writable_dir, write_text
    from mi_defense.reporting import render_report

    if isinstance(results, (str, Path)) and out is None:
        return render_report(results)
    if isinstance(results, (str, Path)):
        results = AuditResults.load(results)
    if not isinstance(results, AuditResults):
        raise UserError(f"results must be AuditResults or a folder, got {type(results).__name__}")
    target = Path(out) if out is not None else results.path
    if target is None:
        raise UserError("these results were not read from a folder; pass out=FOLDER")
    if results.path is None or target.resolve() != Path(results.path).resolve():
        check_writable_dir(target, "out")
        target.mkdir(parents=True, exist_ok=True)
        write_text(target / "results.json", results.to_json())
    return render_report(target)


def list_datasets(*, data_dir: Optional[str] = None) -> List[dict]:
    """Every registered dataset: ``name``, ``input_shape``, ``num_classes``, ``n_train``,
    ``n_test`` and ``available`` (where a copy was found under ``data_dir``, or how it is fetched)."""
    from mi_defense.data.registry import REGISTRY, availability

    return [{"name": name, "input_shape": tuple(s.input_shape), "num_classes": s.num_classes, "n_train": s.n_train,
             "n_test": s.n_test, "available": availability(name, data_dir)} for name, s in REGISTRY.items()]


def fetch_dataset(name: str, *, data_dir: Optional[str] = None):
    """The registered dataset ``name``, found under ``data_dir`` or downloaded, its checksums
    verified (``Dataset.files``: file -> SHA-256)."""
    from mi_defense.data.registry import REGISTRY, load_dataset

    if not isinstance(name, str) or name not in REGISTRY:
        raise UserError(f"unknown dataset {name!r}; give one name, one of {', '.join(REGISTRY)}")
    return load_dataset(name, data_dir)
