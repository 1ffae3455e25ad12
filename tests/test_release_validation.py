"""A tampered, truncated or oversized release is a one-line error, never a silent result."""
import io
import zipfile

import numpy as np
import pytest

from mi_defense.data.transforms import Transform
from mi_defense.distillation.artifact import DistilledSet, load_distilled
from mi_defense.errors import UserError


def _arrays(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4, 4, 1)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(6) % 3]
    path = DistilledSet(x, y, np.arange(6) % 3, Transform.fixed(1), ["a", "b", "c"]).save(tmp_path / "ok.npz")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _write(tmp_path, arrays, name="bad.npz"):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (tmp_path / name).write_bytes(buf.getvalue())
    return tmp_path / name


def test_an_intact_release_loads(tmp_path):
    a = _arrays(tmp_path)
    assert len(load_distilled(_write(tmp_path, a, "again.npz"))) == 6


@pytest.mark.parametrize("edit,expect", [
    (lambda a: a["x"].__setitem__((0, 0, 0, 0), np.nan), "x holds non-finite"),
    (lambda a: a.__setitem__("y", np.full_like(a["y"], np.inf)), "y holds non-finite"),
    (lambda a: a.__setitem__("transform_std", np.zeros(1, np.float32)), "scales positive"),
    (lambda a: a.__setitem__("transform_kind", np.array("rot13")), "transform_kind 'rot13' unknown"),
    (lambda a: a.pop("transform_mean"), "missing transform_mean"),
    (lambda a: a.__setitem__("provenance", np.array("{not json")), "provenance is not JSON"),
    (lambda a: a.__setitem__("y", a["y"][:5]), "x, y and labels hold 6, 5 and 6 rows"),
    (lambda a: a.__setitem__("labels", a["labels"] + 5), "labels must be whole numbers in 0..2"),
])
def test_a_tampered_release_is_refused_with_the_fix(tmp_path, edit, expect):
    a = _arrays(tmp_path)
    edit(a)
    with pytest.raises(UserError, match=expect) as err:
        load_distilled(_write(tmp_path, a))
    assert "\n" not in str(err.value)


def test_a_header_declaring_a_huge_array_is_refused_before_reading(tmp_path):
    a = _arrays(tmp_path)
    path = _write(tmp_path, a)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header,
                                         {"descr": "<f4", "fortran_order": False, "shape": (10 ** 12, 28, 28, 1)})
    with zipfile.ZipFile(path, "a") as zf:  # a second x.npy would be ambiguous: add a new member instead
        zf.writestr("huge.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\x00" * 64)
    with pytest.raises(UserError, match="declares .* GiB of arrays \\(huge of shape"):
        load_distilled(path)


def test_not_a_path_and_not_an_archive(tmp_path):
    with pytest.raises(UserError, match="needs the path of a distilled.npz, got NoneType"):
        load_distilled(None)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable distilled set"):
        load_distilled(tmp_path / "junk.npz")


def test_a_distillation_that_cannot_be_one_is_refused_before_allocating(tmp_path, capsys):
    import mi_defense
    from mi_defense.cli import main

    x = np.zeros((30, 8, 8, 1), np.uint8)
    with pytest.raises(UserError, match="at least 2 classes"):
        mi_defense.distill(x, np.zeros(30, np.int64), ipc=1, steps=1)
    with pytest.raises(UserError, match=r"ipc=9 synthetic images per class, but class 1 has 8 members; use ipc=8 "
                                        r"\(--ipc 8\) or less"):
        mi_defense.distill(x, np.r_[np.zeros(12), np.ones(8), np.full(10, 2)].astype(np.int64), ipc=9, steps=1)
    assert main(["distill", "--dataset", "digits", "--ipc", "100000", "--steps", "2", "--out", str(tmp_path / "d"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ipc=100000") and "\n" not in err and not (tmp_path / "d").exists()
