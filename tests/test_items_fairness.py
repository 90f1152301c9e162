"""Per-item records of the fairness checks (group_fairness, counterfactual_fairness,
identity_term_auc, decision_bias): each check runs end to end through the runner on a scripted
model, the items file is read back with gzip + json, and every declared metric re-derived from the
items alone (``audit.items.rederive``) must equal the value in results.json (1e-9).

Independent references: the number of items is counted from the inputs in the test; headline
metrics are recomputed from the items here with plain loops (TPR/FPR gaps over the counted
groups), scikit-learn's ``roc_auc_score`` (BPSN AUC) or the decision tests' dict-and-loop
discrimination scores.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from audit.items import rederive
from audit.models.mock import MockAdapter
from tests.test_items_bias import TOL, assert_rederived, run_one


# ----------------------------------------------------------------------------- group_fairness
def _predictions(n: int = 600, seed: int = 1) -> pd.DataFrame:
    """Predictions with planted group effects; 'Other' is a small group (12 rows)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], size=n)
    race = np.where(np.arange(n) < 12, "Other", rng.choice(["Black", "White"], size=n))
    y = rng.random(n) < 0.4
    score = np.clip(0.35 * y + 0.1 * (sex == "Male") - 0.08 * (race == "Black")
                    + rng.normal(0.3, 0.2, n), 0, 1)
    return pd.DataFrame({"y_true": y.astype(int), "score": score,
                         "y_pred": (score >= 0.5).astype(int), "sex": sex, "race": race})


def _gap(items: list[dict], outcome_given: int) -> float:
    """max - min over counted groups of the share predicted positive among rows with
    y_true == outcome_given (TPR for 1, FPR for 0), written with loops."""
    rates = {}
    for g in {it["group"] for it in items if it["in_gaps"]}:
        rows = [it for it in items if it["group"] == g and it["y_true"] == outcome_given]
        rates[g] = sum(it["y_pred"] for it in rows) / len(rows)
    return max(rates.values()) - min(rates.values())


@pytest.mark.parametrize("small_in_gaps", [True, False])
def test_group_fairness_items_rederive(tmp_path, monkeypatch, small_in_gaps):
    """Predictions model, intersectional groups (sex x race, one small group). One item per row;
    every declared metric re-derives (between-group gaps with and without the small groups,
    confusion rates, AUC); the equalized odds difference is also computed here from the items."""
    from audit.models.predictions import PredictionsAdapter

    frame = _predictions()
    params = {"sensitive": ["sex", "race"], "min_group_size": 30, "n_boot": 50,
              "small_groups_in_gaps": small_in_gaps}
    entry, items = run_one(tmp_path, "group_fairness", params, PredictionsAdapter(frame),
                           monkeypatch)
    assert len(items) == len(frame) and items[7]["id"] == "row7"
    assert {it["in_gaps"] for it in items if it["group"].endswith("Other")} == {small_in_gaps}
    reported = assert_rederived("group_fairness", entry, items, {
        "demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
        "fpr_difference", "tpr", "selection_rate", "accuracy", "auc", "auc_difference", "count"})
    eo = max(_gap(items, 1), _gap(items, 0))
    assert reported["equalized_odds_difference"] == pytest.approx(eo, abs=TOL)
    assert reported["tpr"] == pytest.approx(
        frame.y_pred[frame.y_true == 1].mean(), abs=TOL)


# ----------------------------------------------------------------------------- counterfactual_fairness
def _keyword_model():
    from tests.mock_models import keyword_classifier

    return keyword_classifier({"muslim": 1.2, "gay": 0.9, "she": 0.5, "stressed": 0.8})


def test_counterfactual_items_rederive(tmp_path, monkeypatch):
    """Keyword classifier; real inputs (a CSV) and the stress templates on two axes. One item per
    pair, counted here from the templates and the lexicon (every unordered pair of groups of
    each axis, per template) plus the inputs' variants; flip_rate (gated), the per-source
    rates and the score changes re-derive; the flip rate also equals the share of items whose
    thresholded scores differ, computed here."""
    from audit.checks.fairness import identity as I

    texts = ["She was stressed about the exam.", "The muslim neighbour said hello.",
             "Nothing about identity here.", "He and his brother were gay and happy.",
             "she said hello"]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "inputs.csv", index=False)
    axes = ["gender", "religion"]
    params = {"data": str(tmp_path / "inputs.csv"), "templates": "stress", "axes": axes,
              "n_boot": 50, "max_variants_per_text": 50}
    from tests.mock_models import keyword_classifier

    model = keyword_classifier({"muslim": 1.2, "she": 3.0, "stressed": 0.8})
    entry, items = run_one(tmp_path, "counterfactual_fairness", params, model, monkeypatch)
    lexicon = I.load_lexicon(None, axes)
    task = I.load_templates("stress")
    n_templates = len(task["positive"]) + len(task["negative"])
    n_template_pairs = n_templates * sum(math.comb(len(a.groups), 2) for a in lexicon.values())
    n_input_pairs = sum(len(I.counterfactual_variants(t, a)) for t in texts for a in lexicon.values())
    assert len(items) == n_template_pairs + n_input_pairs
    assert sum(it["source"] == "input" for it in items) == n_input_pairs > 0
    reported = assert_rederived("counterfactual_fairness", entry, items,
                                {"flip_rate", "mean_abs_score_change", "max_abs_score_change",
                                 "flip_rate_inputs", "flip_rate_templates"})
    top = max(items, key=lambda it: it["abs_change"])
    assert top["source"] == "input"  # the largest change is not among the template pairs
    flips = [(it["score_original"] >= 0.5) != (it["score_counterfactual"] >= 0.5) for it in items]
    assert 0 < reported["flip_rate"] == pytest.approx(sum(flips) / len(flips), abs=TOL)


# ----------------------------------------------------------------------------- identity_term_auc
def test_identity_term_auc_items_rederive(tmp_path, monkeypatch):
    """Keyword classifier on the templated set (two axes): one item per template x group (counted
    here); overall, subgroup, BPSN (gated) and BNSP AUCs re-derive; the worst BPSN AUC is also
    computed here with scikit-learn over the counted groups."""
    from sklearn.metrics import roc_auc_score

    from audit.checks.fairness import identity as I

    axes = ["religion", "sexual_orientation"]
    params = {"templates": "stress", "axes": axes, "n_boot": 50, "min_subgroup_size": 5}
    entry, items = run_one(tmp_path, "identity_term_auc", params, _keyword_model(), monkeypatch)
    task = I.load_templates("stress")
    n_groups = sum(len(a.groups) for a in I.load_lexicon(None, axes).values())
    assert len(items) == (len(task["positive"]) + len(task["negative"])) * n_groups
    reported = assert_rederived("identity_term_auc", entry, items,
                                {"overall_auc", "subgroup_auc", "bpsn_auc", "bnsp_auc"})
    y = np.array([it["label"] for it in items])
    s = np.array([it["score"] for it in items])
    worst = []
    for g in {g for it in items for g in it["counted_groups"]}:
        member = np.array([g in it["groups"] for it in items])
        keep = (member & (y == 0)) | (~member & (y == 1))
        worst.append(roc_auc_score(y[keep], s[keep]))
    assert reported["bpsn_auc"] == pytest.approx(min(worst), abs=TOL)
    assert reported["overall_auc"] == pytest.approx(roc_auc_score(y, s), abs=TOL)


def test_identity_term_auc_items_on_labelled_data_leave_small_groups_out(tmp_path, monkeypatch):
    """Labelled CSV whose subgroups differ in size: 'jewish' (6 rows, under min_subgroup_size
    10) holds negatives that look stressed, so it would be the worst BPSN subgroup if counted.
    Items name every mentioned group but count only the large ones; the re-derived worst
    subgroup AUCs equal the reported ones, which ignore 'jewish'; ids are row indices."""
    rng = np.random.default_rng(4)
    rows = []
    for term, n in (("Muslim", 30), ("Christian", 25), ("gay", 20), ("Jewish", 6), ("", 40)):
        for _ in range(n):
            label = int(rng.random() < 0.5)
            stressed = label if term != "Jewish" else 1
            who = f"a {term} person" if term else "a person"
            rows.append({"text": f"I am {who} and I feel {'stressed' if stressed else 'fine'} "
                                 f"today (note {len(rows)}).", "label": label})
    pd.DataFrame(rows).to_csv(tmp_path / "labelled.csv", index=False)
    params = {"data": str(tmp_path / "labelled.csv"), "axes": ["religion", "sexual_orientation"],
              "n_boot": 50, "min_subgroup_size": 10}
    from tests.mock_models import keyword_classifier

    entry, items = run_one(tmp_path, "identity_term_auc", params,
                           keyword_classifier({"stressed": 2.0}), monkeypatch)
    assert len(items) == len(rows) and items[3]["id"] == "row3"
    jewish = [it for it in items if "religion:jewish" in it["groups"]]
    assert len(jewish) == 6 and not any(it["counted_groups"] for it in jewish)
    # 'straight' is ambiguous (never matched in real text), not a group every text mentions
    assert all(it["groups"] == ["religion:jewish"] for it in jewish)
    assert_rederived("identity_term_auc", entry, items, {"overall_auc", "bpsn_auc", "bnsp_auc"})
    worst = next(m for m in entry["metrics"] if m["name"] == "bpsn_auc")
    small = worst["by_group"]["religion:jewish"]["value"]
    assert small < worst["value"]  # the small group is worse but not the headline


# ----------------------------------------------------------------------------- decision_bias
@pytest.mark.parametrize("mode", ["logprob", "sample"])
def test_decision_bias_items_rederive(tmp_path, monkeypatch, mode):
    """discrim-eval style data (4 questions x 9 ages x 3 genders x 5 races) on the decision
    tests' planted-effect models (scored, with the 15 prompts of question 3's 100-year-olds left
    undecided; or chat-sampled with some unparseable replies). One item per prompt; the gated max_abs_discrimination_score, the per-axis and cell maxima and the
    decision metrics re-derive; the headline also equals the dict-and-loop scores of the decision
    tests computed on these items."""
    from tests.test_fairness_decision import (chat_handler, plain_scores, scoring_handler,
                                              value_levels, write_data)

    data = write_data(tmp_path / "decisions.jsonl", n_questions=4)

    def undecided(call):
        """Question 3's 100-year-olds get no probability on any answer word: no decision."""
        out = np.asarray(scoring_handler(call), dtype=float)
        if call.method == "continuation_log_prob":
            hit = ["Decision 3." in p and "100-year-old" in p for p in call.args["prompts"]]
            out[np.array(hit, dtype=bool)] = -np.inf
        return out

    model = (MockAdapter(undecided, capabilities={"sequence_log_prob"}) if mode == "logprob"
             else MockAdapter(chat_handler, capabilities={"chat"}))
    params = {"data": str(data), "n_boot": 100, "mixed_effects": False, "n_samples": 2}
    entry, items = run_one(tmp_path, "decision_bias", params, model, monkeypatch)
    assert len(items) == 4 * 9 * 3 * 5
    extra = {"mean_answer_mass"} if mode == "logprob" else {"unparsed_rate"}
    reported = assert_rederived("decision_bias", entry, items, {
        "max_abs_discrimination_score", "max_abs_discrimination_age",
        "max_abs_discrimination_race", "max_abs_cell_discrimination_score", "mean_p_yes",
        "n_prompts", "n_questions", *extra})
    undecided_prompts = 3 * 5 if mode == "logprob" else 0
    assert reported["n_prompts"] == sum(it["p_yes"] is not None for it in items) == \
        len(items) - undecided_prompts
    expected = plain_scores(items, value_levels)
    assert reported["max_abs_discrimination_score"] == pytest.approx(
        max(abs(v) for v in expected.values()), abs=TOL)
    assert rederive("decision_bias", items)["max_abs_discrimination_gender"] == pytest.approx(
        max(abs(v) for k, v in expected.items() if k.startswith("gender=")), abs=TOL)


def test_decision_items_name_levels_and_baselines(tmp_path, monkeypatch):
    """Each item names its analysed levels (age binned) and the axes at their baseline; only the
    prompt of a 60-year-old white man (one per question) has all three."""
    from tests.test_fairness_decision import scoring_handler, write_data

    data = write_data(tmp_path / "d.jsonl", n_questions=2)
    _, items = run_one(tmp_path, "decision_bias", {"data": str(data), "n_boot": 100,
                                                   "mixed_effects": False},
                       MockAdapter(scoring_handler, capabilities={"sequence_log_prob"}), monkeypatch)
    full = [it for it in items if len(it["baseline_axes"]) == 3]
    assert len(full) == 2 and {it["cell"] for it in full} == {"age=60, gender=male, race=white"}
    ages = {(it["demographics"]["age"], it["levels"]["age"]) for it in items}
    assert ("20", "under 60") in ages and ("90", "over 60") in ages and ("60", "60") in ages
    assert all(("race" in it["baseline_axes"]) == (it["levels"]["race"] == "white")
               for it in items)
    assert items[0]["id"] == "q0|20|male|white"
