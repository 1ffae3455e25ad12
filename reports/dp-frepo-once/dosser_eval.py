"""A released set scored as the DP distillation papers score theirs (see HOW.md beside this file).

Usage: python reports/dp-frepo-once/dosser_eval.py DATASET EPSILON [MODELS]

"Improving Noise Efficiency in Privacy-preserving Dataset Distillation" (Dosser) re-runs
the DP distillation methods under one protocol: a 3-layer ConvNet of width 128 with
instance normalisation, trained 1000 epochs on the set with DSA augmentation and
cross-entropy. Here: the package's ConvNet of width 128, depth 3, instance norm,
cross-entropy on the classes, DSA, 1000 steps of a batch that holds the whole set (one
step per epoch), with the package's optimiser (Adam 3e-4, 500-step warm-up, cosine decay)
instead of the paper's SGD with momentum. Writes evaluate-dosser.json beside the release
in DATASET/report/eps<EPSILON>[-<choice>]/ (the settings the dataset's tuning chose, as
``run.py`` reports them) and skips a result that exists.
"""
import json
import sys
from pathlib import Path

from mi_defense.api import evaluate
from mi_defense.io import write_json

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from choice import report_folder  # noqa: E402

PROTOCOL = {"width": 128, "depth": 3, "norm": "instance", "loss": "xent", "augment": "dsa", "steps": 1000}


def main(name: str, eps: float, models: int = 1) -> None:
    folder = report_folder(name, eps)
    if not (folder / "distilled.npz").is_file():
        print(f"dosser_eval.py: no release in {folder}; make it first with run.py {name} {eps:g}", file=sys.stderr)
        sys.exit(2)
    out = folder / "evaluate-dosser.json"
    if not out.is_file():
        r = evaluate(str(folder / "distilled.npz"), name, models=models, **PROTOCOL)
        r["protocol"] = "Dosser-like: " + ", ".join(f"{k}={v}" for k, v in PROTOCOL.items())
        write_json(out, r)
    r = json.loads(out.read_text())
    print(f"{name} once eps={eps:g}, Dosser-like evaluation: test accuracy {r['test_accuracy']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1)
