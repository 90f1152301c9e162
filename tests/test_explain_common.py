"""Shared helpers: token segments, truncation, identity-term ratios."""

from __future__ import annotations

import numpy as np
import pytest

from audit.checks.explain import common
from audit.context import CheckContext


def _ctx() -> CheckContext:
    return CheckContext(model=None, seed=0, rng=np.random.default_rng(0), check_id="c", quiet=True)


@pytest.mark.parametrize("text", ["Hello, world!", "  leading space", "one", "...dots first", "a  b\tc"])
def test_word_offsets_match_shap_simple_tokenizer(text):
    """Reference library: shap's SimpleTokenizer (default Text masker) gives the same offsets."""
    from shap.maskers._text import SimpleTokenizer

    assert common.word_offsets(text) == SimpleTokenizer()(text)["offset_mapping"]


def test_segments_rejoin_to_the_text(tiny_classifier_dir):
    """Segments (one per non-special token, from the adapter's tokenize) concatenate back to
    the original text; reference count: the raw tokenizer's own ids."""
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_classifier_dir))
    text = "  the doctor, she is kind!"
    segs = common.segments(text, model)
    assert "".join(segs) == text
    assert len(segs) == len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert segs[:3] == ["  the ", "doctor", ", "]


def test_truncation_to_max_tokens_warns_once(tiny_classifier_dir):
    """max_tokens=6 keeps 4 word tokens ([CLS]/[SEP] counted) and records one warning."""
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_classifier_dir))
    ctx = _ctx()
    out = common.fit_texts(ctx, model, ["the cat is happy and sad", "the dog"], max_tokens=6)
    assert out == ["the cat is happy", "the dog"]
    assert len(ctx.warnings) == 1 and "1 of 2 texts were longer than max_tokens of 6" in ctx.warnings[0]


def test_identity_ratio_by_hand():
    """Hand computation: 'she' holds 0.6 of |attribution| and 1/4 of the tokens -> ratio 2.4."""
    segs = ["she ", "is ", "a ", "nurse"]
    ratio, n = common.identity_ratio([segs], [np.array([0.6, -0.2, 0.1, 0.1])], ["she"])
    assert n == 1 and ratio == pytest.approx(2.4)
    assert common.identity_ratio([segs], [np.ones(4)], ["he"]) == (None, 0)  # 'he' is not in 'she'
