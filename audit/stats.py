"""Shared statistics: bootstrap and binomial confidence intervals."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from audit.results import ConfidenceInterval


def percentile_ci(replicates: np.ndarray, level: float = 0.95,
                  method: str = "bootstrap-percentile") -> ConfidenceInterval:
    """Percentile interval of bootstrap replicates (NaN replicates ignored; None if all NaN)."""
    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return ConfidenceInterval(low=None, high=None, level=level, method=method)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return ConfidenceInterval(low=float(low), high=float(high), level=level, method=method)


def bootstrap_ci(values: Sequence[float] | np.ndarray, rng: np.random.Generator,
                 statistic: Callable[[np.ndarray], np.ndarray] | None = None,
                 n_boot: int = 1000, level: float = 0.95) -> ConfidenceInterval:
    """Percentile bootstrap CI of ``statistic`` (default: mean) over resampled ``values``.

    All replicates are drawn at once as an index matrix ``[n_boot, n]``; ``statistic`` receives
    the resampled matrix and must reduce along axis 1 (e.g. ``lambda m: m.mean(axis=1)``).
    """
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return ConfidenceInterval(low=None, high=None, level=level)
    stat = statistic or (lambda m: m.mean(axis=1))
    idx = rng.integers(0, data.size, size=(n_boot, data.size))
    return percentile_ci(stat(data[idx]), level)


def wilson_ci(successes: int, n: int, level: float = 0.95) -> ConfidenceInterval:
    """Wilson score interval for a binomial proportion (Wilson 1927)."""
    from scipy.stats import norm

    if n <= 0:
        return ConfidenceInterval(low=None, high=None, level=level, method="wilson")
    z = float(norm.ppf(1 - (1 - level) / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return ConfidenceInterval(low=float(max(0.0, centre - half)), high=float(min(1.0, centre + half)),
                              level=level, method="wilson")
