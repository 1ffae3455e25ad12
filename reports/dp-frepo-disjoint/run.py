"""DP-FRePo's headline figures under a disjoint tuning protocol (see HOW.md beside this file).

Usage: python reports/dp-frepo-disjoint/run.py DATASET   (mnist or fashion_mnist)

Each step writes its own folder and is skipped when its result exists, so a killed run
resumes where it stopped. The halves are public (a fixed permutation); the reporting
run's members are drawn from its half with the operating system's entropy, as any DP
run's split is.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

from mi_defense.api import evaluate
from mi_defense.config import resolve_distill_config
from mi_defense.data import Split, load_dataset
from mi_defense.distillation.api import distill
from mi_defense.entropy import os_seed
from mi_defense.io import write_json

HERE = Path(__file__).resolve().parent
HALVES_SEED = 20261206          # public: which half tunes and which half reports
CANDIDATES = {"smooth-noise": {"init": "smooth-noise"}, "noise": {"init": "noise"}}
TUNE_EPSILON = 1.0              # the choice is made at epsilon 1 and applied at 1 and 10
REPORT_EPSILONS = (1.0, 10.0)
MEMBER_SHARE = 0.9              # members: 90% of a half (27 000 of 30 000)


def halves(n: int):
    perm = np.random.default_rng(HALVES_SEED).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def tuning_split(ds, tune_half):
    """Members and validation images from the tuning half only (no test image is used)."""
    rng = np.random.default_rng(HALVES_SEED + 1)
    perm = rng.permutation(tune_half)
    k = int(MEMBER_SHARE * len(tune_half))
    return Split(np.sort(perm[:k]), np.zeros(0, np.int64), np.sort(perm[k:]), "train", HALVES_SEED + 1,
                 ds.fingerprint())


def report_split(ds, report_half):
    """Members drawn from the reporting half with a secret seed; test: the official test set."""
    seed = os_seed(31)
    perm = np.random.default_rng(seed).permutation(report_half)
    k = int(MEMBER_SHARE * len(report_half))
    return Split(np.sort(perm[:k]), np.zeros(0, np.int64), np.arange(len(ds.x_test), dtype=np.int64), "test", seed,
                 ds.fingerprint())


def run(ds, split, eps: float, changes: dict, out: Path, models: int) -> dict:
    done = out / "evaluate.json"
    if done.is_file():
        return json.loads(done.read_text())
    record = out / "PRIVATE-do-not-release"
    seed = json.loads((record / "run.json").read_text())["seed"] if (record / "run.json").is_file() else os_seed(31)
    if (record / "split.json").is_file():
        split = Split.load(record / "split.json")  # a killed run resumes with its own split and seed
    cfg = resolve_distill_config("quick", "protocol", epsilon=eps, seed=seed, **changes)
    t0 = time.time()
    if not (out / "distilled.npz").is_file():
        distill(ds, split, cfg, out, resume=True, progress=False, log=lambda s: print(s, flush=True))
    r = evaluate(str(out / "distilled.npz"), ds.name, models=models, progress=False)
    r["wall_seconds"] = time.time() - t0
    write_json(done, r)
    return r


def main(name: str) -> None:
    ds = load_dataset(name)
    tune_half, report_half = halves(len(ds.x_train))
    root = HERE / name
    scores = {}
    for cand, changes in CANDIDATES.items():
        r = run(ds, tuning_split(ds, tune_half), TUNE_EPSILON, changes, root / "tuning" / f"eps{TUNE_EPSILON:g}-{cand}",
                models=1)
        scores[cand] = r["test_accuracy_mean"]  # on the tuning half's validation images
        print(f"{name} tuning eps={TUNE_EPSILON:g} {cand}: validation accuracy {scores[cand]:.4f}", flush=True)
    chosen = max(scores, key=lambda c: (scores[c], c == "smooth-noise"))
    write_json(root / "choice.json", {"tuned_at_epsilon": TUNE_EPSILON, "validation_accuracy": scores, "chosen": chosen,
                                      "settings": CANDIDATES[chosen], "halves_seed": HALVES_SEED})
    for eps in REPORT_EPSILONS:
        r = run(ds, report_split(ds, report_half), eps, CANDIDATES[chosen], root / "report" / f"eps{eps:g}", models=2)
        print(f"{name} report eps={eps:g} ({chosen}): test accuracy {r['test_accuracy_mean']:.4f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
