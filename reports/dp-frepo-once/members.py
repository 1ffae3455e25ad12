"""How the release-once mechanism depends on the number of members, all else fixed.

Usage: python reports/dp-frepo-once/members.py [N ...]   (default 1000 3000 27000)

The MNIST reference audit runs ``frepo:ipc=10,eps=E,mechanism=once`` on 1000 members (four
random width-32 networks, 300 optimisation steps) and finds it far below its figures on
27 000 members, which used other settings too. Here only the number of members changes:
the audit's settings at epsilon 1 and 8, distilled from the first N of a fixed order of the
27 000 members of MNIST's tuning half (``../dp-frepo-disjoint``; no image of the reporting
half and no test image is read), scored by one width-32 model on the tuning half's 3 000
held-out images. Each result is skipped when its ``evaluate.json`` exists; the table in
the DP-FRePo guide is generated from them.
"""
import dataclasses
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "dp-frepo-disjoint"))
from run import HALVES_SEED, halves, run, tuning_split  # noqa: E402

from mi_defense.data import load_dataset  # noqa: E402

# the audit's settings of the release-once rows (reports/cpu-reference.toml, mechanism=once)
SETTINGS = {"mechanism": "once", "init": "smooth-noise", "networks": 4, "steps": 300, "width": 32}
EPSILONS = (1.0, 8.0)


def main(sizes) -> None:
    ds = load_dataset("mnist")
    tune_half, _ = halves(len(ds.x_train))
    split = tuning_split(ds, tune_half)
    order = np.random.default_rng(HALVES_SEED + 2).permutation(split.members)  # public: a fixed order
    for n in sizes:
        part = dataclasses.replace(split, members=np.sort(order[:n]))
        for eps in EPSILONS:
            r = run(ds, part, eps, SETTINGS, HERE / "mnist" / "members" / f"eps{eps:g}-n{n}", models=1)
            print(f"mnist once, {n} members, eps={eps:g}: validation {r['test_accuracy_mean']:.4f}", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 3000, 27000])
