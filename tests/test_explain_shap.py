"""`shap_text`: our lockstep Partition SHAP against shap itself, additivity, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from audit.context import CheckContext
from audit.errors import UsageError
from audit.registry import get_check


def word_score(weights: dict[str, float], text: str, interactions: bool = False,
               link: str = "sigmoid") -> float:
    """p(pos) of a text model that is a pure function of the words present."""
    words = [w.strip(".,!?").lower() for w in text.split()]
    z = sum(weights.get(w, 0.0) for w in words)
    if interactions and "not" in words and "good" in words:
        z -= 1.0
    return 1 / (1 + np.exp(-z)) if link == "sigmoid" else 0.5 + z


def WordModel(weights: dict[str, float], interactions: bool = False,  # noqa: N802
              link: str = "sigmoid"):
    """A two-class mock classifier whose p(pos) is ``word_score`` (no torch, no tokenizer)."""
    from tests.mock_models import scripted

    def proba(call):
        p = np.array([word_score(weights, t, interactions, link) for t in call.args["texts"]])
        return np.stack([1 - p, p], axis=1)

    model = scripted({"predict_proba": proba}, kind="classifier", capabilities={"predict_proba"},
                     labels=["neg", "pos"])
    model.score = lambda text: word_score(weights, text, interactions, link)
    return model


def _ctx(model, check_id: str = "shap") -> CheckContext:
    return CheckContext(model=model, seed=0, rng=np.random.default_rng(0), check_id=check_id, quiet=True)


TEXTS = ["This movie was not good at all, very bad acting and a dull plot line here.",
         "The food was very good but the service was bad and slow today.",
         "Not bad."]


def test_lockstep_partition_equals_shap_partition_explainer():
    """Reference library: shap.Explainer(f, Text masker) with a binding budget (max_evals 40 on
    16-token texts) gives the same Owen values as our lockstep implementation."""
    import shap

    from audit.checks.explain.owen import explain_texts

    model = WordModel({"good": 2.0, "bad": -1.5, "not": -0.7, "very": 0.4, "dull": -0.8},
                      interactions=True)
    np.random.seed(0)
    ref = shap.Explainer(model.predict_proba, shap.maskers.Text(r"\W+"))(TEXTS, max_evals=40, silent=True)
    ours = explain_texts(TEXTS, model.predict_proba, lambda: shap.maskers.Text(r"\W+"), max_evals=40)
    for r, o in zip(ref, ours):
        np.testing.assert_allclose(o["values"], r.values, atol=1e-12)
        np.testing.assert_allclose(o["base"], r.base_values, atol=1e-12)


def test_additive_model_gets_its_word_weights():
    """For an additive model (p = 0.5 + sum of word weights) Owen values are exact Shapley
    values: each word's attribution is its weight (hand-set), the rest 0."""
    model = WordModel({"good": 0.2, "bad": -0.15, "dull": -0.05}, link="linear")
    spec = get_check("shap_text")
    out = spec.fn(_ctx(model), spec.params(texts=["a good but dull film", "bad"], target="pos"))
    ev = out.evidence[0]
    top = dict(ev["top_tokens"])
    assert top["good"] == pytest.approx(0.2, abs=1e-9)
    assert top["dull"] == pytest.approx(-0.05, abs=1e-9)
    assert out.evidence[1]["top_tokens"][0] == ["bad", pytest.approx(-0.15, abs=1e-9)]


def test_additivity_on_tiny_classifier(tiny_classifier_dir):
    """Additivity: base + sum of SHAP values equals p(x) from a separate predict_proba call
    on a 2-layer BERT (tolerance covers batch-padding float noise)."""
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_classifier_dir))
    spec = get_check("shap_text")
    out = spec.fn(_ctx(model), spec.params(texts=["the doctor is kind and smart", "she was sad today"],
                                           max_evals=60))
    metrics = {m.name: m.value for m in out.metrics}
    assert metrics["max_additivity_error"] < 1e-5
    # special tokens ([CLS], [SEP]) are not among the explained tokens
    fig = out.figures[0]
    assert fig.data["tokens"] == ["the", "doctor", "is", "kind", "and", "smart"]


def test_single_token_text_without_tokenizer():
    """One word: its attribution is f(x) - f(masked) (hand-derived from the definition)."""
    model = WordModel({"good": 1.0})
    spec = get_check("shap_text")
    out = spec.fn(_ctx(model), spec.params(texts=["good"], target="pos"))
    expected = model.score("good") - model.score("...")
    assert out.evidence[0]["top_tokens"][0][1] == pytest.approx(expected, abs=1e-5)


def test_empty_text_is_a_usage_error():
    """An empty text is rejected with a one-line UsageError naming the text."""
    spec = get_check("shap_text")
    with pytest.raises(UsageError, match=r"texts\[1\]: empty text"):
        spec.fn(_ctx(WordModel({})), spec.params(texts=["fine", "  "]))


def test_long_text_is_truncated_with_a_warning(tiny_classifier_dir):
    """A text longer than the model's 64 positions is cut to fit, with a warning."""
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_classifier_dir))
    ctx = _ctx(model)
    spec = get_check("shap_text")
    out = spec.fn(ctx, spec.params(texts=["the cat is happy " * 40], max_evals=20))
    assert any("longer than the model maximum of 64 tokens" in w for w in ctx.warnings)
    assert len(out.figures[0].data["tokens"]) == 62  # 64 minus [CLS] and [SEP]


def test_same_seed_same_result():
    """Determinism: two runs with the same seed give identical attributions."""
    model = WordModel({"good": 2.0, "bad": -1.5, "not": -0.7}, interactions=True)
    spec = get_check("shap_text")
    a = spec.fn(_ctx(model), spec.params(texts=TEXTS, max_evals=30)).evidence
    b = spec.fn(_ctx(model), spec.params(texts=TEXTS, max_evals=30)).evidence
    assert a == b


@pytest.mark.slow
def test_real_classifier_matches_shap_over_a_transformers_pipeline():
    """Reference library on the real dreaddit MiniLM classifier: shap.Explainer(pipeline) and
    our engine give the same attributions (float noise only) on two texts, 60 evaluations."""
    import shap
    from transformers import pipeline

    from audit.assets import resolve_model
    from audit.checks.explain.shap_text import explain
    from audit.models.hf import load_hf

    folder = resolve_model("dreaddit-classifier")  # built into the cache on first use (offline)
    model = load_hf(str(folder))
    texts = ["I can't sleep and my exams are next week.", "We had a lovely calm day at the lake."]
    pipe = pipeline("text-classification", model=model.torch_module, tokenizer=model.tokenizer,
                    top_k=None, device="cpu")
    np.random.seed(0)
    ref = shap.Explainer(pipe)(texts, max_evals=60, silent=True)
    ours = explain(model, texts, 60, 5, 64, 0)
    for r, o in zip(ref, ours):
        np.testing.assert_allclose(o["values"], r.values, atol=1e-5)


def test_pii_tokens_are_redacted_unless_show_pii():
    """Tokens overlapping an e-mail address (audit.pii's detector) are shown as the entity."""
    model = WordModel({"urgent": 1.0})
    spec = get_check("shap_text")
    params = spec.params(texts=["urgent mail bob@example.com now"], max_evals=20)
    hidden = spec.fn(_ctx(model), params).figures[0].data["tokens"]
    assert not any("bob" in t for t in hidden) and "[EMAIL_ADDRESS]" in hidden
    ctx = _ctx(model)
    ctx.show_pii = True
    assert "bob@" in spec.fn(ctx, params).figures[0].data["tokens"]
