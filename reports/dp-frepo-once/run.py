"""DP-FRePo released once (``--mechanism once``), run by the package under the disjoint protocol.

Usage: python reports/dp-frepo-once/run.py DATASET [EPSILON ...]   (mnist or fashion_mnist; default 1 10)

Settings: those ``tune.py`` chose on the dataset's own tuning half (DATASET/choice.json,
reported in DATASET/report/eps<E>-<choice>), else ``SETTINGS`` of ``choice.py``, on top of
the ``quick`` preset's DP defaults. ``SETTINGS`` were chosen on MNIST's tuning half
(``explore.py`` and ``results.jsonl`` beside this file: the class-mean statistic against
FRePo's (A, B), four networks, 1000 steps), which is disjoint from both datasets'
reporting members. Each reported run distils 27 000 members drawn with a secret seed from
the reporting half (``../dp-frepo-disjoint/run.py``: public halves, official test set) and
is scored by two width-64 models with FRePo's protocol. Each step writes its own folder and
is skipped when its ``evaluate.json`` exists; a killed distillation resumes from its
private checkpoint, which keeps the release it drew.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from choice import chosen, report_folder  # noqa: E402

sys.path.insert(0, str(HERE.parent / "dp-frepo-disjoint"))
from run import halves, report_split, run  # noqa: E402

from mi_defense.data import load_dataset  # noqa: E402


def main(name: str, epsilons) -> None:
    ds = load_dataset(name)
    _, report_half = halves(len(ds.x_train))
    settings, _ = chosen(name)
    for eps in epsilons:
        r = run(ds, report_split(ds, report_half), eps, settings, report_folder(name, eps), models=2)
        print(f"{name} once report eps={eps:g}: test accuracy {r['test_accuracy_mean']:.4f} {r['test_accuracy']}",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [float(e) for e in sys.argv[2:]] or [1.0, 10.0])
