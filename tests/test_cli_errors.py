"""Bad input: one line naming the problem and the fix, exit status 2, no traceback, nothing written."""
import os

import numpy as np
import pytest

from mi_defense.cli import main
from mi_defense.io import clean_stale_temp


def _one_line_error(capsys, argv, expect):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert expect in err, err
    return err


@pytest.fixture
def files(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "notjson.json").write_text("{members: ")
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
    return tmp_path


@pytest.mark.parametrize("args,expect", [
    (["audit", "--dataset", "digits", "--out", "{t}/afile"], "is a file"),
    (["audit", "--dataset", "digits", "--out", "{t}/afile/sub"], "which is a file"),
    (["distill", "--dataset", "digits", "--out", "{t}/afile/sub"], "which is a file"),
    (["evaluate", "--distilled", "{t}/none.npz", "--json", "{t}/afile/e.json"], "which is a file"),
    (["evaluate", "--distilled", "{t}/corrupt.npz", "--dataset", "digits"], "not a readable distilled set"),
    (["evaluate", "--distilled", "{t}/none.npz", "--models", "0"], "at least one model"),
    (["evaluate", "--distilled", "{t}/none.npz", "--compare-width", "-1"], "compare_width must be a whole number >= 0"),
    (["evaluate", "--distilled", "{t}/none.npz", "--json", "{t}"], "json_path (--json)"),
    (["audit", "--dataset", "digits", "--shard", "2/2", "--out", "{t}/o"], "0 <= i < n"),
    (["audit", "--dataset", "digits", "--shard", "1-2", "--out", "{t}/o"], "must look like i/n"),
    (["distill", "--dataset", "digits", "--split", "{t}/notjson.json", "--out", "{t}/d"], "not readable JSON"),
    (["distill", "--dataset", "digits", "--label-lr", "0", "--out", "{t}/d"], "label_lr must be a positive number"),
    (["audit", "--dataset", "digits", "--members", "0", "--out", "{t}/o"], "members must be a whole number >= 1"),
    (["audit", "--dataset", "digits", "--bootstrap", "-5", "--out", "{t}/o"], "bootstrap must be"),
    (["audit", "--dataset", "digits", "--seed", "-1", "--out", "{t}/o"], "seed must be"),
    (["audit", "--dataset", "digits", "--primary-attack", "trained_xx", "--out", "{t}/o"], "primary_attack"),
])
def test_bad_arguments(files, capsys, args, expect):
    _one_line_error(capsys, [a.format(t=files) for a in args], expect)
    assert not (files / "o").exists() and not (files / "d").exists()


@pytest.mark.parametrize("toml,expect", [
    ('[audit]\nmembers = "abc"', "members must be a whole number"),
    ("[audit]\ndefenses = 5", "defenses must be a list"),
    ("[audit]\nmembers = 100.5", "members must be a whole number"),
    ("[audit]\nfprs = [0.5, 1.5]", "fprs must be numbers strictly between 0 and 1"),
    ("[audit]\nn_jobs = 0", "n_jobs"),
    ("[train]\nlr = -1.0", "lr must be a positive number"),
    ("[train]\nbatch = 0", "batch must be a whole number >= 1"),
    ('[train]\nloss = "hinge"', "loss 'hinge' unknown"),
    ('[train]\nnorm = "group"', "norm 'group' unknown"),
    ('[train]\naugment = "mixup"', "augment 'mixup' unknown"),
    ("[train]\ndepth = 5", "support a ConvNet depth of at most 3"),
    ("[real_recipe]\nepochs = 0", "epochs must be a positive number"),
    ("[distill]\nipc = 0", "ipc must be a whole number >= 1"),
])
def test_bad_config_values_are_refused_before_training(tmp_path, capsys, toml, expect):
    (tmp_path / "c.toml").write_text(toml + "\n")
    _one_line_error(capsys, ["audit", "--dataset", "digits", "--config", str(tmp_path / "c.toml"), "--defense", "none",
                             "--references", "0", "--out", str(tmp_path / "o")], expect)
    assert not (tmp_path / "o" / "cache").exists()


def test_corrupt_checkpoint_is_named_with_the_fix(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"PK\x03\x04 garbage")
    _one_line_error(capsys, ["distill", "--dataset", "digits", "--ipc", "1", "--steps", "2", "--width", "4", "--depth",
                             "1", "--out", str(out), "--resume", "--quiet"], "checkpoint is corrupt or truncated")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / "sub" / ".checkpoint.npz.999999999.abc.tmp"
    live = tmp_path / f".results.json.{os.getpid()}.abc.tmp"
    dead.parent.mkdir()
    dead.write_text("x")
    live.write_text("x")
    assert clean_stale_temp(tmp_path) == 1
    assert not dead.exists() and live.exists()


@pytest.mark.parametrize("steps", ["0", "-5"])
def test_evaluate_refuses_non_positive_training_steps(distilled_digits, capsys, steps):
    _one_line_error(capsys, ["evaluate", "--distilled", str(distilled_digits / "distilled.npz"), "--dataset", "digits",
                             "--train-steps", steps, "--quiet"], "steps must be a whole number >= 1")


@pytest.mark.parametrize("ratio,expect", [("1", "lr_final_ratio must be below 1"),
                                          ("-0.5", "lr_final_ratio must be a finite number >= 0")])
def test_evaluate_refuses_a_learning_rate_floor_outside_0_1(distilled_digits, capsys, ratio, expect):
    _one_line_error(capsys, ["evaluate", "--distilled", str(distilled_digits / "distilled.npz"), "--dataset", "digits",
                             "--lr-final-ratio", ratio, "--quiet"], expect)


def test_evaluate_refuses_a_split_made_for_other_data(distilled_digits, tmp_path, capsys):
    from mi_defense.data import make_split
    from mi_defense.data.user import load_npz

    rng = np.random.default_rng(1)
    np.savez(tmp_path / "other.npz", x_train=rng.integers(0, 256, (100, 8, 8, 1), dtype=np.uint8),
             y_train=np.arange(100) % 10)
    make_split(load_npz(str(tmp_path / "other.npz")), 40, 20, seed=0).save(distilled_digits / "PRIVATE-do-not-release"
                                                                           / "split.json")
    _one_line_error(capsys, ["evaluate", "--distilled", str(distilled_digits / "distilled.npz"), "--dataset", "digits",
                             "--quiet"], "was made for other data")
