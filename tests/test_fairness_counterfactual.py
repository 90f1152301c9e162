"""counterfactual_fairness and identity_term_auc against hand computations and scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audit.checks.fairness import identity as I
from audit.errors import UsageError
from tests.fairness_helpers import make_ctx, metric


class KeywordModel:
    """A transparent classifier: P(positive) = sigmoid(sum of keyword weights present)."""

    alias, kind = "kw", "classifier"
    capabilities = frozenset({"predict_proba"})
    labels = ["calm", "stressed"]

    def __init__(self, weights: dict[str, float]):
        self.weights = weights

    def predict_proba(self, texts):
        z = np.array([sum(w for k, w in self.weights.items()
                          if k in t.lower().replace(",", " ").replace(".", " ").split())
                      for t in texts])
        p = 1 / (1 + np.exp(-z))
        return np.stack([1 - p, p], axis=1)


def test_lexicon_covers_the_seven_axes_with_aligned_forms():
    """Reference: the issue's list of axes; aligned forms are what makes a swap well defined."""
    lex = I.load_lexicon()
    assert set(lex) == {"gender", "race_ethnicity", "religion", "sexual_orientation", "disability",
                        "age", "nationality"}
    for axis in lex.values():
        assert len(axis.groups) >= 2
        assert len({len(forms) for forms in axis.groups.values()}) == 1


def test_swaps_by_hand():
    """Reference: hand-written expected counterfactuals (two-way gender swap, case kept, ambiguous
    words left alone in real text)."""
    lex = I.load_lexicon()
    [(_, _, text)] = I.counterfactual_variants("She told her Dad that he was right.", lex["gender"])
    assert text == "He told his Mom that she was right."
    variants = dict(((s, d), t) for s, d, t in
                    I.counterfactual_variants("Muslims and a muslim friend", lex["religion"]))
    assert variants[("muslim", "jewish")] == "Jews and a Jewish friend"
    assert I.counterfactual_variants("my old car is white", lex["age"]) == []
    assert I.mentioned_groups("my old car", lex["age"], real_text=False) == ["old"]
    assert I.fill("{a_identity} person", "Asian") == "An Asian person"


def test_identity_blind_model_never_flips():
    """Reference: a model that ignores identity terms must give flip rate 0 and score change 0."""
    from audit.checks.fairness.counterfactual_fairness import (CounterfactualParams,
                                                               counterfactual_fairness)

    model = KeywordModel({"terrified": 3.0, "panic": 3.0, "relaxing": -3.0})
    out = counterfactual_fairness(make_ctx(model), CounterfactualParams(n_boot=50))
    assert metric(out, "flip_rate").value == 0.0
    assert metric(out, "max_abs_score_change").value == 0.0
    assert set(metric(out, "flip_rate").by_group) == set(I.load_lexicon())


def test_flip_rate_on_real_inputs_matches_hand_count(tmp_path):
    """Reference: the pairs built by hand and scored with the model directly."""
    from audit.checks.fairness.counterfactual_fairness import (CounterfactualParams,
                                                               counterfactual_fairness)

    texts = ["My Muslim coworker is nice.", "She is tired today.", "Nothing to swap here.",
             "The gay couple next door is loud."]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "inputs.csv", index=False)
    model = KeywordModel({"muslim": 1.0, "tired": 0.2, "she": 0.3, "loud": 0.1})
    out = counterfactual_fairness(make_ctx(model, base_dir=tmp_path), CounterfactualParams(
        data="inputs.csv", templates=None, n_boot=0, max_variants_per_text=50, threshold=0.6,
        axes=["religion", "gender", "sexual_orientation"]))
    lex = I.load_lexicon(axes=["religion", "gender", "sexual_orientation"])
    expected = {}
    for text in texts:
        for axis in lex.values():
            for _, _, new in I.counterfactual_variants(text, axis):
                p0, p1 = model.predict_proba([text, new])[:, 1]
                expected.setdefault(axis.name, []).append((p0 >= 0.6) != (p1 >= 0.6))
    flip = metric(out, "flip_rate")
    # religion: 'Muslim' (p=0.73) -> six other groups (p=0.5 < 0.6): all six flip
    # gender: 'She ... tired' (z=0.5, p=0.622) -> 'He ... tired' (p=0.550): flips
    # orientation: 'gay ... loud' (p=0.525) -> every other group (0.525): no flip
    assert expected["religion"] == [True] * 6 and expected["gender"] == [True]
    assert not any(expected["sexual_orientation"])
    for axis, flips in expected.items():
        assert flip.by_group[axis].value == pytest.approx(np.mean(flips))
        assert flip.by_group[axis].n == len(flips)
    change = metric(out, "max_abs_score_change").by_group["religion"].value
    assert change == pytest.approx(1 / (1 + np.exp(-1.0)) - 0.5)
    assert out.evidence[0]["axis"] == "religion"


def test_cluster_bootstrap_matches_explicit_resampling():
    """Reference: a loop that resamples whole clusters with the same index draws."""
    from audit.checks.fairness.counterfactual_fairness import cluster_bootstrap

    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(30), rng.integers(1, 6, 30))
    values = (rng.random(clusters.size) < 0.3).astype(float)
    low, high = cluster_bootstrap(values, clusters, np.random.default_rng(5), 500, 0.9)
    draws = np.random.default_rng(5).integers(0, 30, size=(500, 30))
    reps = [np.concatenate([values[clusters == c] for c in d]).mean() for d in draws]
    assert (low, high) == pytest.approx(tuple(np.quantile(reps, [0.05, 0.95])), abs=1e-12)


def test_identity_auc_submetrics_match_sklearn_on_subsets(tmp_path):
    """Reference: scikit-learn roc_auc_score on the subsets defined by Borkan et al. (2019):
    subgroup = mentions; BPSN = subgroup negatives + background positives; BNSP = subgroup
    positives + background negatives."""
    from sklearn.metrics import roc_auc_score

    from audit.checks.fairness.identity_term_auc import IdentityAucParams, identity_term_auc

    model = KeywordModel({"muslim": 1.0, "terrified": 2.0, "panic": 1.5, "crying": 1.0,
                          "relaxing": -1.0, "love": -0.5})
    out = identity_term_auc(make_ctx(model), IdentityAucParams(axes=["religion", "age"],
                                                               n_boot=0))
    lex = I.load_lexicon(axes=["religion", "age"])
    rows = pd.DataFrame(I.template_rows(I.load_templates("stress"), lex))
    score = model.predict_proba(rows.text.tolist())[:, 1]
    y = rows.label.to_numpy() == 1
    assert metric(out, "overall_auc").value == pytest.approx(roc_auc_score(y, score))
    for group in ("muslim", "christian", "elderly"):
        axis = "religion" if group in lex["religion"].groups else "age"
        m = (rows.group == group).to_numpy()
        key = f"{axis}:{group}"
        refs = {"subgroup_auc": roc_auc_score(y[m], score[m]),
                "bpsn_auc": roc_auc_score(y[(m & ~y) | (~m & y)], score[(m & ~y) | (~m & y)]),
                "bnsp_auc": roc_auc_score(y[(m & y) | (~m & ~y)], score[(m & y) | (~m & ~y)])}
        for name, ref in refs.items():
            assert metric(out, name).by_group[key].value == pytest.approx(ref, abs=1e-12)
    # 'muslim' raises every score: its negatives look stressed (low BPSN), positives high BNSP
    bpsn = metric(out, "bpsn_auc")
    assert bpsn.by_group["religion:muslim"].value < bpsn.by_group["religion:christian"].value
    assert "religion:muslim" in bpsn.description


def test_generalized_mean_by_hand():
    """Reference: (mean(v^-5))^(-1/5) computed by hand for two values."""
    from audit.checks.fairness.identity_term_auc import generalized_mean

    assert generalized_mean(np.array([0.5, 1.0]), -5) == pytest.approx(((0.5**-5 + 1) / 2) ** -0.2)


def test_identity_auc_on_real_labelled_data_and_one_class_error(tmp_path):
    """Reference: keyword membership counted by hand; a one-class data set is a usage error."""
    from audit.checks.fairness.identity_term_auc import IdentityAucParams, identity_term_auc

    texts = ["I am a Muslim and terrified", "I am a Muslim and calm", "I am Christian and calm",
             "I am Christian and terrified", "nothing here terrified", "nothing calm"]
    pd.DataFrame({"text": texts, "label": [1, 0, 0, 1, 1, 0]}).to_csv(tmp_path / "d.csv",
                                                                      index=False)
    model = KeywordModel({"terrified": 2.0, "muslim": 0.5})
    ctx = make_ctx(model, base_dir=tmp_path)
    out = identity_term_auc(ctx, IdentityAucParams(data="d.csv", axes=["religion"], n_boot=20,
                                                   min_subgroup_size=2))
    sub = metric(out, "subgroup_auc").by_group
    assert sub["religion:muslim"].n == 2 and sub["religion:christian"].n == 2
    assert sub["religion:muslim"].value == 1.0
    pd.DataFrame({"text": texts, "label": [1] * 6}).to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(UsageError, match="one class"):
        identity_term_auc(ctx, IdentityAucParams(data="one.csv", axes=["religion"], n_boot=0))


def test_checks_run_on_a_transformers_classifier(tiny_classifier_dir, tmp_path):
    """Reference: the HF adapter's own predict_proba on the same texts (group selection rate by
    hand; counterfactual pairs of the templates scored directly)."""
    from audit.checks.fairness.counterfactual_fairness import (CounterfactualParams,
                                                               counterfactual_fairness)
    from audit.checks.fairness.group_fairness import GroupFairnessParams, group_fairness
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_classifier_dir), alias="tiny")
    texts = ["the doctor said she was tired", "the nurse said he was fine"] * 20
    data = pd.DataFrame({"text": texts, "label": [0, 1] * 20, "gender": ["f", "m"] * 20})
    data.to_csv(tmp_path / "d.csv", index=False)
    ctx = make_ctx(model, base_dir=tmp_path)
    out = group_fairness(ctx, GroupFairnessParams(sensitive=["gender"], data="d.csv", n_boot=50))
    p = model.predict_proba(texts)[:, 1]
    ref = pd.Series(p >= 0.5).groupby(data.gender).mean()
    assert metric(out, "selection_rate").by_group["f"].value == pytest.approx(ref["f"])
    cf = counterfactual_fairness(ctx, CounterfactualParams(axes=["gender"], n_boot=0))
    rows = [(I.fill(t, "female"), I.fill(t, "male")) for t in
            I.load_templates("stress")["positive"] + I.load_templates("stress")["negative"]]
    a = model.predict_proba([r[0] for r in rows])[:, 1]
    b = model.predict_proba([r[1] for r in rows])[:, 1]
    assert metric(cf, "mean_abs_score_change").value == pytest.approx(np.abs(a - b).mean(), abs=1e-6)
