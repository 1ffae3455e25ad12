"""Distillation defaults sized to the data (``preset = "auto"``)."""
import pytest

from mi_defense.config import DISTILL_PRESETS, SMALL_DATA, choose_distill_preset, resolve_distill_config
from mi_defense.errors import UserError


def test_auto_sizes_the_preset_to_the_members():
    assert choose_distill_preset("auto", 1800, private=False) == "small"
    assert choose_distill_preset("auto", SMALL_DATA, private=False) == "quick"
    assert choose_distill_preset("auto", None, private=False) == "quick"
    assert choose_distill_preset("paper", 10, private=False) == "paper"  # a named preset is kept


def test_dp_settings_never_depend_on_the_member_count():
    small = resolve_distill_config("auto", "test", n_members=1800, epsilon=1.0)
    large = resolve_distill_config("auto", "test", n_members=54000, epsilon=1.0)
    assert small == large  # the release publishes its settings: they must not reveal the data's size


def test_auto_gives_the_small_preset_and_flags_still_win():
    cfg = resolve_distill_config("auto", "test", n_members=1800)
    assert (cfg.width, cfg.steps) == (DISTILL_PRESETS["small"].width, DISTILL_PRESETS["small"].steps)
    assert resolve_distill_config("auto", "test", n_members=1800, steps=7).steps == 7
    assert resolve_distill_config("auto", "test", n_members=60000).width == DISTILL_PRESETS["quick"].width


def test_an_unknown_preset_names_the_choices():
    with pytest.raises(UserError, match="auto, paper, quick, small|auto, .*small"):
        resolve_distill_config("fast", "test", n_members=10)
