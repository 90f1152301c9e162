"""qa_bias on the real offline models (slow): SmolLM2-135M-Instruct on BBQ in likelihood and
chat mode, Gemma 3 270M on CBBQ. Small samples; the figures come from suites/qa-bias.yaml and
suites/cbbq.yaml (see the README)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audit.checks.bias.qa_bias import QABiasParams, qa_bias
from audit.context import CheckContext

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.slow


def _model(name: str):
    import audit.assets as assets
    from audit.models.hf import load_hf

    try:
        path = assets.resolve_model(name)
    except Exception as exc:  # asset package missing: a user's clone without setup
        pytest.skip(f"{name} not available: {exc}")
    return load_hf(str(path))


@pytest.fixture(scope="module")
def smollm():
    if not (SHARED / "bbq").is_dir():
        pytest.skip("BBQ data not found")
    return _model("default-lm")


def _ctx(model) -> CheckContext:
    return CheckContext(model=model, seed=0, rng=np.random.default_rng(0), quiet=True,
                        check_id="qa", base_dir=SHARED)


def test_smollm_likelihood_scores_match_sequence_differences(smollm):
    """Likelihood mode on 6 Religion questions. Independent computation of one option's
    summed score: sequence_log_prob(prompt + option) - sequence_log_prob(prompt) (the prompt ends
    in 'Answer:' and the option starts with a space, so the tokens split at the boundary)."""
    out = qa_bias(_ctx(smollm), QABiasParams(data=["bbq/Religion.jsonl"], max_items=6, n_boot=200))
    m = {x.name: x for x in out.metrics}
    assert m["n_items"].value == 6
    for name in ("accuracy_ambig", "accuracy_disambig"):
        assert m[name].value is None or 0 <= m[name].value <= 1
    item = out.items[0]
    from audit.checks.bias.qa_data import load_qa

    q = {it.id: it for it in load_qa([(SHARED / "bbq" / "Religion.jsonl", "r")]).items}[item["id"]]
    prompt = f"{q.context}\nQuestion: {q.question}\nAnswer:"
    full = smollm.sequence_log_prob([prompt + " " + q.options[0], prompt])
    assert item["scores_sum"][0] == pytest.approx(full[0] - full[1], abs=1e-3)
    assert item["answer_normalized"] == int(np.argmax(item["scores_normalized"]))


def test_smollm_chat_mode_parses_or_counts(smollm):
    """Chat mode (the model's chat template) on 4 Age questions: every reply is either read as
    one option (with the rule recorded) or counted unparseable; unparseable_rate agrees."""
    out = qa_bias(_ctx(smollm), QABiasParams(data=["bbq/Age.jsonl"], max_items=4,
                                              mode="generation", max_new_tokens=16, n_boot=200))
    m = {x.name: x for x in out.metrics}
    unparsed = [r for r in out.items if r["answer"] is None]
    assert m["unparseable_rate"].value == pytest.approx(len(unparsed) / len(out.items))
    assert all(r["parse"] in ("marker", "letter", "text", "none") for r in out.items)
    assert all((r["answer"] is None) == (r["parse"] == "none") for r in out.items)


def test_gemma_cbbq_likelihood():
    """CBBQ on Gemma 3 270M (likelihood, 2 gender questions): CBBQ's own scores in [0, 1] or
    None, the Chinese prompt format, no BBQ score."""
    if not (SHARED / "cbbq").is_dir():
        pytest.skip("CBBQ data not found")
    model = _model("multilingual-lm")
    out = qa_bias(_ctx(model), QABiasParams(data=["cbbq/gender"], max_items=2, n_boot=200))
    m = {x.name: x for x in out.metrics}
    assert "bias_score_ambig" not in m and m["n_items"].value == 2
    for name in ("cbbq_bias_ambig", "cbbq_bias_disambig", "cbbq_bias_score"):
        assert m[name].value is None or 0 <= m[name].value <= 1
