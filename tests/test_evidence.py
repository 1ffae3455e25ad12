"""The declared evidence: epsilon lower bounds, the primary attack, held-out selection, leave-one-out."""
import numpy as np
import pytest

from attacks.epsilon import clopper_pearson_lower, clopper_pearson_upper, epsilon_lower_bound
from mi_defense.auditing import AuditConfig
from mi_defense.auditing.evidence import declared_evidence, leave_one_out, strongest_held_out
from mi_defense.data import universe_masks
from mi_defense.errors import UserError
import attacks


def test_clopper_pearson_known_answers():
    # k = n: the lower bound solves p^n = alpha; k = 0: the upper bound solves (1 - p)^n = alpha
    assert clopper_pearson_lower(20, 20, 0.05) == pytest.approx(0.05 ** (1 / 20))
    assert clopper_pearson_upper(0, 20, 0.05) == pytest.approx(1 - 0.05 ** (1 / 20))
    assert clopper_pearson_lower(0, 20, 0.05) == 0.0 and clopper_pearson_upper(20, 20, 0.05) == 1.0
    # against the exact binomial tail: P[Bin(n, p_lo) >= k] = alpha
    from scipy.stats import binom
    lo = float(clopper_pearson_lower(7, 30, 0.05))
    assert binom.sf(6, 30, lo) == pytest.approx(0.05, rel=1e-6)


def test_epsilon_bound_is_the_closed_form_for_a_perfect_attack():
    n = 600
    member = np.arange(n) < n // 2
    r = epsilon_lower_bound(member.astype(float), member, confidence=0.95, delta=1e-5)
    n1 = n0 = n // 4  # the bound is computed on the held-out half
    a = 0.05 / 2
    assert r["n_members"] == n1 and r["n_nonmembers"] == n0
    assert r["value"] == pytest.approx(np.log((a ** (1 / n1) - 1e-5) / (1 - a ** (1 / n0))), rel=1e-9)


def test_epsilon_bound_is_near_zero_without_leakage_and_grows_with_it():
    rng = np.random.default_rng(1)
    member = np.arange(4000) < 2000
    assert epsilon_lower_bound(rng.random(4000), member)["value"] < 0.2
    leaky = rng.standard_normal(4000) + 1.5 * member
    assert epsilon_lower_bound(leaky, member)["value"] > 1.0


def test_epsilon_bound_does_not_exceed_the_true_epsilon_of_randomised_response():
    # each example's score is its true membership bit, flipped with probability 1/(1+e^eps):
    # the test "score = 1" then has TPR / FPR = e^eps exactly
    rng = np.random.default_rng(2)
    eps = 1.0
    member = np.arange(20000) < 10000
    flip = rng.random(20000) < 1 / (1 + np.exp(eps))
    r = epsilon_lower_bound((member ^ flip).astype(float), member)
    assert 0.8 < r["value"] <= eps


def test_primary_attack_is_fixed_by_the_config_before_scoring():
    assert AuditConfig(references=16).primary == "lira_online_fixed"
    assert AuditConfig(references=64).primary == "lira_online"
    assert AuditConfig(references=0).primary == "threshold_loss"
    assert AuditConfig(references=4, primary_attack="rmia_online").primary == "rmia_online"
    with pytest.raises(UserError, match="not an attack on the model"):
        AuditConfig(references=0, primary_attack="lira_online")
    # a stronger attack in the results does not displace the declared one
    rng = np.random.default_rng(0)
    member = np.arange(400) < 200
    scores = {"weak": rng.random(400), "strong": member + 0.1 * rng.standard_normal(400)}
    results = {k: attacks.metrics.evaluate(v, member, bootstrap=0) for k, v in scores.items()}
    ev = declared_evidence(results, scores, member, "weak", None, 0.95, 1e-5, 0, (1e-3,), 0)
    assert ev["primary_attack"]["name"] == "weak" and ev["epsilon_lower_bound"]["attack"] == "weak"
    assert ev["epsilon_lower_bound"]["value"] < 0.5


def test_strongest_attack_is_reported_on_held_out_examples():
    rng = np.random.default_rng(3)
    member = np.arange(2000) < 1000
    scores = {f"noise{i}": rng.random(2000) for i in range(20)}
    full_best = max(attacks.metrics.auc(s, member) for s in scores.values())
    held = strongest_held_out(scores, member, (1e-3,), bootstrap=100, seed=0)
    assert full_best > 0.52  # the maximum over 20 null attacks on the same examples looks like leakage
    assert held["auc_ci"][0] < 0.5 < held["auc_ci"][1]


def test_leave_one_out_on_null_signals_is_at_chance():
    rng = np.random.default_rng(4)
    masks = universe_masks(2000, 8, seed=1)
    probs = rng.random((2000, 8))
    loo = leave_one_out(probs, masks, ["lira_online", "lira_online_fixed", "rmia_online"], (1e-3,), 0)
    for name, r in loo.items():
        assert abs(r["auc_mean"] - 0.5) < 0.02, name
