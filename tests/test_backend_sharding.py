"""Splitting one capability call across replicas gives bit-identical answers.

Reference: the unsplit call on the same adapter. Each call is split by the adapter's own
``shard_plan`` into 1-4 contiguous shards, each shard is called on its own (as a replica would),
and the merged answer must equal the whole call exactly (``np.array_equal``, not a tolerance):
this is what lets the Ray backend promise the local backend's results.json.
"""

from __future__ import annotations

import numpy as np
import pytest

from audit.backends.sharding import contiguous_shards, merge, shard_kwargs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WORDS = "the a he she man woman doctor nurse worked as is was good bad kind lazy smart".split()


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 9)))) for _ in range(n)]


def _sharded(adapter, method: str, kwargs: dict, n: int):
    plan = adapter.shard_plan(method, kwargs)
    assert plan is not None
    assert sorted(i for u in plan for i in u) == list(range(len(next(iter(
        kwargs[k] for k in kwargs if isinstance(kwargs[k], list))))))
    shards = contiguous_shards(plan, n)
    parts = [(idx, getattr(adapter, method)(**shard_kwargs(method, kwargs, idx, first)))
             for first, idx in shards]
    n_items = sum(len(idx) for idx, _ in parts)
    return merge(method, n_items, parts), len(shards)


def test_contiguous_shards_cover_every_unit_in_order():
    units = [[0, 1], [2], [3, 4, 5], [6], [7, 8]]
    shards = contiguous_shards(units, 3)
    assert [i for _, idx in shards for i in idx] == list(range(9))
    assert [first for first, _ in shards] == sorted(first for first, _ in shards)
    assert 2 <= len(shards) <= 3


@pytest.mark.parametrize("n", [2, 3, 4])
def test_causal_scoring_split_is_bit_identical(tiny_gpt2_dir, n):
    from audit.models.hf import load_hf
    from audit.models.hf_scoring import causal_one_at_a_time

    lm = load_hf(str(tiny_gpt2_dir), batch_size=1)  # 16 parents per pass: several batches
    lm.scoring_chunk = 8  # sequence scoring hands out chunks of 8 texts: 8 chunks here
    texts = _texts(60) + ["the man worked as a nurse", "the man worked as a doctor"]
    whole = lm.sequence_log_prob(texts)
    split, used = _sharded(lm, "sequence_log_prob", {"texts": texts}, n)
    assert used > 1 and np.array_equal(whole, split)
    rows = lm._scoring_ids(texts)  # chunking changes batches, never values: one row at a time
    plain = [lp.sum() for lp in causal_one_at_a_time(lm.torch_module, rows, "cpu")]
    np.testing.assert_allclose(whole, plain, atol=1e-5)
    tokenizer, lm.tokenizer = lm.tokenizer, None  # the sequence plan must not tokenise (serial
    try:                                          # work before any replica can start)
        assert len(lm.shard_plan("sequence_log_prob", {"texts": texts})) == 8
    finally:
        lm.tokenizer = tokenizer
    prompts = ["the man worked as a"] * 6 + _texts(40, 1)
    conts = [" nurse", " good doctor", " kind", " lazy man", " is", " a"] + [" good"] * 40
    for kv_min in (lm.kv_min_prefix_tokens, 1):  # plain rows, then shared prompts via KV cache
        lm.kv_min_prefix_tokens = kv_min
        whole = lm.continuation_log_prob(prompts, conts)
        split, used = _sharded(lm, "continuation_log_prob",
                               {"prompts": prompts, "continuations": conts}, n)
        assert used > 1 and np.array_equal(whole, split)


def test_generation_split_keeps_sampled_outputs(tiny_gpt2_dir):
    """Sampled generation: each shard's seed is advanced by its first batch index, so the
    samples equal the unsplit call's."""
    from audit.models.hf import load_hf

    lm = load_hf(str(tiny_gpt2_dir), batch_size=1)  # generation batches of 4 rows: 3 here
    prompts = _texts(10, 2)
    kwargs = {"prompts": prompts, "max_new_tokens": 5, "do_sample": True, "seed": 11}
    whole = lm.generate(**kwargs)
    split, used = _sharded(lm, "generate", kwargs, 3)
    assert used > 1 and split == whole


def test_generation_plans_keep_row_and_token_limits():
    """Hand-computed: lengths 5, 1, 9, 3 plus 2 new tokens sort to 3, 5, 7, 11 tokens; with 20
    tokens a batch, [1, 3] (2 x 5) fits, adding prompt 0 would need 3 x 7 = 21; prompt 2
    (2 x 11 with any other) runs alone. Greedy prefixes batch only with equal lengths."""
    from audit.models.hf_scoring import generation_plan, greedy_plan

    assert generation_plan([5, 1, 9, 3], 2, max_rows=3, max_tokens=20) == [[1, 3], [0], [2]]
    assert generation_plan([5, 1, 9, 3], 2, max_rows=1, max_tokens=10 ** 6) == [[1], [3], [0], [2]]
    prefixes = [[1] * 4, [2] * 2, [3] * 4, [4] * 4, [5] * 2]
    assert greedy_plan(prefixes, 4, max_rows=8, max_tokens=16) == [[1, 4], [0, 2], [3]]


def test_length_plan_cuts_on_rows_tokens_and_padding():
    """Hand-computed: lengths 5, 3, 9, 3, 4, 20 sort to indices 1, 3, 4, 0, 2, 5 (3, 3, 4, 5,
    9, 20 tokens). Rows <= 3: [1, 3, 4] is full; index 0 starts a batch; index 2 adds 1 x (9 - 5)
    = 4 padding positions (allowed at pad_cost 4, a cut at 3); index 5 would make 3 x 20 = 60 >
    40 tokens. Tokens <= 12 alone: [1, 3, 4] is 3 x 4 = 12, index 0 would make 4 x 5 = 20."""
    from audit.models.hf_scoring import length_plan

    lengths = [5, 3, 9, 3, 4, 20]
    assert length_plan(lengths, 3, 40, pad_cost=4) == [[1, 3, 4], [0, 2], [5]]
    assert length_plan(lengths, 3, 40, pad_cost=3) == [[1, 3, 4], [0], [2], [5]]
    assert length_plan(lengths, 10, 12, pad_cost=float("inf")) == [[1, 3, 4], [0], [2], [5]]
    rng = np.random.default_rng(0)  # any run of whole batches, planned alone, gives its batches
    lengths = rng.integers(3, 60, size=300).tolist()
    plan = length_plan(lengths, 16, 512)
    for a in range(0, len(plan), 3):
        run = plan[a:a + 4]
        ids = sorted(i for b in run for i in b)
        alone = length_plan([lengths[i] for i in ids], 16, 512)
        assert [[ids[k] for k in b] for b in alone] == run


def test_causal_and_masked_plans_cut_where_padding_costs_more_than_a_batch():
    """Hand-computed with PAD_COST = 32: 40 rows of 4 tokens then one of 5 (parents of 3 and 4
    tokens) would pad 40 positions: two batches; with 20 short rows, 20 positions: one batch.
    Masked copies alike (lengths 4 and 5)."""
    from audit.models.capabilities import MaskedScoreRequest
    from audit.models.hf_scoring import PAD_COST, causal_plan, masked_plan

    assert PAD_COST == 32
    rows = [[k, 2, 3, 9] for k in range(40)] + [[1, 2, 3, 4, 5]]  # 41 distinct parents
    assert causal_plan(rows) == [list(range(40)), [40]]
    assert causal_plan(rows[20:]) == [list(range(21))]
    copies = [MaskedScoreRequest(ids=tuple(r), mask=(1,), score=(1,)) for r in rows]
    assert masked_plan(copies, batch_size=64) == [list(range(40)), [40]]
    assert masked_plan(copies[20:], batch_size=64) == [list(range(21))]


def test_encoder_batches_follow_the_plan_and_keep_each_texts_values(tiny_encoder_dir,
                                                                    tiny_classifier_dir):
    """embed and predict_proba run the batches of length_plan with the adapter's limits (4 x
    batch size rows, batch size x 512 tokens, PAD_COST; a spy on the model's input shapes: one
    pass per batch, as wide as its longest text) and return each text's own values: reference,
    every text alone (no padding), within 1e-5."""
    from audit.models.hf import load_hf
    from audit.models.hf_scoring import PAD_COST, length_plan

    texts = _texts(40, 5) + ["a " * 30 + "man"]
    for folder, method in ((tiny_encoder_dir, "embed"), (tiny_classifier_dir, "predict_proba")):
        model = load_hf(str(folder), batch_size=2)
        plan = model._encoder_plan(texts)
        lengths = [len(model.tokenizer(t)["input_ids"]) for t in texts]
        assert plan == length_plan(lengths, 8, 1024, PAD_COST)
        shapes: list[tuple] = []
        spy = model.torch_module.register_forward_pre_hook(
            lambda _m, _a, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
        try:
            whole = getattr(model, method)(texts)
        finally:
            spy.remove()
        assert len(plan) > 3 and shapes == [(len(b), max(lengths[i] for i in b)) for b in plan]
        alone = np.concatenate([getattr(model, method)([t]) for t in texts])
        np.testing.assert_allclose(whole, alone, atol=1e-5)
        model.batch_size = 8  # 32-row batches: here the padding cut changes the plan
        wide = model._encoder_plan(texts)
        assert wide == length_plan(lengths, 32, 4096, PAD_COST)
        assert wide != length_plan(lengths, 32, 4096, float("inf"))


def test_length_sorted_generation_batches_keep_input_order(tiny_gpt2_dir):
    """Greedy generation runs prompts in batches sorted by token length (left-padded); each
    answer must still be the one for its own prompt. Reference: every prompt generated alone
    (batch of one, no padding)."""
    from audit.models.hf import load_hf

    lm = load_hf(str(tiny_gpt2_dir), batch_size=1)
    prompts = _texts(12, 3)
    plan = lm._generation_plan(prompts, 6, True)
    assert len(plan) == 3 and [i for u in plan for i in u] != list(range(12))  # reordered
    whole = lm.generate(prompts, max_new_tokens=6)
    assert whole == [lm.generate([p], max_new_tokens=6)[0] for p in prompts]


def test_masked_and_classifier_splits_are_bit_identical(tiny_mlm_dir, tiny_classifier_dir):
    from audit.checks.bias.scoring import build_pair_jobs
    from audit.models.hf import load_hf

    mlm = load_hf(str(tiny_mlm_dir), batch_size=2)
    texts = _texts(12, 3)
    jobs, _ = build_pair_jobs(mlm, list(zip(texts[0::2], texts[1::2])), "pll")
    whole = mlm.masked_log_probs(jobs)
    split, used = _sharded(mlm, "masked_log_probs", {"requests": jobs}, 3)
    assert used > 1 and np.array_equal(whole, split)
    clf = load_hf(str(tiny_classifier_dir), batch_size=4)
    whole = clf.predict_proba(texts * 2)
    split, used = _sharded(clf, "predict_proba", {"texts": texts * 2}, 2)
    assert used > 1 and np.array_equal(whole, split)
