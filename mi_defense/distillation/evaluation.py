"""FRePo's evaluation protocol applied to a released set: fresh models trained on the
synthetic set (and, for comparison, on a random real subset of the members), tested on the
dataset's test split. Behind ``mi_defense.api.evaluate`` and ``mi-defense evaluate``."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

from mi_defense.config import EVAL_BUDGETS, TRAIN_PRESETS, OrNone, Options, TrainConfig, eval_budget, replace_checked
from mi_defense.data import Split, load_dataset
from mi_defense.errors import UserError
from mi_defense.io import write_json


def evaluate_distilled(distilled_path, dataset_name: str, models: Optional[int] = None, data_dir: Optional[str] = None,
                       preset: Optional[str] = None, json_path=None, baseline_subset: bool = False,
                       progress: bool = True, compare_width: int = 0, batched: bool = False, only_subset: bool = False,
                       log: Callable[[str], None] = print, **overrides) -> dict:
    """Train ``models`` fresh models on the set at ``distilled_path``; their test accuracy
    (``mi_defense.api.evaluate`` documents the arguments and the result's keys; it checks
    them first). ``models`` None, and the steps when no setting gives them, follow the
    distillation's budget (``config.eval_budget``). The random subset's member indices go
    only into the private run record."""
    from mi_defense.distillation.artifact import check_compatible, load_distilled
    from mi_defense.distillation.record import record_dir
    from mi_defense.io import check_writable_dir
    from mi_defense.training.evaluate import check_batched, evaluate_set
    from mi_defense.training.loop import resolve_steps

    # an unknown one would lose the run record's width
    OrNone(Options(TRAIN_PRESETS)).check(preset, "preset", "evaluate")
    if only_subset and compare_width:
        raise UserError("only_subset (--only-subset) evaluates no distilled set, so compare_width (--compare-width) "
                        "has nothing to compare; give width=W (--width W) to evaluate the subset at width W")
    released = load_distilled(distilled_path)
    x, y = released.x, released.y
    cfg, budget, halved = _train_config(released, Path(distilled_path).parent, preset, overrides)
    sized = (["the models"] if models is None and budget == "small" else []) + (["the steps"] if halved else [])
    if models is None:
        models = EVAL_BUDGETS[budget].models
    if batched:
        check_batched(cfg, x)
    subset = baseline_subset or only_subset
    if subset:  # the subset's member indices go into the private record: writable before any training
        check_writable_dir(record_dir(Path(distilled_path).parent), "the private run record")
    ds = load_dataset(dataset_name, data_dir)
    check_compatible(released, ds.input_shape, ds.num_classes, str(distilled_path), ds.name)
    split, (x_test, y_test) = _test_data(ds, Path(distilled_path), dataset_name)
    x_test = released.transform(x_test)
    if subset:  # drawn before any training: without the private run record it is refused at once
        xs, ys, members = _random_subset(ds, split, len(x), released.transform, cfg.seed, distilled_path)
    result = {"distilled": str(distilled_path), "dataset": ds.name, "budget": budget,
              "privacy_statement": released.provenance.get("privacy_statement")}
    other_width = bool(compare_width and compare_width != cfg.width)
    sets = (0 if only_subset else 1) + other_width + subset
    on_model = _announce(sets, models, resolve_steps(cfg, len(x)), cfg.width, len(x), sized, log) if progress else None

    def run(xs, ys, c):
        return evaluate_set(xs, ys, x_test, y_test, ds.num_classes, c, models, progress, batched, on_model)

    if not only_subset:
        result.update(run(x, y, cfg))
    if other_width:
        result["at_width"] = {str(compare_width): run(x, y, dataclasses.replace(cfg, width=compare_width))}
    if subset:
        result["random_subset"] = run(xs, ys, cfg)
        result["random_subset"]["members_file"] = str(_save_members(Path(distilled_path).parent, split,
                                                                    cfg.seed, members))
    if json_path:
        write_json(json_path, result)
    return result


def _save_members(folder: Path, split: Split, seed: int, members: list) -> Path:
    """Write the random subset's training-set indices into the private run record of
    ``folder`` (``PRIVATE-do-not-release/random-subset-seed<seed>.json``), never into the
    result: they name members of the private data. Return the file."""
    from mi_defense.distillation.record import open_record

    path = open_record(folder) / f"random-subset-seed{seed}.json"
    write_json(path, {"kind": "evaluate-random-subset", "seed": int(seed), "split_hash": split.hash,
                      "n_train": len(members), "members": members})
    return path


def _train_config(released, folder: Path, preset: Optional[str], overrides: dict) -> Tuple[TrainConfig, str, bool]:
    """The evaluated models' settings: the preset's, else the width and depth the set was
    distilled with (from its run record or provenance), then ``overrides``; the name of the
    evaluation budget (``config.EVAL_BUDGETS``; a training preset means the full protocol);
    and whether the steps were cut to the budget's share of FRePo's protocol steps (only
    when no steps or epochs are given)."""
    from mi_defense.distillation.record import find_record_file
    from mi_defense.training.loop import default_steps

    record = find_record_file(folder, "run.json") or find_record_file(folder, "distill.json")
    meta = json.loads(record.read_text()) if record is not None else {}
    cfg = TRAIN_PRESETS[preset] if preset else TrainConfig()
    made_with = meta.get("config") or released.provenance.get("settings") or {}
    if not preset and "width" in made_with and "depth" in made_with:
        cfg = dataclasses.replace(cfg, width=made_with["width"], depth=made_with["depth"])
    budget = "full" if preset else eval_budget(meta.get("preset"), made_with)
    cfg = replace_checked(cfg, "evaluate", **overrides)
    share = EVAL_BUDGETS[budget].step_fraction
    halved = cfg.steps is None and cfg.epochs is None and share != 1.0
    if halved:
        cfg = dataclasses.replace(cfg, steps=max(1, int(round(share * default_steps(len(released.x))))))
    return cfg, budget, halved


def _test_data(ds, distilled_path: Path, dataset_name: str):
    """The split in the private run record beside the set (None without one) and the test
    data: the split's test share, else the dataset's test set."""
    from mi_defense.distillation.record import find_record_file

    split_file = find_record_file(distilled_path.parent, "split.json")
    split = Split.load(split_file) if split_file is not None else None
    if split is not None:
        try:
            split.check(ds)
        except UserError:
            raise UserError(f"{split_file} was made for other data than dataset {dataset_name} (--dataset); "
                            "give the dataset the set was distilled from") from None
        return split, split.test_data(ds)
    if ds.x_test is not None:
        return None, (ds.x_test, ds.y_test)
    raise UserError(f"{ds.name} has no test set and no private run record (split.json) lies beside {distilled_path}")


def _random_subset(ds, split: Optional[Split], n: int, transform, seed: int, distilled_path):
    """``n`` real images drawn per class from the distillation's members with ``seed``: the
    model-space inputs, their targets and their training-set indices."""
    from mi_defense.training.targets import targets_for

    if split is None:
        raise UserError("baseline_subset (--baseline-subset) and only_subset (--only-subset) draw the subset from the "
                        "distillation's members: they need the private run record (split.json) written beside "
                        f"{distilled_path}")
    rng = np.random.default_rng(seed)
    ym = ds.y_train[split.members]
    per = n // ds.num_classes
    short = [ds.class_names[c] for c in range(ds.num_classes) if np.count_nonzero(ym == c) < per]
    if short:
        raise UserError(f"the random subset takes {per} members per class, and the distillation's members hold "
                        f"fewer of class {', '.join(map(str, short[:5]))}; compare with a smaller set or distil more "
                        "members")
    pos = np.concatenate([rng.choice(np.flatnonzero(ym == c), per, replace=False) for c in range(ds.num_classes)])
    xs = transform(ds.x_train[split.members[pos]])
    return xs, targets_for(ym[pos], ds.num_classes), [int(i) for i in split.members[pos]]


def _announce(sets: int, models: int, steps: int, width: int, n: int, sized: list, log: Callable[[str], None]):
    """Log the planned evaluation; return the callback that, after the first model, logs the time left."""
    from mi_defense.progress import Estimate

    total = sets * models
    sized = (f"{' and '.join(sized)} sized to the set's small-preset distillation (2 models, half of FRePo's "
             "protocol steps); models=3 (--models 3) and the protocol's steps (--train-steps) give the full protocol"
             if sized else "as given, or FRePo's protocol")
    log(f"evaluate: {total} ConvNet(s) of width {width} ({models} per set, {sets} set(s) of {n} images), {steps} steps "
        f"each ({sized}); the time they take follows the first model")
    half = max(1, steps // 2)
    knob = f"steps={half} (--train-steps {half}) halves it" + (f", models={models - 1} (--models {models - 1}) "
                                                              "trains fewer" if models > 1 else "")
    estimate = Estimate(total, what="evaluate", unit="model", warmup=0, window=1, knob=knob)
    estimate.update(0)
    done = [0]

    def on_model():
        done[0] += 1
        said = estimate.update(done[0])
        if said:
            log(said)
    return on_model
