"""Library entry points behind the CLI commands that combine several stages."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np

from mi_defense.config import TRAIN_PRESETS, TrainConfig, replace_checked
from mi_defense.data import Split, load_dataset, make_split
from mi_defense.errors import UserError
from mi_defense.io import write_json


def default_split(dataset, n_members: Optional[int], n_nonmembers: Optional[int], seed: int) -> Split:
    """Members default to 90% of the training pool (80% minus the test share when there is no test set)."""
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


def distill_command(dataset_name: str, out: str, preset: str = "auto", data_dir: Optional[str] = None,
                    members: Optional[int] = None, split_path: Optional[str] = None, config_path: Optional[str] = None,
                    resume: bool = False, progress: bool = True, tensorboard: bool = False, keep_checkpoint: bool = False,
                    **overrides) -> dict:
    """Distil ``dataset_name`` into ``out`` (``distill.api.distill``).

    A DP run (``epsilon`` set) draws its split seed, and its run seed unless one is given,
    from the operating system's entropy (``mi_defense.entropy``): a seed anyone can guess
    rebuilds the member list of a public dataset. Both are kept only in the private run
    record, from which ``resume`` takes them so a resumed run repeats itself. Without DP
    the seed defaults to 0 and draws the split too (reproducible; no guarantee to keep).
    """
    from mi_defense.config import SMALL_DATA, choose_distill_preset, load_toml, resolve_distill_config
    from mi_defense.distillation.api import distill
    from mi_defense.distillation.record import find_record_file
    from mi_defense.entropy import os_seed
    from mi_defense.io import read_json

    changes = dict(load_toml(config_path).get("distill", {})) if config_path else {}
    changes.update({k: v for k, v in overrides.items() if v is not None})  # flags over the TOML file
    where = f"{config_path} [distill] and the command line" if config_path else "command line"
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
    cfg = resolve_distill_config(preset, where, n_members=len(split.members), **changes)
    if preset == "auto" and progress:
        chosen = choose_distill_preset(preset, len(split.members), private)
        print(f"preset auto: {chosen} for {len(split.members)} members (small below {SMALL_DATA} members, quick otherwise and "
              "always with --epsilon); --preset quick|small|paper chooses")
    return distill(ds, split, cfg, out, resume=resume, progress=progress, tensorboard=tensorboard, keep_checkpoint=keep_checkpoint)


def evaluate_command(distilled_path: str, dataset_name: str, models: int = 3, data_dir: Optional[str] = None,
                     preset: Optional[str] = None, json_path: Optional[str] = None, baseline_subset: bool = False,
                     progress: bool = True, compare_width: int = 0, batched: bool = False, only_subset: bool = False,
                     **overrides) -> dict:
    """Train fresh models on a distilled set; test accuracy. With ``compare_width`` (e.g. 128,
    the width of FRePo's published evaluation) the set is also evaluated by ConvNets of that
    width (``result["at_width"]``), so results made with narrower pools compare with the paper's.
    ``baseline_subset`` also trains on a random real subset of the same size, drawn per class
    from the distillation's members (``result["random_subset"]``, with their training-set
    indices); ``only_subset`` trains on that subset alone. ``batched`` trains each group of
    models together in one graph (``training.stacked``)."""
    import json

    from mi_defense.distillation.artifact import check_compatible, load_distilled
    from mi_defense.distillation.record import find_record_file
    from mi_defense.training.evaluate import evaluate_set
    from mi_defense.training.targets import targets_for
    from mi_defense.training.loop import resolve_steps

    if only_subset and compare_width:
        raise UserError("--only-subset evaluates no distilled set, so --compare-width has nothing to compare; "
                        "pass --width W to evaluate the subset at width W")

    released = load_distilled(distilled_path)
    x, y, transform = released.x, released.y, released.transform
    folder = Path(distilled_path).parent
    record = find_record_file(folder, "run.json") or find_record_file(folder, "distill.json")
    meta = json.loads(record.read_text()) if record is not None else {}
    cfg = TRAIN_PRESETS.get(preset or "", TrainConfig())
    made_with = meta.get("config") or released.provenance.get("settings") or {}
    if not preset and "width" in made_with and "depth" in made_with:
        cfg = dataclasses.replace(cfg, width=made_with["width"], depth=made_with["depth"])
    cfg = replace_checked(cfg, "command line", **overrides)
    ds = load_dataset(dataset_name, data_dir)
    check_compatible(released, ds.input_shape, ds.num_classes, str(distilled_path), ds.name)
    split_file = find_record_file(folder, "split.json")
    split = Split.load(split_file) if split_file is not None else None
    if split is not None:
        try:
            split.check(ds)
        except UserError:
            raise UserError(f"{split_file} was made for other data than --dataset {dataset_name}; "
                            "pass the dataset the set was distilled from") from None
        x_test, y_test = split.test_data(ds)
    elif ds.x_test is not None:
        x_test, y_test = ds.x_test, ds.y_test
    else:
        raise UserError(f"{ds.name} has no test set and no private run record (split.json) lies beside {distilled_path}")
    x_test = transform(x_test)
    result = {"distilled": str(distilled_path), "dataset": ds.name, "privacy_statement": released.provenance.get("privacy_statement")}
    sets = (0 if only_subset else 1) + bool(compare_width and compare_width != cfg.width) + bool(baseline_subset or only_subset)
    on_model = _announce(sets, models, resolve_steps(cfg, len(x)), cfg.width, len(x)) if progress else None
    if not only_subset:
        result.update(evaluate_set(x, y, x_test, y_test, ds.num_classes, cfg, models, progress, batched, on_model))
    if compare_width and compare_width != cfg.width:
        result["at_width"] = {str(compare_width): evaluate_set(x, y, x_test, y_test, ds.num_classes,
                                                               dataclasses.replace(cfg, width=compare_width), models, progress,
                                                               batched, on_model)}
    if baseline_subset or only_subset:
        if split is None:
            raise UserError("--baseline-subset and --only-subset draw the subset from the distillation's members: "
                            f"they need the private run record (split.json) written beside {distilled_path}")
        rng = np.random.default_rng(cfg.seed)
        ym = ds.y_train[split.members]
        per = len(x) // ds.num_classes
        pos = np.concatenate([rng.choice(np.flatnonzero(ym == c), per, replace=False) for c in range(ds.num_classes)])
        xs = transform(ds.x_train[split.members[pos]])
        result["random_subset"] = {**evaluate_set(xs, targets_for(ym[pos], ds.num_classes), x_test, y_test, ds.num_classes,
                                                  cfg, models, progress, batched, on_model),
                                   "members": [int(i) for i in split.members[pos]]}
    if json_path:
        write_json(json_path, result)
    return result


def _announce(sets: int, models: int, steps: int, width: int, n: int):
    """Print the planned evaluation; return the callback that, after the first model, prints the time left."""
    from mi_defense.progress import Estimate

    total = sets * models
    print(f"evaluate: {total} ConvNet(s) of width {width} ({models} per set, {sets} set(s) of {n} images), {steps} steps each; "
          "the time they take follows the first model", flush=True)
    knob = f"--train-steps {max(1, steps // 2)} halves it" + (f", --models {models - 1} trains fewer" if models > 1 else "")
    estimate = Estimate(total, what="evaluate", unit="model", warmup=0, window=1, knob=knob)
    estimate.update(0)
    done = [0]

    def on_model():
        done[0] += 1
        said = estimate.update(done[0])
        if said:
            print(said, flush=True)
    return on_model


def evaluation_lines(r: dict) -> list:
    """The lines ``mi-defense evaluate`` prints for a result of ``evaluate_command``."""
    def acc(b):
        return f"test accuracy {100 * b['test_accuracy_mean']:.2f} +- {100 * b['test_accuracy_std']:.2f} %"
    lines = []
    if "test_accuracy_mean" in r:
        lines.append(f"distilled set ({r['n_train']} images): {acc(r)} over {r['models']} models of width {r['train_config']['width']}")
    lines += [f"  under width-{width} evaluation: {acc(b)}" for width, b in r.get("at_width", {}).items()]
    if "random_subset" in r:
        b = r["random_subset"]
        lines.append(f"random real subset ({b['n_train']} images): {acc(b)} over {b['models']} models of width {b['train_config']['width']}")
    return lines
