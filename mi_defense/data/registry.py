"""Dataset names -> loaders. ``load_dataset`` is the one entry point.

Built in: ``digits`` (scikit-learn, always offline), ``mnist``, ``fashion_mnist``,
``cifar10``, ``adult``. A path to an ``.npz`` file or to a folder of class subfolders
loads user data.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from mi_defense.data import idx, sources, tabular, user
from mi_defense.data.dataset import Dataset
from mi_defense.errors import DataError, UserError

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    input_shape: Tuple[int, ...]
    num_classes: int
    n_train: int
    n_test: int
    kind: str
    loader: Callable[[Optional[str]], Dataset]
    offline: bool = False
    description: str = ""


def _hashes(found) -> Dict[str, str]:
    import hashlib

    return {name: hashlib.sha256(data).hexdigest() for name, (_, data) in found.items()}


# data_dir is unused: every loader takes the folder; digits ships with scikit-learn
def _load_digits(data_dir=None) -> Dataset:  # noqa: ARG001
    from sklearn.datasets import load_digits

    d = load_digits()
    # 8x8 images with values 0..16, rescaled to 0..255 uint8. scikit-learn ships one
    # split of 1797 images; the test set is carved out by the member/non-member split.
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return Dataset("digits", x, d.target.astype(np.int64), None, None, [str(i) for i in range(10)], registered=True)


def _load_idx(name: str, class_names: List[str]):
    def load(data_dir=None) -> Dataset:
        found = sources.locate(name, data_dir)
        data = {k: v[1] for k, v in found.items()}
        x_tr, y_tr = idx.images_and_labels(data["train-images-idx3-ubyte"], data["train-labels-idx1-ubyte"],
                                           f"{name} train")
        x_te, y_te = idx.images_and_labels(data["t10k-images-idx3-ubyte"], data["t10k-labels-idx1-ubyte"],
                                           f"{name} test")
        return Dataset(name, x_tr, y_tr, x_te, y_te, class_names, files=_hashes(found), registered=True)

    return load


def _load_cifar10(data_dir=None) -> Dataset:
    found = sources.locate("cifar10", data_dir)  # the tarball's SHA-256 is verified here, before unpickling
    raw = found["cifar-10-python.tar.gz"][1]

    def batches(names):
        xs, ys = [], []
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            for n in names:
                member = tar.extractfile(f"cifar-10-batches-py/{n}")
                if member is None:
                    raise DataError(f"cifar10 tarball lacks {n}; replace it with the canonical cifar-10-python.tar.gz")
                d = pickle.loads(member.read(), encoding="bytes")
                xs.append(np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                ys.append(np.asarray(d[b"labels"], np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    x_tr, y_tr = batches([f"data_batch_{i}" for i in range(1, 6)])
    x_te, y_te = batches(["test_batch"])
    return Dataset("cifar10", x_tr, y_tr, x_te, y_te, CIFAR_CLASSES, files=_hashes(found), registered=True)


def _load_adult(data_dir=None) -> Dataset:
    found = sources.locate("adult", data_dir)
    tr = tabular.parse_rows(found["adult.data"][1].decode("utf-8", "replace"), "adult.data")
    te = tabular.parse_rows(found["adult.test"][1].decode("utf-8", "replace"), "adult.test")
    x_tr, y_tr, x_te, y_te, _ = tabular.encode(tr, te)
    return Dataset("adult", x_tr, y_tr, x_te, y_te, ["<=50K", ">50K"], kind="tabular", files=_hashes(found),
                   registered=True)


REGISTRY: Dict[str, DatasetSpec] = {
    s.name: s
    for s in [
        DatasetSpec("digits", (8, 8, 1), 10, 1797, 0, "image", _load_digits, offline=True,
                    description="scikit-learn handwritten digits (bundled)"),
        DatasetSpec("mnist", (28, 28, 1), 10, 60000, 10000, "image", _load_idx("mnist", [str(i) for i in range(10)]),
                    description="MNIST handwritten digits"),
        DatasetSpec("fashion_mnist", (28, 28, 1), 10, 60000, 10000, "image",
                    _load_idx("fashion_mnist", FASHION_CLASSES), description="Fashion-MNIST (Zalando)"),
        DatasetSpec("cifar10", (32, 32, 3), 10, 50000, 10000, "image", _load_cifar10,
                    description="CIFAR-10 (python version)"),
        DatasetSpec("adult", (108,), 2, 32561, 16281, "tabular", _load_adult,
                    description="UCI Adult census income (tabular)"),
    ]
}


def load_dataset(name: str, data_dir: Optional[str] = None) -> Dataset:
    """Load a registered dataset by name, or user data from an .npz file / image folder."""
    if name in REGISTRY:
        return REGISTRY[name].loader(data_dir)
    p = Path(name).expanduser()
    if p.suffix == ".npz":
        if not p.is_file():
            raise UserError(f"{p}: no such .npz file; check the path")
        return user.load_npz(p)
    if p.is_dir():
        return user.load_image_folder(p)
    raise UserError(f"unknown dataset '{name}'; use one of {', '.join(REGISTRY)}, a path to an .npz file, "
                    "or a folder with one subfolder of images per class")


def availability(name: str, data_dir: Optional[str] = None) -> str:
    """Where a registered dataset would load from, without downloading."""
    spec = REGISTRY[name]
    if spec.offline:
        return "bundled"
    fs = sources.FILESETS[name]
    for d in sources.candidate_dirs(name, data_dir):
        if all(sources._find_in(d, f) for f in fs.files):
            return str(d)
    return "not here (download on first use)"
