#!/usr/bin/env python
"""Benchmark: bootstrap CIs of group-fairness metrics, audit vs fairlearn MetricFrame(n_boot).

Setup (same data for both): 50,000 rows, two sensitive columns giving 4 x 5 = 20 intersectional
groups, 8 metrics (selection rate, accuracy, TPR, FPR, FNR, precision per group, plus demographic
parity difference and equalized odds difference between groups).

- audit: ``compute_table`` with B resamples (default 10,000): all replicates drawn at once as a
  multinomial over the 20 x 4 confusion-count cells.
- fairlearn: ``MetricFrame(metrics=6 functions, n_boot=K, ci_quantiles=[0.025, 0.975])``, which
  also yields the two between-group CIs (``difference_ci``). It resamples rows and recomputes
  every metric per resample, so it runs fewer resamples (default K = 20) and is compared per
  resample: its marginal cost per resample is (time with K resamples - time without) / K.

Prints both times, the per-resample costs and their ratio. Usage:
    python scripts/bench_bootstrap.py [--rows 50000] [--boot 10000] [--fl-boot 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_data(rows: int, seed: int):
    """Synthetic predictions with 20 intersectional groups of unequal size and rates."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    a = rng.choice(list("ABCD"), rows, p=[0.4, 0.3, 0.2, 0.1])
    b = rng.choice(list("vwxyz"), rows, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    base = 0.2 + 0.1 * (np.searchsorted(list("ABCD"), a)) / 3
    y = rng.random(rows) < base
    y_pred = np.where(y, rng.random(rows) < 0.75, rng.random(rows) < 0.15)
    return pd.DataFrame({"y_true": y.astype(int), "y_pred": y_pred.astype(int), "a": a, "b": b})


def run_audit(frame, n_boot: int, seed: int) -> float:
    """Seconds for audit's point estimates + n_boot-replicate CIs of the 8 metrics."""
    from audit.checks.fairness.data import group_codes
    from audit.checks.fairness.groups import GroupData, compute_table

    start = time.perf_counter()
    codes, names = group_codes(frame, ["a", "b"])
    data = GroupData(names, codes, frame.y_true.to_numpy() == 1, frame.y_pred.to_numpy() == 1)
    table = compute_table(data, np.random.default_rng(seed), n_boot=n_boot)
    elapsed = time.perf_counter() - start
    assert len(names) == 20 and table.by_group_ci["tpr"].shape == (20, 2)
    assert "equalized_odds_difference" in table.between_ci
    return elapsed


def run_fairlearn(frame, n_boot: int | None, seed: int) -> float:
    """Seconds for fairlearn's MetricFrame with 6 metrics (+ difference CIs when bootstrapping)."""
    import warnings

    import fairlearn.metrics as flm
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score, precision_score

    metrics = {"selection_rate": flm.selection_rate, "accuracy": accuracy_score,
               "tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate,
               "fnr": flm.false_negative_rate,
               "precision": lambda t, p: precision_score(t, p, zero_division=0)}
    kwargs = {"n_boot": n_boot, "ci_quantiles": [0.025, 0.975], "random_state": seed} \
        if n_boot else {}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = MetricFrame(metrics=metrics, y_true=frame.y_true, y_pred=frame.y_pred,
                         sensitive_features=frame[["a", "b"]], **kwargs)
        if n_boot:
            mf.difference_ci()
    return time.perf_counter() - start


def main() -> None:
    """Run both, print times and the per-resample ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--boot", type=int, default=10_000)
    parser.add_argument("--fl-boot", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = make_data(args.rows, args.seed)
    run_audit(frame, 10, args.seed)  # warm-up (imports)
    ours = run_audit(frame, args.boot, args.seed)
    fl_base = run_fairlearn(frame, None, args.seed)
    fl_boot = run_fairlearn(frame, args.fl_boot, args.seed)
    ours_per = ours / args.boot
    fl_per = max(fl_boot - fl_base, 1e-9) / args.fl_boot
    print(f"data: {args.rows} rows, 20 intersectional groups, 8 metrics")
    print(f"audit     : {args.boot:>6} resamples in {ours:8.3f} s  ({ours_per * 1e6:9.1f} us/resample)")
    print(f"fairlearn : {args.fl_boot:>6} resamples in {fl_boot:8.3f} s  (without bootstrap "
          f"{fl_base:.3f} s; {fl_per * 1e6:9.1f} us/resample)")
    print(f"fairlearn would need {fl_per * args.boot:.1f} s for {args.boot} resamples")
    print(f"speed-up per resample: {fl_per / ours_per:.0f}x (target >= 30x)")


if __name__ == "__main__":
    main()
