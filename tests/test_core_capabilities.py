"""The typed model boundary: checks reach models only through capability methods.

- A static scan of audit/checks: no module imports torch, touches ``torch_module`` or a
  tokenizer, except Integrated Gradients through the ``differentiable`` capability.
- Every adapter satisfies the protocols of the capabilities it advertises
  (``conformance_problems``), for the transformers adapter of each model kind, mocks, the
  predictions and scikit-learn adapters.
- A handler-built mock drives the masked-LM, causal-LM, chat and classifier paths of every
  model-facing check end to end through the runner.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from audit.models.capabilities import CAPABILITIES, PROTOCOLS, conformance_problems, has
from audit.models.mock import KIND_CAPABILITIES, MockAdapter, fake_adapter

CHECKS = Path(__file__).resolve().parents[1] / "audit" / "checks"
# The one sanctioned use of the torch module: Captum needs gradients through the model itself.
DIFFERENTIABLE_USERS = {"explain/integrated_gradients.py"}


def _forbidden_uses(path: Path) -> list[str]:
    """torch imports and attribute access to torch_module / tokenizer in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "torch"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in ("torch_module", "tokenizer"):
            found.append(f".{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr" and any(
                isinstance(a, ast.Constant) and a.value in ("torch_module", "tokenizer")
                for a in node.args):
            found.append(f"getattr(..., {node.args[1].value!r}) (line {node.lineno})")
    return found


def test_no_check_imports_torch_or_touches_a_tokenizer():
    """Scanned with ast (not grep, so comments do not count): only the differentiable users may
    import torch, and they reach the module through ``model.differentiable()``."""
    offenders = {}
    for path in sorted(CHECKS.rglob("*.py")):
        rel = path.relative_to(CHECKS).as_posix()
        uses = _forbidden_uses(path)
        if rel in DIFFERENTIABLE_USERS:
            assert "differentiable()" in path.read_text(encoding="utf-8"), rel
            uses = [u for u in uses if u.startswith(("import torch", ".tokenizer"))
                    and "torch_module" not in u]
            assert not [u for u in _forbidden_uses(path) if "torch_module" in u], rel
            continue
        if uses:
            offenders[rel] = uses
    assert offenders == {}


def test_scan_catches_a_violation(tmp_path):
    """The scanner itself is not vacuous: a module that imports torch and reads the tokenizer
    is reported on both counts."""
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\n\ndef f(ctx):\n    return ctx.model.tokenizer('x')\n")
    assert _forbidden_uses(bad) == ["import torch", ".tokenizer (line 4)"]


def test_protocol_table_names_every_capability():
    assert set(PROTOCOLS) == set(CAPABILITIES)
    for kind, caps in KIND_CAPABILITIES.items():
        assert caps <= set(CAPABILITIES), kind


@pytest.mark.parametrize("kind", sorted(KIND_CAPABILITIES))
def test_mock_adapters_conform(kind):
    assert conformance_problems(MockAdapter(kind=kind)) == []


def test_conformance_reports_a_missing_method():
    """An adapter that claims ``chat`` without the method is reported."""

    class Liar:
        capabilities = frozenset({"chat", "embed"})

        def embed(self, texts, progress=None):
            return np.zeros((len(texts), 2))

    assert conformance_problems(Liar()) == ["chat: Liar lacks a method of Chats"]


@pytest.mark.parametrize("fixture", ["tiny_mlm_dir", "tiny_gpt2_dir", "tiny_classifier_dir",
                                     "tiny_encoder_dir"])
def test_transformers_adapters_conform(fixture, request):
    from audit.models.hf import load_hf

    adapter = load_hf(str(request.getfixturevalue(fixture)))
    assert conformance_problems(adapter) == []
    assert "tokenize" in adapter.capabilities and "differentiable" in adapter.capabilities


def test_tabular_and_predictions_adapters_conform(tmp_path):
    import pandas as pd

    from audit.models.predictions import PredictionsAdapter

    path = tmp_path / "p.csv"
    pd.DataFrame({"y_true": [0, 1], "y_pred": [1, 1], "g": ["a", "b"]}).to_csv(path, index=False)
    assert conformance_problems(PredictionsAdapter.from_file(str(path))) == []


def test_continuation_log_prob_is_the_difference_of_sequence_scores(tiny_gpt2_dir):
    """On a real tiny GPT-2 whose word tokenizer cannot straddle the boundary,
    log P(' nurse' | 'she is a') must equal log P('she is a nurse') - log P('she is a')."""
    from audit.models.hf import load_hf

    lm = load_hf(str(tiny_gpt2_dir))
    whole, prompt = lm.sequence_log_prob(["she is a nurse", "she is a"])
    cont = lm.continuation_log_prob(["she is a"], [" nurse"])[0]
    assert cont == pytest.approx(whole - prompt, abs=1e-5)
    assert cont < 0


def _suite(tmp_path: Path, kind: str, checks: list[dict], caps: list[str] | None = None):
    from audit.config import Suite

    options = {"kind": kind} if caps is None else {"kind": kind, "capabilities": caps}
    return Suite.model_validate({"name": f"mock-{kind}",
                                 "models": {"default": {"adapter": "fake", "options": options}},
                                 "checks": checks})


def _run(tmp_path: Path, suite):
    from audit.runner import RunOptions, run_suite

    return run_suite(suite, RunOptions(out_dir=tmp_path, quiet=True, render=False))


def _statuses(tmp_path: Path, suite) -> dict[str, tuple[str, str | None]]:
    """Status and error/skip reason by check id; a check without gates that ran is 'reported'."""
    return {c.id: (c.status, c.error or c.skip_reason) for c in _run(tmp_path, suite).checks}


def _texts(tmp_path: Path, name: str, texts: list[str]) -> str:
    path = tmp_path / name
    path.write_text("\n".join(texts), encoding="utf-8")
    return str(path)


def test_mock_drives_the_masked_and_causal_lm_paths(tmp_path):
    """The same bias/privacy suite runs on a masked-LM mock and a causal-LM mock: the checks pick
    their masked or causal path from the capabilities alone (pair_preference names the metric
    it used: crows on the masked mock, sentence_ll on the causal one), none errors, and the
    causal-only privacy checks are skipped on the masked mock."""
    words = [f"w{i}" for i in range(60)]
    members = _texts(tmp_path, "m.txt", [" ".join(words[i:i + 12]) for i in range(0, 40, 4)])
    others = _texts(tmp_path, "n.txt", [" ".join(reversed(words[i:i + 12])) for i in range(0, 40, 4)])
    probe = _texts(tmp_path, "p.txt", [" ".join(words)])
    checks = [
        {"id": "tb", "check": "template_bias",
         "params": {"probes": "gender_occupations", "max_templates": 2, "max_targets": 3,
                    "n_boot": 100}},
        {"id": "pp", "check": "pair_preference", "params": {"data": "demo_pairs", "n_boot": 100}},
        {"id": "mem", "check": "verbatim_memorization",
         "params": {"data": probe, "control": None, "prefix_tokens": 8, "suffix_tokens": 8}},
        {"id": "mia", "check": "membership_inference",
         "params": {"members": members, "nonmembers": others, "n_boot": 100}},
    ]
    runs = {kind: _run(tmp_path / kind, _suite(tmp_path, kind, checks))
            for kind in ("masked_lm", "causal_lm")}
    status = {kind: {c.id: c.status for c in run.checks} for kind, run in runs.items()}
    assert status["masked_lm"] == {"tb": "reported", "pp": "reported", "mem": "skipped",
                                   "mia": "skipped"}
    assert status["causal_lm"] == {"tb": "reported", "pp": "reported", "mem": "reported",
                                   "mia": "reported"}
    for kind, used in (("masked_lm", "(crows)"), ("causal_lm", "(sentence_ll)")):
        pct = runs[kind].check("pp").metric("stereotype_preference_pct")
        assert pct.description.endswith(used) and pct.value is not None, kind


def test_mock_drives_chat_only_and_classifier_paths(tmp_path):
    """A chat-only mock (chat + generate) runs generation checks by text; a classifier mock runs
    the classifier checks; gradient methods are skipped with the capability they lack."""
    words = [f"w{i}" for i in range(60)]
    probe = _texts(tmp_path, "p.txt", [" ".join(words)])
    chat = _statuses(tmp_path / "chat", _suite(tmp_path, "chat", [
        {"id": "mem", "check": "verbatim_memorization",
         "params": {"data": probe, "control": None, "prefix_tokens": 8, "suffix_tokens": 8}},
        {"id": "pii", "check": "pii_leakage", "params": {"n_samples": 1, "backend": "builtin"}},
        {"id": "tb", "check": "template_bias", "params": {"max_templates": 1}},
    ]))
    assert chat["mem"][0] == "reported" and chat["pii"][0] == "reported", chat
    assert chat["tb"][0] == "skipped" and "sequence_log_prob" in chat["tb"][1]
    clf = _statuses(tmp_path / "clf", _suite(tmp_path, "classifier", [
        {"id": "cf", "check": "counterfactual_fairness", "params": {"n_boot": 100}},
        {"id": "shap", "check": "shap_text", "params": {"n": 2, "max_evals": 20}},
        {"id": "att", "check": "attention", "params": {"n": 2}},
        {"id": "ig", "check": "integrated_gradients", "params": {"n": 1}},
    ]))
    for check_id in ("cf", "shap", "att"):
        assert clf[check_id][0] == "reported", clf[check_id]
    assert clf["ig"][0] == "skipped" and "differentiable" in clf["ig"][1]


def test_fake_adapter_scripted_responses_and_failures():
    """``adapter: fake`` options: scripted responses by prompt substring, and a method that raises."""
    model = fake_adapter(responses={"weather": "sunny"}, raise_on="embed", kind="causal_lm",
                         capabilities=["generate", "embed"])
    assert model.generate(["The weather is", "Other"])[0] == "sunny"
    with pytest.raises(RuntimeError, match="embed"):
        model.embed(["x"])
    assert has(model, "generate") and not has(model, "chat")


def test_shared_prefix_kv_cache_gives_the_same_scores(tiny_gpt2_dir):
    """Continuations sharing a prompt are scored from one KV cache of the prompt; the values
    equal log P(prompt + continuation) - log P(prompt) from plain full passes (word tokenizer:
    no token straddles the boundary), for one- and multi-token continuations."""
    from audit.models.hf import load_hf

    lm = load_hf(str(tiny_gpt2_dir), batch_size=2)
    lm.kv_min_prefix_tokens = 1  # the default keeps reuse for long contexts only
    prompts = ["the man worked as a"] * 3 + ["she is"] * 2 + ["he"]
    conts = [" nurse", " very good doctor", " cat", " happy", " a kind teacher", " is"]
    kv = lm.continuation_log_prob(prompts, conts)
    plain = (lm.sequence_log_prob([p + c for p, c in zip(prompts, conts)])
             - lm.sequence_log_prob(prompts))
    np.testing.assert_allclose(kv, plain, atol=1e-5)
    assert kv[1] < kv[0]  # three tokens cost more than one here
    assert len(lm._continuation_split(prompts, conts)[3]) == 5  # the KV path really ran


def test_continuation_scoring_projects_only_the_positions_it_reads(tiny_gpt2_dir):
    """The plain (non-KV) continuation path hands the vocabulary projection only the positions
    from the batch's first continuation token on. Its values must equal log P(prompt +
    continuation) - log P(prompt) from full passes (the independent computation), for prompts
    of different lengths in one batch and multi-token continuations; the LM head must have seen
    fewer positions than the rows hold (a spy on its input), and score_from must leave the
    unrequested positions NaN rather than a plausible number."""
    from audit.models.hf import load_hf
    from audit.models.hf_scoring import causal_one_at_a_time, causal_token_log_probs

    lm = load_hf(str(tiny_gpt2_dir), batch_size=8)
    prompts = ["the man worked as a", "she is", "he said that the nurse was", "they"]
    conts = [" nurse", " a very good doctor", " happy", " are kind"]
    lm.sequence_log_prob(prompts)  # the one-time head check runs outside the spy
    projected: list[int] = []  # positions handed to the head ([b, w, h] or [n, h] inputs)
    head = lm.torch_module.get_output_embeddings()
    spy = head.register_forward_hook(lambda _m, args, _o: projected.append(args[0].shape[:-1].numel()))
    try:
        scores = lm.continuation_log_prob(prompts, conts)
    finally:
        spy.remove()
    plain = (lm.sequence_log_prob([p + c for p, c in zip(prompts, conts)])
             - lm.sequence_log_prob(prompts))
    np.testing.assert_allclose(scores, plain, atol=1e-5)
    rows, _ = lm._scoring_rows([p + c for p, c in zip(prompts, conts)])
    assert projected and sum(projected) < sum(len(r) - 1 for r in rows)

    full = causal_one_at_a_time(lm.torch_module, rows, "cpu")
    part = causal_token_log_probs(lm.torch_module, rows, "cpu", score_from=[3, 0, 2, 1])
    for row_full, row_part, start in zip(full, part, [3, 0, 2, 1]):
        assert np.isnan(row_part[:start]).all()
        np.testing.assert_allclose(row_part[start:], row_full[start:], atol=1e-5)


def test_kv_batches_with_a_split_cache_give_the_same_scores(tiny_gpt2_dir, monkeypatch):
    """Prefixes of several lengths, several batches of prefixes (max_prefixes=2) and the
    gathered cache cut into passes of one row (CACHE_ROW_TOKENS below any prefix length): every
    value equals log P(prompt + continuation) - log P(prompt) from full passes."""
    from audit.models import hf_scoring
    from audit.models.hf import load_hf

    monkeypatch.setattr(hf_scoring, "CACHE_ROW_TOKENS", 1)
    lm = load_hf(str(tiny_gpt2_dir), batch_size=1)
    lm.kv_min_prefix_tokens = 1
    prompts = (["the man worked as a"] * 3 + ["she is"] * 3 + ["the nurse said that"] * 2
               + ["he is"] * 2 + ["they"] * 2)
    conts = [" nurse", " very good doctor", " cat", " happy", " a kind teacher", " tired",
             " she was", " he", " a man", " good", " are kind", " is"]
    kv = lm.continuation_log_prob(prompts, conts)
    plain = (lm.sequence_log_prob([p + c for p, c in zip(prompts, conts)])
             - lm.sequence_log_prob(prompts))
    np.testing.assert_allclose(kv, plain, atol=1e-5)
    split = lm._continuation_split(prompts, conts)
    assert len(split[3]) == len(prompts)  # every row went through the KV path
    units = hf_scoring.kv_plan([split[2][i][0] for i in split[3]], max_prefixes=2)
    assert len(units) >= 4 and sorted(i for u in units for i in u) == list(range(len(prompts)))


def test_tail_passes_group_equal_lengths_without_padding():
    """One 4-token continuation among 2-token ones must not widen their pass: each tail pass
    holds continuations of one length, all rows once, at most per_pass rows."""
    from audit.models.hf_scoring import _tail_passes

    conts = [[1, 2], [1, 2, 3, 4], [5, 6], [7, 8, 9], [1, 9], [2, 2], [3, 3, 3, 3]]
    passes = _tail_passes(list(range(len(conts))), conts, per_pass=2)
    assert sorted(i for p in passes for i in p) == list(range(len(conts)))
    assert all(len({len(conts[i]) for i in p}) == 1 and len(p) <= 2 for p in passes)
    assert passes == [[0, 2], [4, 5], [3], [1, 6]]


def test_one_token_answers_stay_on_the_plain_rows(tiny_gpt2_dir):
    """Yes/no style answers (every continuation of a prompt one token long) share one pass of
    the prompt on the plain rows already; they must not be routed to the KV path, and their
    values still equal the sequence-score differences."""
    from audit.models.hf import load_hf

    lm = load_hf(str(tiny_gpt2_dir))
    prompts = ["the man worked as a"] * 2 + ["she is"] * 2
    conts = [" nurse", " doctor", " happy", " tired"]
    assert lm._continuation_split(prompts, conts)[3] == []
    plain = (lm.sequence_log_prob([p + c for p, c in zip(prompts, conts)])
             - lm.sequence_log_prob(prompts))
    np.testing.assert_allclose(lm.continuation_log_prob(prompts, conts), plain, atol=1e-5)


def test_chunked_vocabulary_projection_equals_the_full_logits(tiny_gpt2_dir, monkeypatch):
    """Causal scoring runs the LM head by hand on the captured hidden states, a few real
    positions at a time (HEAD_CHUNK_ROWS=3 here: many chunks, padding skipped). Reference: the
    same batches through the model's own full logits (the path every other model takes), and
    one plain forward pass per row."""
    from audit.models import hf_scoring
    from audit.models.hf import load_hf

    monkeypatch.setattr(hf_scoring, "HEAD_CHUNK_ROWS", 3)
    lm = load_hf(str(tiny_gpt2_dir), batch_size=1)
    texts = ["the man worked as a nurse", "she", "he is a very kind and smart doctor",
             "a woman is", "the nurse said that he was tired after the long shift"]
    lm.token_log_probs(texts[:1])  # the one-time head check runs outside the spy
    inputs: list[tuple[int, ...]] = []
    head = lm.torch_module.get_output_embeddings()
    spy = head.register_forward_hook(lambda _m, args, _o: inputs.append(tuple(args[0].shape)))
    try:
        chunked = lm.token_log_probs(texts)
    finally:
        spy.remove()
    assert lm.torch_module._audit_head_is_last is True
    # the model's own pass hands the head no position; the hand-run calls (one batch here:
    # chunks of <= 3 own positions, then one row per text for its last position) cover every
    # real position exactly once and no padding
    assert any(shape[1] == 0 for shape in inputs if len(shape) == 3)
    calls = [shape[0] for shape in inputs if len(shape) == 2]
    assert len(calls) > 2 and max(calls[:-1]) <= 3 and calls[-1] == len(texts)
    assert sum(calls) == sum(len(r) - 1 for r in lm._scoring_ids(texts))
    lm.torch_module._audit_head_is_last = False
    full = lm.token_log_probs(texts)
    for a, b in zip(chunked, full):
        np.testing.assert_allclose(a, b, atol=1e-6)
    plain = hf_scoring.causal_one_at_a_time(lm.torch_module, lm._scoring_ids(texts), "cpu")
    for a, b in zip(chunked, plain):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_logits_changed_after_the_head_take_the_full_path(tiny_gpt2_dir):
    """A model that rescales its logits after the output-embedding layer (as softcapping does)
    must not be scored from hand-run head outputs: the one-time check sees the mismatch and the
    scores still equal plain passes of that model."""
    from audit.models import hf_scoring
    from audit.models.hf import load_hf

    lm = load_hf(str(tiny_gpt2_dir))
    module = lm.torch_module

    def halve(_m, _args, output):
        output.logits = output.logits * 0.5
        return output

    module.register_forward_hook(halve)
    texts = ["the man worked as a nurse", "he is kind"]
    scores = lm.token_log_probs(texts)
    assert module._audit_head_is_last is False
    plain = hf_scoring.causal_one_at_a_time(module, lm._scoring_ids(texts), "cpu")
    for a, b in zip(scores, plain):
        np.testing.assert_allclose(a, b, atol=1e-5)
