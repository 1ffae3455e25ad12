"""The one-step canary audit: a correct DP step stays below its claim, a broken one is caught."""
import json
import math
from pathlib import Path

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


REFERENCE = Path(__file__).resolve().parents[1] / "reports"


@pytest.mark.parametrize("spec", ["dpsgd-linear:eps=1", "dpsgd-linear:eps=8", "frepo:ipc=10,eps=8,init=noise"])
def test_a_defenses_step_noise_is_the_noise_its_committed_reference_run_used(spec):
    """Known answer: the reference audit's DP runs (reports/mnist-cpu/cache, 1000 members)
    recorded the noise multiplier, clip and delta their fit calibrated; ``step_noise``, which a
    one-step audit of that defense runs at (--step-of), gives the same, and the audit's
    scoring would count such an audit for that defense and for no other."""
    from mi_defense.auditing.canary_record import for_defense
    from mi_defense.config import DefenseSpec, resolve_audit_config
    from mi_defense.defenses import DefenseContext, make_defense

    parsed = DefenseSpec.parse(spec)
    run = REFERENCE / "mnist-cpu" / "cache" / parsed.key / "target0.npz"
    if not run.is_file():
        pytest.skip(f"{run} is not committed")
    meta = json.loads(str(np.load(run)["meta"]))
    cfg = resolve_audit_config("quick", REFERENCE / "cpu-reference.toml", dataset="mnist")
    ctx = DefenseContext(10, (28, 28, 1), cfg.train, cfg.real_steps, cfg.distill)
    noise = make_defense(parsed, ctx).step_noise(cfg.members)
    assert (noise.noise_multiplier, noise.clip, noise.delta) == (meta["noise_multiplier"], meta["clip"], meta["delta"])
    row = {"mechanism": noise.mechanism, "run_epsilon": noise.run_epsilon, "noise_multiplier": noise.noise_multiplier,
           "claimed_epsilon": 0.1, "audited_epsilon_lower_bound": 0.0, "confidence": 0.95, "broken": None}
    assert for_defense([row], parsed, meta["noise_multiplier"]) == [row]
    assert for_defense([row], parsed, meta["noise_multiplier"] * 1.01) == []
    assert make_defense(DefenseSpec.parse("subset:n=100"), ctx).step_noise(cfg.members) is None


@pytest.mark.parametrize("broken", [None, "noise"])
def test_step_of_audits_a_defense_at_its_own_noise_and_catches_it_broken(tmp_path, capsys, broken):
    """The one-step audit of dpsgd-linear at epsilon 1 on the quick preset's digits (500
    members): its step claims about 0.14 at a noise multiplier above 20, which 30 releases per
    input can exceed only when the step is broken; with --into, an audit whose defense ran at
    another noise multiplier, or that has no such defense, is refused before any trial."""
    from mi_defense.cli import main

    args = ["canary", "--step-of", "dpsgd-linear:eps=1", "--trials", "30", "--json", str(tmp_path / "c.json")]
    assert main(args + (["--break", broken] if broken else [])) == 0
    r = json.loads((tmp_path / "c.json").read_text())
    assert r["step_of"] == "dpsgd-linear:eps=1" and r["mechanism"] == "dpsgd" and r["noise_multiplier"] > 20
    assert r["dataset"] == "digits" and r["n_private"] == 500
    assert trials_to_exceed(r["claimed_epsilon"]) <= 30 and r["caught"] == (broken is not None), r
    assert ("CAUGHT" in capsys.readouterr().out) == (broken is not None)
    (tmp_path / "results.json").write_text(json.dumps({"dataset": "digits", "defenses": [
        {"name": "dpsgd-linear:eps=1", "metadata": {"noise_multiplier": r["noise_multiplier"] / 2}}]}))
    assert main(["canary", "--step-of", "dpsgd-linear:eps=1.0", "--trials", "4", "--into", str(tmp_path)]) == 2
    assert "ran at noise multiplier" in capsys.readouterr().err and not (tmp_path / "canaries.json").exists()
    assert main(["canary", "--step-of", "dpsgd-linear:eps=8", "--trials", "4", "--into", str(tmp_path)]) == 2
    assert "has no defense dpsgd-linear:eps=8" in capsys.readouterr().err
    assert main(["canary", "--step-of", "none", "--trials", "4"]) == 2
    assert main(["canary", "--step-of", "dpsgd-linear:eps=1", "--mechanism", "dpsgd", "--trials", "4"]) == 2
