"""The openai adapter against a scripted server (httpx.MockTransport): probes, scoring, seeds,
retries, timeouts, cache, key hygiene, concurrency, config. Fast; no network, no model.

Reference values come from ``tests/openai_fake.py``'s hash model, recomputed here with plain
loops (an independent second computation of what the adapter parses out of the answers)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from audit.config import ModelSpec
from audit.errors import UsageError
from audit.models.capabilities import conformance_problems
from audit.models.http_cache import ResponseCache, cache_key
from audit.models.http_client import (ApiClient, ApiError, backoff_delay, retry_after_seconds)
from audit.models.openai import item_seed, load_openai
from tests.openai_fake import FakeOpenAI, lp, tokens_of


def make(fake: FakeOpenAI, tmp_path, sleeps: list[float] | None = None, **spec) -> object:
    """An adapter on ``fake`` with its own cache file; sleeps are recorded, not slept."""
    fields = dict(adapter="openai", base_url="http://fake.test/v1", model=fake.model,
                  cache=str(tmp_path / "cache.sqlite"), max_retries=3)
    fields.update(spec)
    record = sleeps.append if sleeps is not None else (lambda s: None)
    return load_openai(ModelSpec(**fields), alias="default", transport=fake.transport(),
                       sleep=record)


def reference_sequence(text: str) -> float:
    """Sum of the fake model's log-probs over the tokens after the first (plain loop)."""
    toks = tokens_of(text)
    total = 0.0
    for i in range(1, len(toks)):
        total += lp("".join(toks[:i]), toks[i])
    return total


TEXTS = ["The nurse said she was tired.", "Engineers fix bridges every day.",
         'He said, "I am not sure."']


def test_consistent_echo_grants_scoring_with_independent_values(tmp_path):
    """Scores equal a plain re-computation of the hash model's log-probs (first token unscored,
    as the server returns None for it); a sum over generated tokens or an off-by-one would fail."""
    adapter = make(FakeOpenAI(echo="aligned"), tmp_path)
    assert {"generate", "chat", "sequence_log_prob"} <= adapter.capabilities
    assert "embed" not in adapter.capabilities and "embed" in adapter.capability_notes
    assert conformance_problems(adapter) == []
    got = adapter.sequence_log_prob(TEXTS)
    np.testing.assert_allclose(got, [reference_sequence(t) for t in TEXTS], atol=1e-9)
    per_token = adapter.token_log_probs(TEXTS[:1])[0]
    assert len(per_token) == len(tokens_of(TEXTS[0])) - 1
    probe = adapter.info().details["scoring_probe"]
    assert probe["passed"] and probe["max_abs_diff"] == 0 and len(probe["compared"]) >= 3


def test_continuation_log_prob_sums_only_continuation_tokens(tmp_path):
    """Hand-checked split: ' nurse' and ' again.' are the continuation's tokens of
    'The' + ' nurse again.'; the reference adds their two log-probs with a loop."""
    adapter = make(FakeOpenAI(), tmp_path)
    got = adapter.continuation_log_prob(["The", "He said"], [" nurse again.", " no"])
    want = [lp("The", " nurse") + lp("The nurse", " again."), lp("He said", " no")]
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_misaligned_echo_is_refused_with_its_reason(tmp_path):
    """A server that scores each prompt token one position late loses sequence_log_prob; the
    reason names the probe and the numbers, and nothing is scored."""
    adapter = make(FakeOpenAI(echo="misaligned"), tmp_path)
    assert "sequence_log_prob" not in adapter.capabilities
    assert "generate" in adapter.capabilities
    reason = adapter.capability_notes["sequence_log_prob"]
    assert "consistency probe" in reason and "allowed mean 0.1" in reason
    assert adapter.info().details["scoring_probe"]["passed"] is False


def test_server_ignoring_echo_is_refused(tmp_path):
    """llama.cpp's own server ignores echo: no prompt log-probs, so no scoring capability."""
    adapter = make(FakeOpenAI(echo="ignored"), tmp_path)
    assert "sequence_log_prob" not in adapter.capabilities
    assert "ignored `echo`" in adapter.capability_notes["sequence_log_prob"]


def test_runner_skip_reason_carries_the_probe_outcome(tmp_path):
    """A check that needs sequence_log_prob is skipped with the probe's reason in skip_reason."""
    from audit.config import CheckConfig, Suite
    from audit.runner import ModelPool, RunOptions, run_check

    adapter = make(FakeOpenAI(echo="misaligned"), tmp_path)
    spec = ModelSpec(adapter="openai", base_url="http://fake.test/v1", model="fake-model")
    suite = Suite(name="t", models={"default": spec}, checks=[CheckConfig(
        id="mia", check="membership_inference", params={"members": "m.txt", "nonmembers": "n.txt"})])
    pool = ModelPool(suite, RunOptions(out_dir=tmp_path))
    pool.loaded["default"] = adapter
    result = run_check(suite.checks[0], suite, pool, RunOptions(out_dir=tmp_path))
    assert result.status == "skipped"
    assert "sequence_log_prob: prompt log-probabilities fail the consistency probe" in result.skip_reason


def test_sampled_requests_carry_per_item_seeds_and_greedy_none(tmp_path):
    """Two identical prompts sampled in one call get different seeds (so different samples);
    the same call again gives the same texts; greedy requests send temperature 0, no seed."""
    fake = FakeOpenAI()
    adapter = make(fake, tmp_path, cache=False)
    fake.requests.clear()
    a = adapter.generate(["x", "x"], max_new_tokens=3, do_sample=True, seed=7)
    b = adapter.generate(["x", "x"], max_new_tokens=3, do_sample=True, seed=7)
    assert a == b and a[0] != a[1]
    seeds = [r["body"]["seed"] for r in fake.requests]
    assert seeds[:2] == [item_seed(7, 0), item_seed(7, 1)] and seeds[:2] == seeds[2:]
    fake.requests.clear()
    adapter.generate(["x"], max_new_tokens=2)
    assert fake.requests[0]["body"]["temperature"] == 0 and "seed" not in fake.requests[0]["body"]


def test_seed_dropped_when_the_server_rejects_it(tmp_path):
    fake = FakeOpenAI(seed=False)
    adapter = make(fake, tmp_path, cache=False)
    assert adapter.seed_accepted is False
    fake.requests.clear()
    adapter.generate(["x"], max_new_tokens=2, do_sample=True, seed=3)
    assert "seed" not in fake.requests[0]["body"]


def _status(code: int, retry_after: str | None = None):
    import httpx

    headers = {"Retry-After": retry_after} if retry_after else {}
    return lambda request: httpx.Response(code, headers=headers, json={"error": {"message": "busy"}})


def test_retry_after_is_honoured_and_numbers_are_identical(tmp_path):
    """Two 429s with Retry-After: 2 are waited out (>= 2 s each) and the scores equal the
    fault-free ones."""
    clean = make(FakeOpenAI(), tmp_path / "a").sequence_log_prob(TEXTS)
    sleeps: list[float] = []
    fake = FakeOpenAI()
    adapter = make(fake, tmp_path / "b", sleeps=sleeps, max_concurrency=1)
    fake.failures += [_status(429, "2"), _status(429, "2")]
    got = adapter.sequence_log_prob(TEXTS)
    np.testing.assert_array_equal(got, clean)
    assert len(sleeps) == 2 and min(sleeps) >= 2.0
    assert adapter.client.stats.retries == 2


def test_exhausted_retries_raise_one_line_error(tmp_path):
    sleeps: list[float] = []
    fake = FakeOpenAI()
    adapter = make(fake, tmp_path, sleeps=sleeps, max_retries=2, max_concurrency=1)
    fake.failures += [_status(503)] * 3
    with pytest.raises(ApiError) as exc:
        adapter.generate(["hello"], max_new_tokens=2)
    message = str(exc.value)
    assert "\n" not in message and "HTTP 503" in message and "after 3 attempts" in message
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.9  # backoff grows (0.25-0.5, 0.5-1)


def test_truncated_json_timeout_and_reset_are_retried(tmp_path):
    """A truncated body, a read timeout and a connection reset each cost one retry."""
    import httpx

    def truncated(request):
        return httpx.Response(200, content=b'{"choices": [{"text": "abc"')

    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    def reset(request):
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    fake = FakeOpenAI()
    adapter = make(fake, tmp_path, cache=False, max_concurrency=1)
    want = adapter.generate(["hello"], max_new_tokens=3)
    fake.failures += [truncated, timeout, reset]
    assert adapter.generate(["hello"], max_new_tokens=3) == want
    assert adapter.client.stats.retries == 3


def test_bad_request_is_not_retried(tmp_path):
    sleeps: list[float] = []
    fake = FakeOpenAI()
    adapter = make(fake, tmp_path, sleeps=sleeps, cache=False)
    fake.failures.append(_status(400))
    with pytest.raises(ApiError, match="HTTP 400"):
        adapter.generate(["hello"])
    assert sleeps == []


def test_cache_answers_repeats_and_never_holds_the_key(tmp_path, monkeypatch):
    """A second adapter on the same cache sends no scoring request; the key reaches the server
    as a Bearer header but is in neither the cache file nor info()."""
    secret = "sk-test-7f3a9c1e5d"
    monkeypatch.setenv("FAKE_KEY", secret)
    fake = FakeOpenAI()
    first = make(fake, tmp_path, api_key_env="FAKE_KEY")
    scores = first.sequence_log_prob(TEXTS)
    assert all(h.get("authorization") == f"Bearer {secret}" for h in fake.headers)
    first.close()
    fake.requests.clear()
    second = make(fake, tmp_path, api_key_env="FAKE_KEY")
    np.testing.assert_array_equal(second.sequence_log_prob(TEXTS), scores)
    # probes and scores all come from the cache; only the model list and the failed
    # embeddings probe (errors are not cached) reach the server again
    assert sorted(r["path"] for r in fake.requests) == ["/v1/embeddings", "/v1/models"]
    assert second.client.stats.cache_hits >= len(TEXTS)
    second.close()
    for f in tmp_path.iterdir():
        assert secret.encode() not in f.read_bytes(), f
    assert secret not in repr(second.info()) and second.info().details["api_key_env"] == "FAKE_KEY"


def test_cache_key_covers_url_model_endpoint_and_body():
    base = cache_key("http://a/v1", "m", "/completions", {"prompt": "x", "seed": 1})
    assert base == cache_key("http://a/v1/", "m", "/completions", {"seed": 1, "prompt": "x"})
    for other in [cache_key("http://b/v1", "m", "/completions", {"prompt": "x", "seed": 1}),
                  cache_key("http://a/v1", "n", "/completions", {"prompt": "x", "seed": 1}),
                  cache_key("http://a/v1", "m", "/chat/completions", {"prompt": "x", "seed": 1}),
                  cache_key("http://a/v1", "m", "/completions", {"prompt": "x", "seed": 2})]:
        assert other != base


def test_missing_key_variable_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(UsageError, match="NOPE_KEY is not set"):
        make(FakeOpenAI(), tmp_path, api_key_env="NOPE_KEY")


def test_concurrency_is_bounded(tmp_path):
    """With max_concurrency=3, more than one and never more than three requests are in flight."""
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def before(request):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1

    fake = FakeOpenAI()
    adapter = make(fake, tmp_path, cache=False, max_concurrency=3)
    fake.before = before
    adapter.sequence_log_prob([f"text number {i}" for i in range(24)])
    assert 1 < state["peak"] <= 3


def test_unknown_model_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not served here"):
        make(FakeOpenAI(model="served-one"), tmp_path, model="other")


def test_retry_helpers():
    import random

    assert retry_after_seconds("3") == 3.0 and retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    rng = random.Random(0)
    for attempt in range(6):
        d = backoff_delay(attempt, 0.5, 4.0, rng)
        step = min(4.0, 0.5 * 2 ** attempt)
        assert step / 2 <= d <= step


def test_spec_and_cli_shorthand():
    from audit.models.loader import _spec_from_string

    spec = _spec_from_string("openai:org/model:q4@http://127.0.0.1:8000/v1")
    assert (spec.adapter, spec.model, spec.base_url) == ("openai", "org/model:q4",
                                                          "http://127.0.0.1:8000/v1")
    with pytest.raises(UsageError):
        _spec_from_string("openai:just-a-name")
    with pytest.raises(ValueError):
        ModelSpec(adapter="openai", model="m")
    with pytest.raises(ValueError):
        ModelSpec(adapter="hf", path="x", base_url="http://h/v1")


def test_credentials_in_url_refused(tmp_path):
    with pytest.raises(UsageError, match="api_key_env"):
        make(FakeOpenAI(), tmp_path, base_url="http://user:pw@fake.test/v1")


def test_response_cache_round_trip(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("k", "/completions", {"a": [1, 2]})
    assert cache.get("k") == {"a": [1, 2]} and cache.get("nope") is None and len(cache) == 1
    cache.close()


def test_client_counts_tokens_and_fingerprints(tmp_path):
    fake = FakeOpenAI()
    client = ApiClient("http://fake.test/v1", model=fake.model, transport=fake.transport())
    client.post("/completions", {"model": fake.model, "prompt": "hi", "max_tokens": 1})
    stats = client.stats.as_dict()
    assert stats["requests"] == 1 and stats["prompt_tokens"] == 5
    assert stats["system_fingerprints"] == ["fp-test"]


def test_probe_judge_allows_kernel_noise_not_misalignment():
    """Hand-made pairs: noise of mean 0.04 / max 0.17 nat (what llama.cpp's Q4 kernels give
    between batched and one-token evaluation) passes; a mean offset of 0.15 nat fails; one
    token 2 nats off fails, and so does one 0.6 nat off among ten (max rule alone); fewer than
    three pairs fail."""
    from audit.models.openai_probe import judge

    def pairs(diffs):
        return [{"token": f"t{i}", "generation": -1.0, "echo": -1.0 - d} for i, d in enumerate(diffs)]

    assert judge(pairs([0.0, 0.02, 0.17, 0.01, 0.0]), 0.1, False).passed
    assert not judge(pairs([0.15] * 5), 0.1, False).passed
    assert not judge(pairs([0.0, 0.0, 0.0, 0.0, 2.0]), 0.1, False).passed
    assert not judge(pairs([0.0] * 9 + [0.6]), 0.1, False).passed  # mean 0.06, max 0.6 > 0.5
    assert not judge(pairs([0.0, 0.0]), 0.1, False).passed


def test_llama_launcher_top_sorted_matches_builtin_sorted():
    """The test server's numpy top-k gives the first entries of Python's full reverse sort of
    (value, index) pairs, ties included (checked against builtin sorted); other calls fall
    through to the builtin."""
    from tests.llama_launch import TOP, top_sorted

    rng = np.random.default_rng(0)
    for values in [rng.standard_normal(5000).astype(np.float32),
                   np.round(rng.standard_normal(3000), 1).astype(np.float32),  # many ties
                   np.zeros(7, dtype=np.float32)]:
        want = sorted(zip(values, range(len(values))), reverse=True)[:TOP]
        got = top_sorted(zip(values, range(len(values))), reverse=True)
        assert [(float(v), i) for v, i in got] == [(float(v), i) for v, i in want]
    assert top_sorted([3, 1, 2]) == [1, 2, 3]
    assert top_sorted(zip([1, 2], ["a", "b"]), reverse=True) == [(2, "b"), (1, "a")]
