"""The statistics of a one-run privacy audit (Steinke, Nasr & Jagielski, NeurIPS 2023).

The game: ``m`` canaries are each put into the training set independently with probability 1/2
(the secret ``S``). After training, an auditor who sees only the model guesses "in" (+1), "out"
(-1) or abstains (0) for each canary, making ``r`` guesses of which ``v`` are correct. If the
training algorithm is (epsilon, delta)-DP, the paper's main theorem (Theorem 3.1 of
arXiv:2305.08846, "Privacy Auditing with One (1) Training Run") bounds, for every ``v``,

    P[W >= v] <= f(v) + 2 m delta alpha,    f(v) = P[Binomial(r, q) >= v],
    q = e^eps / (1 + e^eps),                alpha = max_{1<=i<=v} (f(v - i) - f(v)) / i,

where ``W`` is the number of correct guesses (``f(v-i) - f(v) = P[v - i <= Binomial < v]``; for
``i > v`` the ratio only shrinks, so the maximum over ``1..m`` is reached by ``i <= v``). That
right-hand side is a p-value for the null hypothesis "the algorithm is (eps, delta)-DP"; the
lower bound eps_LB at confidence 1 - a is the largest eps whose p-value is still below a: at
every smaller eps the claim is rejected. With delta = 0 and every guess right (v = r) the p-value
is q^r, so eps_LB = ln(q / (1 - q)) with q = a^(1/r): the tests check that closed form.

Choosing (k+, k-) after looking at the scores would overstate the evidence, so
:func:`audit_scores` tests every candidate pair at a / K (Bonferroni over the K candidates) and
reports the largest bound: the chance that any candidate rejects a true claim is at most a.

Pure functions (numpy; scipy inside the functions), no torch: usable on scores from anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


def p_value(m: int, r: int, v: int, eps: float, delta: float = 0.0) -> float:
    """Probability of ``v`` or more correct guesses out of ``r`` (``m`` canaries) if the training
    algorithm were (eps, delta)-DP: ``f(v) + 2 m delta alpha`` of the paper's Theorem 3.1."""
    from scipy.stats import binom

    _check_counts(m, r, v)
    if eps < 0 or not 0.0 <= delta <= 1.0:
        raise ValueError(f"need eps >= 0 and 0 <= delta <= 1, got eps={eps}, delta={delta}")
    if v == 0:
        return 1.0
    q = 1.0 / (1.0 + math.exp(-eps))
    beta = float(binom.sf(v - 1, r, q))
    if delta == 0.0:
        return min(1.0, beta)
    below = binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[W' = v-1], P[W' = v-2], ..., P[W' = 0]
    window = np.cumsum(below)  # window[i-1] = P[v - i <= W' < v]
    alpha = float(np.max(window / np.arange(1, v + 1)))
    return min(1.0, beta + 2.0 * m * delta * alpha)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float = 0.0, significance: float = 0.05,
                        tol: float = 1e-7) -> float:
    """The largest eps (to ``tol``) whose p-value stays below ``significance``; 0 when even eps=0
    is not rejected. Bisection on eps, as the paper's numerical procedure does."""
    if not 0.0 < significance < 1.0:
        raise ValueError(f"significance must be in (0, 1), got {significance}")
    if p_value(m, r, v, 0.0, delta) >= significance:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < significance:
        lo, hi = hi, 2.0 * hi
        if hi > 1e4:  # cannot happen for finite counts; guard against a silent endless loop
            raise ArithmeticError("epsilon lower bound did not converge")
    while hi - lo > tol:
        mid = (lo + hi) / 2.0
        if p_value(m, r, v, mid, delta) < significance:
            lo = mid
        else:
            hi = mid
    return lo


def _check_counts(m: int, r: int, v: int) -> None:
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got m={m}, r={r}, v={v}")


def guesses(scores: Sequence[float], k_plus: int, k_minus: int) -> np.ndarray:
    """+1 for the ``k_plus`` highest scores, -1 for the ``k_minus`` lowest, 0 otherwise.

    Non-finite scores are never guessed. Ties are broken by position (a stable sort); positions
    are independent of the secret, so the tie-break cannot leak it.
    """
    s = np.asarray(scores, dtype=float)
    finite = np.flatnonzero(np.isfinite(s))
    if k_plus < 0 or k_minus < 0 or k_plus + k_minus > len(finite):
        raise ValueError(f"need k+ + k- <= {len(finite)} scored canaries, got {k_plus}+{k_minus}")
    order = finite[np.argsort(s[finite], kind="stable")]
    out = np.zeros(len(s), dtype=int)
    if k_minus:
        out[order[:k_minus]] = -1
    if k_plus:
        out[order[len(order) - k_plus:]] = 1
    return out


def default_candidates(n_scored: int, fractions: Sequence[float] = (0.01, 0.02, 0.05, 0.1, 0.2,
                                                                     0.3, 0.5),
                       ) -> list[tuple[int, int]]:
    """(k+, k-) pairs: k = fraction x scored canaries, guessing only "in" (k, 0) or both (k, k)."""
    ks = sorted({max(1, int(round(f * n_scored))) for f in fractions})
    pairs = [(k, 0) for k in ks if k <= n_scored] + [(k, k) for k in ks if 2 * k <= n_scored]
    return sorted(set(pairs))


@dataclass
class CandidateResult:
    """One (k+, k-) choice: its guesses' counts and its bound at the corrected level."""

    k_plus: int
    k_minus: int
    r: int
    v: int
    epsilon_lb: float


@dataclass
class AuditOutcome:
    """The audit's answer: the best candidate's bound and counts, and every candidate tried."""

    m: int
    delta: float
    confidence: float
    significance_per_candidate: float
    epsilon_lb: float
    best: CandidateResult
    guesses: np.ndarray
    candidates: list[CandidateResult] = field(default_factory=list)


def audit_scores(scores: Sequence[float], included: Sequence[bool], delta: float,
                 confidence: float = 0.95,
                 candidates: Sequence[tuple[int, int]] | None = None) -> AuditOutcome:
    """Guess membership from ``scores`` (higher = more likely included) for every candidate
    (k+, k-), count correct guesses against ``included``, and bound epsilon at ``confidence``
    with a Bonferroni correction over the candidates. ``m`` is every canary, scored or not."""
    s = np.asarray(scores, dtype=float)
    truth = np.asarray(included, dtype=bool)
    if s.shape != truth.shape or s.ndim != 1 or len(s) == 0:
        raise ValueError("scores and included must be non-empty and of equal length")
    n_scored = int(np.isfinite(s).sum())
    pairs = list(candidates) if candidates else default_candidates(n_scored)
    pairs = [(int(a), int(b)) for a, b in pairs if 0 < a + b <= n_scored]
    if not pairs:
        raise ValueError(f"no (k+, k-) candidate fits the {n_scored} scored canaries")
    level = (1.0 - confidence) / len(pairs)
    results, best_guess, best = [], None, None
    for k_plus, k_minus in pairs:
        g = guesses(s, k_plus, k_minus)
        r = int(np.count_nonzero(g))
        v = int(np.sum((g == 1) & truth) + np.sum((g == -1) & ~truth))
        res = CandidateResult(k_plus, k_minus, r, v,
                              epsilon_lower_bound(len(s), r, v, delta, level))
        results.append(res)
        if best is None or res.epsilon_lb > best.epsilon_lb:
            best, best_guess = res, g
    assert best is not None and best_guess is not None
    return AuditOutcome(m=len(s), delta=delta, confidence=confidence,
                        significance_per_candidate=level, epsilon_lb=best.epsilon_lb, best=best,
                        guesses=best_guess, candidates=results)
