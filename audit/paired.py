"""Paired tests of two runs on the same items (pure functions, numpy/scipy only).

Comparing a baseline with a candidate on the same items is far more sensitive than comparing two
confidence intervals: the item-to-item variation that dominates each interval cancels in the
paired differences. For binary per-item outcomes (a pair won, a prompt refused) the exact
McNemar test uses only the discordant items: under "no change" each discordant item is equally
likely to have flipped either way, so the count flipping one way is Binomial(b + c, 1/2)
(McNemar 1947; the exact form as in Fagerland, Lydersen & Laake 2013). For continuous values a
paired percentile bootstrap resamples items and reports the interval of the mean difference and
a two-sided p-value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class PairedResult:
    """The outcome of one paired comparison of a metric."""

    test: str
    n_pairs: int
    base: float
    new: float
    delta: float
    p_value: float
    ci_low: float | None = None
    ci_high: float | None = None
    discordant: dict[str, int] = field(default_factory=dict)
    discordant_ids: list[str] = field(default_factory=list)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` (1 -> 0) and ``c``
    (0 -> 1): ``P(X <= min(b, c)) * 2`` for X ~ Binomial(b + c, 1/2), capped at 1; 1 when there
    is no discordant item."""
    from scipy.stats import binom

    n = b + c
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * binom.cdf(min(b, c), n, 0.5)))


def paired_bootstrap(diff: np.ndarray, rng: np.random.Generator, n_boot: int = 2000,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Percentile interval of the mean of paired differences and a two-sided bootstrap p-value
    (twice the smaller share of replicate means on either side of 0, capped at 1)."""
    d = np.asarray(diff, dtype=float)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    below, above = float((means <= 0).mean()), float((means >= 0).mean())
    p = 1.0 if np.allclose(d, 0) else min(1.0, 2 * min(below, above))
    return float(low), float(high), p


def pair_values(base: dict[str, float], new: dict[str, float]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The ids both runs scored (sorted) and their values in each run."""
    ids = sorted(set(base) & set(new))
    return ids, np.array([base[i] for i in ids]), np.array([new[i] for i in ids])


def compare_paired(metric: Any, base_items: list[dict[str, Any]], new_items: list[dict[str, Any]],
                   rng: np.random.Generator, max_ids: int = 20) -> PairedResult | None:
    """Paired comparison of one ``audit.items.ItemMetric`` between two runs' items (None when
    the metric cannot be paired or fewer than two items are shared)."""
    if not metric.pairable:
        return None
    ids, a, b = pair_values(metric.values(base_items), metric.values(new_items))
    if len(ids) < 2:
        return None
    scale = metric.scale
    if metric.kind == "binary":
        worse = (a > 0.5) & (b <= 0.5)
        better = (a <= 0.5) & (b > 0.5)
        changed = [i for i, w, g in zip(ids, worse, better) if w or g]
        return PairedResult("mcnemar-exact", len(ids), scale * a.mean(), scale * b.mean(),
                            scale * (b.mean() - a.mean()),
                            mcnemar_exact(int(worse.sum()), int(better.sum())),
                            discordant={"1->0": int(worse.sum()), "0->1": int(better.sum())},
                            discordant_ids=changed[:max_ids])
    low, high, p = paired_bootstrap(b - a, rng)
    order = np.argsort(-np.abs(b - a))[:max_ids]
    return PairedResult("paired-bootstrap", len(ids), scale * a.mean(), scale * b.mean(),
                        scale * (b.mean() - a.mean()), p, scale * low, scale * high,
                        discordant_ids=[ids[i] for i in order if b[i] != a[i]])
