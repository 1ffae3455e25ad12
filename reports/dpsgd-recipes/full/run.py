"""DP-SGD with the package's default recipes on a whole training set: 54 000 members drawn
(with a seed from the operating system's entropy) from the 57 000 MNIST training images left
when the 3 000 tuning and validation images the recipes were chosen on are taken out
(rebuilt as ``mi_defense.bench.dpsgd_tuning`` draws them, checked against the hash in
``mnist/tuning.json``), tested on the official 10 000. One run per spec with the recipe as
shipped: no setting was chosen on these members. The fixed [-1, 1] normalisation a DP
release uses.

Usage: python reports/dpsgd-recipes/full/run.py [SPEC ...]   (default dpsgd-linear:eps=1)
Writes full/<spec>.json; a spec whose JSON exists is skipped.
"""
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from mi_defense.bench.dpsgd_tuning import fit_and_score, reference_split, tuning_images
from mi_defense.config import TrainConfig
from mi_defense.data import Transform, load_dataset
from mi_defense.defenses import DefenseContext
from mi_defense.entropy import os_seed
from mi_defense.io import write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def tuning_positions(ds):
    """The training-pool positions of the images the recipes were tuned and validated on."""
    tuning = json.loads((HERE.parent / "mnist" / "tuning.json").read_text())
    split, _ = reference_split(ds, ROOT / "reports/cpu-reference.toml", ROOT / "reports/mnist-cpu/split.json")
    tune, val = tuning_images(ds, split, tuning["seed"])
    if (hashlib.sha256(tune.tobytes()).hexdigest(), hashlib.sha256(val.tobytes()).hexdigest()) != (
            tuning["tune_indices_sha256"], tuning["val_indices_sha256"]):
        raise SystemExit("the rebuilt tuning images differ from those of mnist/tuning.json")
    return np.r_[tune, val]


def main(specs):
    ds = load_dataset("mnist")
    transform = Transform.fixed(1, True)
    tuned = tuning_positions(ds)
    pool = np.setdiff1d(np.arange(len(ds.x_train)), tuned)  # the members' pool: every image not tuned on
    ctx = DefenseContext(ds.num_classes, ds.input_shape, TrainConfig(width=32, depth=3), fixed_normalisation=True)
    for spec in specs:
        out = HERE / f"{spec.replace(':', '_')}.json"
        if out.is_file():
            continue
        members = np.sort(np.random.default_rng(os_seed(31)).choice(pool, 54000, replace=False))
        t0 = time.time()
        r = fit_and_score(spec, ctx, transform(ds.x_train[members]), ds.y_train[members], 0,
                          {"test_accuracy": (transform(ds.x_test), ds.y_test)})
        r.update(members=len(members), wall_seconds=round(time.time() - t0, 1),
                 protocol=f"the default recipe as shipped, one run; members drawn with a secret seed (not recorded) "
                          f"from the {len(pool)} training images outside the {len(tuned)} tuning and validation images "
                          f"the recipes were chosen on (reports/dpsgd-recipes/mnist/tuning.json)")
        write_json(out, r)
        print(f"{spec} on {len(members)} members: test accuracy {r['test_accuracy']:.4f} (epsilon {r['epsilon']:.3g}, "
              f"delta {r['delta']:.2g}, {r['steps']} steps, {r['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["dpsgd-linear:eps=1"])
