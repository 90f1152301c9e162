"""The one-run audit's statistics (audit/dp/one_run.py) against computations written here.

Each test names its independent reference: a closed form, a brute-force search written plainly
with scipy.stats.binom over the whole range of the paper's formula, or a simulation of a
mechanism whose true epsilon is known.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from audit.dp.one_run import (audit_scores, default_candidates, epsilon_lower_bound, guesses,
                              p_value)


def plain_p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """Steinke et al. 2023's p-value written out as stated: f(v) + 2 m delta max_{1<=i<=m}
    (f(v-i) - f(v)) / i with f(t) = P[Binomial(r, e^eps/(1+e^eps)) >= t], over ALL i up to m."""
    q = math.exp(eps) / (1.0 + math.exp(eps))
    i = np.arange(1, m + 1)
    f_v = binom.sf(v - 1, r, q)
    f_shift = binom.sf(v - i - 1, r, q)  # P[W >= v - i] (= 1 once v - i <= 0)
    alpha = float(np.max((f_shift - f_v) / i))
    return min(1.0, float(f_v) + 2.0 * m * delta * alpha)


def brute_force_eps(m: int, r: int, v: int, delta: float, significance: float) -> float:
    """Largest eps on a 1e-4 grid whose p-value is below ``significance`` (coarse scan on a
    0.01 grid, then a fine scan of the last cell), with the p-value above."""
    coarse = np.arange(0.0, 15.0, 0.01)
    ok = [e for e in coarse if plain_p_value(m, r, v, e, delta) < significance]
    if not ok:
        return 0.0
    top = max(ok)
    fine = np.arange(top, top + 0.01 + 1e-12, 1e-4)
    return float(max(e for e in fine if plain_p_value(m, r, v, e, delta) < significance))


@pytest.mark.parametrize("r", [1, 10, 50, 100, 1000])
@pytest.mark.parametrize("significance", [0.05, 0.01])
def test_all_correct_equals_closed_form(r: int, significance: float) -> None:
    """Closed form: with delta = 0 and v = r the p-value is q^r, so eps_LB = ln(q / (1 - q))
    with q = significance^(1/r). A wrong q (e.g. 1/(1+e^eps) swapped, or e^eps) fails this."""
    q = significance ** (1.0 / r)
    expected = math.log(q / (1.0 - q))
    assert epsilon_lower_bound(1000, r, r, 0.0, significance) == pytest.approx(
        max(expected, 0.0), abs=1e-5)


@pytest.mark.parametrize("m,r,v,delta", [
    (1000, 100, 90, 0.0), (1000, 100, 90, 1e-5), (1000, 500, 400, 1e-5), (200, 50, 40, 1e-3),
    (1000, 1000, 700, 1e-6), (5000, 200, 190, 1e-5), (1000, 100, 100, 1e-4),
])
def test_bound_equals_brute_force_second_computation(m, r, v, delta) -> None:
    """Second computation: the test's own p-value (written as the theorem states it, i over the
    whole 1..m, scipy's binomial survival function) scanned over an eps grid. Catches an
    off-by-one in v (sf(v) instead of sf(v-1)), a missing or wrongly scaled 2 m delta alpha
    term, or an alpha window that is not divided by i."""
    ours = epsilon_lower_bound(m, r, v, delta, 0.05)
    assert ours == pytest.approx(brute_force_eps(m, r, v, delta, 0.05), abs=2e-4)
    assert ours > 0.5  # these cases all carry evidence, so the comparison is not 0 == 0


def test_p_value_matches_plain_formula_pointwise() -> None:
    """Second computation, point by point, including delta > 0 where the alpha term matters."""
    for m, r, v, eps, delta in [(1000, 100, 80, 1.0, 1e-4), (300, 300, 250, 2.5, 1e-3),
                                (50, 20, 11, 0.1, 0.01), (1000, 10, 10, 4.0, 1e-5)]:
        assert p_value(m, r, v, eps, delta) == pytest.approx(
            plain_p_value(m, r, v, eps, delta), rel=1e-9, abs=1e-15)


def test_bound_is_the_boundary_of_rejection() -> None:
    """Definition: at eps_LB the claim is rejected (p < significance), a hair above it is not."""
    for m, r, v, delta in [(1000, 200, 170, 1e-5), (500, 60, 55, 0.0)]:
        eps = epsilon_lower_bound(m, r, v, delta, 0.05)
        assert plain_p_value(m, r, v, eps, delta) < 0.05 <= plain_p_value(m, r, v, eps + 1e-3,
                                                                          delta)


def test_monotone_in_correct_guesses_and_delta() -> None:
    """More correct guesses never lower the bound, and it is 0 at chance accuracy; a larger
    delta (a weaker claim) never raises it."""
    bounds = [epsilon_lower_bound(1000, 200, v, 1e-5, 0.05) for v in range(90, 201)]
    assert all(b2 >= b1 - 1e-9 for b1, b2 in zip(bounds, bounds[1:]))
    assert bounds[0] == 0.0 and bounds[-1] > 3.0
    assert epsilon_lower_bound(1000, 200, 100, 0.0, 0.05) == 0.0
    by_delta = [epsilon_lower_bound(1000, 200, 190, d, 0.05) for d in (0.0, 1e-6, 1e-5, 1e-4)]
    assert all(b2 <= b1 + 1e-9 for b1, b2 in zip(by_delta, by_delta[1:])) and by_delta[0] > \
        by_delta[-1]


def test_guesses_top_and_bottom_and_abstain() -> None:
    """Hand-made case: +1 for the k+ highest, -1 for the k- lowest, 0 for the rest and for
    non-finite scores; stable tie-break by position."""
    scores = [0.5, 3.0, -1.0, np.nan, 2.0, -4.0, 2.0]
    assert guesses(scores, 2, 1).tolist() == [0, 1, 0, 0, 0, -1, 1]
    assert guesses(scores, 0, 2).tolist() == [0, 0, -1, 0, 0, -1, 0]
    with pytest.raises(ValueError):
        guesses(scores, 4, 3)  # only 6 finite scores


def test_bonferroni_over_candidates() -> None:
    """The reported bound is the best candidate's bound at significance / K (K candidates),
    recomputed here with the brute-force p-value; one candidate alone would claim more."""
    rng = np.random.default_rng(3)
    included = rng.random(400) < 0.5
    scores = np.where(included, 1.0, 0.0) + rng.normal(0, 0.6, 400)
    out = audit_scores(scores, included, delta=1e-5, confidence=0.95)
    k = len(default_candidates(400))
    assert len(out.candidates) == k and out.significance_per_candidate == pytest.approx(0.05 / k)
    best = max(out.candidates, key=lambda c: c.epsilon_lb)
    g = out.guesses
    assert best.r == np.count_nonzero(g)
    assert best.v == int(np.sum((g == 1) & included) + np.sum((g == -1) & ~included))
    assert out.epsilon_lb == pytest.approx(
        brute_force_eps(400, best.r, best.v, 1e-5, 0.05 / k), abs=2e-4)
    alone = audit_scores(scores, included, 1e-5, 0.95, [(best.k_plus, best.k_minus)])
    assert alone.epsilon_lb > out.epsilon_lb


def _randomized_response(eps: float, m: int, rng: np.random.Generator):
    """A mechanism whose true privacy is exactly eps: it reveals each canary's bit, flipped with
    probability 1/(1+e^eps) (randomized response), plus tiny jitter to break ties."""
    included = rng.random(m) < 0.5
    flip = rng.random(m) < 1.0 / (1.0 + math.exp(eps))
    bits = np.where(flip, ~included, included).astype(float)
    return included, bits + rng.normal(0, 1e-6, m)


def test_validity_and_power_on_a_mechanism_of_known_epsilon() -> None:
    """Simulation of randomized response with true eps = 2 (1000 canaries, 60 runs): the 95 %
    bound never exceeds 2 by more than the 5 % the theory allows (here: at most 6 of 60), and it
    has power: the median bound is above 1. An audit that forgets Bonferroni or the binomial
    tail overshoots; one with the wrong q direction has no power."""
    rng = np.random.default_rng(11)
    bounds = []
    for _ in range(60):
        included, scores = _randomized_response(2.0, 1000, rng)
        bounds.append(audit_scores(scores, included, delta=0.0, confidence=0.95).epsilon_lb)
    bounds = np.array(bounds)
    assert np.sum(bounds > 2.0) <= 6
    assert np.median(bounds) > 1.0
