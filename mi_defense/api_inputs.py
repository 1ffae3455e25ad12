"""The checks and files of ``mi_defense.audit``'s inputs: a shard of the runs, and a caller's
arrays kept in the audit folder's private record (never to be published)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from mi_defense.distillation.record import PRIVATE_DIR
from mi_defense.errors import UserError


def check_shard(shard) -> Optional[Tuple[int, int]]:
    """``shard`` as ``(i, n)`` of ints, refused unless whole numbers with ``0 <= i < n``."""
    if shard is None:
        return None
    try:
        i, n = shard
    except (TypeError, ValueError):
        i = n = None
    whole = all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in (i, n))
    if not (whole and n >= 1 and 0 <= i < n):
        raise UserError(f"shard {shard!r}: give (i, n), whole numbers with 0 <= i < n, e.g. (0, 4) (--shard 0/4): "
                        "the i-th of n shares of the runs")
    return int(i), int(n)


def remove_written(path: Optional[Path]) -> None:
    """Remove the arrays file this call wrote (and its folder, when that is left empty)."""
    if path is None or not path.is_file():
        return
    path.unlink()
    for folder in (path.parent, path.parent.parent):
        try:
            folder.rmdir()  # only when empty
        except OSError:
            break


def private_arrays(out: Path, x, y, x_test, y_test) -> Tuple[Path, bool]:
    """``out/PRIVATE-do-not-release/data.npz`` holding the arrays (written atomically, kept when
    it holds them already), and whether this call created it; a folder whose audit used other
    arrays is refused."""
    from mi_defense.io import write_npz

    if y is None or (x_test is None) != (y_test is None):
        raise UserError("give y with x, and x_test with y_test")
    arrays = {"x_train": np.asarray(x), "y_train": np.asarray(y)}
    if x_test is not None:
        arrays.update(x_test=np.asarray(x_test), y_test=np.asarray(y_test))
    for k in ("y_train", "y_test"):
        if k in arrays and not np.issubdtype(arrays[k].dtype, np.integer):
            raise UserError(f"{k.replace('_train', '')} has dtype {arrays[k].dtype}; give integer classes 0..C-1")
    path = out / PRIVATE_DIR / "data.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            same = set(z.files) == set(arrays) and all(np.array_equal(z[k], v) and z[k].dtype == v.dtype
                                                       for k, v in arrays.items())
        if same:
            return path, False
        if (out / "split.json").is_file():
            raise UserError(f"{out} holds an audit of other arrays; use a new out folder")
    created = not path.is_file()
    write_npz(path, **arrays)
    return path, created
