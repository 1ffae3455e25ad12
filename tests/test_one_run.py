"""The one-run audit's bound: known answers and its power against a leaking mechanism."""
import math

import numpy as np
import pytest

from attacks.one_run import audit_one_run, epsilon_lower_bound_one_run, guesses, p_value


def test_pure_dp_bound_is_the_binomial_tail_known_answer():
    # all r = 10 guesses right: P[Bin(10, q) >= 10] = q^10 < 0.05  <=>  q > 0.05^(1/10)
    q = 0.05 ** (1 / 10)
    assert epsilon_lower_bound_one_run(100, 10, 10, 0.95, 0.0) == pytest.approx(math.log(q / (1 - q)), abs=1e-5)
    assert p_value(100, 10, 10, 0.0, 0.0) == pytest.approx(0.5 ** 10)
    # half right is what guessing at random gives: no evidence
    assert epsilon_lower_bound_one_run(1000, 100, 50) == 0.0
    # delta only weakens the bound
    assert (epsilon_lower_bound_one_run(1000, 100, 90, 0.95, 1e-5)
            < epsilon_lower_bound_one_run(1000, 100, 90, 0.95, 0.0))


def test_guesses_count_right_calls_at_both_ends():
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    included = np.array([True, False, True, False, False, False])
    assert guesses(scores, included, 2, 2) == (4, 3)


def test_randomised_response_at_known_epsilon_is_bounded_below_it_and_caught_above():
    """Canaries leak through eps-randomised response (a flipped inclusion bit): the bound
    stays below the true eps, and exceeds a smaller claimed eps when the leak is larger."""
    rng = np.random.default_rng(0)
    m, eps = 5000, 2.0
    included = rng.random(m) < 0.5
    keep = rng.random(m) < math.exp(eps) / (1 + math.exp(eps))
    observed = np.where(keep, included, ~included)
    scores = observed + 0.01 * rng.standard_normal(m)  # ties broken at random
    out = audit_one_run(scores, included, k_in=1000, k_out=1000)
    assert 1.0 < out["value"] <= eps
