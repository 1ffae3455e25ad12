"""The release-once mechanism's settings, tuned on a dataset's tuning half (see HOW.md beside this file).

Usage: python reports/dp-frepo-once/tune.py DATASET [CANDIDATE ...]   (mnist or fashion_mnist)

Each candidate (``CANDIDATES`` below; all by default) distils the tuning half's 27 000
members of ``../dp-frepo-disjoint`` at epsilon 1 with the package's ``--mechanism once`` and
is scored by one width-64 model on the tuning half's 3 000 held-out images: no image of
the reporting half and no test image is read. The best candidate is written to
DATASET/choice.json; ``run.py DATASET`` then reports with the settings chosen there (on a
new secret draw of reporting members), and with ``choice.SETTINGS`` when no choice exists.
A candidate's folder is skipped when its ``evaluate.json`` exists.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from choice import SETTINGS  # noqa: E402

sys.path.insert(0, str(HERE.parent / "dp-frepo-disjoint"))
from run import HALVES_SEED, halves, run, tuning_split  # noqa: E402

from mi_defense.data import load_dataset  # noqa: E402
from mi_defense.io import write_json  # noqa: E402

BASE = {"mechanism": SETTINGS["mechanism"], "init": SETTINGS["init"]}
# the first settings (choice.SETTINGS: 4 networks, 1000 steps, chosen on MNIST's tuning half),
# then more networks (each release noisier by sqrt(K/4), the matching loss averaged over more
# networks) and more optimisation steps (free: post-processing)
CANDIDATES = {"K4-S1000": {"networks": SETTINGS["networks"], "steps": SETTINGS["steps"]},
              "K8-S2000": {"networks": 8, "steps": 2000},
              "K4-S3000": {"networks": 4, "steps": 3000}, "K16-S4000": {"networks": 16, "steps": 4000},
              # each member's embedding averaged over 4 DSA augmentations shared by all members (and the
              # synthetic set matched under the same ones): the augmentation distribution matching uses
              "K4-S1000-A4": {"networks": 4, "steps": 1000, "augmentations": 4}}
TUNE_EPSILON = 1.0


def main(name: str, names) -> None:
    ds = load_dataset(name)
    tune_half, _ = halves(len(ds.x_train))
    scores = {}
    for cand in names:
        r = run(ds, tuning_split(ds, tune_half), TUNE_EPSILON, {**BASE, **CANDIDATES[cand]},
                HERE / name / "tuning" / f"eps{TUNE_EPSILON:g}-{cand}", models=1)
        scores[cand] = r["test_accuracy_mean"]  # on the tuning half's held-out images
        print(f"{name} once tuning eps={TUNE_EPSILON:g} {cand}: validation accuracy {scores[cand]:.4f}", flush=True)
    if set(names) == set(CANDIDATES):
        chosen = max(scores, key=lambda c: (scores[c], c == "K4-S1000"))
        write_json(HERE / name / "choice.json", {"tuned_at_epsilon": TUNE_EPSILON, "validation_accuracy": scores,
                                                  "chosen": chosen, "settings": {**BASE, **CANDIDATES[chosen]},
                                                  "halves_seed": HALVES_SEED})


if __name__ == "__main__":
    unknown = [c for c in sys.argv[2:] if c not in CANDIDATES]
    if len(sys.argv) < 2 or unknown:
        sys.exit(f"usage: tune.py DATASET [{' | '.join(CANDIDATES)} ...]"
                 + (f"; unknown candidate(s): {', '.join(unknown)}" if unknown else ""))
    main(sys.argv[1], sys.argv[2:] or list(CANDIDATES))
