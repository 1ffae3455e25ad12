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


def test_the_cheap_preset_is_standard_with_4_runs_and_the_attack_its_measurement_supports():
    """``cheap`` is ``standard`` with 4 reference runs and a declared attack that, on the
    committed measurement it rests on, is the strongest at 4 runs and keeps at least 0.9 of
    the AUC advantage of LiRA online with all 16 runs: changing the preset without a
    measurement that supports it fails here."""
    import json
    from pathlib import Path

    from mi_defense.config import resolve_audit_config
    from mi_defense.config.presets import CHEAP_EVIDENCE, RUN_PRESETS

    cheap, standard = RUN_PRESETS["cheap"], RUN_PRESETS["standard"]
    same = [k for k in standard if k != "references"]
    assert {k: cheap[k] for k in same} == {k: standard[k] for k in same}
    assert set(cheap) == set(standard) | {"primary_attack"}
    cfg = resolve_audit_config("cheap")
    assert cfg.references == 4 and cfg.primary == cheap["primary_attack"]
    bench = json.loads((Path(__file__).resolve().parents[1] / CHEAP_EVIDENCE).read_text())
    assert bench["defense"] == "none" and bench["references_in_audit"] == 16
    at4 = bench["by_count"]["4"]
    assert max(at4, key=lambda n: at4[n]["auc"]["mean"]) == cfg.primary
    assert at4[cfg.primary]["share_of_full_advantage"] >= 0.9


def test_the_cheap_presets_declared_attack_gives_way_to_another_reference_count_or_attack_list():
    from mi_defense.config import resolve_audit_config

    assert resolve_audit_config("cheap", references=64).primary == "lira_online"
    assert resolve_audit_config("cheap", references=0).primary == "threshold_loss"
    assert resolve_audit_config("cheap", attacks=["lira_online"]).primary == "lira_online"
    assert resolve_audit_config("cheap", references=16, primary_attack="rmia_online").primary == "rmia_online"
