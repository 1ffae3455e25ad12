import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest


def shared_data_dir(name: str) -> Path:
    """``$MI_DEFENSE_DATA/<name>``, or skip the test saying what is missing."""
    base = os.environ.get("MI_DEFENSE_DATA")
    if not base:
        pytest.skip("MI_DEFENSE_DATA is not set; point it at a folder holding mnist/ and fashion_mnist/")
    d = Path(base) / name
    if not d.is_dir():
        pytest.skip(f"{d} is absent")
    return d


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, np.uint8)
    return struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def write_gz(path: Path, data: bytes) -> Path:
    with gzip.open(path, "wb") as f:
        f.write(data)
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Keep ~/.cache/mi_defense of the machine out of the tests."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def distilled_digits(tmp_path):
    """A folder holding a distilled.npz for digits (random images: only its format matters here)."""
    from mi_defense.data import Transform, load_dataset

    ds = load_dataset("digits")
    t = Transform.fit(ds.x_train)
    rng = np.random.default_rng(0)
    d = tmp_path / "dist"
    d.mkdir()
    np.savez(d / "distilled.npz", x=rng.standard_normal((10, 8, 8, 1)).astype(np.float32),
             y=np.eye(10, dtype=np.float32), labels=np.arange(10), class_names=np.array(ds.class_names),
             **t.to_arrays())
    return d
