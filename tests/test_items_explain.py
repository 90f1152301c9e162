"""Per-item records of the explainability checks: each check runs through the runner on a tiny
or scripted model, its items are read back from items.jsonl.gz (gzip + json) and
``audit.items.rederive`` recomputes the headline metrics from them alone, compared with
results.json.

Independent references: the number of items from the inputs (texts, sampled rows); head
entropies recomputed with plain numpy from the model's own attention tensor; F(x) against the
classifier's predict_proba; identity ratios and attribution shares recomputed by plain loops
over the items' tokens / per-feature SHAP values; the hand-derived comprehensiveness 0.8 of a
planted-word model (DeYoung et al. 2020's definition).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_explain_faithfulness import PlantedModel, _texts
from tests.test_explain_shap import WordModel
from tests.test_explain_tabular import _adapter, csv_path  # noqa: F401 (module fixture)
from tests.test_items_privacy import assert_rederived, run_check

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TEXTS = ["the doctor is kind", "she is a nurse and he is a teacher", "a long day at work"]


def test_attention_items_rederive_and_hold_the_head_entropies(tmp_path: Path,
                                                               tiny_encoder_dir: Path) -> None:
    """Three texts on a 2-layer BERT: three items; every metric re-derives (the focused-head
    fraction from the items' per-head entropy matrices); text 0's matrix equals the normalised
    row entropy computed here with numpy from the model's attention tensor."""
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_encoder_dir), attn_implementation="eager")
    result, items, _ = run_check(tmp_path, "attention",
                                 {"texts": TEXTS, "focused_entropy": 0.9}, model)
    assert [i["id"] for i in items] == ["text0", "text1", "text2"]
    derived = assert_rederived("attention", result, items, {
        "max_row_sum_error", "mean_head_entropy", "focused_head_fraction",
        "first_token_attention", "identity_rollout_ratio", "n_texts"})
    assert derived["n_texts"] == 3 and [i["identity_ratio"] is None for i in items] == [
        True, False, True]  # only text 1 has identity terms (she, he)
    att = np.asarray(model.attentions(TEXTS[0]).values, float)
    p = np.clip(att, 1e-300, None)
    expected = (-(att * np.log(p)).sum(-1) / np.log(att.shape[-1])).mean(-1)
    np.testing.assert_allclose(items[0]["head_entropy"], expected, atol=1e-9)


def test_shap_text_items_rederive_additivity_and_identity_ratio(tmp_path: Path) -> None:
    """A word-weight classifier (no tokenizer: shap's word masker): one item per text; the
    additivity metrics and the identity ratio re-derive; each item's ratio equals a plain loop
    over its tokens (identity words' share of |SHAP| over their share of tokens)."""
    model = WordModel({"good": 2.0, "bad": -1.5, "muslim": -0.8, "she": 0.3})
    texts = ["she said the food was good", "the muslim neighbour was not bad", "bad and slow"]
    result, items, _ = run_check(tmp_path, "shap_text",
                                 {"texts": texts, "max_evals": 64,
                                  "identity_terms": ["she", "muslim"]}, model)
    assert [i["id"] for i in items] == ["text0", "text1", "text2"]
    derived = assert_rederived("shap_text", result, items, {
        "max_additivity_error", "mean_additivity_error", "identity_attribution_ratio", "n_texts"})
    for it in items:
        flags = np.array([t.lower() in ("she", "muslim") for t in it["tokens"]])
        mass = np.abs(it["scores"])
        want = (mass[flags].sum() / mass.sum()) / flags.mean() if flags.any() else None
        assert it["identity_ratio"] == (None if want is None else pytest.approx(want, abs=1e-12))
    assert derived["identity_attribution_ratio"] == pytest.approx(
        np.mean([i["identity_ratio"] for i in items[:2]]), abs=1e-12)
    assert derived["max_additivity_error"] < 1e-9


def test_integrated_gradients_items_rederive_convergence(tmp_path: Path,
                                                         tiny_classifier_dir: Path) -> None:
    """Tiny BERT classifier, three texts, 16 steps: three items; the convergence metrics
    re-derive; each item's F(x) is the predicted class's probability from predict_proba."""
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_classifier_dir))
    result, items, _ = run_check(tmp_path, "integrated_gradients",
                                 {"texts": TEXTS, "n_steps": 16}, model)
    assert len(items) == 3
    assert_rederived("integrated_gradients", result, items, {
        "max_abs_convergence_delta", "mean_abs_convergence_delta",
        "median_relative_convergence_delta", "identity_attribution_ratio", "n_texts"})
    probs = np.asarray(model.predict_proba(TEXTS))
    np.testing.assert_allclose([i["f_x"] for i in items], probs.max(axis=1), atol=1e-5)


def test_shap_tabular_items_rederive_shares_and_gaps(tmp_path: Path,
                                                    csv_path: Path) -> None:  # noqa: F811
    """Logistic regression on the synthetic sex/region/hours data, 120 sampled rows: 120 items
    (row<index>, distinct); every metric re-derives, and the sensitive share also equals a plain
    loop over the items' per-feature SHAP values (mean |SHAP| of sex over the sum over features)."""
    model = _adapter(csv_path, "logistic_regression")
    result, items, _ = run_check(tmp_path, "shap_tabular",
                                 {"sensitive": ["sex"], "n": 120, "background": 50}, model)
    assert len(items) == 120 and len({i["id"] for i in items}) == 120
    derived = assert_rederived("shap_tabular", result, items, {
        "sensitive_attribution_share", "proxy_attribution_share", "sensitive_attribution_gap",
        "sensitive_and_proxy_attribution_gap", "max_additivity_error", "n_rows"})
    mean_abs = {f: np.mean([abs(i["shap"][f]) for i in items]) for f in ("sex", "region", "hours")}
    assert derived["sensitive_attribution_share"] == pytest.approx(
        mean_abs["sex"] / sum(mean_abs.values()), abs=1e-12)
    assert {i["group"] for i in items} == {"F", "M"}


def test_faithfulness_items_rederive_per_method_aopc(tmp_path: Path) -> None:
    """Planted-word model, 8 texts, SHAP and random: 8 items; every per-method metric
    re-derives, methods not run re-derive to None, and SHAP's comprehensiveness is the
    hand-derived 0.8 (deleting the top-k always deletes the planted word: 0.9 - 0.1)."""
    result, items, _ = run_check(tmp_path, "attribution_faithfulness",
                                 {"texts": _texts(8, 10), "methods": ["shap", "random"],
                                  "max_evals": 100, "n_boot": 200}, PlantedModel())
    assert [i["id"] for i in items] == [f"text{k}" for k in range(8)]
    derived = assert_rederived("attribution_faithfulness", result, items, {
        "shap_comprehensiveness", "shap_sufficiency", "shap_comprehensiveness_minus_random",
        "random_comprehensiveness", "random_sufficiency", "n_texts"})
    assert derived["shap_comprehensiveness"] == pytest.approx(0.8, abs=1e-9)
    assert derived["ig_comprehensiveness"] is None and derived["n_texts"] == 8
