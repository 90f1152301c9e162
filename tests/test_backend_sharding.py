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
