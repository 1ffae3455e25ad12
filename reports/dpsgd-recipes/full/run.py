"""DP-SGD with the package's default recipes on a whole training set: MNIST's 60 000 images
minus 6 000 held out (54 000 members, drawn with a seed from the operating system's
entropy), tested on the official 10 000. One run per spec with the recipe as shipped (no
setting chosen on these members), the fixed [-1, 1] normalisation a DP release uses.

Usage: python reports/dpsgd-recipes/full/run.py [SPEC ...]   (default dpsgd-linear:eps=1)
Writes full/<spec>.json; a spec whose JSON exists is skipped.
"""
import sys
import time
from pathlib import Path

import numpy as np

from mi_defense.bench.dpsgd_tuning import fit_and_score
from mi_defense.config import TrainConfig
from mi_defense.data import Transform, load_dataset
from mi_defense.defenses import DefenseContext
from mi_defense.entropy import os_seed
from mi_defense.io import write_json

HERE = Path(__file__).resolve().parent


def main(specs):
    ds = load_dataset("mnist")
    transform = Transform.fixed(1, True)
    ctx = DefenseContext(ds.num_classes, ds.input_shape, TrainConfig(width=32, depth=3), fixed_normalisation=True)
    for spec in specs:
        out = HERE / f"{spec.replace(':', '_')}.json"
        if out.is_file():
            continue
        members = np.sort(np.random.default_rng(os_seed(31)).permutation(len(ds.x_train))[:54000])
        t0 = time.time()
        r = fit_and_score(spec, ctx, transform(ds.x_train[members]), ds.y_train[members], 0,
                          {"test_accuracy": (transform(ds.x_test), ds.y_test)})
        r.update(members=len(members), wall_seconds=round(time.time() - t0, 1),
                 protocol="the default recipe as shipped, one run; members drawn with a secret seed (not recorded)")
        write_json(out, r)
        print(f"{spec} on {len(members)} members: test accuracy {r['test_accuracy']:.4f} (epsilon {r['epsilon']:.3g}, "
              f"delta {r['delta']:.2g}, {r['steps']} steps, {r['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["dpsgd-linear:eps=1"])
