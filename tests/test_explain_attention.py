"""The `attention` check on tiny encoder and causal models, and the skip without attentions."""

from __future__ import annotations

import numpy as np
import pytest

from audit.context import CheckContext
from audit.registry import get_check


def _ctx(model) -> CheckContext:
    return CheckContext(model=model, seed=0, rng=np.random.default_rng(0), check_id="att", quiet=True)


@pytest.fixture(scope="module")
def tiny_encoder(tiny_encoder_dir):
    from audit.models.hf import load_hf

    return load_hf(str(tiny_encoder_dir), attn_implementation="eager")


@pytest.fixture(scope="module")
def tiny_gpt2(tiny_gpt2_dir):
    from audit.models.hf import load_hf

    return load_hf(str(tiny_gpt2_dir), attn_implementation="eager")


def test_attention_rows_sum_to_one_on_a_real_forward(tiny_encoder):
    """Softmax rows sum to 1: checked with numpy on the model's own attention tensor."""
    amap = tiny_encoder.attentions("the doctor is kind")
    tokens, att = amap.tokens, amap.values
    assert amap.special == [True, False, False, False, False, True]
    assert amap.offsets[1:-1] == [(0, 3), (4, 10), (11, 13), (14, 18)]
    assert att.shape == (2, 4, len(tokens), len(tokens))
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)


def test_attention_check_encoder(tiny_encoder):
    """End to end on a 2-layer BERT: metrics, heatmaps bounded by max_tokens_shown."""
    spec = get_check("attention")
    params = spec.params(texts=["the doctor is kind", "she is a nurse and he is a teacher"],
                         max_tokens_shown=4, max_sentences_shown=1)
    out = spec.fn(_ctx(tiny_encoder), params)
    metrics = {m.name: m.value for m in out.metrics}
    assert metrics["max_row_sum_error"] < 1e-5
    assert 0.0 < metrics["mean_head_entropy"] <= 1.0
    assert metrics["identity_rollout_ratio"] is not None  # "she", "he" are identity terms
    heat = [f for f in out.figures if f.kind == "heatmap" and "rollout" in f.title][0]
    assert len(heat.data["values"]) == 4 and len(heat.data["values"][0]) == 4
    assert "[CLS]" in out.findings[0].message


def test_attention_check_causal_reads_last_token(tiny_gpt2):
    """Causal attention (upper triangle 0) is detected; relevance comes from the last token,
    whose rollout row equals the hand product of the residual-mixed layers."""
    from audit.checks.explain import rollout

    spec = get_check("attention")
    out = spec.fn(_ctx(tiny_gpt2), spec.params(texts=["the cat is happy"]))
    assert "last" in out.findings[0].message
    amap = tiny_gpt2.attentions("the cat is happy")
    tokens, att = amap.tokens, amap.values
    eye = np.eye(len(tokens))
    mixed = [(0.5 * a.mean(0) + 0.5 * eye) for a in att]
    mixed = [m / m.sum(-1, keepdims=True) for m in mixed]
    by_hand = (mixed[1] @ mixed[0])[-1]
    fig = [f for f in out.figures if f.kind == "token_attributions"][0]
    np.testing.assert_allclose(fig.data["scores"], np.round(by_hand, 4), atol=1e-4)
    assert rollout.is_causal(att)


def test_single_token_text(tiny_encoder):
    """A one-word sentence ([CLS] doctor [SEP]) still gives finite metrics, equal to a plain
    numpy computation on the model's own attention tensor: mean normalised row entropy
    (entropy / log 3 for 3 keys), mean attention of non-first queries to the first token, row
    sums; the identity ratio is undefined (null: no identity term), not 0."""
    spec = get_check("attention")
    out = spec.fn(_ctx(tiny_encoder), spec.params(texts=["doctor"]))
    m = {x.name: x.value for x in out.metrics}
    att = np.asarray(tiny_encoder.attentions("doctor").values, dtype=float)
    assert att.shape[-1] == 3
    ent = [-sum(p * np.log(p) for p in row if p > 0) / np.log(3)
           for layer in att for head in layer for row in head]
    assert m["mean_head_entropy"] == pytest.approx(np.mean(ent), abs=1e-9)
    assert m["first_token_attention"] == pytest.approx(att[:, :, 1:, 0].mean(), abs=1e-9)
    assert m["max_row_sum_error"] == pytest.approx(np.abs(att.sum(-1) - 1).max(), abs=1e-9)
    assert m["identity_rollout_ratio"] is None and m["n_texts"] == 1.0


def test_model_without_attentions_is_skipped_with_reason():
    """The registry's capability check (used by the runner) names the missing capability."""
    reason = get_check("attention").missing_capabilities({"predict_proba", "embed"})
    assert reason is not None and "attentions" in reason


def test_runner_skips_attention_for_a_classifier_without_attentions(tmp_path):
    """Through the runner: a fake classifier has no attentions, so the check is skipped."""
    from audit.config import CheckConfig, Suite
    from audit.runner import RunOptions, run_suite

    suite = Suite(name="t", models={"default": {"adapter": "fake", "options": {
        "kind": "classifier", "capabilities": ["predict_proba", "embed"]}}},
                  checks=[CheckConfig(id="att", check="attention")])
    run = run_suite(suite, RunOptions(out_dir=tmp_path, quiet=True, render=False))
    result = run.check("att")
    assert result.status == "skipped" and "attentions" in (result.skip_reason or "")


def sink_model():
    """Every query attends only to the first token (6 layers, 2 heads): an attention sink."""
    from audit.models.capabilities import AttentionMap
    from tests.mock_models import scripted

    def attentions(call):
        text = call.args["text"]
        tokens = text.split()
        att = np.zeros((6, 2, len(tokens), len(tokens)))
        att[..., 0] = 1.0
        offsets, pos = [], 0
        for t in tokens:
            start = text.index(t, pos)
            offsets.append((start, start + len(t)))
            pos = start + len(t)
        return AttentionMap(tokens=tokens, values=att, offsets=offsets, special=[False] * len(tokens))

    return scripted({"attentions": attentions}, kind="causal_lm", capabilities={"attentions"})


def test_attention_sink_is_reported():
    """Hand derivation: with A = all mass on token 0 and residual 0.5, the last row of the
    rollout puts 1 - 0.5**6 = 0.984 on token 0, so the sink warning fires."""
    spec = get_check("attention")
    out = spec.fn(_ctx(sink_model()), spec.params(texts=["a b c d e"]))
    fig = [f for f in out.figures if f.kind == "token_attributions"][0]
    assert fig.data["scores"][0] == pytest.approx(1 - 0.5 ** 6, abs=1e-4)
    assert any("attention sink" in f.message for f in out.findings)


def test_attentions_switch_to_eager_for_the_call_only(tiny_gpt2_dir):
    """A model loaded with sdpa (the default, faster for every other capability) gives the same
    attention maps as one loaded eager (the independent computation), and is back on sdpa
    afterwards, so later checks' numbers do not depend on an attention check running first."""
    from audit.models.hf import load_hf

    fused = load_hf(str(tiny_gpt2_dir), attn_implementation="sdpa")
    eager = load_hf(str(tiny_gpt2_dir), attn_implementation="eager")
    text = "the nurse said that she was tired"
    got = fused.attentions(text)
    np.testing.assert_allclose(got.values, eager.attentions(text).values, atol=1e-6)
    np.testing.assert_allclose(got.values.sum(-1), 1.0, atol=1e-5)
    assert fused.torch_module.config._attn_implementation == "sdpa"
