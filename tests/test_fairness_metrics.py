"""group_fairness numbers against independent computations (fairlearn, scikit-learn, hand counts)."""

from __future__ import annotations

import numpy as np
import pytest

from audit.checks.fairness import metrics as fm
from tests.fairness_helpers import adult_frame, metric, run_group_fairness

pytest.importorskip("fairlearn")

JOIN = " × "
PER_GROUP_FL = {  # our name -> fairlearn / scikit-learn function on (y_true, y_pred)
    "selection_rate": "selection_rate", "accuracy": "accuracy", "tpr": "true_positive_rate",
    "fpr": "false_positive_rate", "fnr": "false_negative_rate", "precision": "precision",
    "count": "count",
}


def _fl_functions() -> dict:
    import fairlearn.metrics as flm
    from sklearn.metrics import accuracy_score, precision_score

    return {"selection_rate": flm.selection_rate, "accuracy": accuracy_score,
            "true_positive_rate": flm.true_positive_rate,
            "false_positive_rate": flm.false_positive_rate,
            "false_negative_rate": flm.false_negative_rate, "count": flm.count,
            "precision": lambda t, p: precision_score(t, p, zero_division=np.nan)}


def _key(index_value) -> str:
    return JOIN.join(map(str, index_value)) if isinstance(index_value, tuple) else str(index_value)


@pytest.mark.parametrize("sensitive", [["sex"], ["race"], ["sex", "race"]])
def test_per_group_metrics_equal_fairlearn_metricframe_on_adult(sensitive):
    """Reference: fairlearn.metrics.MetricFrame (by_group and overall) on the Adult demo's
    predictions; AUC per group from MetricFrame with scikit-learn's roc_auc_score on the scores."""
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import roc_auc_score

    df = adult_frame()
    out = run_group_fairness(df, sensitive=sensitive, n_boot=0)
    fns = _fl_functions()
    mf = MetricFrame(metrics={k: fns[v] for k, v in PER_GROUP_FL.items()}, y_true=df.y_true,
                     y_pred=df.y_pred, sensitive_features=df[sensitive])
    auc = MetricFrame(metrics={"auc": roc_auc_score}, y_true=df.y_true, y_pred=df.score,
                      sensitive_features=df[sensitive])
    for name in list(PER_GROUP_FL) + ["auc"]:
        frame = auc if name == "auc" else mf
        ours = metric(out, name)
        assert ours.value == pytest.approx(float(frame.overall[name]), abs=1e-9)
        assert len(ours.by_group) == len(frame.by_group)
        for idx, ref in frame.by_group[name].items():
            assert ours.by_group[_key(idx)].value == pytest.approx(float(ref), abs=1e-9), (name, idx)


@pytest.mark.parametrize("sensitive", [["sex"], ["race"], ["sex", "race"]])
def test_between_group_metrics_equal_fairlearn_named_metrics_on_adult(sensitive):
    """Reference: fairlearn's demographic_parity_difference/ratio, equalized_odds_difference,
    equal_opportunity_difference and MetricFrame(...).difference() for the other gaps."""
    import fairlearn.metrics as flm
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import roc_auc_score

    df = adult_frame()
    out = run_group_fairness(df, sensitive=sensitive, n_boot=0)
    sf = df[sensitive]
    named = {
        "demographic_parity_difference": flm.demographic_parity_difference,
        "demographic_parity_ratio": flm.demographic_parity_ratio,
        "equalized_odds_difference": flm.equalized_odds_difference,
        "equal_opportunity_difference": flm.equal_opportunity_difference,
    }
    for name, fn in named.items():
        ref = fn(df.y_true, df.y_pred, sensitive_features=sf)
        assert metric(out, name).value == pytest.approx(float(ref), abs=1e-9), name
    fns = _fl_functions()
    mf = MetricFrame(metrics={k: fns[v] for k, v in PER_GROUP_FL.items()}, y_true=df.y_true,
                     y_pred=df.y_pred, sensitive_features=sf)
    diff = mf.difference()
    assert metric(out, "predictive_parity_difference").value == pytest.approx(diff["precision"], abs=1e-9)
    for name in ("accuracy", "fpr", "fnr"):
        assert metric(out, f"{name}_difference").value == pytest.approx(diff[name], abs=1e-9)
    auc = MetricFrame(metrics=roc_auc_score, y_true=df.y_true, y_pred=df.score, sensitive_features=sf)
    assert metric(out, "auc_difference").value == pytest.approx(auc.difference(), abs=1e-9)
    ratio = flm.demographic_parity_ratio(df.y_true, df.y_pred, sensitive_features=sf)
    assert metric(out, "four_fifths_violation").value == float(ratio < 0.8)


def _ece_loop(y, p, n_bins=10):
    """Plain-loop ECE written from the definition (Guo et al. 2017, eq. 3)."""
    total = 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        in_bin = (p >= lo) & ((p < hi) if k < n_bins - 1 else (p <= hi))
        if in_bin.any():
            total += in_bin.sum() / len(p) * abs(y[in_bin].mean() - p[in_bin].mean())
    return total


def test_ece_matches_definition_loop_and_hand_case():
    """Reference: a hand computation (two bins) and a plain loop over bins from the definition."""
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.3, 0.8, 0.9])
    # bins of width 0.5: {0.1, 0.3}: acc 0.5, conf 0.2 ; {0.8, 0.9}: acc 1, conf 0.85
    assert fm.weighted_ece(y, p, n_bins=2)[0] == pytest.approx(0.5 * 0.3 + 0.5 * 0.15)
    df = adult_frame()
    out = run_group_fairness(df, sensitive=["sex"], n_boot=0)
    ours = metric(out, "ece")
    assert ours.value == pytest.approx(_ece_loop(df.y_true.to_numpy(), df.score.to_numpy()), abs=1e-12)
    for group, sub in df.groupby("sex"):
        ref = _ece_loop(sub.y_true.to_numpy(), sub.score.to_numpy())
        assert ours.by_group[group].value == pytest.approx(ref, abs=1e-12)


def test_weighted_auc_equals_sklearn_on_resampled_rows_with_ties():
    """Reference: scikit-learn roc_auc_score on the explicitly resampled rows (scores with ties)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.4
    s = np.round(rng.random(300) + 0.3 * y, 1)  # rounding creates ties
    idx = rng.integers(0, 300, size=(5, 300))
    weights = np.stack([np.bincount(i, minlength=300) for i in idx])
    ours = fm.weighted_auc(y, s, weights)
    for b in range(5):
        assert ours[b] == pytest.approx(roc_auc_score(y[idx[b]], s[idx[b]]), abs=1e-12)
    assert fm.weighted_auc(y, s)[0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_confusion_rates_hand_counts():
    """Reference: a 2-group table counted by hand."""
    y_true = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    y_pred = np.array([1, 0, 1, 0, 1, 1, 1, 0])
    codes = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    counts = fm.confusion_counts(y_true, y_pred, codes, 2)
    assert counts.tolist() == [[1, 1, 1, 1], [1, 2, 0, 1]]  # tp, fp, fn, tn
    r = fm.rates(counts)
    assert r["tpr"].tolist() == [0.5, 1.0]
    assert r["fpr"].tolist() == [0.5, 2 / 3]
    assert r["selection_rate"].tolist() == [0.5, 0.75]
    between = fm.between_group(r)
    assert between["demographic_parity_ratio"] == pytest.approx(0.5 / 0.75)
    assert between["equalized_odds_difference"] == pytest.approx(0.5)


def test_bootstrap_counts_rows_mode_matches_row_resampling_moments():
    """Reference: explicit row resampling (index draws) of the same data; the multinomial draw of
    the count table must have the same mean and variance of a group's TPR (law of the counts)."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 2000)
    y_true = rng.random(2000) < 0.3
    y_pred = rng.random(2000) < 0.4
    counts = fm.confusion_counts(y_true, y_pred, codes, 3)
    reps = fm.rates(fm.bootstrap_counts(counts, np.random.default_rng(1), 4000))["tpr"]
    idx = np.random.default_rng(2).integers(0, 2000, size=(4000, 2000))
    direct = np.stack([fm.rates(fm.confusion_counts(y_true[i], y_pred[i], codes[i], 3))["tpr"]
                       for i in idx])
    assert np.allclose(reps.mean(axis=0), direct.mean(axis=0), atol=0.003)
    assert np.allclose(reps.std(axis=0), direct.std(axis=0), rtol=0.08)


def test_same_seed_same_cis_and_different_seed_different_cis():
    """Reference: determinism contract (same seed -> identical results.json numbers)."""
    df = adult_frame()
    a = run_group_fairness(df, sensitive=["sex"], n_boot=200, seed=1)
    b = run_group_fairness(df, sensitive=["sex"], n_boot=200, seed=1)
    c = run_group_fairness(df, sensitive=["sex"], n_boot=200, seed=2)
    dump = lambda o: [m.model_dump() for m in o.metrics]  # noqa: E731
    assert dump(a) == dump(b)
    assert dump(a) != dump(c)


def _assert_same_interval(ours, low: float, high: float, what: str) -> None:
    """Both ends within 30% of the reference half-width (the Monte Carlo noise of a 2.5%
    percentile from 1,000 replicates is about 6% of the half-width per run), and both intervals
    of comparable width. A fixed tolerance such as 0.01 would exceed the half-widths checked
    here (about 0.007 for a selection rate over 5,000 rows), so a zero-width interval at the
    point estimate would have passed it."""
    half = (high - low) / 2
    assert half > 0, what
    assert abs(ours.low - low) <= 0.3 * half, (what, ours.low, low, half)
    assert abs(ours.high - high) <= 0.3 * half, (what, ours.high, high, half)
    assert 0.75 < (ours.high - ours.low) / (high - low) < 1.33, what


@pytest.mark.slow
def test_bootstrap_cis_agree_with_fairlearn_metricframe_n_boot():
    """Reference: fairlearn MetricFrame(n_boot=1000, ci_quantiles=[0.025, 0.975]) on the Adult
    predictions by sex: by-group CIs, overall CIs and the between-group difference CIs agree
    up to Monte Carlo noise (both are percentile bootstraps over resampled rows), measured in
    units of the interval's own half-width."""
    import fairlearn.metrics as flm
    from fairlearn.metrics import MetricFrame

    df = adult_frame()
    fl_metrics = {"selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate,
                  "fpr": flm.false_positive_rate}
    mf = MetricFrame(metrics=fl_metrics, y_true=df.y_true, y_pred=df.y_pred,
                     sensitive_features=df["sex"], n_boot=1000, ci_quantiles=[0.025, 0.975],
                     random_state=0)
    out = run_group_fairness(df, sensitive=["sex"], n_boot=1000)
    low, high = mf.by_group_ci
    o_low, o_high = mf.overall_ci
    for name in fl_metrics:
        ours = metric(out, name)
        for group in ("Female", "Male"):
            _assert_same_interval(ours.by_group[group].ci, low[name][group], high[name][group],
                                  f"{name}[{group}]")
        _assert_same_interval(ours.ci, o_low[name], o_high[name], name)
    d_low, d_high = mf.difference_ci()
    _assert_same_interval(metric(out, "demographic_parity_difference").ci,
                          d_low["selection_rate"], d_high["selection_rate"], "dp difference")
    _assert_same_interval(metric(out, "equal_opportunity_difference").ci,
                          d_low["tpr"], d_high["tpr"], "equal opportunity difference")
