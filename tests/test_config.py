"""The config package: declared constraints with one message form, one check of every
privacy budget, and ``eps`` only as a defense spec's spelling of ``epsilon``."""
import pytest

from mi_defense.config import (CLIP_SPACES, EPSILON, POSITIVE, AllOf, AuditConfig, DefenseSpec, DistillConfig, Interval,
                               OrNone, Options, RealRecipe, Satisfies, TrainConfig, Whole, check_fields,
                               check_spec_params, replace_checked)
from mi_defense.errors import UserError


@pytest.mark.parametrize("constraint, good, bad, message", [
    (Whole(1), 3, 0, "t: n must be a whole number >= 1, got 0"),
    (Whole(0), 0, True, "t: n must be a whole number >= 0, got True"),
    (POSITIVE, 0.5, float("nan"), "t: n must be a positive number, got nan"),
    (Interval(float, 0, 1, closed="left"), 0.0, 1.0, "t: n must be a number in [0, 1), got 1.0"),
    (Interval(float, 0, 1, closed="neither"), 0.5, 0, "t: n must be a number strictly between 0 and 1, got 0"),
    (Options(("a", "b", "c")), "b", "d", "t: n 'd' unknown; use a, b or c"),
    (OrNone(Whole(1)), None, 0, "t: n must be a whole number >= 1, got 0"),
    (AllOf(Whole(0), Satisfies(lambda v: v % 2 == 0, "even")), 2, 3, "t: n must be even, got 3"),
])
def test_a_constraint_accepts_and_refuses_in_one_line(constraint, good, bad, message):
    constraint.check(good, "n", "t")
    with pytest.raises(UserError) as err:
        constraint.check(bad, "n", "t")
    assert str(err.value) == message


def test_every_settings_class_declares_its_fields_constraints():
    for cls in (DistillConfig, TrainConfig, RealRecipe, AuditConfig):
        names = {f for f in cls.__dataclass_fields__}
        assert set(cls._constraints) <= names, cls
        check_fields(cls(), "x")  # the defaults meet them
    assert set(DistillConfig._constraints["clip_space"].choices) == set(CLIP_SPACES)  # the spaces are declared once


def test_epsilon_is_checked_by_one_constraint_everywhere():
    from mi_defense.defenses.dpsgd import DPSGD, DPSGDLinear
    from mi_defense.defenses.frepo import FRePoDefense

    assert DistillConfig._constraints["epsilon"].inner is EPSILON
    assert all(cls._constraints["epsilon"] is EPSILON for cls in (DPSGD, DPSGDLinear, FRePoDefense))
    for bad in (0, -1.0, float("inf"), True, "8"):
        with pytest.raises(UserError, match="epsilon must be a finite positive number"):
            DistillConfig(epsilon=bad)
    with pytest.raises(UserError, match="eps=-1 is not a finite positive number"):
        check_spec_params("dpsgd", DefenseSpec.parse("dpsgd:eps=-1").kwargs, DPSGD._constraints, DPSGD.required,
                          DPSGD.example)


def test_eps_is_only_a_spec_spelling_of_epsilon():
    spec = DefenseSpec.parse("frepo:ipc=1,eps=8")
    assert spec.kwargs == {"ipc": 1, "epsilon": 8} and spec.claims_dp
    assert (str(spec) == "frepo:ipc=1,eps=8" and spec.key == "frepo_ipc=1_eps=8"
            and spec.spelled_params == {"ipc": 1, "eps": 8})
    with pytest.raises(UserError, match="no parameter\\(s\\) epsilon; a spec writes eps"):
        DefenseSpec.parse("dpsgd:epsilon=8")
    with pytest.raises(UserError, match="defense 'dpsgd' needs eps"):
        check_spec_params("dpsgd", {}, {"epsilon": EPSILON}, ("epsilon",), "dpsgd:eps=8")
    assert (check_spec_params("frepo", {"ipc": 2.0, "epsilon": 8}, {"ipc": Whole(1), "epsilon": EPSILON})
            == {"ipc": 2, "epsilon": 8.0})


def test_run_presets_build_and_importing_config_loads_no_attack_suite_until_asked():
    import subprocess
    import sys

    code = ("import sys, mi_defense.config as c\nloaded = 'attacks' in sys.modules\n"
            "print(loaded, [c.resolve_audit_config(p).references for p in c.RUN_PRESETS])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False [4, 16, 4]", out.stdout + out.stderr


@pytest.mark.parametrize("text", ["none", "subset:n=100", "dpsgd:eps=8,clip=1.5", "frepo:ipc=10,init=noise,lr=0.01"])
def test_defense_spec_round_trips(text):
    spec = DefenseSpec.parse(text)
    assert str(spec) == text and DefenseSpec.parse(str(spec)) == spec
    assert spec.key == text.replace(":", "_").replace(",", "_")


def test_defense_spec_coerces_numbers_and_rejects_malformed_parameters():
    assert (DefenseSpec.parse("dpsgd:eps=8").kwargs == {"epsilon": 8}
            and isinstance(DefenseSpec.parse("dpsgd:eps=0.5").kwargs["epsilon"], float))
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


def test_lamb_b1_is_validated():
    assert DistillConfig(lamb_b1=0.99).lamb_b1 == 0.99
    with pytest.raises(UserError, match=r"distill: lamb_b1 must be a number in \[0, 1\), got 1.0"):
        DistillConfig(lamb_b1=1.0)
