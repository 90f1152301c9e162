"""Comprehensiveness and sufficiency of token attributions (DeYoung et al. 2020, ERASER).

For a text ``x`` split into segments (tokens with their leading whitespace), a predicted class
``c`` and attribution scores, the top-k% segments by score form the rationale ``r_k``:

- comprehensiveness_k = p_c(x) - p_c(x without r_k)   (high: the rationale was needed)
- sufficiency_k       = p_c(x) - p_c(r_k alone)       (low: the rationale alone suffices)

Both are averaged over the bins k (AOPC, area over the perturbation curve). Pure functions; the
model is called by the check on every perturbed text at once.
"""

from __future__ import annotations

import math
import re

import numpy as np

DEFAULT_FRACTIONS = (0.01, 0.05, 0.10, 0.20, 0.50)


def topk_counts(n_tokens: int, fractions: tuple[float, ...] | list[float]) -> list[int]:
    """Number of segments in each top-k% rationale: ``ceil(f * n)``, at least 1, at most n."""
    return [min(n_tokens, max(1, math.ceil(f * n_tokens))) for f in fractions]


def ranking(scores: np.ndarray) -> np.ndarray:
    """Segment indices from the highest to the lowest score (ties keep text order)."""
    return np.argsort(-np.asarray(scores, dtype=float), kind="stable")


def join_segments(segments: list[str], keep: np.ndarray) -> str:
    """Concatenate the kept segments in text order and normalise whitespace."""
    text = "".join(s for s, k in zip(segments, keep) if k)
    return re.sub(r"\s+", " ", text).strip()


def perturbations(segments: list[str], scores: np.ndarray,
                  fractions: tuple[float, ...] | list[float]) -> list[tuple[str, str]]:
    """For each bin, ``(text without the top-k segments, text of the top-k segments only)``."""
    order = ranking(scores)
    pairs = []
    for k in topk_counts(len(segments), fractions):
        top = np.zeros(len(segments), dtype=bool)
        top[order[:k]] = True
        pairs.append((join_segments(segments, ~top), join_segments(segments, top)))
    return pairs


def aopc(p_full: float, p_perturbed: np.ndarray) -> float:
    """Mean drop of the predicted-class probability over the bins."""
    return float(np.mean(p_full - np.asarray(p_perturbed, dtype=float)))


def random_scores(n_tokens: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random attributions (the baseline every method must beat)."""
    return rng.random(n_tokens)


def expected_random_comprehensiveness(n_tokens: int, planted: int,
                                      fractions: tuple[float, ...] | list[float],
                                      drop: float) -> float:
    """Expected comprehensiveness of random rankings for a model whose predicted-class
    probability falls by ``drop`` exactly when any of ``planted`` key segments is removed.

    Removing ``k`` of ``n`` segments at random misses all key segments with probability
    ``C(n - planted, k) / C(n, k)`` (hypergeometric); used as an analytic reference in tests.
    """
    values = []
    for k in topk_counts(n_tokens, fractions):
        miss = math.comb(n_tokens - planted, k) / math.comb(n_tokens, k)
        values.append(drop * (1.0 - miss))
    return float(np.mean(values))
