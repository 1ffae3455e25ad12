"""The private run record of a distillation: everything that made a release and must not
be published with it.

``mi-defense distill --out DIR`` writes the release (``DIR/distilled.npz``,
``DIR/distilled.png``) and, beside it, ``DIR/PRIVATE-do-not-release/``:

==============================  ===============================================================
file                            content
==============================  ===============================================================
``README.txt``                  one line: what the folder is and that it must not be released
``run.json``                    resolved settings with their seeds, the split's hash and the
                                dataset's fingerprint, the number of members, the indices of
                                members copied at initialisation, timings, the loss history and
                                package versions
``split.json``                  the member, non-member and test indices (``data.split``)
``checkpoint.npz``              the state ``--resume`` continues from (with DP-FRePo's secret
                                sampling and noise key); removed once the set is complete unless
                                ``--keep-checkpoint``
``tensorboard/``                loss curves, with ``--tensorboard``
``random-subset-seed<S>.json``  the training-set indices of the random real subset that
                                ``evaluate`` (``--baseline-subset``, ``--only-subset``) drew
                                with seed S; its public result only names this file
==============================  ===============================================================

Why these stay private: the split seed of a public dataset rebuilds the member list; a
hash of the member indices or of the private data tells two neighbouring data sets apart
with certainty; a noise or sampling seed lets anyone regenerate and subtract the noise;
loss histories are computed on member batches. None of this is covered by a
differential-privacy guarantee, which holds only for what the mechanism outputs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

PRIVATE_DIR = "PRIVATE-do-not-release"
README = ("PRIVATE run record of a distillation (split, seeds, hashes of the private data, timings, checkpoint): "
          "it identifies the private data. Do not release this folder; "
          "publish only ../distilled.npz (and ../distilled.png).\n")


def record_dir(out) -> Path:
    """The private record folder of the distillation in ``out``."""
    return Path(out) / PRIVATE_DIR


def record_file(out, name: str) -> Path:
    """``out/PRIVATE-do-not-release/name``."""
    return record_dir(out) / name


def find_record_file(out, name: str) -> Optional[Path]:
    """An existing ``name`` of the record in ``out``: in the private folder, else where
    versions before the public/private split wrote it (``out/name``); None if neither."""
    for p in (record_file(out, name), Path(out) / name):
        if p.is_file():
            return p
    return None


def open_record(out) -> Path:
    """Create the private folder of ``out`` with its README; return it."""
    from mi_defense.io import write_text

    d = record_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "README.txt").is_file():
        write_text(d / "README.txt", README)
    return d
