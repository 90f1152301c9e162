"""Chinese probes and Chinese PII prompts on the real offline models (slow: AUDIT_SLOW=1).

Independent references: the model's own ``sequence_log_prob`` called directly in the test and
combined by plain arithmetic (pair wins; template association = log P(prefix + target) -
log P(prefix)); the built-in PII detector re-run on the stored generations.
"""

from __future__ import annotations

import numpy as np
import pytest

from audit.context import CheckContext

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma():
    """Gemma 3 270M base (multilingual-lm), loaded once; skipped where the asset is missing."""
    from audit.assets import resolve_model
    from audit.errors import UsageError
    from audit.models.hf import load_hf

    try:
        folder = resolve_model("multilingual-lm")
    except UsageError as exc:
        pytest.skip(f"multilingual-lm not available: {exc}")
    return load_hf(str(folder), batch_size=32)


def _ctx(model, check_id: str = "zh") -> CheckContext:
    return CheckContext(model=model, seed=0, rng=np.random.default_rng(0), quiet=True,
                        check_id=check_id)


def test_gemma_prefers_ordered_chinese(gemma) -> None:
    """Sanity of the multilingual model on Chinese: a sentence scores far higher than the same
    characters shuffled (so its Chinese probe scores are not noise)."""
    text = "今天天气很好，我们去公园散步吧。"
    shuffled = "".join(np.random.default_rng(0).permutation(list(text)))
    ordered, mixed = gemma.sequence_log_prob([text, shuffled])
    assert ordered > mixed + 15


def test_pairs_zh_on_gemma_match_direct_scores(gemma) -> None:
    """pair_preference on 30 sampled Chinese pairs: the stereotype preference equals the share of
    pairs whose sent_more has the higher log-probability, computed here from direct calls."""
    from audit.checks.bias.pair_preference import PairPreferenceParams, pair_preference

    out = pair_preference(_ctx(gemma), PairPreferenceParams(data="pairs_zh", max_pairs=30,
                                                            n_boot=200, evidence_rows=30))
    rows = out.evidence
    more = gemma.sequence_log_prob([r["sent_more"] for r in rows])
    less = gemma.sequence_log_prob([r["sent_less"] for r in rows])
    wins = np.round(more, 3) > np.round(less, 3)
    assert len(rows) == 30
    assert out.metrics[0].value == pytest.approx(100 * wins.mean())
    np.testing.assert_allclose([r["score_more"] for r in rows], more, atol=1e-3)


def test_template_zh_on_gemma_matches_direct_scores(gemma) -> None:
    """template_bias on gender_occupations_zh (1 template, 4 targets): the female and male means
    equal log P(prefix + target) - log P(prefix) from direct calls, averaged by hand."""
    import json

    from audit.checks.bias.probes import PROBES_DIR
    from audit.checks.bias.template_bias import TemplateBiasParams, template_bias

    raw = json.loads((PROBES_DIR / "gender_occupations_zh.json").read_text(encoding="utf-8"))
    out = template_bias(_ctx(gemma), TemplateBiasParams(probes="gender_occupations_zh",
                                                        max_templates=1, max_targets=4, n_boot=200))
    by_group = next(m for m in out.metrics if m.name == "group_association").by_group
    tmpl = raw["templates"][0]
    for group, terms in raw["groups"].items():
        diffs = []
        for term in terms:
            before = tmpl.split("[TARGET]")[0].replace("[GROUP]", term)
            for target in raw["targets"][:4]:
                lp_with, lp_before = gemma.sequence_log_prob([before + target, before])
                diffs.append(lp_with - lp_before)
        assert by_group[group].value == pytest.approx(np.mean(diffs), abs=1e-3)


def test_pii_leakage_zh_on_gemma_is_redacted(gemma, tmp_path) -> None:
    """pii_leakage (language zh) on six Chinese prompts with Gemma: every generation is an item,
    and no stored generation contains anything the built-in detector still finds."""
    import json

    from audit.checks.privacy import pii_leakage as pl
    from audit.pii import detect_builtin

    prompts = json.loads(pl.packaged("pii_prompts_zh.json").read_text(encoding="utf-8"))["prompts"]
    chosen = [p for p in prompts if p["id"] in ("mobile-4", "id-1", "id-3", "bank-2", "uscc-3",
                                                 "address-1")]
    (tmp_path / "prompts.json").write_text(json.dumps({"prompts": chosen}, ensure_ascii=False),
                                           encoding="utf-8")
    ctx = _ctx(gemma, "pii-zh")
    ctx.base_dir = tmp_path
    out = pl.pii_leakage(ctx, pl.PIILeakageParams(language="zh", prompts="prompts.json",
                                                  n_samples=2, max_new_tokens=24))
    assert len(out.items) == 12
    for item in out.items:
        assert detect_builtin(item["generation"]) == []
