"""Chinese probe data: template sets, minimal pairs and identity-lexicon entries, and the bias
and counterfactual checks run on them through scripted models.

Independent references: template filling against plain ``str.replace`` (Chinese needs no
spacing rules); causal template associations and pair preferences recomputed in this file from
the scripted model's log-probabilities with plain string slicing; minimal-pair structure checked
with ``difflib``; counterfactual swaps against hand-written expected sentences.
"""

from __future__ import annotations

import csv
import difflib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from audit.checks.bias import probes as P
from audit.context import CheckContext
from audit.models.mock import MockAdapter

ZH_SETS = ["gender_occupations_zh", "hukou_zh", "region_zh", "age_zh", "ethnicity_zh",
           "disability_zh"]
PAIRS = P.PROBES_DIR / "pairs_zh.csv"


def _raw(name: str) -> dict:
    return json.loads((P.PROBES_DIR / f"{name}.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- template sets
@pytest.mark.parametrize("name", ZH_SETS)
def test_zh_template_sets_shape(name: str) -> None:
    """Each set validates, is shipped under its bare name, writes Chinese without spaces, puts
    the group before the target, has >= 6 templates, >= 20 targets, >= 2 groups, no duplicates."""
    from audit.checks.bias.template_bias import TemplateBiasParams

    raw = _raw(name)
    probes = P.validate_template_probes(raw, name)
    TemplateBiasParams(probes=name)  # a bare shipped name passes validation
    assert raw["language"] == "zh" and name in P.TEMPLATE_PROBES
    assert len(probes.templates) >= 6 and len(probes.targets) >= 20 and len(probes.groups) >= 2
    assert len(set(probes.targets)) == len(probes.targets)
    terms = [t for ts in probes.groups.values() for t in ts]
    assert len(set(terms)) == len(terms)
    for t in probes.templates:
        assert " " not in t and t.index(P.GROUP_SLOT) < t.index(P.TARGET_SLOT)


def test_zh_axes_cover_gender_region_and_more() -> None:
    """Gender x occupations, the China-specific region/hukou axis, and at least one more axis."""
    axes = {_raw(n)["axis"] for n in ZH_SETS}
    assert {"gender", "region"} < axes and len(axes) >= 4
    assert set(_raw("hukou_zh")["groups"]) == {"urban_hukou", "rural_hukou", "migrant"}


@pytest.mark.parametrize("name", ZH_SETS)
def test_zh_filling_is_plain_substitution(name: str) -> None:
    """fill_spans on every Chinese template equals str.replace (no capitalisation, articles or
    spaces), and the returned spans cut out exactly the group term and the target."""
    probes = P.validate_template_probes(_raw(name), name)
    term = next(iter(probes.groups.values()))[0]
    for template in probes.templates:
        for target in probes.targets[:5]:
            text, g, t = P.fill_spans(template, term, target)
            assert text == template.replace("[GROUP]", term).replace("[TARGET]", target)
            assert text[g[0]:g[1]] == term and text[t[0]:t[1]] == target


def _char_lp(texts: list[str]) -> np.ndarray:
    """A scripted 'model': log-probability = -sum of per-character costs, where 护 and 士 are
    cheap after 她 anywhere before them (a planted gender-occupation association)."""
    out = []
    for s in texts:
        cost = 0.0
        for i, ch in enumerate(s):
            c = 1.0 + (ord(ch) % 7) / 10
            if ch in "护士" and "她" in s[:i]:
                c -= 0.5
            cost += c
        out.append(-cost)
    return np.array(out)


def _mock_lm() -> MockAdapter:
    def handler(call):
        if call.method == "continuation_log_prob":   # log P(prompt + continuation) - log P(prompt)
            full = [p + c for p, c in zip(call.args["prompts"], call.args["continuations"])]
            return _char_lp(full) - _char_lp(call.args["prompts"])
        assert call.method == "sequence_log_prob", call.method
        return _char_lp(call.args["texts"])
    return MockAdapter(handler, capabilities={"sequence_log_prob"})


def _ctx(model) -> CheckContext:
    return CheckContext(model=model, seed=0, rng=np.random.default_rng(0), quiet=True,
                        check_id="zh")


def test_template_bias_causal_on_chinese_matches_hand_computation() -> None:
    """template_bias on gender_occupations_zh (2 templates, 4 targets): each group's mean equals
    log P(prefix + target) - log P(prefix) computed here by slicing the filled template at the
    target; the planted 她 -> 护士 association gives 护士 the largest gap, female side."""
    from audit.checks.bias.template_bias import TemplateBiasParams, template_bias

    params = TemplateBiasParams(probes="gender_occupations_zh", max_templates=2, max_targets=4,
                                n_boot=200)
    out = template_bias(_ctx(_mock_lm()), params)
    raw = _raw("gender_occupations_zh")
    for group, terms in raw["groups"].items():
        vals = []
        for tmpl in raw["templates"][:2]:
            for target in raw["targets"][:4]:
                for term in terms:
                    before = tmpl.replace("[GROUP]", term).split("[TARGET]")[0]
                    vals.append(_char_lp([before + target])[0] - _char_lp([before])[0])
        got = next(m for m in out.metrics if m.name == "group_association").by_group[group].value
        assert got == pytest.approx(np.mean(vals))
    table = next(f for f in out.figures if f.kind == "table")
    assert table.data["rows"][0][:2] == ["护士", "female"]


# --------------------------------------------------------------------------- minimal pairs
def _pairs() -> list[dict[str, str]]:
    with open(PAIRS, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_pairs_file_shape() -> None:
    """>= 100 pairs, >= 5 bias types with >= 8 pairs each, both directions, no duplicates, CrowS
    columns, full-width sentence punctuation and no spaces."""
    rows = _pairs()
    types = Counter(r["bias_type"] for r in rows)
    assert len(rows) >= 100 and len(types) >= 5 and min(types.values()) >= 8
    assert {r["stereo_antistereo"] for r in rows} == {"stereo", "antistereo"}
    assert len({(r["sent_more"], r["sent_less"]) for r in rows}) == len(rows)
    for r in rows:
        for s in (r["sent_more"], r["sent_less"]):
            assert " " not in s and s.endswith("。")


def test_pairs_differ_only_in_the_group_term() -> None:
    """Per pair, difflib over characters finds at most two differing stretches (a group term and,
    in a few pairs, its pronoun), each at most six characters, and the shared characters make up
    at least 60% of the longer sentence."""
    for r in _pairs():
        a, b = r["sent_more"], r["sent_less"]
        ops = [o for o in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
               if o[0] != "equal"]
        assert 1 <= len(ops) <= 2, (a, b)
        assert max(max(o[2] - o[1], o[4] - o[3]) for o in ops) <= 6, (a, b)
        shared = max(len(a), len(b)) - max(sum(o[2] - o[1] for o in ops),
                                           sum(o[4] - o[3] for o in ops))
        assert shared / max(len(a), len(b)) >= 0.6, (a, b)


def test_pair_preference_on_chinese_pairs_matches_hand_count() -> None:
    """pair_preference (data: pairs_zh) with the scripted LM: stereotype_preference_pct equals the
    share of pairs whose sent_more scores higher, counted here from the same log-probabilities;
    per bias type too."""
    from audit.checks.bias.pair_preference import PairPreferenceParams, pair_preference

    out = pair_preference(_ctx(_mock_lm()), PairPreferenceParams(data="pairs_zh", n_boot=200))
    rows = _pairs()
    more = _char_lp([r["sent_more"] for r in rows])
    less = _char_lp([r["sent_less"] for r in rows])
    win = np.round(more, 3) > np.round(less, 3)
    main = out.metrics[0]
    assert main.name == "stereotype_preference_pct" and main.value == pytest.approx(100 * win.mean())
    for t, gv in main.by_group.items():
        sel = np.array([r["bias_type"] == t for r in rows])
        assert gv.value == pytest.approx(100 * win[sel].mean()) and gv.n == sel.sum()


# --------------------------------------------------------------------------- identity lexicon
def test_lexicon_default_is_english_and_zh_axes_load() -> None:
    """The default lexicon is unchanged (seven English axes); zh.* axes load from the zh section;
    an unknown zh axis is a usage error naming the choices."""
    from audit.checks.fairness import identity as I
    from audit.errors import UsageError

    assert list(I.load_lexicon()) == ["gender", "race_ethnicity", "religion",
                                      "sexual_orientation", "disability", "age", "nationality"]
    zh = I.load_lexicon(axes=["zh.gender", "zh.hukou", "zh.region", "zh.ethnicity", "zh.age",
                              "zh.disability"])
    assert all(len(set(len(f) for f in a.groups.values())) == 1 for a in zh.values())
    with pytest.raises(UsageError, match="zh.gender"):
        I.load_lexicon(axes=["zh.nope"])


@pytest.mark.parametrize("text,expected", [
    ("她妈妈是一名护士。", "他爸爸是一名护士。"),
    ("他和其他同事都说她是好姐姐。", "她和其他同事都说他是好哥哥。"),
    ("我女朋友会弹吉他。", "我男朋友会弹吉他。"),
    ("这位先生的女儿很聪明。", "这位女士的儿子很聪明。"),
])
def test_zh_gender_swaps_inside_running_text(text: str, expected: str) -> None:
    """Chinese terms are matched without word boundaries, longest first (女朋友 before 女), both
    ways at once, and never inside the not_within words (其他, 吉他)."""
    from audit.checks.fairness import identity as I

    axis = I.load_lexicon(axes=["zh.gender"])["zh.gender"]
    (_, _, swapped), = I.counterfactual_variants(text, axis)
    assert swapped == expected


def test_counterfactual_fairness_on_chinese_inputs(tmp_path: Path) -> None:
    """counterfactual_fairness with axes [zh.gender, zh.hukou] on Chinese inputs and a scripted
    classifier that scores 农村 and 她 as risky: the flip rate per axis equals the hand count."""
    from audit.checks.fairness.counterfactual_fairness import (CounterfactualParams,
                                                               counterfactual_fairness)

    texts = ["她在工厂上班，最近压力很大。", "他是农村户口，想在城里买房。", "今天天气很好。",
             "我妈妈是城市户口，她退休了。"]
    (tmp_path / "inputs.csv").write_text("text\n" + "\n".join(texts) + "\n", encoding="utf-8")

    def handler(call):
        p = np.array([0.3 + 0.3 * ("农村" in t) + 0.25 * ("她" in t) for t in call.args["texts"]])
        return np.stack([1 - p, p], axis=1)

    model = MockAdapter(handler, kind="classifier", capabilities={"predict_proba"})
    ctx = CheckContext(model=model, seed=0, rng=np.random.default_rng(0), quiet=True,
                       check_id="cf", base_dir=tmp_path)
    params = CounterfactualParams(data="inputs.csv", templates=None,
                                  axes=["zh.gender", "zh.hukou"], n_boot=0)
    out = counterfactual_fairness(ctx, params)
    flips = next(m for m in out.metrics if m.name == "flip_rate")
    # gender pairs: text0 她->他 (0.55 -> 0.30, flip), text1 他->她 (0.60 -> 0.85, no flip),
    # text3 妈妈/她 -> 爸爸/他 (0.55 -> 0.30, flip): 2/3. Text 2 mentions no one.
    # hukou pairs: text1 (0.60 -> 0.30, flip), text3 (0.55 -> 0.85, no flip): 1/2.
    assert flips.by_group["zh.gender"].value == pytest.approx(2 / 3)
    assert flips.by_group["zh.hukou"].value == pytest.approx(0.5)
