"""template_bias: probe sets, Kurita et al. scores against direct model calls, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audit.checks.bias import probes as P
from audit.errors import UsageError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ctx(model, seed=0):
    from audit.context import CheckContext

    return CheckContext(model=model, seed=seed, rng=np.random.default_rng(seed), check_id="tb",
                        quiet=True)


def _run(model, seed=0, **params):
    from audit.registry import get_check

    spec = get_check("template_bias")
    return spec.fn(_ctx(model, seed), spec.params(n_boot=200, **params))


ONE = dict(templates=["[GROUP] worked as a [TARGET]."], groups={"m": ["he"], "f": ["she"]},
           targets=["nurse"])


def test_shipped_probe_sets_are_valid_and_cover_five_axes():
    """Every shipped template probe set loads, has both slots in each template, >= 2 groups."""
    axes = set()
    for name in P.TEMPLATE_PROBES:
        raw = json.loads((P.PROBES_DIR / f"{name}.json").read_text())
        probes = P.validate_template_probes(raw, name)
        assert len(probes.templates) >= 6 and len(probes.targets) >= 20 and len(probes.groups) >= 2
        assert all(t.index(P.GROUP_SLOT) < t.index(P.TARGET_SLOT) for t in probes.templates)
        if raw.get("language", "en") == "en":  # Chinese sets: tests/test_zh_probes.py
            axes.add(raw["axis"])
    assert {"gender", "race/ethnicity", "religion", "age", "disability"} == axes


def test_fill_capitalises_and_fixes_articles():
    """Hand cases for the filler: capital first letter, 'a' -> 'an' before a vowel, spans."""
    text, g, t = P.fill_spans("[GROUP] worked as a [TARGET].", "she", "engineer")
    assert text == "She worked as an engineer."
    assert text[g[0]:g[1]] == "She" and text[t[0]:t[1]] == "engineer"
    assert P.fill("After college, [GROUP] became a [TARGET].", "the man", "nurse") == \
        "After college, the man became a nurse."


def test_template_without_slots_is_usage_error():
    """Bad input: a template lacking [TARGET] is refused when the suite's params are parsed,
    as a one-line usage error (exit code 4) naming the parameter."""
    from audit.config import parse_params
    from audit.registry import get_check

    spec = get_check("template_bias")
    with pytest.raises(UsageError) as err:
        parse_params(spec.params, {"templates": ["[GROUP] is here."]}, "suite.yaml", "tb")
    msg = str(err.value)
    assert "[TARGET]" in msg and "params.templates" in msg and "\n" not in msg
    assert err.value.exit_code == 4


def test_empty_probe_set_is_usage_error(tmp_path, tiny_gpt2_dir):
    """Bad input: inline empty targets fail at parse time; a probe file with no targets fails
    when the check reads it; both are one-line usage errors."""
    from audit.config import parse_params
    from audit.models.hf import load_hf
    from audit.registry import get_check

    spec = get_check("template_bias")
    with pytest.raises(UsageError, match="empty probe set"):
        parse_params(spec.params, {"targets": []}, "suite.yaml", "tb")
    path = tmp_path / "empty.yaml"
    path.write_text("templates: ['[GROUP] is a [TARGET].']\ngroups: {a: [he], b: [she]}\ntargets: []\n")
    with pytest.raises(UsageError, match="empty probe set") as err:
        _run(load_hf(str(tiny_gpt2_dir)), probes=str(path))
    assert "\n" not in str(err.value)


def test_kurita_score_matches_direct_model_calls(tiny_mlm_dir):
    """Independent computation of Kurita et al. (2019) for one cell with plain model calls:
    log p(he | [MASK] worked as a nurse .) - log p(he | [MASK] worked as a [MASK] .)."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from audit.models.hf import load_hf

    out = _run(load_hf(str(tiny_mlm_dir)), **ONE)
    got = {m.name: m for m in out.metrics}["group_association"].by_group
    model = AutoModelForMaskedLM.from_pretrained(str(tiny_mlm_dir)).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny_mlm_dir))

    def logp(text: str, word: str) -> float:
        ids = tok(text, return_tensors="pt")["input_ids"]
        pos = (ids[0] == tok.mask_token_id).nonzero()[0, 0]
        with torch.no_grad():
            logits = model(ids).logits[0, pos]
        return torch.log_softmax(logits, 0)[tok.convert_tokens_to_ids(word)].item()

    for group, word in (("m", "he"), ("f", "she")):
        want = logp("[MASK] worked as a nurse.", word) - logp("[MASK] worked as a [MASK].", word)
        assert got[group].value == pytest.approx(want, abs=1e-5)


def test_causal_score_is_target_log_likelihood(tiny_gpt2_dir):
    """Independent computation for a causal LM: log p(target token | BOS + the words before it),
    read from one plain forward pass of BOS + the whole sentence."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from audit.models.hf import load_hf

    out = _run(load_hf(str(tiny_gpt2_dir)), **ONE)
    got = {m.name: m for m in out.metrics}["group_association"].by_group
    model = AutoModelForCausalLM.from_pretrained(str(tiny_gpt2_dir)).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny_gpt2_dir))
    for group, word in (("m", "he"), ("f", "she")):
        ids = [tok.bos_token_id] + tok(f"{word.capitalize()} worked as a nurse.")["input_ids"]
        nurse = ids.index(tok.convert_tokens_to_ids("nurse"))
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], -1)
        assert got[group].value == pytest.approx(logp[nurse - 1, ids[nurse]].item(), abs=1e-4)


def test_gap_metrics_ci_and_determinism(tiny_mlm_dir):
    """max_group_gap equals the spread of the by_group means; same seed, same CIs."""
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_mlm_dir))
    kwargs = dict(probes="gender_occupations", max_templates=3, max_targets=4)
    a, b = _run(model, **kwargs), _run(model, **kwargs)
    ma = {m.name: m for m in a.metrics}
    means = [g.value for g in ma["group_association"].by_group.values()]
    assert ma["max_group_gap"].value == pytest.approx(max(means) - min(means))
    assert ma["max_group_gap"].ci.low <= ma["max_group_gap"].ci.high
    assert [m.ci for m in a.metrics] == [m.ci for m in b.metrics]
    assert any("top_fills" in e for e in a.evidence)


def test_causal_template_with_target_first_is_usage_error(tiny_gpt2_dir):
    """Causal LMs are scored on the continuation after the group, so [TARGET] first is refused."""
    from audit.models.hf import load_hf

    with pytest.raises(UsageError, match="before"):
        _run(load_hf(str(tiny_gpt2_dir)), templates=["A [TARGET] like [GROUP]."],
             groups={"a": ["he"], "b": ["she"]}, targets=["nurse"])
