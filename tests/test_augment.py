"""Data augmentation: flip-and-crop, the DSA and FRePo-code styles, and how ``augment`` is
recorded in the training config."""
import dataclasses

import numpy as np
import pytest

from mi_defense.config import TrainConfig
from mi_defense.tfenv import tf
from mi_defense.training.augment import STYLES, _affine, _frepo_colour, _frepo_crop, _frepo_cutout, augment, flip_crop


def test_flip_crop_without_padding_is_identity_or_mirror_per_example():
    x = tf.constant(np.random.default_rng(0).standard_normal((16, 6, 6, 3)), tf.float32)
    out = flip_crop(x, tf.constant([1, 2], tf.int64), pad=0).numpy()
    same = np.all(out == x.numpy(), axis=(1, 2, 3))
    mirror = np.all(out == x.numpy()[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirror) and same.any() and mirror.any()


def test_flip_crop_shifts_by_at_most_the_padding_and_fills_with_zeros():
    x = tf.ones((32, 8, 8, 1))
    out = flip_crop(x, tf.constant([3, 4], tf.int64), pad=2).numpy()
    assert out.shape == (32, 8, 8, 1)
    zeros = (out == 0).sum(axis=(1, 2, 3))
    assert zeros.max() <= 8 * 8 - 6 * 6 and zeros.max() > 0  # at most 2 rows and 2 columns of padding show
    assert set(np.unique(out)) <= {0.0, 1.0}


def test_augment_is_deterministic_per_seed_and_keeps_shape():
    x = tf.constant(np.random.default_rng(1).standard_normal((8, 10, 10, 1)), tf.float32)
    seeds = [tf.constant([5, s], tf.int64) for s in range(6)]
    outs = [augment(x, s, rgb=False).numpy() for s in seeds]
    assert all(o.shape == x.shape for o in outs)
    np.testing.assert_array_equal(augment(x, seeds[0], rgb=False).numpy(), outs[0])
    assert any(not np.allclose(o, x.numpy()) for o in outs)


def test_frepo_style_keeps_a_constant_image_under_geometric_ops_and_cuts_a_quarter_side_hole():
    """FRePo's code's parameters (frepo-code): resampling extends the border (a constant image stays
    constant), the hole is (H/4)^2 pixels wholly inside, brightness moves by at most 0.25;
    DSA's zero fill leaves zeros at the border, its brightness moves by up to 0.5."""
    x = tf.fill((64, 12, 12, 1), 2.0)
    seed = tf.constant([7, 1], tf.int64)
    for op in (lambda: _frepo_crop(x, seed), lambda: _affine(x, seed, "rotate", "NEAREST"),
               lambda: _affine(x, seed, "translate", "NEAREST")):
        np.testing.assert_allclose(op().numpy(), 2.0, atol=1e-5)
    assert (_affine(x, seed, "translate").numpy() == 0).any()  # dsa: zero fill
    holes = _frepo_cutout(x, seed).numpy()[..., 0] == 0
    assert (holes.sum(axis=(1, 2)) == 9).all()
    for h in holes:  # one 3x3 block, wholly inside
        r, c = np.flatnonzero(h.any(axis=1)), np.flatnonzero(h.any(axis=0))
        assert len(r) == 3 and len(c) == 3 and r[-1] - r[0] == 2 and c[-1] - c[0] == 2
    shift = (_frepo_colour(x, seed).numpy() - 2.0).reshape(64, -1)
    assert np.allclose(shift, shift[:, :1], atol=1e-5)  # contrast leaves a constant image alone
    assert np.abs(shift).max() <= 0.25 + 1e-6 and np.abs(shift).max() > 0.1 and shift.std() > 0.05
    many = np.stack([augment(x, tf.constant([7, s], tf.int64), rgb=False, style="dsa").numpy() for s in range(24)])
    assert np.abs(many - 2.0).max() > 0.26  # dsa's brightness or zero fill goes beyond frepo-code's range
    with pytest.raises(ValueError, match="style 'x' unknown"):
        augment(x, seed, rgb=False, style="x")


def test_augment_true_is_dsa_and_is_recorded_by_name():
    assert TrainConfig(augment=True).augment == "dsa" and TrainConfig().augment == "dsa"
    assert (TrainConfig(augment=False).augment == "none"
            and dataclasses.asdict(TrainConfig(augment=True))["augment"] == "dsa")
    assert (set(STYLES) == {"frepo-code", "dsa"}
            and TrainConfig(augment="frepo-code").augment_mode(rgb=False) == "frepo-code")
    assert TrainConfig(augment="frepo").augment == "dsa"  # the old name of the dsa set keeps its meaning
    assert TrainConfig(augment="auto").augment_mode(rgb=True) == "flip_crop"


@pytest.mark.parametrize("branch", ["colour", "crop", "rotate", "translate", "cutout", "flip"])
def test_shared_draws_give_each_image_a_result_of_its_own_alone(branch):
    """``shared=True`` (the release-once DP statistic): one parameter draw for the whole batch,
    so an image's result does not depend on its position or on the other images; per-example
    draws (the default) do."""
    from mi_defense.training.augment import _colour, _cutout, _flip

    ops = {"colour": _colour, "cutout": _cutout, "flip": _flip,
           **{k: (lambda kind: lambda x, s, shared: _affine(x, s, kind, shared=shared))(k)
              for k in ("crop", "rotate", "translate")}}
    x = tf.constant(np.random.default_rng(1).standard_normal((12, 8, 8, 3)), tf.float32)
    seed = tf.constant([5, 9], tf.int64)
    batch = ops[branch](x, seed, True).numpy()
    perm = np.random.default_rng(2).permutation(12)
    permuted = ops[branch](tf.gather(x, perm), seed, True).numpy()
    np.testing.assert_allclose(permuted, batch[perm], rtol=1e-6, atol=1e-6)
    for i in (0, 7):
        alone = ops[branch](x[i:i + 1], seed, True).numpy()
        np.testing.assert_allclose(alone[0], batch[i], rtol=1e-6, atol=1e-6)
    per_example = ops[branch](tf.gather(x, perm), seed, False).numpy()
    assert not np.allclose(per_example, ops[branch](x, seed, False).numpy()[perm], atol=1e-6)


def test_shared_augment_picks_one_operation_for_every_image_and_only_for_dsa():
    x = tf.constant(np.random.default_rng(3).standard_normal((6, 8, 8, 3)), tf.float32)
    for s in range(8):
        seed = tf.constant([s, 1], tf.int64)
        batch = augment(x, seed, True, shared=True).numpy()
        np.testing.assert_allclose(augment(x[2:3], seed, True, shared=True).numpy()[0], batch[2], rtol=1e-6,
                                   atol=1e-6)
    with pytest.raises(ValueError, match="dsa style only"):
        augment(x, tf.constant([0, 1], tf.int64), True, style="frepo-code", shared=True)
