"""Group fairness table: per-group and between-group metrics with bootstrap CIs (pure numpy).

``compute_table(data, ...)`` is what the ``group_fairness`` check reports, before it is turned
into ``Metric`` objects. Point estimates and replicates go through the same functions of
``audit.checks.fairness.metrics``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from audit.checks.fairness import metrics as fm

# per-group metric -> between-group metric that is its max-min gap (when it has its own name)
GAP_NAMES = {
    "selection_rate": "demographic_parity_difference",
    "tpr": "equal_opportunity_difference",
    "precision": "predictive_parity_difference",
}


@dataclass
class GroupData:
    """Rows of one audit: group code per row, boolean labels and predictions, optional scores."""

    group_names: list[str]
    codes: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    score: np.ndarray | None = None
    score_is_probability: bool = True

    @property
    def n_groups(self) -> int:
        """Number of groups (some may be empty after filtering)."""
        return len(self.group_names)


@dataclass
class FairnessTable:
    """Point estimates and CIs: ``overall[m]``, ``by_group[m]`` ([G]), ``between[m]``.

    ``*_ci`` hold ``(low, high)`` pairs with the same shapes plus a trailing axis of 2; NaN means
    undefined (e.g. TPR of a group without positives).
    """

    overall: dict[str, float] = field(default_factory=dict)
    by_group: dict[str, np.ndarray] = field(default_factory=dict)
    between: dict[str, float] = field(default_factory=dict)
    overall_ci: dict[str, np.ndarray] = field(default_factory=dict)
    by_group_ci: dict[str, np.ndarray] = field(default_factory=dict)
    between_ci: dict[str, np.ndarray] = field(default_factory=dict)
    n_boot: int = 0
    level: float = 0.95


def per_group(data: GroupData, counts: np.ndarray, n_bins: int = 10
              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-group ``[G]`` and overall scalar metrics: confusion rates plus AUC/ECE when scored."""
    groups, overall = fm.rates(counts), fm.rates(counts.sum(axis=-2))
    score_groups, score_overall = score_metrics(data, None, n_bins)
    groups.update({k: v[0] for k, v in score_groups.items()})
    overall.update({k: v[0] for k, v in score_overall.items()})
    return groups, overall


def score_metrics(data: GroupData, weights: np.ndarray | None, n_bins: int = 10
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """AUC (and ECE for probabilities) per group ``[B, G]`` and overall ``[B]`` under row weights.

    ``weights`` ``[B, n]`` are bootstrap draw counts; None counts each row once (B = 1). Empty
    dicts when the data has no scores.
    """
    if data.score is None:
        return {}, {}
    fns = {"auc": lambda y, s, w: fm.weighted_auc(y, s, w)}
    if data.score_is_probability:
        fns["ece"] = lambda y, s, w: fm.weighted_ece(y, s, n_bins, w)
    cols = [data.codes == g for g in range(data.n_groups)]
    groups, overall = {}, {}
    for name, fn in fns.items():
        per = [fn(data.y_true[c], data.score[c], None if weights is None else weights[:, c])
               for c in cols]
        groups[name] = np.stack(per, axis=-1)
        overall[name] = fn(data.y_true, data.score, weights)
    return groups, overall


def between(groups: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Between-group metrics over the groups in ``mask`` (all when None): named + ``*_difference``."""
    table = groups if mask is None else {k: v[..., mask] for k, v in groups.items()}
    out = fm.between_group(table)
    for name, values in table.items():
        if name != "count" and name not in GAP_NAMES:
            out[f"{name}_difference"] = fm.gap(values)
    return out


def _ci(reps: np.ndarray, level: float) -> np.ndarray:
    """Percentile interval along axis 0 (NaN replicates ignored); shape ``reps.shape[1:] + (2,)``."""
    alpha = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(np.asarray(reps, dtype=float), [alpha, 1.0 - alpha], axis=0)
    return np.moveaxis(q, 0, -1)


def _score_replicates(data: GroupData, rng: np.random.Generator, n_boot: int, mode: str,
                      n_bins: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """AUC/ECE replicates ``[B, G]`` / ``[B]`` from shared resampling-weight blocks."""
    if data.score is None:
        return {}, {}
    blocks = [score_metrics(data, w, n_bins)
              for w in fm.resample_weights(rng, n_boot, data.codes, mode)]
    groups = {k: np.concatenate([b[0][k] for b in blocks]) for k in blocks[0][0]}
    overall = {k: np.concatenate([b[1][k] for b in blocks]) for k in blocks[0][1]}
    return groups, overall


def compute_table(data: GroupData, rng: np.random.Generator, n_boot: int = 1000,
                  level: float = 0.95, mode: str = "rows", n_bins: int = 10,
                  mask: np.ndarray | None = None) -> FairnessTable:
    """All metrics with percentile-bootstrap CIs (``n_boot`` replicates, seeded by ``rng``)."""
    counts = fm.confusion_counts(data.y_true, data.y_pred, data.codes, data.n_groups)
    groups, overall = per_group(data, counts, n_bins)
    table = FairnessTable(overall={k: float(v) for k, v in overall.items()}, by_group=groups,
                          between={k: float(v) for k, v in between(groups, mask).items()},
                          n_boot=n_boot, level=level)
    if n_boot <= 0:
        return table
    rep_counts = fm.bootstrap_counts(counts, rng, n_boot, mode)
    rep_groups, rep_overall = fm.rates(rep_counts), fm.rates(rep_counts.sum(axis=-2))
    score_groups, score_overall = _score_replicates(data, rng, n_boot, mode, n_bins)
    rep_groups.update(score_groups)
    rep_overall.update(score_overall)
    table.by_group_ci = {k: _ci(v, level) for k, v in rep_groups.items()}
    table.overall_ci = {k: _ci(v, level) for k, v in rep_overall.items()}
    table.between_ci = {k: _ci(v, level) for k, v in between(rep_groups, mask).items()}
    return table
