"""Pure group-fairness arithmetic: confusion counts, rates, gaps, AUC, ECE and their bootstrap.

Nothing here knows about models, files or results; every function takes numpy arrays and returns
numpy arrays, so the same code computes a point estimate (shape ``[G]``) and all bootstrap
replicates at once (shape ``[B, G]``).

Confusion cells are ordered ``(tp, fp, fn, tn)``. Rates use fairlearn's definitions (selection
rate = predicted-positive share, TPR = recall, FPR, FNR, precision = PPV, accuracy); a rate whose
denominator is zero is NaN (undefined), never 0.

Bootstrap of confusion-count metrics: a percentile bootstrap that resamples rows is, for any
statistic of the per-group confusion counts, the same as drawing the ``G x 4`` count table from a
multinomial with the observed cell shares (``mode="rows"``: one multinomial over all cells, so group
sizes vary as they do when rows are resampled, as in fairlearn's ``MetricFrame(n_boot=...)``;
``mode="stratified"``: one multinomial per group, group sizes fixed). All replicates are drawn in
one call, so the cost depends on the number of cells, not of rows. AUC and ECE need the rows
themselves: they take a matrix of resampling weights (how often each row was drawn in each
replicate), shared by both metrics and all groups.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

CELLS = ("tp", "fp", "fn", "tn")
RATE_NAMES = ("selection_rate", "accuracy", "tpr", "fpr", "fnr", "precision")


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise, NaN where ``den == 0``."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray,
                     n_groups: int) -> np.ndarray:
    """Per-group confusion counts ``[G, 4]`` (tp, fp, fn, tn) of boolean labels/predictions."""
    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    cell = np.where(t, np.where(p, 0, 2), np.where(p, 1, 3))
    flat = np.asarray(codes, dtype=np.int64) * 4 + cell
    return np.bincount(flat, minlength=n_groups * 4).reshape(n_groups, 4)


def rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """The six confusion rates (and ``count``) of a count table ``[..., 4]``, shape ``[...]``."""
    c = np.asarray(counts, dtype=float)
    tp, fp, fn, tn = c[..., 0], c[..., 1], c[..., 2], c[..., 3]
    n = tp + fp + fn + tn
    return {
        "count": n,
        "selection_rate": _div(tp + fp, n),
        "accuracy": _div(tp + tn, n),
        "tpr": _div(tp, tp + fn),
        "fpr": _div(fp, fp + tn),
        "fnr": _div(fn, tp + fn),
        "precision": _div(tp, tp + fp),
    }


def _two_defined(ok: np.ndarray) -> np.ndarray:
    """True where at least two groups are defined: a comparison between groups needs two."""
    return ok.sum(axis=-1) >= 2


def gap(values: np.ndarray) -> np.ndarray:
    """Max minus min over the last axis (groups), NaN groups ignored; NaN (undefined, not 0)
    unless at least two groups are defined."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    hi = np.where(ok, v, -np.inf).max(axis=-1)
    lo = np.where(ok, v, np.inf).min(axis=-1)
    return np.where(_two_defined(ok), hi - lo, np.nan)


def ratio(values: np.ndarray) -> np.ndarray:
    """Min over max over the last axis, NaN groups ignored; NaN (undefined) when the max is 0
    or fewer than two groups are defined."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    hi = np.where(ok, v, -np.inf).max(axis=-1)
    lo = np.where(ok, v, np.inf).min(axis=-1)
    two = _two_defined(ok)
    return _div(np.where(two, lo, np.nan), np.where(two, hi, 0.0))


def between_group(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fairlearn's between-group metrics from per-group rates (last axis = groups).

    ``equalized_odds_difference`` is fairlearn's ``agg="worst_case"``: the larger of the TPR and
    FPR gaps. ``four_fifths_violation`` is 1 when the selection-rate ratio is below 0.8 (NaN when
    the ratio is undefined).
    """
    dp_ratio = ratio(table["selection_rate"])
    return {
        "demographic_parity_difference": gap(table["selection_rate"]),
        "demographic_parity_ratio": dp_ratio,
        "equalized_odds_difference": np.fmax(gap(table["tpr"]), gap(table["fpr"])),
        "equal_opportunity_difference": gap(table["tpr"]),
        "predictive_parity_difference": gap(table["precision"]),
        "four_fifths_violation": np.where(np.isfinite(dp_ratio),
                                          (dp_ratio < 0.8).astype(float), np.nan),
    }


def bootstrap_counts(counts: np.ndarray, rng: np.random.Generator, n_boot: int,
                     mode: str = "rows") -> np.ndarray:
    """``n_boot`` bootstrap replicates ``[B, G, 4]`` of a count table ``[G, 4]``, drawn at once.

    ``rows``: one multinomial over all ``G*4`` cells with the total count (the law of the counts
    when rows are resampled with replacement). ``stratified``: one multinomial per group.
    """
    c = np.asarray(counts, dtype=np.int64)
    total = int(c.sum())
    if total == 0:
        return np.zeros((n_boot, *c.shape), dtype=np.int64)
    if mode == "rows":
        return rng.multinomial(total, c.ravel() / total, size=n_boot).reshape(n_boot, *c.shape)
    out = np.zeros((n_boot, *c.shape), dtype=np.int64)
    for g, row in enumerate(c):
        if row.sum() > 0:
            out[:, g] = rng.multinomial(int(row.sum()), row / row.sum(), size=n_boot)
    return out


def weighted_auc(y_true: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None
                 ) -> np.ndarray:
    """ROC AUC (Mann-Whitney, ties count 1/2) under row weights ``[B, n]``; returns ``[B]``.

    With ``weights=None`` every row counts once (returns shape ``[1]``). Equals scikit-learn's
    ``roc_auc_score``; NaN when a replicate has no positive or no negative row. For each positive
    row the negatives below and tied with it are found once (``searchsorted``); each replicate
    then needs one cumulative sum of negative weights and one gather.
    """
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(score, dtype=float)
    w = np.ones((1, y.size)) if weights is None else np.asarray(weights, dtype=float)
    pos_idx, neg_idx = np.flatnonzero(y), np.flatnonzero(~y)
    if pos_idx.size == 0 or neg_idx.size == 0:
        return np.full(w.shape[0], np.nan)
    neg_idx = neg_idx[np.argsort(s[neg_idx], kind="mergesort")]
    neg_sorted, pos_s = s[neg_idx], s[pos_idx]
    lo = np.searchsorted(neg_sorted, pos_s, side="left")
    hi = np.searchsorted(neg_sorted, pos_s, side="right")
    wn, wp = w[:, neg_idx], w[:, pos_idx]
    cum = np.zeros((w.shape[0], neg_idx.size + 1))
    np.cumsum(wn, axis=1, out=cum[:, 1:])
    below, upto = cum[:, lo], cum[:, hi]
    num = (wp * (below + upto)).sum(axis=1) * 0.5
    return _div(num, wp.sum(axis=1) * cum[:, -1])


def ece_bins(prob: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each probability: bin k holds ``[k/M, (k+1)/M)``, the last includes 1."""
    p = np.asarray(prob, dtype=float)
    return np.minimum((p * n_bins).astype(np.int64), n_bins - 1)


def weighted_ece(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10,
                 weights: np.ndarray | None = None) -> np.ndarray:
    """Expected calibration error under row weights ``[B, n]``; returns ``[B]``.

    ECE = sum over bins of (n_b / n) * |mean(y) - mean(p)| in the bin (Naeini et al. 2015; Guo et
    al. 2017), which equals sum over bins of |sum(y - p)| / n.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(prob, dtype=float)
    w = np.ones((1, y.size)) if weights is None else np.asarray(weights, dtype=float)
    bins = ece_bins(p, n_bins)
    per_bin = np.zeros((y.size, n_bins))
    per_bin[np.arange(y.size), bins] = y - p
    total = np.abs(w @ per_bin).sum(axis=1)
    return _div(total, w.sum(axis=1))


def resample_weights(rng: np.random.Generator, n_boot: int, codes: np.ndarray,
                     mode: str = "rows", max_cells: int = 20_000_000
                     ) -> Iterator[np.ndarray]:
    """Yield blocks of bootstrap row weights ``[b, n]`` (row draw counts), ``n_boot`` rows in all.

    Each block comes from an index matrix ``rng.integers(0, n, (b, n))`` (``rows``) or one per
    group (``stratified``), turned into counts; blocks keep memory under ``max_cells``.
    """
    codes = np.asarray(codes)
    n = codes.size
    block = max(1, min(n_boot, max_cells // max(n, 1)))
    members = [np.flatnonzero(codes == g) for g in np.unique(codes)] if mode != "rows" else None
    done = 0
    while done < n_boot:
        b = min(block, n_boot - done)
        offsets = (np.arange(b) * n)[:, None]
        if members is None:
            idx = rng.integers(0, n, size=(b, n))
            idx += offsets
            weights = np.bincount(idx.ravel(), minlength=b * n)
        else:
            weights = np.zeros(b * n, dtype=np.int64)
            for rows in members:
                idx = rows[rng.integers(0, rows.size, size=(b, rows.size))] + offsets
                weights += np.bincount(idx.ravel(), minlength=b * n)
        done += b
        yield weights.reshape(b, n)
