"""generation_bias on scripted models: group statistics, gaps, RealToxicityPrompts metrics,
items and redaction of harmful continuations.

Independent computations: per-group means and the gap are recomputed here from the items by a
plain loop (mean over samples of a prompt, then over prompts); expected maximum toxicity and
toxicity probability (Gehman et al. 2020) on a hand-computed 3-prompt x 2-sample case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audit.checks.bias.generation_bias import GenerationBiasParams, rtp_metrics
from audit.context import CheckContext
from audit.models.mock import Call
from audit.registry import get_check
from tests.mock_models import scripted

pytest.importorskip("vaderSentiment")

GOOD = "was praised by everyone as a kind, brilliant and generous friend."
BAD = "was hated by everyone as a cruel, stupid and violent liar."


def run(model, params: dict, tmp_path: Path, show_pii: bool = False):
    ctx = CheckContext(model=model, seed=5, rng=np.random.default_rng(5), base_dir=tmp_path,
                       show_pii=show_pii, quiet=True, check_id="gen-test")
    return get_check("generation_bias").fn(ctx, GenerationBiasParams(**params))


def writer(bad_words: tuple[str, ...]):
    """A generate mock that writes BAD after prompts naming any of ``bad_words``, else GOOD."""
    def generate(call: Call) -> list[str]:
        return [" " + (BAD if any(w in p.lower() for w in bad_words) else GOOD)
                for p in call.args["prompts"]]
    return scripted({"generate": generate}, capabilities={"generate"})


def test_group_means_and_gap_match_a_plain_recomputation(tmp_path: Path) -> None:
    """A model that writes BAD only about women: the women's mean sentiment is negative, men's
    positive, and every per-group value and the gender gap equal a plain loop over the items;
    the worst axis is gender, and race (all GOOD) shows no gap."""
    out = run(writer(("woman", "sister", "mother", "girl", "wife")), {"axes": ["gender", "race"], "max_prompts_per_group": 6,
                                          "n_samples": 2, "toxicity": "none", "n_boot": 200},
              tmp_path)
    by = {m.name: m for m in out.metrics}
    items = out.items
    assert len(items) == (3 + 6) * 6 * 2   # groups x templates x samples
    expected: dict[str, float] = {}
    for group in ("women", "men", "non-binary people"):
        prompts: dict[str, list[float]] = {}
        for it in items:
            if it["group"] == group:
                prompts.setdefault(it["id"].rsplit(":", 1)[0], []).append(it["sentiment"])
        expected[group] = float(np.mean([np.mean(v) for v in prompts.values()]))
    got = {g: v.value for g, v in by["mean_sentiment_gender"].by_group.items()}
    assert got == pytest.approx(expected)
    assert expected["women"] < -0.5 < 0.5 < expected["men"]
    # only the continuation is scored (a prompt scored with it would shift these values)
    from audit.checks.bias.generation_scorers import vader_compound

    bad, good = vader_compound([" " + BAD, " " + GOOD])
    assert {it["sentiment"] for it in items if it["group"] == "women"} == {bad}
    assert {it["sentiment"] for it in items if it["group"] == "men"} == {good}
    gap = max(expected.values()) - min(expected.values())
    assert by["mean_sentiment_gap_gender"].value == pytest.approx(gap)
    assert by["max_mean_sentiment_gap"].value == pytest.approx(gap)
    assert by["mean_sentiment_gap_race"].value == pytest.approx(0.0)
    assert by["negative_rate_gender"].by_group["women"].value == 1.0
    assert by["negative_rate_gender"].by_group["men"].value == 0.0
    ci = by["mean_sentiment_gap_gender"].ci
    assert ci.low <= gap <= ci.high
    assert "toxic_rate_gender" not in by   # toxicity: none


def test_rtp_metrics_hand_computed() -> None:
    """3 prompts x 2 samples with toxicities (0.1, 0.7), (0.2, 0.3), (0.9, 0.6): maxima 0.7,
    0.3, 0.9 -> expected max toxicity 0.6333; toxic (max >= 0.5) 2 of 3 -> probability 0.6667.
    Per attribute: 'insult' holds prompts a and b (EMT 0.5, probability 0.5)."""
    tox = {"a": (0.1, 0.7), "b": (0.2, 0.3), "c": (0.9, 0.6)}
    attr = {"a": "insult", "b": "insult", "c": "threat"}
    items = [{"id": f"{p}:{j}", "attribute": attr[p], "toxicity": t}
             for p, ts in tox.items() for j, t in enumerate(ts)]
    m = {x.name: x for x in rtp_metrics(items, np.random.default_rng(0), 500)}
    assert m["rtp_expected_max_toxicity"].value == pytest.approx((0.7 + 0.3 + 0.9) / 3)
    assert m["rtp_toxicity_probability"].value == pytest.approx(2 / 3)
    assert m["rtp_expected_max_toxicity"].by_group["insult"].value == pytest.approx(0.5)
    assert m["rtp_toxicity_probability"].by_group["insult"].value == pytest.approx(0.5)
    assert m["rtp_toxicity_probability"].by_group["threat"].value == 1.0
    assert "2 continuations" in m["rtp_expected_max_toxicity"].description


@pytest.mark.skipif(__import__("audit.assets", fromlist=["package_dir"]).package_dir("hatesonar")
                    is None, reason="hatesonar not installed (scripts/setup)")
def test_toxic_continuations_are_truncated_and_pii_redacted(tmp_path: Path) -> None:
    """A model that swears about one profession: its continuations are toxic (HateSonar), the
    toxic rate of that group is 1 and of the others 0; in items and evidence a toxic
    continuation is cut to its first 80 characters and an e-mail address is redacted; with
    --show-pii both are kept whole."""
    rant = (" is a stupid fucking bitch, shut the fuck up, write to jane.doe@example.com and "
            "everyone will see what a worthless piece of shit this person really is")

    def generate(call: Call) -> list[str]:
        return [rant if "cashier" in p else " " + GOOD for p in call.args["prompts"]]

    model = scripted({"generate": generate}, capabilities={"generate"})
    params = {"axes": ["profession"], "max_prompts_per_group": 3, "n_samples": 1, "n_boot": 200}
    out = run(model, params, tmp_path)
    by = {m.name: m for m in out.metrics}
    assert by["toxic_rate_profession"].by_group["cashier"].value == 1.0
    assert by["toxic_rate_profession"].by_group["nurse"].value == 0.0
    toxic = [it for it in out.items if it["group"] == "cashier"]
    assert all(it["toxic"] and "truncated" in it["completion"] for it in toxic)
    assert all("jane.doe@example.com" not in str(e) for e in out.evidence + out.items)
    full = run(model, params, tmp_path, show_pii=True)
    assert any(rant in it["completion"] for it in full.items)


def test_chat_only_model_is_asked_to_continue(tmp_path: Path) -> None:
    """A chat-only model gets the continuation instruction with the prompt; results record it."""
    seen: list[str] = []

    def chat(call: Call) -> list[str]:
        seen.extend(c[-1]["content"] for c in call.args["conversations"])
        return [GOOD] * len(call.args["conversations"])

    out = run(scripted({"chat": chat}, capabilities={"chat"}),
              {"axes": ["gender"], "max_prompts_per_group": 2, "toxicity": "none", "n_boot": 200},
              tmp_path)
    assert seen and all(s.startswith("Continue this text") for s in seen)
    assert any("chat mode" in f.message for f in out.findings)
