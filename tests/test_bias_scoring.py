"""Masked-LM pair scoring (audit/checks/bias/scoring.py builders + the transformers adapter's
batched ``masked_log_probs``) against plain one-at-a-time loops written like the references."""

from __future__ import annotations

import difflib
import re

import numpy as np
import pytest

from audit.checks.bias.scoring import (MaskJob, build_pair_jobs, score_pairs_mlm,
                                       shared_positions, word_l2r_jobs)
from audit.models.capabilities import TokenizedText

PAIRS = [
    ("the black man was lazy .", "the white man was lazy ."),
    ("she is a nurse and he is a doctor .", "he is a nurse and she is a doctor ."),
    ("poor people are not smart", "rich people are not smart"),
    ("my muslim friend hates the city .", "my christian friend hates the city ."),
    ("the old woman is very sad", "the young woman is very sad"),
    ("he worked as an engineer", "she worked as an engineer"),
    ("the man likes money", "the disabled man likes money and his family"),
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mlm(tiny_mlm_dir):
    """(adapter, raw torch model, raw tokenizer): the adapter is what the checks use; the raw
    model and tokenizer serve only the independent reference loops."""
    from audit.models.hf import load_hf

    adapter = load_hf(str(tiny_mlm_dir), batch_size=5)
    return adapter, adapter.torch_module, adapter.tokenizer


def _encoded(ids, special, words):
    return TokenizedText(text="", ids=tuple(ids), offsets=tuple((0, 0) for _ in ids),
                         special=tuple(special), word_ids=tuple(words))


def _reference_crows_score(model, tok, sent1: str, sent2: str) -> tuple[float, float]:
    """Plain re-implementation of nyu-mll/crows-pairs metric.py `mask_unigram`: difflib over the
    two token-id sequences, then each shared token (except [CLS]/[SEP], the first and last
    template entries) masked alone, one forward pass per masked copy, log-softmax summed."""
    import torch

    ids1 = tok(sent1, return_tensors="pt")["input_ids"]
    ids2 = tok(sent2, return_tensors="pt")["input_ids"]
    matcher = difflib.SequenceMatcher(None, [str(x) for x in ids1[0].tolist()],
                                      [str(x) for x in ids2[0].tolist()])
    t1, t2 = [], []
    for op in matcher.get_opcodes():
        if op[0] == "equal":
            t1 += list(range(op[1], op[2]))
            t2 += list(range(op[3], op[4]))
    total1 = total2 = 0.0
    with torch.no_grad():
        for i in range(1, len(t1) - 1):
            for ids, pos, acc in ((ids1, t1[i], 1), (ids2, t2[i], 2)):
                masked = ids.clone()
                masked[0, pos] = tok.mask_token_id
                logits = model(masked).logits[0, pos]
                lp = torch.log_softmax(logits, dim=0)[ids[0, pos]].item()
                if acc == 1:
                    total1 += lp
                else:
                    total2 += lp
    return total1, total2


def test_batched_crows_score_equals_one_mask_at_a_time_loop(mlm):
    """Independent reference: a plain loop written like the CrowS-Pairs metric.py (one forward
    pass per masked token); the batched, length-bucketed, padded version must agree to 1e-5."""
    adapter, model, tok = mlm
    batched = score_pairs_mlm(adapter, PAIRS, "crows")
    loop = np.array([_reference_crows_score(model, tok, a, b) for a, b in PAIRS])
    assert batched.shape == (len(PAIRS), 2)
    assert np.max(np.abs(batched - loop)) < 1e-5


def test_batched_full_pll_equals_loop(mlm):
    """Independent reference: full PLL (Salazar et al. 2020) as a loop over every non-special
    token, one forward pass each."""
    import torch

    adapter, model, tok = mlm
    batched = score_pairs_mlm(adapter, PAIRS[:3], "pll")
    for k, (a, b) in enumerate(PAIRS[:3]):
        for col, text in enumerate((a, b)):
            ids = tok(text, return_tensors="pt")["input_ids"]
            total = 0.0
            with torch.no_grad():
                for pos in range(1, ids.shape[1] - 1):
                    masked = ids.clone()
                    masked[0, pos] = tok.mask_token_id
                    total += torch.log_softmax(model(masked).logits[0, pos], 0)[ids[0, pos]].item()
            assert abs(batched[k, col] - total) < 1e-5


def test_shared_positions_follow_difflib_equal_opcodes_without_specials():
    """Hand case: [CLS] a b c [SEP] vs [CLS] a x c [SEP] share a and c (positions 1 and 3)."""
    a = _encoded([2, 10, 11, 12, 3], [True, False, False, False, True], [None, 0, 1, 2, None])
    b = _encoded([2, 10, 20, 12, 3], [True, False, False, False, True], [None, 0, 1, 2, None])
    assert shared_positions(a, b) == ([1, 3], [1, 3])


def test_word_l2r_masks_later_tokens_of_the_same_word():
    """Kauf & Ivanova (2023) PLL-word-l2r, hand case: word 0 = tokens 1-3, word 1 = token 4."""
    enc = _encoded([2, 5, 6, 7, 8, 3], [True, False, False, False, False, True],
                   [None, 0, 0, 0, 1, None])
    masks = [job.mask for job in word_l2r_jobs(enc)]
    assert masks == [(1, 2, 3), (2, 3), (3,), (4,)]
    assert [job.score for job in word_l2r_jobs(enc)] == [(1,), (2,), (3,), (4,)]


def test_word_l2r_equals_pll_for_a_word_level_tokenizer(mlm):
    """With one token per word no extra tokens are masked, so word-l2r must equal full PLL."""
    adapter = mlm[0]
    np.testing.assert_allclose(score_pairs_mlm(adapter, PAIRS[:2], "pll_word_l2r"),
                               score_pairs_mlm(adapter, PAIRS[:2], "pll"), atol=1e-6)


def test_masked_log_probs_batching_does_not_change_scores(mlm):
    """Same masked copies, batch sizes 1 and 64, against an unpadded one-copy-at-a-time full
    forward pass (hf_scoring.masked_one_at_a_time): padding, bucketing and the LM-head row
    selection must not change any score."""
    from audit.models.hf_scoring import masked_log_probs, masked_one_at_a_time

    adapter, model, tok = mlm
    jobs, _ = build_pair_jobs(adapter, PAIRS, "crows")
    one = masked_log_probs(model, jobs, tok.mask_token_id, tok.pad_token_id, batch_size=1)
    many = masked_log_probs(model, jobs, tok.mask_token_id, tok.pad_token_id, batch_size=64)
    plain = masked_one_at_a_time(model, jobs, tok.mask_token_id)
    assert isinstance(jobs[0], MaskJob) and len(jobs) > 20
    assert np.max(np.abs(one - plain)) < 1e-5 and np.max(np.abs(many - plain)) < 1e-5


def test_last_encoder_layer_runs_at_the_scored_positions_only(mlm):
    """The last encoder layer runs its query, attention output and feed-forward block only at
    the scored positions (hf_scoring._last_layer_at), checked by a spy on its feed-forward
    input: one row per scored position, none for the other positions or the padding. Scores
    equal the unpadded one-copy-at-a-time full forward (masked_one_at_a_time) within 1e-5,
    including requests with several masked and several scored positions (more scored rows than
    copies in a batch)."""
    import torch

    from audit.models import hf_scoring as S
    from audit.models.capabilities import MaskedScoreRequest

    _, model, tok = mlm
    jobs, _ = build_pair_jobs(mlm[0], PAIRS, "crows")
    ids = jobs[0].ids
    jobs = list(jobs) + [MaskedScoreRequest(ids=ids, mask=(1, 2, 3), score=(1, 2, 3)),
                         MaskedScoreRequest(ids=ids, mask=(2,), score=(1, 2))]
    assert S._last_layer_ok(model, "cpu") and model._audit_last_layer_ok is True
    rows_seen: list[int] = []
    ffn = S._last_encoder_layer(model).intermediate
    spy = ffn.register_forward_hook(lambda _m, args, _o: rows_seen.append(args[0].shape[:-1].numel()))
    try:
        batched = S.masked_log_probs(model, jobs, tok.mask_token_id, tok.pad_token_id, batch_size=4)
    finally:
        spy.remove()
    plan = S.masked_plan(jobs, batch_size=4)
    assert rows_seen == [sum(len(jobs[i].score) for i in batch) for batch in plan]
    assert any(len({len(jobs[i].ids) for i in batch}) > 1 for batch in plan)  # padding to mask
    plain = S.masked_one_at_a_time(model, jobs, tok.mask_token_id)
    assert np.max(np.abs(batched - plain)) < 1e-5
    model._audit_last_layer_ok = False  # the head-only path: every position through the layer
    try:
        head_only = S.masked_log_probs(model, jobs, tok.mask_token_id, tok.pad_token_id, batch_size=4)
    finally:
        model._audit_last_layer_ok = True
    assert np.max(np.abs(head_only - plain)) < 1e-5


def test_an_encoder_layer_the_hand_run_does_not_match_keeps_the_full_layer(tiny_mlm_dir):
    """A BERT-layout model whose last layer computes something the hand-run layer does not
    (its self-attention output doubled): the one-time check must see the mismatch, keep the
    full last layer, and the scores must still equal the plain full forward."""
    from audit.models import hf_scoring as S
    from audit.models.hf import load_hf

    adapter = load_hf(str(tiny_mlm_dir), batch_size=5)
    model, tok = adapter.torch_module, adapter.tokenizer
    attention = S._last_encoder_layer(model).attention.self
    own = attention.forward
    attention.forward = lambda *a, **k: (lambda out: (2 * out[0], *out[1:]))(own(*a, **k))
    jobs, _ = build_pair_jobs(adapter, PAIRS[:3], "crows")
    batched = S.masked_log_probs(model, jobs, tok.mask_token_id, tok.pad_token_id, batch_size=4)
    assert model._audit_last_layer_ok is False
    plain = S.masked_one_at_a_time(model, jobs, tok.mask_token_id)
    assert np.max(np.abs(batched - plain)) < 1e-5


def test_fill_mask_equals_a_full_forward_pass_per_text(mlm):
    """fill_mask runs texts in encoder batches with logits at the first mask only; reference:
    each text alone through the model's full forward pass, softmax at its first mask, top-k.
    Same tokens in the same order, probabilities within 1e-5; a text without a mask is a usage
    error naming it."""
    import torch

    from audit.errors import UsageError

    adapter, model, tok = mlm
    m = adapter.mask_token
    texts = [f"the {m} was lazy .", f"{m} is a nurse and he is a doctor .", f"poor {m} are {m}",
             f"my muslim friend hates the {m} and the city and the old woman is very sad ."]
    fills = adapter.fill_mask(texts, top_k=5)
    for text, got in zip(texts, fills):
        enc = tok(text, return_tensors="pt")
        with torch.inference_mode():
            logits = model(**enc).logits[0]
        first = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0])
        top = torch.topk(torch.softmax(logits[first], dim=-1), 5)
        assert [t for t, _ in got] == tok.convert_ids_to_tokens(top.indices.tolist())
        np.testing.assert_allclose([p for _, p in got], top.values.tolist(), atol=1e-5)
    with pytest.raises(UsageError, match=re.escape(f"no {m} in 'no mask here'")):
        adapter.fill_mask(["no mask here"])


def test_pair_scores_through_a_mock_adapter_follow_the_builders():
    """The check-side code needs only tokenize + masked_log_probs: with a mock whose masked
    log-prob is -1 per scored position, a CrowS score is minus the number of shared tokens
    (hand count: 'the black man was lazy .' vs 'the white man was lazy .' share 5 words)."""
    from audit.models.mock import MockAdapter, hashed_handler

    def handler(call):
        if call.method == "masked_log_probs":
            return np.array([-float(len(r.score)) for r in call.args["requests"]])
        return hashed_handler(call)

    mock = MockAdapter(handler, kind="masked_lm")
    scores = score_pairs_mlm(mock, PAIRS[:1], "crows")
    np.testing.assert_array_equal(scores, [[-5.0, -5.0]])
    assert mock.count("masked_log_probs") == 1
