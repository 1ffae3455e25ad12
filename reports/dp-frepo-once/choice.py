"""Which settings a dataset's release-once figures use, and where their reporting runs live.

``tune.py DATASET`` writes DATASET/choice.json (the candidate chosen on the dataset's own
tuning half); without it the first settings, ``SETTINGS`` (chosen on MNIST's tuning half),
are used. A reporting run at epsilon E lives in DATASET/report/eps<E> for the first
settings and in DATASET/report/eps<E>-<choice> for any other. ``run.py`` writes there,
``dosser_eval.py`` scores the release found there and ``docs/generate.py`` shows it.
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = {"mechanism": "once", "networks": 4, "steps": 1000, "init": "smooth-noise"}


def chosen(name: str):
    """The settings chosen for DATASET ``name``, and the report folder's suffix ("" for ``SETTINGS``)."""
    path = HERE / name / "choice.json"
    if not path.is_file():
        return SETTINGS, ""
    choice = json.loads(path.read_text())
    return choice["settings"], "" if choice["settings"] == SETTINGS else f"-{choice['chosen']}"


def report_folder(name: str, eps: float) -> Path:
    """The reporting run of DATASET ``name`` at ``eps`` with its chosen settings."""
    return HERE / name / "report" / f"eps{eps:g}{chosen(name)[1]}"
