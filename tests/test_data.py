import hashlib
import os

import numpy as np
import pytest

from mi_defense.cli import main
from mi_defense.data import Transform, load_dataset, make_split, universe_masks
from mi_defense.data import idx, sources
from mi_defense.errors import DataError, UserError
from tests.conftest import idx_bytes, shared_data_dir, write_gz


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_loaders_on_canonical_files(name):
    shared_data_dir(name)
    ds = load_dataset(name)
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10000, 28, 28, 1) and ds.y_test.shape == (10000,)
    assert set(np.unique(ds.y_train)) == set(range(10))
    expected = {f.name: f.sha256 for f in sources.FILESETS[name].files}
    assert ds.files == expected  # the decompressed bytes' SHA-256 were verified


def test_adult_loader():
    shared_data_dir("adult")
    ds = load_dataset("adult")
    assert ds.kind == "tabular" and ds.x_train.shape[0] == 32561 and ds.x_test.shape[0] == 16281
    assert ds.x_train.shape[1] == ds.x_test.shape[1] and ds.num_classes == 2
    assert 0.2 < ds.y_train.mean() < 0.3  # about 24% earn >50K


def test_idx_parser_round_trip():
    x = np.random.default_rng(0).integers(0, 256, (7, 5, 4), dtype=np.uint8)
    y = np.arange(7) % 3
    xi, yi = idx.images_and_labels(idx_bytes(x), idx_bytes(y), "tiny", num_classes=3)
    assert xi.shape == (7, 5, 4, 1) and np.array_equal(xi[..., 0], x) and np.array_equal(yi, y)


def test_idx_errors():
    x = np.zeros((4, 3, 3), np.uint8)
    with pytest.raises(DataError, match="magic"):
        idx.parse_idx(b"\x00\x00\x08\x01" + idx_bytes(x)[4:], 3, "x")
    with pytest.raises(DataError, match="truncated"):
        idx.parse_idx(idx_bytes(x)[:-3], 3, "x")
    with pytest.raises(DataError, match="labels"):
        idx.images_and_labels(idx_bytes(x), idx_bytes(np.zeros(5)), "x")
    with pytest.raises(DataError, match="out of range"):
        idx.images_and_labels(idx_bytes(x), idx_bytes(np.array([0, 1, 2, 12])), "x")


def _fake_fileset(monkeypatch, tmp_path, payloads):
    files = tuple(sources.RemoteFile(n, hashlib.sha256(b).hexdigest(), (tmp_path / "remote" / (n + ".gz")).as_uri())
                  for n, b in payloads.items())
    (tmp_path / "remote").mkdir(exist_ok=True)
    for n, b in payloads.items():
        write_gz(tmp_path / "remote" / (n + ".gz"), b)
    monkeypatch.setitem(sources.FILESETS, "fake", sources.FileSet("fake", files))
    monkeypatch.delenv("MI_DEFENSE_DATA", raising=False)


def test_lookup_order_and_download(monkeypatch, tmp_path):
    payloads = {"a": b"hello", "b": b"world"}
    _fake_fileset(monkeypatch, tmp_path, payloads)
    got = sources.locate("fake")  # nothing local: downloads into ~/.cache/mi_defense/fake
    cache = sources.cache_root() / "fake"
    assert {k: v[1] for k, v in got.items()} == payloads
    assert all(p.parent == cache for p, _ in got.values())
    user_dir = tmp_path / "mine" / "fake"
    user_dir.mkdir(parents=True)
    for n, b in payloads.items():
        (user_dir / n).write_bytes(b)  # plain, uncompressed copies are accepted too
    got = sources.locate("fake", data_dir=str(tmp_path / "mine"))
    assert all(p.parent == user_dir for p, _ in got.values())


def test_checksum_mismatch_and_offline_error(monkeypatch, tmp_path):
    _fake_fileset(monkeypatch, tmp_path, {"a": b"hello"})
    d = tmp_path / "bad" / "fake"
    d.mkdir(parents=True)
    (d / "a").write_bytes(b"tampered")
    with pytest.raises(DataError, match="SHA-256"):
        sources.locate("fake", data_dir=str(tmp_path / "bad"))
    os.remove(tmp_path / "remote" / "a.gz")
    with pytest.raises(DataError, match="not found .*looked in.*MI_DEFENSE_DATA"):
        sources.locate("fake")


def test_corrupt_and_truncated_gzip(tmp_path):
    good = tmp_path / "x.gz"
    write_gz(good, b"some bytes" * 1000)
    (tmp_path / "corrupt.gz").write_bytes(b"\x1f\x8b\x08\x00garbage-not-deflate")
    (tmp_path / "trunc.gz").write_bytes(good.read_bytes()[:40])
    for name in ("corrupt.gz", "trunc.gz"):
        with pytest.raises(DataError, match="corrupt or truncated"):
            sources.read_decompressed(tmp_path / name)


def test_npz_loader_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 6, 6), dtype=np.uint8)
    y = np.arange(20) % 4
    np.savez(tmp_path / "ok.npz", x_train=x, y_train=y)
    ds = load_dataset(str(tmp_path / "ok.npz"))
    assert ds.input_shape == (6, 6, 1) and ds.num_classes == 4 and ds.x_test is None
    xf = x.astype(np.float32)
    xf[3, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x_train=xf, y_train=y)
    with pytest.raises(DataError, match="NaN"):
        load_dataset(str(tmp_path / "nan.npz"))
    np.savez(tmp_path / "neg.npz", x_train=x, y_train=y - 1)
    with pytest.raises(DataError, match="negative label"):
        load_dataset(str(tmp_path / "neg.npz"))
    np.savez(tmp_path / "miss.npz", x=x)
    with pytest.raises(DataError, match="missing"):
        load_dataset(str(tmp_path / "miss.npz"))
    np.savez(tmp_path / "test_oob.npz", x_train=x, y_train=y, x_test=x[:2], y_test=np.array([0, 1]) - 5)
    with pytest.raises(DataError):
        load_dataset(str(tmp_path / "test_oob.npz"))


def test_image_folder_loader_and_empty_class(tmp_path):
    from PIL import Image

    for c in ("cat", "dog"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((5, 5), 40 * i, np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    ds = load_dataset(str(tmp_path / "imgs"))
    assert ds.x_train.shape == (6, 5, 5, 1) and ds.class_names == ["cat", "dog"]
    (tmp_path / "imgs" / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_dataset(str(tmp_path / "imgs"))


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    rc = main(["distill", "--dataset", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert main(["data", "fetch", "nope"]) == 2
    assert "unknown dataset" in capsys.readouterr().err


def test_split_disjoint_and_reproducible():
    ds = load_dataset("digits")
    a = make_split(ds, 500, 300, seed=3)
    b = make_split(ds, 500, 300, seed=3)
    c = make_split(ds, 500, 300, seed=4)
    assert a.hash == b.hash != c.hash
    assert a.test_source == "train"  # digits has no test set: carved from the pool
    sets = [set(a.members), set(a.nonmembers), set(a.test)]
    assert len(sets[0]) == 500 and len(sets[1]) == 300 and len(sets[2]) == len(ds.x_train) // 5
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    with pytest.raises(UserError, match="pool has"):
        make_split(ds, 1500, 300)


def test_split_save_load(tmp_path):
    ds = load_dataset("digits")
    s = make_split(ds, 100, 100, seed=1)
    s.save(tmp_path / "split.json")
    from mi_defense.data import Split

    t = Split.load(tmp_path / "split.json")
    assert t.hash == s.hash and np.array_equal(t.members, s.members)
    t.check(ds)


def test_universe_masks_half_each_in_complementary_pairs():
    m = universe_masks(200, 8, seed=0)
    assert m.shape == (200, 8) and np.all(m.sum(axis=1) == 4)
    assert np.all(m.sum(axis=0) == 100)
    assert np.all(m[:, 0::2] ^ m[:, 1::2])  # run 2k + 1 trains on the complement of run 2k
    # without a pair, the rest carry no trace of a held-out run: every example is IN 3 of the other 6
    assert np.all(m[:, 2:].sum(axis=1) == 3)
    assert not np.array_equal(m[:, 0], m[:, 2])


@pytest.mark.parametrize("kind,shape", [("standardize", (50, 6, 6, 1)), ("zca", (300, 4, 4, 3))])
def test_transforms_invertible(kind, shape):
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    t = Transform.fit(x, kind)
    z = t(x)
    if kind == "zca":  # second moment of the output: U diag(s / (s + 0.1 mean(s))) U^T
        std = ((x / 255.0 - t.mean) / t.std).reshape(len(x), -1)
        s = np.linalg.eigvalsh(std.T @ std / len(x))
        out = z.reshape(len(z), -1).astype(np.float64)
        got = np.linalg.eigvalsh(out.T @ out / len(x))
        assert np.allclose(np.sort(got), np.sort(s / (s + 0.1 * s.mean())), atol=1e-3)
    else:
        assert np.allclose(z.reshape(-1, shape[-1]).mean(axis=0), 0, atol=1e-4)
        assert np.allclose(z.reshape(-1, shape[-1]).std(axis=0), 1, atol=1e-3)
    assert np.array_equal(t.inverse(z, to_uint8=True), x)
    t2 = Transform.from_arrays(t.to_arrays())
    assert np.allclose(t2(x), z)


def _cifar_tarball(path, n_per_batch=3):
    """A tarball in the layout of cifar-10-python.tar.gz, with tiny batches."""
    import io
    import pickle
    import tarfile

    rng = np.random.default_rng(0)
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rng.integers(0, 256, (n_per_batch, 3 * 32 * 32), dtype=np.uint8)  # rows: R plane, G plane, B plane
            labels = list(rng.integers(0, 10, n_per_batch))
            blob = pickle.dumps({b"data": data, b"labels": labels})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            batches[name] = (data, labels)
    return batches


def test_cifar10_tarball_verified_before_unpickling_then_parsed(monkeypatch, tmp_path):
    monkeypatch.delenv("MI_DEFENSE_DATA", raising=False)
    (tmp_path / "cifar10").mkdir()
    tarball = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    batches = _cifar_tarball(tarball)
    import pickle

    from mi_defense.data import registry

    calls = []
    real_loads = pickle.loads
    monkeypatch.setattr(registry.pickle, "loads", lambda *a, **k: calls.append(1) or real_loads(*a, **k))
    # not the canonical tarball: its SHA-256 differs, and nothing in it is unpickled
    with pytest.raises(DataError, match="SHA-256"):
        load_dataset("cifar10", str(tmp_path))
    assert calls == []
    # with this tarball's own checksum registered, the batches are read in CIFAR's layout
    fs = sources.FILESETS["cifar10"]
    own = sources.RemoteFile("cifar-10-python.tar.gz", hashlib.sha256(tarball.read_bytes()).hexdigest(),
                             fs.files[0].url, compressed=False)
    monkeypatch.setitem(sources.FILESETS, "cifar10", sources.FileSet("cifar10", (own,)))
    ds = load_dataset("cifar10", str(tmp_path))
    assert ds.x_train.shape == (15, 32, 32, 3) and ds.x_test.shape == (3, 32, 32, 3) and ds.x_train.dtype == np.uint8
    data, labels = batches["data_batch_2"]
    assert np.array_equal(ds.y_train[3:6], labels)
    # channel-planar rows become HWC images: pixel (0, 1) of channel c is row[c * 1024 + 1]
    assert [int(ds.x_train[3, 0, 1, c]) for c in range(3)] == [int(data[0, c * 1024 + 1]) for c in range(3)]
    assert len(calls) == 6
    # no local copy: the tarball is downloaded into the cache and checked as it is
    remote = tmp_path / "remote"
    remote.mkdir()
    tarball.rename(remote / tarball.name)
    served = sources.RemoteFile(own.name, own.sha256, (remote / tarball.name).as_uri(), compressed=False)
    monkeypatch.setitem(sources.FILESETS, "cifar10", sources.FileSet("cifar10", (served,)))
    ds2 = load_dataset("cifar10", str(tmp_path))
    assert np.array_equal(ds2.x_train, ds.x_train)
    assert (sources.cache_root() / "cifar10" / "cifar-10-python.tar.gz").is_file()


def test_transform_moments_equal_the_whole_array_formula():
    """The chunked two-pass mean/std (no float copy of the whole set) gives the float32
    values of the one-shot numpy formula, and the in-place transform the same array."""
    from mi_defense.data.transforms import Transform

    rng = np.random.default_rng(4)
    for x in (rng.integers(0, 256, (9001, 6, 5, 3), dtype=np.uint8), rng.normal(3, 2, (5000, 7)).astype(np.float64)):
        xf = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        axes = tuple(range(xf.ndim - 1))
        mean = xf.mean(axis=axes, dtype=np.float64).astype(np.float32)
        std = xf.std(axis=axes, dtype=np.float64).astype(np.float32)
        t = Transform.fit(x)
        np.testing.assert_array_equal(t.mean, mean)
        np.testing.assert_array_equal(t.std, std)
        np.testing.assert_array_equal(t(x), ((xf - mean) / std).astype(np.float32))
        assert t(x).dtype == np.float32 and x.dtype in (np.uint8, np.float64)  # the input is left as it was
    x32 = rng.normal(0, 1, (100, 4)).astype(np.float32)
    before = x32.copy()
    Transform.fit(x32)(x32)
    np.testing.assert_array_equal(x32, before)  # never transformed in place
