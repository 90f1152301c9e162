"""group_fairness on bad and unusual input, and on each kind of model adapter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.errors import UsageError
from tests.fairness_helpers import make_ctx, metric, run_group_fairness


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b"], n)
    y = rng.random(n) < 0.4
    score = np.clip(0.35 * y + 0.5 * rng.random(n) + 0.1 * (g == "a"), 0, 1)
    return pd.DataFrame({"y_true": y.astype(int), "y_pred": (score >= 0.5).astype(int),
                         "score": score, "g": g, "h": rng.choice(["x", "y"], n)})


def test_missing_column_is_a_one_line_usage_error():
    """Reference: the error contract (one line naming the column and the parameter to set)."""
    with pytest.raises(UsageError) as err:
        run_group_fairness(_frame(), sensitive=["gender"], n_boot=0)
    msg = str(err.value)
    assert "'gender'" in msg and "sensitive" in msg and "\n" not in msg
    with pytest.raises(UsageError, match="y_true"):
        run_group_fairness(_frame().drop(columns="y_true"), sensitive=["g"], n_boot=0)


def test_non_binary_labels_need_the_multiclass_option():
    """Reference: hand-built 3-class table; one-vs-rest TPR of class 'c' counted by hand."""
    df = pd.DataFrame({"y_true": ["a", "b", "c", "c", "a", "c"],
                       "y_pred": ["a", "c", "c", "b", "a", "c"],
                       "g": ["m", "m", "m", "f", "f", "f"]})
    with pytest.raises(UsageError, match="multiclass: one_vs_rest"):
        run_group_fairness(df, sensitive=["g"], n_boot=0)
    out = run_group_fairness(df, sensitive=["g"], n_boot=0, multiclass="one_vs_rest")
    tpr_c = metric(out, "tpr[c]")
    assert tpr_c.by_group["m"].value == 1.0      # m: one 'c', predicted 'c'
    assert tpr_c.by_group["f"].value == 0.5      # f: two 'c', one predicted 'c'
    assert metric(out, "selection_rate[b]").by_group["f"].value == pytest.approx(1 / 3)


def test_two_string_labels_need_positive_label():
    """Reference: hand count of a 4-row table with labels 'yes'/'no'."""
    df = pd.DataFrame({"y_true": ["yes", "no", "yes", "no"], "y_pred": ["yes", "yes", "no", "no"],
                       "g": ["a", "a", "b", "b"]})
    with pytest.raises(UsageError, match="positive_label"):
        run_group_fairness(df, sensitive="g", n_boot=0)
    out = run_group_fairness(df, sensitive="g", n_boot=0, positive_label="yes")
    assert metric(out, "selection_rate").by_group["a"].value == 1.0
    assert metric(out, "tpr").by_group["b"].value == 0.0


def test_constant_predictions_report_undefined_ratio_not_a_crash():
    """Reference: with no positive prediction the selection-rate ratio is 0/0 (undefined) and
    precision has no denominator; both must be null with a warning finding."""
    df = _frame()
    df["y_pred"] = 0
    out = run_group_fairness(df.drop(columns="score"), sensitive=["g"], n_boot=100)
    assert metric(out, "demographic_parity_ratio").value is None
    assert metric(out, "demographic_parity_difference").value == 0.0
    assert metric(out, "four_fifths_violation").value is None
    assert metric(out, "precision").by_group["a"].value is None
    assert "undefined" in metric(out, "precision").by_group["a"].flags
    messages = " ".join(f.message for f in out.findings)
    assert "undefined" in messages and "every prediction is negative" in messages


def test_group_of_size_one_is_flagged_not_dropped():
    """Reference: the group table by hand (one row in group 'z')."""
    df = _frame()
    df.loc[0, "g"] = "z"
    out = run_group_fairness(df, sensitive=["g"], n_boot=200, min_group_size=30)
    z = metric(out, "selection_rate").by_group["z"]
    assert z.n == 1 and "small" in z.flags and "degenerate_ci" in z.flags
    assert z.value == float(df.loc[0, "y_pred"])
    assert any("min_group_size" in f.message and "z (n=1)" in f.message for f in out.findings)
    gaps_all = metric(out, "demographic_parity_difference").value
    out2 = run_group_fairness(df, sensitive=["g"], n_boot=0, small_groups_in_gaps=False)
    sub = df[df.g != "z"].groupby("g").y_pred.mean()
    assert metric(out2, "demographic_parity_difference").value == pytest.approx(sub.max() - sub.min())
    assert gaps_all >= metric(out2, "demographic_parity_difference").value


def test_nan_sensitive_values_form_an_explicit_group():
    """Reference: pandas counts of the rows with a missing sensitive value."""
    df = _frame()
    df.loc[df.index[:7], "g"] = np.nan
    out = run_group_fairness(df, sensitive=["g", "h"], n_boot=0)
    counts = metric(out, "count").by_group
    missing = {k: v.n for k, v in counts.items() if k.startswith("(missing)")}
    assert sum(missing.values()) == 7
    assert sum(v.n for v in counts.values()) == len(df)
    assert all(" × " in k for k in counts)


def test_scores_outside_unit_interval_need_the_option():
    """Reference: scikit-learn roc_auc_score on the raw (unbounded) scores."""
    from sklearn.metrics import roc_auc_score

    df = _frame()
    df["score"] = df["score"] * 10
    with pytest.raises(UsageError, match="score_is_probability: false"):
        run_group_fairness(df, sensitive=["g"], n_boot=0)
    out = run_group_fairness(df, sensitive=["g"], n_boot=0, score_is_probability=False)
    assert metric(out, "auc").value == pytest.approx(roc_auc_score(df.y_true, df.score))
    assert not any(m.name == "ece" for m in out.metrics)


def test_predictions_from_score_threshold_when_y_pred_is_null():
    """Reference: hand thresholding of the score column."""
    df = _frame().drop(columns="y_pred")
    out = run_group_fairness(df, sensitive=["g"], n_boot=0, y_pred=None, threshold=0.6)
    ref = (df.score >= 0.6).groupby(df.g).mean()
    for g, v in ref.items():
        assert metric(out, "selection_rate").by_group[g].value == pytest.approx(v)


def test_text_classifier_with_labelled_data(tmp_path):
    """Reference: the scripted classifier's own predict_proba, thresholded and counted by hand."""
    from audit.checks.fairness.group_fairness import GroupFairnessParams, group_fairness
    from tests.mock_models import keyword_classifier

    texts = [f"she said {w}" for w in "good bad fine awful great".split()] * 8
    texts += [f"he said {w}" for w in "good bad fine awful great".split()] * 8
    data = pd.DataFrame({"text": texts, "label": [i % 2 for i in range(len(texts))],
                         "gender": ["f"] * 40 + ["m"] * 40})
    data.to_csv(tmp_path / "labelled.csv", index=False)
    model = keyword_classifier({"good": 2.0, "great": 2.0, "she": -0.5})
    ctx = make_ctx(model, base_dir=tmp_path)
    out = group_fairness(ctx, GroupFairnessParams(sensitive=["gender"], data="labelled.csv",
                                                  n_boot=100))
    p = model.predict_proba(texts)[:, 1]
    ref = pd.Series(p >= 0.5).groupby(data.gender).mean()
    assert metric(out, "selection_rate").by_group["f"].value == pytest.approx(ref["f"])
    assert metric(out, "selection_rate").by_group["m"].value == pytest.approx(ref["m"])
    with pytest.raises(UsageError, match="data"):
        group_fairness(ctx, GroupFairnessParams(sensitive=["gender"]))


def test_tabular_adapter_frame():
    """Reference: the adapter's own predictions frame grouped with pandas."""
    from audit.models.tabular import TabularAdapter

    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"x": rng.normal(size=n), "sex": rng.choice(["F", "M"], n)})
    df["label"] = (df.x + 0.5 * (df.sex == "M") + rng.normal(size=n) > 0).astype(int)
    pipe = _sklearn_pipeline().fit(df[["x", "sex"]], df["label"])
    model = TabularAdapter(pipe, df, ["x", "sex"], "label", "default", "train.csv", {})
    from audit.checks.fairness.group_fairness import GroupFairnessParams, group_fairness

    out = group_fairness(make_ctx(model), GroupFairnessParams(sensitive=["sex"], n_boot=50))
    ref = model.frame.groupby("sex").y_pred.mean()
    assert metric(out, "selection_rate").by_group["M"].value == pytest.approx(ref["M"])


def _sklearn_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer([("num", "passthrough", ["x"]), ("cat", OneHotEncoder(), ["sex"])])
    return Pipeline([("pre", pre), ("model", LogisticRegression())])


def test_stratified_bootstrap_keeps_group_sizes_and_gives_cis():
    """Reference: a group with all-correct predictions has a degenerate accuracy CI [1, 1] in any
    bootstrap, and stratified CIs bracket the point estimate."""
    df = _frame()
    df.loc[df.g == "a", "y_pred"] = df.loc[df.g == "a", "y_true"]
    out = run_group_fairness(df, sensitive=["g"], n_boot=300, bootstrap="stratified")
    acc = metric(out, "accuracy").by_group
    assert (acc["a"].ci.low, acc["a"].ci.high) == (1.0, 1.0)
    assert acc["b"].ci.low <= acc["b"].value <= acc["b"].ci.high
