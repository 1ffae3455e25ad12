"""User-provided data: an ``.npz`` file or a folder of images, one subfolder per class."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mi_defense.errors import DataError
from mi_defense.data.dataset import Dataset
from mi_defense.io import sha256_bytes

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"}


def _as_images(x: np.ndarray) -> np.ndarray:
    return x[..., None] if x.ndim == 3 else x


def load_npz(path: str | Path) -> Dataset:
    """Load ``x_train``, ``y_train`` and optional ``x_test``, ``y_test`` (no pickles)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc}); "
                        "save it with numpy.savez(x_train=..., y_train=...)") from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)} (has: {', '.join(sorted(arrays)) or 'none'}); "
                        "save x_train and y_train")
    x_tr, y_tr = _as_images(arrays["x_train"]), arrays["y_train"]
    x_te = arrays.get("x_test")
    y_te = arrays.get("y_test")
    if x_te is not None:
        x_te = _as_images(x_te)
    labels = [y_tr] + ([y_te] if y_te is not None else [])
    for y in labels:
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: labels have dtype {y.dtype}; labels must be integers 0..C-1")
    num_classes = int(max(int(y.max()) for y in labels)) + 1 if y_tr.size else 0
    for y in labels:
        if y.size and y.min() < 0:
            raise DataError(f"{path}: negative label {int(y.min())}; labels must be integers 0..C-1")
    if num_classes < 2:
        raise DataError(f"{path}: labels must span at least two classes")
    kind = "tabular" if x_tr.ndim == 2 else "image"
    return Dataset(
        name=path.stem, x_train=x_tr, y_train=y_tr.astype(np.int64), x_test=x_te,
        y_test=None if y_te is None else y_te.astype(np.int64),
        class_names=[str(i) for i in range(num_classes)], kind=kind,
        files={path.name: sha256_bytes(path.read_bytes())},
    )


def load_image_folder(path: str | Path) -> Dataset:
    """Load ``ROOT/<class>/<image>``; class indices follow the sorted folder names."""
    from PIL import Image

    root = Path(path)
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{root}: found {len(classes)} class folder(s); "
                        "put the images in one subfolder per class (at least two)")
    xs, ys, shape = [], [], None
    for label, d in enumerate(classes):
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{d}: class folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                            "add images or remove the folder")
        for p in files:
            try:
                with Image.open(p) as im:
                    arr = np.asarray(im.convert("L" if im.mode in ("L", "1", "I;16", "I") else "RGB"))
            except OSError as exc:
                raise DataError(f"{p}: cannot read image ({exc}); replace or remove it") from None
            arr = arr[..., None] if arr.ndim == 2 else arr
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise DataError(f"{p}: image of shape {arr.shape}, others are {shape}; resize all images to one size")
            xs.append(arr)
            ys.append(label)
    x = np.stack(xs).astype(np.uint8)
    return Dataset(name=root.name, x_train=x, y_train=np.asarray(ys, np.int64), x_test=None, y_test=None,
                   class_names=[d.name for d in classes], kind="image")
