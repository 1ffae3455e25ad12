"""Distil a dataset's members end to end and export the synthetic set.

Outputs in ``out_dir``: the release, ``distilled.npz`` (only public fields; keys and
transform in ``mi_defense.distillation.artifact``) and ``distilled.png`` (a grid in pixel
space), and the private run record ``PRIVATE-do-not-release/`` (``distill.record``:
``run.json`` with the resolved config, seeds, split hash, indices of the members used
for initialisation, timing, loss history and package versions; ``split.json``; the
checkpoint ``checkpoint.npz`` that lets ``resume=True`` continue a killed run, removed
once the set is complete unless ``keep_checkpoint=True``). The release is written last,
so a folder holding one holds a finished run. ``distill_folder`` starts from a dataset's
name: it loads the data, draws (or, for a resumed DP run, reloads) the split and resolves
the settings (behind ``mi_defense.api.distill_dataset`` and ``mi-defense distill``).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from mi_defense.config import NOISE_INITS, DistillConfig
from mi_defense.data.dataset import Dataset
from mi_defense.data.split import Split
from mi_defense.data.transforms import Transform, default_transform_kind
from mi_defense.distillation.artifact import DistilledSet
from mi_defense.distillation.memory import check_memory
from mi_defense.errors import UserError, warn_exposure
from mi_defense.io import clean_stale_temp, package_versions, write_json

if TYPE_CHECKING:
    from mi_defense.distillation.frepo import DistillState


def transform_for(cfg: DistillConfig, x: np.ndarray) -> Transform:
    """The input normalisation of a distillation: fitted to ``x`` (per-channel, ZCA for RGB),
    or fixed to ``[-1, 1]`` pixels for DP-FRePo, whose guarantee must not depend on a
    statistic of the private data."""
    if cfg.private:
        return Transform.fixed(x.shape[-1], x.dtype == np.uint8)
    return Transform.fit(x, default_transform_kind(x.shape[1:]))


def release_provenance(cfg: DistillConfig, fr_dp, n_exposed: int = 0, dataset: Optional[str] = None) -> dict:
    """What a release says about itself (``artifact.public_provenance``): the DP-FRePo plan
    and its statement, or that there is no guarantee and how many members the start copied
    (``init=real``), which it exposes. ``dataset``: a public dataset's name, else None."""
    from mi_defense.distillation.artifact import public_provenance

    if fr_dp is not None:
        return public_provenance(cfg, fr_dp.to_json(), fr_dp.statement(), 0, dataset)
    start = (f"the start copied {n_exposed} members (init=real), which the release exposes: their images are the "
             "starting points of the synthetic images (their indices are in the private run record)" if n_exposed
             else "the start copied no member")
    return public_provenance(cfg, None, "no formal privacy guarantee (FRePo without DP); the input normalisation is "
                             f"fitted to the private images (its mean and scale are in the release); {start}",
                             n_exposed, dataset)


def check_distillable(y: np.ndarray, num_classes: int, ipc: int, class_names=None) -> None:
    """Refuse, before anything is allocated, a distillation that cannot be one: fewer than
    two classes (FRePo's labels and margin need a choice between classes), or more
    synthetic images per class than the smallest class has members (a set larger than
    what it summarises; ``--ipc 100000`` would otherwise allocate until memory runs out)."""
    if num_classes < 2:
        raise UserError(f"FRePo needs at least 2 classes, the members have {num_classes}; "
                        "distil a labelled set with several classes")
    counts = np.bincount(np.asarray(y, np.int64), minlength=num_classes)
    smallest = int(counts.argmin())
    if ipc > counts[smallest]:
        name = class_names[smallest] if class_names is not None else smallest
        raise UserError(f"ipc={ipc} synthetic images per class, but class {name} has {counts[smallest]} members; "
                        f"use ipc={max(1, int(counts[smallest]))} (--ipc {max(1, int(counts[smallest]))}) or less")


def make_strategy(name: str):
    from mi_defense.tfenv import tf

    return tf.distribute.MirroredStrategy() if name == "mirrored" else tf.distribute.get_strategy()


def noise_start(n: int, shape: Tuple[int, ...], sigma: float, seed: int) -> np.ndarray:
    """``n`` images of ``shape`` drawn without looking at any data: standard Gaussian noise
    (``sigma = 0``), or that noise blurred by a Gaussian of ``sigma`` pixels (periodic
    borders) and rescaled to unit variance per image. Blurred noise has the low-frequency
    content natural images have; white noise leaves pixel-level patterns the distillation
    must first erase. Measured in the README ("Smoothed noise"): blurring helps at a small
    budget but not at the ``quick`` one, so white noise stays the default."""
    z = np.random.default_rng(seed).standard_normal((n,) + tuple(shape))
    if sigma > 0 and len(shape) == 3:
        from scipy.ndimage import gaussian_filter

        z = gaussian_filter(z, sigma=(0, sigma, sigma, 0), mode="wrap")
        z = z / z.std(axis=(1, 2, 3), keepdims=True)
    return z.astype(np.float32)


def initial_set(cfg: DistillConfig, x_members: np.ndarray, y_members: np.ndarray, num_classes: int,
                transform: Optional[Transform]):
    """Initial synthetic set in model space and the member positions it copies (empty unless
    init=real). ``x_members`` are pixels when ``transform`` is given, else model-space inputs."""
    from mi_defense.distillation.frepo import choose_init_indices

    if cfg.init == "real":
        pos = choose_init_indices(y_members, cfg.ipc, num_classes, cfg.seed)
        x0 = transform(x_members[pos]) if transform is not None else x_members[pos].astype(np.float32)
        return x0, y_members[pos].copy(), pos
    labels = np.repeat(np.arange(num_classes), cfg.ipc).astype(np.int64)
    if cfg.init in NOISE_INITS:
        sigma = cfg.smooth_sigma if cfg.init == "smooth-noise" else 0.0
        return noise_start(len(labels), tuple(x_members.shape[1:]), sigma, cfg.seed), labels, np.zeros(0, np.int64)
    from mi_defense.data.user import load_npz

    if transform is None:
        raise UserError("init from a public .npz set needs the dataset's transform")
    public = load_npz(cfg.init)
    if public.input_shape != tuple(x_members.shape[1:]):
        raise UserError(f"{cfg.init}: public images have shape {public.input_shape}, "
                        f"the members {x_members.shape[1:]}; they must match")
    pos = choose_init_indices(public.y_train, cfg.ipc, num_classes, cfg.seed)
    return transform(public.x_train[pos]), public.y_train[pos], np.zeros(0, np.int64)


# Settings that do not change what a step computes; a checkpoint may be resumed with others.
_RESUMABLE_WITH_OTHER = ("checkpoint_every", "jit", "strategy")
_ONCE_ONLY = ("mechanism", "networks")


def run_hash(cfg: DistillConfig, split: Split) -> str:
    """SHA-256 over the settings that shape the synthetic set and the split it is made from:
    a checkpoint is resumed only under the same hash."""
    import hashlib
    import json

    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _RESUMABLE_WITH_OTHER}
    if cfg.mechanism == "per-step":  # fields added with the release-once mechanism: earlier checkpoints still resume
        for k in _ONCE_ONLY:
            settings.pop(k)
    if not cfg.augmentations:  # added later still: release-once checkpoints made before it still resume
        settings.pop("augmentations")
    text = json.dumps({"config": settings, "split": split.hash}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Distilled:
    """What one distillation produced: the synthetic set in model space, learned labels,
    the class of each image, the member positions copied at initialisation, the loop state."""

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    init_positions: np.ndarray
    state: "DistillState"
    flip: bool
    dp: object = None  # the DPPlan of DP-FRePo, else None


def distil_members(cfg: DistillConfig, x_members: np.ndarray, y_members: np.ndarray, num_classes: int,
                   transform: Optional[Transform] = None, strategy=None, log=print, progress: bool = False,
                   checkpoint=None, resume: bool = False, run_hash: str = "", stop_after: Optional[int] = None,
                   tensorboard_dir: Optional[str] = None) -> Distilled:
    """Initialise, run FRePo's outer loop and label the result: the one sequence behind
    ``mi-defense distill`` and the ``frepo`` defense. ``x_members`` are pixels when
    ``transform`` is given (uint8 pixels stay uint8 in memory), else model-space inputs."""
    from mi_defense.distillation.frepo import FRePo

    if cfg.init == "real":
        warn_exposure(f"init=real copies {cfg.ipc} members per class into the synthetic set: the release exposes them "
                      "(their indices are in the private run record); the default init=noise copies none")
    check_memory(cfg, len(x_members), x_members.shape[1:], num_classes,
                 x_members.itemsize if transform is not None else 4)
    x0, y0, init_pos = initial_set(cfg, x_members, y_members, num_classes, transform)
    if cfg.releases_once:  # distill.once: no pool, no per-step noise
        from mi_defense.distillation.once import OnceDistiller

        fr = OnceDistiller(cfg, x_members, y_members, num_classes, x0, y0, transform=transform, log=log)
    else:
        fr = FRePo(cfg, x_members, y_members, num_classes, x0, y0, strategy=strategy, log=log, transform=transform)
    fr.run_hash = run_hash
    state = fr.run(checkpoint=checkpoint, resume=resume, progress=progress, tensorboard_dir=tensorboard_dir,
                   stop_after=stop_after)
    x_syn, y_syn = fr.synthetic()
    labels = np.asarray(y0 if cfg.init == "real" else np.repeat(np.arange(num_classes), cfg.ipc), np.int64)
    return Distilled(x_syn, y_syn, labels, init_pos, state, fr.flip, fr.dp)


def public_dataset_name(dataset: Dataset) -> Optional[str]:
    """The dataset's name if it is a public, registered one (``mnist``), else None: the
    name or path of a user's own data may identify it, so a release does not carry it."""
    from mi_defense.data.registry import REGISTRY

    return dataset.name if dataset.name in REGISTRY else None


def _check_dp_settings(cfg: DistillConfig, n_members: int) -> None:
    """One-line errors for a DP run's delta: a given one must be below ``1/n``; the release-once
    mechanism refuses to default one it cannot (``dp_once.OncePlan.for_config``)."""
    if cfg.private and cfg.delta is not None:
        from mi_defense.accounting import check_delta

        check_delta(cfg.delta, n_members, "delta")
    if cfg.releases_once:
        from mi_defense.distillation.dp_once import OncePlan

        OncePlan.for_config(cfg, n_members)


def distill(dataset: Dataset, split: Split, cfg: DistillConfig, out_dir, resume: bool = False,
            progress: bool = True, tensorboard: bool = False, log=print, stop_after: Optional[int] = None,
            keep_checkpoint: bool = False, preset: Optional[str] = None) -> dict:
    """Distil ``split.members`` of ``dataset``; write the release and the private run record
    to ``out_dir`` (module docstring); return the run record. The checkpoint is removed once
    the set is complete unless ``keep_checkpoint``. ``preset``: the distillation preset
    ``cfg`` came from, kept in the record (``evaluate`` sizes its work by it)."""
    from mi_defense.distillation.record import find_record_file, open_record, record_dir, record_file
    from mi_defense.io import read_json

    cfg = cfg.validate()
    split.check(dataset)
    if dataset.kind != "image":
        raise UserError(f"{dataset.name} is tabular; FRePo distillation here needs images "
                        "(use the none/subset/dpsgd defenses for tabular data)")
    check_distillable(dataset.y_train[split.members], dataset.num_classes, cfg.ipc, dataset.class_names)
    check_memory(cfg, len(split.members), dataset.input_shape, dataset.num_classes, dataset.x_train.itemsize)
    _check_dp_settings(cfg, len(split.members))  # before anything is written
    out = Path(out_dir)
    ckpt = record_file(out, "checkpoint.npz")
    old_ckpt = find_record_file(out, "checkpoint.npz")  # where an earlier version may have written it
    rhash = run_hash(cfg, split)
    done_path = find_record_file(out, "run.json") or find_record_file(out, "distill.json")
    if resume and old_ckpt is not None:
        from mi_defense.distillation.frepo import read_checkpoint

        if str(read_checkpoint(old_ckpt).get("run_hash", "")) != rhash:
            raise UserError(f"{old_ckpt}: checkpoint was made with other settings or another split; resume with the "
                            "settings it was made with, or start without resume (--resume) or in a new out folder "
                            "(--out)")
        ckpt_in = old_ckpt
    else:
        ckpt_in = ckpt
        if resume and (out / "distilled.npz").is_file() and done_path is not None:
            done = read_json(done_path)
            if done.get("run_hash") != rhash:
                raise UserError(f"{out / 'distilled.npz'} was made with other settings or another split; resume with "
                                "the settings it was made with, or start without resume (--resume) or in a new out "
                                "folder (--out)")
            if done.get("complete"):
                log(f"{out / 'distilled.npz'} is already complete; nothing to resume")
                return done
        if resume:
            log(f"--resume: no checkpoint in {out} (none written yet, or checkpoint_every is 0); starting from step 0")
    saved_split = find_record_file(out, "split.json")
    if saved_split is not None and resume:
        old = Split.load(saved_split)
        if old.hash != split.hash:
            raise UserError(f"{saved_split} holds another split than this run; resume with the same members, seed and "
                            "split (--members, --seed, --split) or use a new out folder (--out)")
    out.mkdir(parents=True, exist_ok=True)
    if clean_stale_temp(out):
        log(f"removed temporary files left in {out} by a killed run")
    open_record(out)
    split.save(record_file(out, "split.json"))
    if not (resume and done_path is not None and read_json(done_path).get("run_hash") == rhash):
        # what a resumed run needs before the first checkpoint: the seed (secret for DP) and the settings
        write_json(record_file(out, "run.json"), {"kind": "frepo-distill-run", "dataset": dataset.name,
                                                  "config": dataclasses.asdict(cfg), "preset": preset,
                                                  "seed": cfg.seed, "split_seed": split.seed, "split_hash": split.hash,
                                                  "run_hash": rhash, "steps_done": 0, "complete": False})
    transform = transform_for(cfg, dataset.x_train)
    x_m = dataset.x_train[split.members]  # pixels; FRePo transforms each real batch
    y_m = dataset.y_train[split.members]
    t0 = time.time()
    if ckpt_in != ckpt:
        import os

        os.replace(ckpt_in, ckpt)  # an earlier version's checkpoint moves into the private record
    res = distil_members(cfg, x_m, y_m, dataset.num_classes, transform, strategy=make_strategy(cfg.strategy), log=log,
                         progress=progress, checkpoint=ckpt, resume=resume, run_hash=rhash, stop_after=stop_after,
                         tensorboard_dir=str(record_dir(out) / "tensorboard") if tensorboard else None)
    x_syn, y_syn, labels, init_pos, state = res.x, res.y, res.labels, res.init_positions, res.state
    pixels = transform.inverse(x_syn, to_uint8=True)
    init_members = split.members[init_pos] if len(init_pos) else np.zeros(0, np.int64)
    public = release_provenance(cfg, res.dp, len(init_members), public_dataset_name(dataset))
    meta = {
        "kind": "frepo-distill-run",
        "dataset": dataset.name,
        "config": dataclasses.asdict(cfg),
        "preset": preset,
        "image_lr": cfg.image_lr,
        "label_lr": cfg.label_rate,
        "seed": cfg.seed,
        "split_seed": split.seed,
        "split_hash": split.hash,
        "run_hash": rhash,
        "dataset_fingerprint": dataset.fingerprint(),
        "n_members": int(len(split.members)),
        "n_synthetic": int(len(x_syn)),
        "init_member_indices": init_members.tolist(),
        "steps_done": state.step,
        "complete": state.step >= cfg.steps,
        "seconds": state.seconds,
        "wall_seconds_this_call": time.time() - t0,
        "final_loss": state.history[-1]["loss"] if state.history else None,
        "loss_history": state.history,
        "float64_retries": state.f64_retries,
        "flip": res.flip,
        "privacy": public["privacy"],
        "privacy_statement": public["privacy_statement"],
        "exposed_members": public["exposed_members"],
        "release": public,
        "versions": package_versions(),
    }
    write_json(record_file(out, "run.json"), meta)
    if state.step >= cfg.steps:
        released = DistilledSet(x_syn, y_syn, labels, transform, list(dataset.class_names), init_members, public)
        from mi_defense.distillation.grid import save_grid

        save_grid(out / "distilled.png", pixels, labels, dataset.class_names, cfg.ipc)
        released.save(out / "distilled.npz")  # last: a folder with a release holds a finished run
        if not keep_checkpoint and ckpt.is_file():
            ckpt.unlink()  # the finished set is in distilled.npz; the checkpoint only serves --resume
    return meta


def default_split(dataset: Dataset, n_members: Optional[int], n_nonmembers: Optional[int], seed: int) -> Split:
    """Members default to 90% of the training pool (80% minus the test share when there is no test set)."""
    from mi_defense.data import make_split

    pool = len(dataset.x_train)
    if dataset.x_test is None:
        n_test = max(1, pool // 5)
        pool -= n_test
    else:
        n_test = None
    if n_nonmembers is None:
        n_nonmembers = max(1, pool // 10) if n_members is None else min(n_members, pool - n_members)
    if n_members is None:
        n_members = pool - n_nonmembers
    return make_split(dataset, n_members, n_nonmembers, n_test, seed=seed)


def distill_folder(dataset_name: str, out, preset: str = "auto", data_dir: Optional[str] = None,
                   members: Optional[int] = None, split_path: Optional[str] = None, config_path: Optional[str] = None,
                   resume: bool = False, progress: bool = True, tensorboard: bool = False,
                   keep_checkpoint: bool = False, log=print, **overrides) -> dict:
    """Distil the members of the dataset ``dataset_name`` into the folder ``out`` (``distill``)
    with the settings of ``preset``, the ``[distill]`` table of ``config_path`` and
    ``overrides`` (None: not given); return the run record. With ``progress``, an ``"auto"``
    preset logs the preset it chose. A DP run (``epsilon`` set) draws its split seed, and
    its run seed unless one is given, from the operating system's entropy; ``resume`` takes
    both from the private run record."""
    from mi_defense.config import SMALL_DATA, load_toml
    from mi_defense.config.toml import resolve_distill_preset
    from mi_defense.data import load_dataset
    from mi_defense.distillation.record import find_record_file
    from mi_defense.entropy import os_seed
    from mi_defense.io import read_json

    changes = dict(load_toml(config_path).get("distill", {})) if config_path else {}
    changes.update({k: v for k, v in overrides.items() if v is not None})  # flags over the TOML file
    # the command and distill_dataset()
    where = f"distill ({config_path} [distill] and the arguments)" if config_path else "distill"
    private = changes.get("epsilon") is not None
    record = find_record_file(out, "run.json") if resume else None
    saved_split = find_record_file(out, "split.json") if resume else None
    if private and changes.get("seed") is None:
        # resume: the seed the run was started with; else a fresh secret one
        changes["seed"] = int(read_json(record)["seed"]) if record is not None else os_seed(31)
    ds = load_dataset(dataset_name, data_dir)
    if split_path:
        split = Split.load(split_path)
    elif private and saved_split is not None:
        split = Split.load(saved_split)  # the secret split the run was started with
    else:
        split = default_split(ds, members, None, os_seed(31) if private else int(changes.get("seed") or 0))
    split.check(ds)
    chosen, cfg = resolve_distill_preset(preset, where, n_members=len(split.members), **changes)
    if preset == "auto" and progress:
        log(f"preset auto: {chosen} for {len(split.members)} members (small below {SMALL_DATA} members, quick "
            "otherwise and always with --epsilon); --preset quick|small|paper chooses")
    return distill(ds, split, cfg, out, resume=resume, progress=progress, tensorboard=tensorboard, log=log,
                   keep_checkpoint=keep_checkpoint, preset=chosen)
