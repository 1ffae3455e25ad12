"""Augmentation, defense-spec parsing and config coercion."""
import numpy as np
import pytest

import dataclasses

from mi_defense.training.augment import STYLES, _affine, _frepo_colour, _frepo_crop, _frepo_cutout, augment, flip_crop
from mi_defense.config import TrainConfig, replace_checked
from mi_defense.config import DefenseSpec
from mi_defense.errors import UserError
from mi_defense.tfenv import tf


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
    assert TrainConfig(augment=False).augment == "none" and dataclasses.asdict(TrainConfig(augment=True))["augment"] == "dsa"
    assert set(STYLES) == {"frepo-code", "dsa"} and TrainConfig(augment="frepo-code").augment_mode(rgb=False) == "frepo-code"
    assert TrainConfig(augment="frepo").augment == "dsa"  # the old name of the dsa set keeps its meaning
    assert TrainConfig(augment="auto").augment_mode(rgb=True) == "flip_crop"


def test_warmup_cosine_floor_matches_the_closed_form():
    """Linear warm-up, then ``lr (r + (1 - r) (1 + cos(pi t)) / 2)`` (optax's cosine decay with
    ``alpha = r``, as FRePo's evaluation code uses with r = 0.01); r = 0 decays to zero."""
    import math

    from mi_defense.training.schedules import WarmupCosine

    lr, warm, total = 3e-4, 500, 2000
    for r in (0.0, 0.01):
        sched = WarmupCosine(lr, warm, total, r)
        for step in (0, 250, 499, 500, 1000, 1500, 1999, 2000, 2500):
            t = min(max((step - warm) / (total - warm), 0.0), 1.0)
            want = lr * (step + 1) / warm if step < warm else lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * t)))
            assert float(sched(step)) == pytest.approx(want, rel=1e-5, abs=1e-5 * lr)  # float32
    assert float(WarmupCosine(lr, warm, total, 0.01)(total)) == pytest.approx(0.01 * lr, rel=1e-5)
    assert float(WarmupCosine(lr, warm, total)(total)) == 0.0
    assert TrainConfig().lr_final_ratio == 0.0 and TrainConfig(lr_final_ratio=0.01).lr_final_ratio == 0.01
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(UserError, match="lr_final_ratio"):
            TrainConfig(lr_final_ratio=bad)


@pytest.mark.parametrize("text", ["none", "subset:n=100", "dpsgd:eps=8,clip=1.5", "frepo:ipc=10,init=noise,lr=0.01"])
def test_defense_spec_round_trips(text):
    spec = DefenseSpec.parse(text)
    assert str(spec) == text and DefenseSpec.parse(str(spec)) == spec
    assert spec.key == text.replace(":", "_").replace(",", "_")


def test_defense_spec_coerces_numbers_and_rejects_malformed_parameters():
    assert DefenseSpec.parse("dpsgd:eps=8").kwargs == {"epsilon": 8} and isinstance(DefenseSpec.parse("dpsgd:eps=0.5").kwargs["epsilon"], float)
    assert DefenseSpec.parse("dpsgd:eps=8").spelled_params == {"eps": 8}  # as results.json records it
    with pytest.raises(UserError, match="must be key=value"):
        DefenseSpec.parse("dpsgd:eps")


def test_config_coercion():
    cfg = replace_checked(TrainConfig(), "t", lr=1, augment="flip_crop", epochs=50)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.augment == "flip_crop" and cfg.epochs == 50
    assert cfg.augment_mode(rgb=True) == "flip_crop" and TrainConfig(augment="auto").augment_mode(rgb=False) == "none"
    with pytest.raises(UserError, match="must be a whole number"):
        replace_checked(TrainConfig(), "t", width="64")
    with pytest.raises(UserError, match="unknown key"):
        replace_checked(TrainConfig(), "t", widht=64)
    with pytest.raises(UserError, match="augment 'yes' unknown"):
        replace_checked(TrainConfig(), "t", augment="yes")


def test_progress_in_a_log_file_is_plain_periodic_lines():
    import io

    from mi_defense.progress import PlainProgress, progress

    assert isinstance(progress(range(3), desc="x"), PlainProgress)  # pytest's stderr is not a terminal
    buf = io.StringIO()
    bar = PlainProgress(range(1000), desc="train", unit="step", every=3600, stream=buf)
    assert sum(1 for _ in bar) == 1000
    assert buf.getvalue() == ""  # short work says nothing
    buf = io.StringIO()
    for _ in PlainProgress(range(5), desc="d", unit="step", every=0.0, stream=buf):
        pass
    lines = buf.getvalue().splitlines()
    assert len(lines) == 6 and "\r" not in buf.getvalue()  # one per update when due, plus the closing line
    assert lines[0].startswith("d: 1/5 step in ") and lines[-1].startswith("d: 5/5 step in ")


def test_run_ids_print_as_their_cache_names_and_get_distinct_seeds():
    from mi_defense.auditing.plan import RunId, jobs

    assert str(RunId("target", 0)) == "target0" and str(RunId("ref", 15)) == "ref15"
    seeds = [r.seed(7) for _, r in jobs(["d"], 2, 16)]
    assert len(set(seeds)) == len(seeds) == 18 and RunId("ref", 0).seed(7) == 8
    with pytest.raises(ValueError):
        RunId("reference", 0)
