"""The one-step canary audit: a correct DP step stays below its claim, a broken one is caught."""
import math

import numpy as np
import pytest

from mi_defense.auditing.canary import (audit_dp_frepo_step, audit_dpsgd_step, bound_from_scores, one_step_epsilon,
                                     trials_to_exceed)


def test_perfect_separation_gives_the_clopper_pearson_known_answer():
    m = 50  # per side in the reporting half (trials are split in halves)
    out = bound_from_scores(np.zeros(2 * m), np.ones(2 * m), confidence=0.95, delta=0.0)
    a = 0.025 ** (1 / m)  # one-sided Clopper-Pearson at level 1 - 0.05/2, all m trials right
    assert out["value"] == pytest.approx(math.log(a / (1 - a)), rel=1e-9)
    assert out["tp"] == m and out["fp"] == 0
    # and the trial count that makes such a bound exceed a claim is the smallest that does
    need = trials_to_exceed(2.0)
    assert bound_from_scores(np.zeros(need), np.ones(need), 0.95, 0.0)["value"] > 2.0
    assert bound_from_scores(np.zeros(need - 2), np.ones(need - 2), 0.95, 0.0)["value"] <= 2.0
    assert one_step_epsilon(0.0, 1e-5) == math.inf and 0 < one_step_epsilon(2.0, 1e-5) < one_step_epsilon(1.0, 1e-5)
    # the exact epsilon of one Gaussian step: delta(epsilon) of 1/sigma-GDP hits delta there, and the RDP bound of
    # the same step is looser
    from mi_defense.accounting import epsilon_for, gaussian_delta

    e = one_step_epsilon(2.0, 1e-5)
    assert gaussian_delta(e, 0.5) == pytest.approx(1e-5, rel=1e-4) and e < epsilon_for(2.0, 1.0, 1, 1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("broken", [None, "noise", "clip"])
def test_dp_frepo_step_audit_can_fail(broken):
    """At epsilon 1 (the quick MNIST run's noise, one step claims about 2.2), 120 releases
    per input: the real step's bound stays below the claim; without noise, or without
    clipping inside the real step, the same audit bounds epsilon above it."""
    r = audit_dp_frepo_step(1.0, trials=120, broken=broken)
    assert r.trials == 120 and 2.0 < r.claimed_epsilon < 2.5
    assert trials_to_exceed(r.claimed_epsilon) <= 120
    if broken is None:
        assert r.audited_epsilon_lower_bound <= r.claimed_epsilon and not r.caught
    else:
        assert r.caught, r.to_json()


def test_canary_command_writes_json_and_says_when_too_few_trials_could_catch_anything(tmp_path, capsys):
    import json

    from mi_defense.cli import main

    assert main(["canary", "--epsilon", "1", "--trials", "8", "--break", "noise", "--json",
                 str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    r = json.loads((tmp_path / "c.json").read_text())
    # the step's exact one-step claim (2.07 at epsilon 1) needs 64 trials per input to be exceeded
    assert trials_to_exceed(r["claimed_epsilon"]) == 64 and "use --trials 64 or more" in out and "not caught" in out
    assert r["mechanism"] == "dp-frepo" and r["broken"] == "noise" and r["trials"] == 8 and not r["caught"]
    assert {"claimed_epsilon", "audited_epsilon_lower_bound", "confidence"} <= set(r)
    assert main(["canary", "--epsilon", "1", "--trials", "2"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("broken", [None, "noise", "clip"])
def test_dpsgd_step_audit_can_fail(broken):
    """DP-SGD's own step (tensorflow-privacy's DP model with the secret-noise reduction) at
    the noise its epsilon-1 recipe uses on 1000 members: a one-step claim of about 0.28,
    which 100 releases per input can exceed only if the step is broken."""
    r = audit_dpsgd_step(1.0, trials=100, broken=broken)
    assert r.mechanism == "dpsgd" and r.noise_multiplier > 5 and trials_to_exceed(r.claimed_epsilon) <= 100
    if broken is None:
        assert r.audited_epsilon_lower_bound <= r.claimed_epsilon and not r.caught
    else:
        assert r.caught, r.to_json()
