"""Augmentation, defense-spec parsing and config coercion."""
import numpy as np
import pytest

from mi_defense.augment import augment, flip_crop
from mi_defense.config import TrainConfig, replace_checked
from mi_defense.defenses import DefenseSpec
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


@pytest.mark.parametrize("text", ["none", "subset:n=100", "dpsgd:eps=8,clip=1.5", "frepo:ipc=10,init=noise,lr=0.01"])
def test_defense_spec_round_trips(text):
    spec = DefenseSpec.parse(text)
    assert str(spec) == text and DefenseSpec.parse(str(spec)) == spec
    assert spec.key == text.replace(":", "_").replace(",", "_")


def test_defense_spec_coerces_numbers_and_rejects_malformed_parameters():
    assert DefenseSpec.parse("dpsgd:eps=8").kwargs == {"eps": 8} and isinstance(DefenseSpec.parse("dpsgd:eps=0.5").kwargs["eps"], float)
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
    from mi_defense.audit.plan import RunId, jobs

    assert str(RunId("target", 0)) == "target0" and str(RunId("ref", 15)) == "ref15"
    seeds = [r.seed(7) for _, r in jobs(["d"], 2, 16)]
    assert len(set(seeds)) == len(seeds) == 18 and RunId("ref", 0).seed(7) == 8
    with pytest.raises(ValueError):
        RunId("reference", 0)
