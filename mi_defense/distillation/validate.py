"""Checks on a release file before and after its arrays are read.

A ``distilled.npz`` may come from anywhere (a colleague, a download, an edit). Before any
array is read, the sizes its headers declare are summed and refused above
``MAX_RELEASE_BYTES`` (a header can declare 10^12 images, and a compressed member can
inflate a small file a thousandfold). After reading, every key, shape, value range and
the transform are checked, so a tampered or truncated release is a one-line error rather
than a model trained to chance accuracy.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from mi_defense.errors import UserError

MAX_RELEASE_BYTES = 4 << 30  # 4 GiB: far above a distilled set (ZCA of 64x64 RGB images is 0.6 GB)
TRANSFORM_KINDS = ("standardize", "zca")
HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
REQUIRED = ("x", "y", "labels", "class_names", "transform_kind", "transform_scale_uint8", "transform_mean",
            "transform_std")


def declared_sizes(path: Path) -> Dict[str, Tuple[Tuple[int, ...], int]]:
    """``{name: (shape, nbytes)}`` from the npy headers inside the archive, without reading
    any array; a file that is not such an archive is a ``UserError``."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = HEADER_READERS.get(version)
                    if read_header is None:
                        raise ValueError(f"npy format version {version} of {info.filename} "
                                         "is not one numpy's savez writes")
                    shape, _, dtype = read_header(f)
                n = int(np.prod(shape, dtype=object)) if shape else 1
                out[info.filename[:-4]] = (tuple(shape), n * max(dtype.itemsize, 1))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: not a readable distilled set ({type(exc).__name__}: {str(exc)[:120]}); obtain an "
                        "intact copy or distil again with 'mi-defense distill --out DIR'") from None
    return out


def check_sizes(path: Path, limit: int = MAX_RELEASE_BYTES) -> None:
    """Refuse an archive whose declared arrays exceed ``limit`` bytes in all."""
    sizes = declared_sizes(path)
    total = sum(b for _, b in sizes.values())
    if total > limit:
        biggest = max(sizes, key=lambda k: sizes[k][1])
        raise UserError(f"{path}: declares {total / 2**30:.1f} GiB of arrays ({biggest} of shape {sizes[biggest][0]}), "
                        f"above the {limit / 2**30:.0f} GiB a distilled set can need; the file is not a release "
                        "written by mi-defense")


def _bad(path, what: str) -> UserError:
    return UserError(f"{path}: {what}; the release is damaged or was edited: obtain an intact copy or distil again")


def check_arrays(path, a: Dict[str, np.ndarray]) -> dict:
    """Validate the arrays of a release; return its provenance (a dict)."""
    missing = [k for k in REQUIRED if k not in a]
    if missing:
        raise UserError(f"{path}: not a distilled set (missing {', '.join(missing)})")
    x, y, labels, names = a["x"], a["y"], a["labels"], a["class_names"]
    if x.ndim != 4 or y.ndim != 2 or labels.ndim != 1 or names.ndim != 1:
        raise _bad(path, f"x, y, labels and class_names must have 4, 2, 1 and 1 axes (found {x.ndim}, {y.ndim}, "
                         f"{labels.ndim}, {names.ndim})")
    n, k = len(x), len(names)
    if n == 0 or len(y) != n or len(labels) != n:
        raise _bad(path, f"x, y and labels hold {len(x)}, {len(y)} and {len(labels)} rows; "
                         "they must match and be non-empty")
    if y.shape[1] != k:
        raise _bad(path, f"y has {y.shape[1]} columns for {k} class names")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= k:
        raise _bad(path, f"labels must be whole numbers in 0..{k - 1}")
    for name in ("x", "y"):
        if not np.issubdtype(a[name].dtype, np.floating) or not np.all(np.isfinite(a[name])):
            raise _bad(path, f"{name} holds non-finite or non-float values")
    kind = str(a["transform_kind"])
    if kind not in TRANSFORM_KINDS:
        raise _bad(path, f"transform_kind '{kind}' unknown (expected {' or '.join(TRANSFORM_KINDS)})")
    c = x.shape[-1]
    mean, std = a["transform_mean"], a["transform_std"]
    if mean.shape != (c,) or std.shape != (c,) or not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
                                                       and np.all(std > 0)):
        raise _bad(path, f"transform_mean and transform_std must be {c} finite numbers, the scales positive")
    if kind == "zca":
        d = int(np.prod(x.shape[1:]))
        for name in ("transform_zca", "transform_zca_inv"):
            if name not in a or a[name].shape != (d, d) or not np.all(np.isfinite(a[name])):
                raise _bad(path, f"{name} must be a finite {d} x {d} matrix for a ZCA transform")
    if "provenance" not in a:
        return {}
    try:
        prov = json.loads(str(a["provenance"]))
    except ValueError:
        raise _bad(path, "provenance is not JSON") from None
    if not isinstance(prov, dict):
        raise _bad(path, "provenance is not a JSON object")
    return prov
