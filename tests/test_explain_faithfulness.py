"""Comprehensiveness / sufficiency (ERASER AOPC) on a planted-feature model."""

from __future__ import annotations

import re

import numpy as np
import pytest

from audit.checks.explain import faithfulness
from audit.context import CheckContext
from audit.registry import get_check

FILLER = "the a film was made in some city by people who like long walks and quiet evenings".split()


def PlantedModel():  # noqa: N802 - reads like the class it replaced
    """p(pos) = 0.9 when the planted word is present, else 0.1: only one token matters.
    (Matched as a regex word: shap's masker glues "..." to the next word, e.g. "...excellent".)"""
    from tests.mock_models import scripted

    def proba(call):
        p = np.array([0.9 if re.search(r"\bexcellent\b", t.lower()) else 0.1
                      for t in call.args["texts"]])
        return np.stack([1 - p, p], axis=1)

    return scripted({"predict_proba": proba}, kind="classifier", capabilities={"predict_proba"},
                    labels=["neg", "pos"])


def _texts(n: int, length: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        words = list(rng.choice(FILLER, size=length - 1))
        words.insert(int(rng.integers(0, length)), "excellent")
        out.append(" ".join(words))
    return out


def _ctx(model) -> CheckContext:
    return CheckContext(model=model, seed=0, rng=np.random.default_rng(0), check_id="faith", quiet=True)


def test_topk_counts_and_perturbations_by_hand():
    """ceil(k*n) tokens, at least one: n=10 -> 1, 1, 1, 2, 5; deletion keeps text order."""
    assert faithfulness.topk_counts(10, [0.01, 0.05, 0.1, 0.2, 0.5]) == [1, 1, 1, 2, 5]
    segs = ["a ", "b ", "c ", "d"]
    pairs = faithfulness.perturbations(segs, np.array([0.1, 0.9, 0.5, 0.0]), [0.25, 0.5])
    assert pairs == [("a c d", "b"), ("a d", "b c")]


def test_planted_token_is_ranked_first_and_fully_comprehensive():
    """SHAP ranks the planted word first in every text, so deleting the top-k always deletes
    it: comprehensiveness = 0.9 - 0.1 = 0.8 exactly (hand-derived); sufficiency = 0 since the
    planted word alone keeps p = 0.9."""
    spec = get_check("attribution_faithfulness")
    out = spec.fn(_ctx(PlantedModel()), spec.params(texts=_texts(12, 10), methods=["shap", "random"],
                                                    max_evals=100, n_boot=200))
    m = {x.name: x.value for x in out.metrics}
    assert m["shap_comprehensiveness"] == pytest.approx(0.8, abs=1e-9)
    assert m["shap_sufficiency"] == pytest.approx(0.0, abs=1e-9)
    assert all(ev["top_tokens"]["shap"][0] == "excellent" for ev in out.evidence)
    assert m["shap_comprehensiveness_minus_random"] > 0.3


def test_random_attributions_have_no_excess_faithfulness():
    """Random rankings: comprehensiveness equals its analytic (hypergeometric) expectation,
    i.e. excess faithfulness over chance ~ 0. 60 texts x 20 draws; n=10 tokens, bins
    1, 1, 1, 2, 5 tokens -> expected 0.8 * mean(.1, .1, .1, .2, .5) = 0.16."""
    spec = get_check("attribution_faithfulness")
    out = spec.fn(_ctx(PlantedModel()), spec.params(texts=_texts(60, 10, seed=1), methods=["random"],
                                                    n_random=20, n_boot=200))
    m = {x.name: x.value for x in out.metrics}
    expected = faithfulness.expected_random_comprehensiveness(10, 1, faithfulness.DEFAULT_FRACTIONS, 0.8)
    assert expected == pytest.approx(0.16)
    assert m["random_comprehensiveness"] - expected == pytest.approx(0.0, abs=0.02)


def test_bad_fractions_are_rejected():
    """A fraction outside (0, 1] is a parameter error (pydantic, reported as usage by the runner)."""
    spec = get_check("attribution_faithfulness")
    with pytest.raises(ValueError):
        spec.params(fractions=[0.0, 0.5])
