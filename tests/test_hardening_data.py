"""The data layer decides the pixel range once and refuses labels with gaps, for every path
(``.npz`` on the command line, the Python API)."""
import numpy as np
import pytest

from mi_defense.data import Transform, load_dataset
from mi_defense.data.dataset import Dataset
from mi_defense.errors import DataError, UserError


def _digits(n=300):
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:n, ..., None] * 255 / 16).round().astype(np.uint8), d.target[:n].astype(np.int64)


def test_float_0_255_images_load_as_the_uint8_pixels_do(tmp_path):
    x, y = _digits()
    np.savez(tmp_path / "u8.npz", x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
    np.savez(tmp_path / "f255.npz", x_train=x.astype(np.float64), y_train=y, x_test=x[:20].astype(np.float32),
             y_test=y[:20])
    np.savez(tmp_path / "f01.npz", x_train=x.astype(np.float32) / 255, y_train=y)
    u8, f255, f01 = (load_dataset(str(tmp_path / f"{n}.npz")) for n in ("u8", "f255", "f01"))
    # the one rule: 0..255 floats become uint8 pixels
    assert f255.x_train.dtype == np.uint8 and f255.x_test.dtype == np.uint8
    assert f255.fingerprint() == u8.fingerprint()  # the same data: the same split checks hold
    np.savez(tmp_path / "frac.npz", x_train=np.minimum(x.astype(np.float32) + 0.4, 255), y_train=y)
    np.testing.assert_array_equal(load_dataset(str(tmp_path / "frac.npz")).x_train, x)  # rounded to the nearest pixel
    for kind in ("standardize", "zca"):
        tu, tf_ = Transform.fit(u8.x_train, kind), Transform.fit(f255.x_train, kind)
        np.testing.assert_array_equal(tu.mean, tf_.mean)
        np.testing.assert_array_equal(tu.std, tf_.std)
        np.testing.assert_array_equal(tu(u8.x_train), tf_(f255.x_train))  # the same model-space arrays
        np.testing.assert_array_equal(tu(u8.x_test), tf_(f255.x_test))
        np.testing.assert_array_equal(tu.inverse(tu(u8.x_train), to_uint8=True), x)
        np.testing.assert_array_equal(tf_.inverse(tf_(f255.x_train), to_uint8=True), x)  # pixels back, not stuck at 255
    np.testing.assert_array_equal(Transform.fit(f01.x_train)(f01.x_train), Transform.fit(u8.x_train)(u8.x_train))
    # DP-FRePo's fixed normalisation maps the members to [-1, 1] whatever their dtype
    for ds in (u8, f255):
        z = Transform.fixed(1, ds.x_train.dtype == np.uint8)(ds.x_train)
        assert -1 <= z.min() and z.max() <= 1


def test_images_outside_0_255_or_of_mixed_dtypes_are_refused(tmp_path):
    x, y = _digits(50)
    for name, xt, msg in (("neg", x.astype(np.float32) - 128, r"values in \[-128"),
                          ("big", x.astype(np.float32) * 4, "give raw pixels")):
        np.savez(tmp_path / f"{name}.npz", x_train=xt, y_train=y)
        with pytest.raises(DataError, match=msg):
            load_dataset(str(tmp_path / f"{name}.npz"))
    np.savez(tmp_path / "mixed.npz", x_train=x, y_train=y, x_test=x[:5].astype(np.float32), y_test=y[:5])
    with pytest.raises(DataError, match="one dtype"):
        load_dataset(str(tmp_path / "mixed.npz"))
    features = np.random.default_rng(0).normal(0, 50, (50, 7))  # tabular features keep their own scale
    np.savez(tmp_path / "tab.npz", x_train=features, y_train=y)
    np.testing.assert_array_equal(load_dataset(str(tmp_path / "tab.npz")).x_train, features)


@pytest.mark.slow
def test_distill_api_gives_the_same_release_for_uint8_and_float_0_255():
    import mi_defense

    x, y = _digits(200)
    settings = dict(ipc=1, steps=2, width=8, depth=1, batch_real=32, pool_size=2, seed=0)
    a = mi_defense.distill(x, y, **settings)
    b = mi_defense.distill(x.astype(np.float32), y, **settings)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.images, b.images)
    assert (b.images == 255).mean() < 0.5


def test_labels_with_gaps_are_refused_on_every_path(tmp_path, capsys):
    import mi_defense
    from mi_defense.cli import main

    x, y = _digits(60)
    gappy = np.array([0, 2, 5])[y % 3]
    np.savez(tmp_path / "gaps.npz", x_train=x, y_train=gappy)
    with pytest.raises(DataError, match=r"class\(es\) 1, 3, 4 of 0..5 have no example \(labels used: 0, 2, 5\); "
                                        r"relabel"):
        load_dataset(str(tmp_path / "gaps.npz"))
    with pytest.raises(UserError, match="relabel the classes as 0..K-1"):
        mi_defense.distill(x, gappy, ipc=1, steps=1)
    for cmd in (["distill", "--out", str(tmp_path / "d")], ["audit", "--out", str(tmp_path / "a")]):
        assert main(cmd + ["--dataset", str(tmp_path / "gaps.npz"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "relabel" in err and "\n" not in err
    assert not (tmp_path / "a").exists()
    # the mapping the message suggests gives a loadable set
    np.savez(tmp_path / "fixed.npz", x_train=x, y_train=np.unique(gappy, return_inverse=True)[1])
    assert load_dataset(str(tmp_path / "fixed.npz")).num_classes == 3
    with pytest.raises(DataError, match="no example"):
        Dataset("named", x, y % 2, None, None, ["a", "b", "c"])
