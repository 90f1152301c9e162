"""`shap_tabular` on a synthetic data set where a proxy of sex drives the label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.context import CheckContext
from audit.errors import UsageError
from audit.registry import get_check


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    """sex is not used by the label; region (90% aligned with sex) and hours are."""
    rng = np.random.default_rng(0)
    n = 400
    sex = rng.choice(["F", "M"], size=n)
    region = np.where(rng.random(n) < 0.9, np.where(sex == "F", "north", "south"), "east")
    hours = rng.normal(40, 8, size=n)
    logit = 1.5 * (region == "south") + 0.08 * (hours - 40) - 0.5
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    path = tmp_path_factory.mktemp("tab") / "data.csv"
    pd.DataFrame({"sex": sex, "region": region, "hours": hours, "label": label}).to_csv(path, index=False)
    return path


def _adapter(csv_path, estimator: str):
    """A TabularAdapter over the same preprocessing as `adapter: sklearn` (one-hot + scaling),
    built directly (pandas 3 string columns; see the lead's TabularAdapter.train)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from audit.models.tabular import TabularAdapter

    frame = pd.read_csv(csv_path)
    est = {"logistic_regression": LogisticRegression(max_iter=2000),
           "gradient_boosting": HistGradientBoostingClassifier(random_state=0),
           "random_forest": RandomForestClassifier(n_estimators=50, random_state=0)}[estimator]
    pre = ColumnTransformer([("num", StandardScaler(), ["hours"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex", "region"])])
    pipe = Pipeline([("pre", pre), ("model", est)])
    features = ["sex", "region", "hours"]
    pipe.fit(frame[features], frame["label"])
    return TabularAdapter(pipe, frame, features, "label", "default", str(csv_path), {})


def _run(model, **params):
    spec = get_check("shap_tabular")
    ctx = CheckContext(model=model, seed=0, rng=np.random.default_rng(0), check_id="tab", quiet=True)
    return spec.fn(ctx, spec.params(**params))


def test_linear_shap_matches_closed_form(csv_path):
    """Interventional linear SHAP (Lundberg & Lee 2017): phi_j = w_j (z_j - mean_bg z_j) in
    log-odds; for the standardised numeric 'hours' this is checked by hand from the fitted
    coefficients; base + sum(phi) equals the decision function (additivity)."""
    from audit.checks.explain import shap_tabular as mod

    model = _adapter(csv_path, "logistic_regression")
    X = model.frame[model.feature_columns]
    phi, base, fx, space = mod._explain(model, "linear", X.iloc[:50], X.iloc[50:150], 0, None)
    pre, est = model.pipeline[:-1], model.pipeline[-1]
    Z, Zb = pre.transform(X.iloc[:50]), pre.transform(X.iloc[50:150])
    owners = mod.column_groups(model.pipeline, list(X.columns))
    j = owners.index("hours")
    by_hand = est.coef_[0, j] * (Z[:, j] - Zb[:, j].mean())
    np.testing.assert_allclose(phi[:, list(X.columns).index("hours")], by_hand, atol=1e-10)
    np.testing.assert_allclose(base + phi.sum(1), fx, atol=1e-8)
    assert space == "log-odds"


def test_proxy_is_found_and_carries_the_attribution(csv_path):
    """region is a proxy (Cramér's V with sex ~0.9): it is flagged, carries more attribution
    than sex itself, and the sensitive+proxy gap between F and M exceeds the sex-only gap."""
    out = _run(_adapter(csv_path, "logistic_regression"), sensitive=["sex"], n=200)
    m = {x.name: x for x in out.metrics}
    assert "region" in m["proxy_attribution_share"].description
    assert m["proxy_attribution_share"].value > m["sensitive_attribution_share"].value
    assert m["sensitive_and_proxy_attribution_gap"].value > m["sensitive_attribution_gap"].value
    assert set(m["sensitive_attribution_gap"].by_group) == {"F", "M"}
    assert m["max_additivity_error"].value < 1e-8


@pytest.mark.parametrize("estimator,kind,space", [
    ("gradient_boosting", "tree", "log-odds"), ("random_forest", "tree", "probability"),
    ("logistic_regression", "permutation", "probability")])
def test_tree_and_permutation_are_additive(csv_path, estimator, kind, space):
    """Additivity (SHAP's local accuracy): base + sum(phi) equals the model's own output in the
    explained space, computed here by scikit-learn directly (HistGradientBoosting's
    decision_function margin, the random forest's predict_proba, the whole pipeline's
    predict_proba for the permutation explainer), not the output the check computed for itself
    (a check that derived its 'model output' from the attributions would always look additive)."""
    from audit.checks.explain import shap_tabular as mod

    model = _adapter(csv_path, estimator)
    X = model.frame[model.feature_columns]
    rows, bg = X.iloc[:25], X.iloc[100:130]
    phi, base, _, got_space = mod._explain(model, kind, rows, bg, 0, None)
    pre, est = model.pipeline[:-1], model.pipeline[-1]
    reference = {"gradient_boosting": lambda: est.decision_function(pre.transform(rows)),
                 "random_forest": lambda: est.predict_proba(pre.transform(rows))[:, 1],
                 "logistic_regression": lambda: model.pipeline.predict_proba(rows)[:, 1]}[estimator]()
    assert got_space == space
    assert np.ptp(reference) > 0.05  # the rows differ: additivity is not satisfied by a constant
    np.testing.assert_allclose(base + phi.sum(axis=1), reference, atol=1e-6)


def test_unknown_sensitive_column_is_a_usage_error(csv_path):
    """A sensitive column that is not in the data is a one-line UsageError."""
    with pytest.raises(UsageError, match="no column 'gender'"):
        _run(_adapter(csv_path, "logistic_regression"), sensitive=["gender"])
