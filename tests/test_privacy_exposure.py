"""canary_exposure: exact rank, exposure formula, skew-normal extrapolation, batched scoring.

Independent references: ranks and exposures computed by hand on an 8-secret space; the exact
rank over a 10^5 space (synthetic scores from a known skew-normal, and a real tiny GPT-2); the
one-sequence-at-a-time teacher-forced score for the batched shared-parent scorer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from audit.checks.privacy import canary_exposure as ce
from audit.checks.privacy.common import secret_hash
from audit.context import CheckContext
from tests.mock_models import table_lm


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ctx(model, tmp_path: Path, seed: int = 0, show_pii: bool = False) -> CheckContext:
    return CheckContext(model=model, seed=seed, rng=np.random.default_rng(seed), base_dir=tmp_path,
                        quiet=True, check_id="canary", show_pii=show_pii)


def _write_spec(tmp_path: Path, canaries: list[dict], alphabet="ab", length=3, fmt="pin {secret}"):
    spec = {"format": fmt, "alphabet": alphabet, "length": length, "canaries": canaries}
    path = tmp_path / "canaries.json"
    path.write_text(json.dumps(spec))
    return path


def test_exact_exposure_matches_hand_computed_rank(tmp_path: Path) -> None:
    """Space {a,b}^3 (8 secrets) with hand-set scores: 'aba' is 3rd most likely, so rank 3 and
    exposure = log2 8 - log2 3 = 1.415 bits; 'bbb' is the most likely: exposure 3 bits."""
    scores = {"aaa": -9.0, "aab": -8.0, "aba": -3.0, "abb": -7.0, "baa": -2.0, "bab": -6.0,
              "bba": -5.0, "bbb": -1.0}
    model = table_lm({f"pin {s}": v for s, v in scores.items()})
    path = _write_spec(tmp_path, [{"id": "c1", "secret": "aba", "repeats": 1},
                                  {"id": "c2", "secret": "bbb", "repeats": 4}])
    out = ce.canary_exposure(_ctx(model, tmp_path), ce.CanaryExposureParams(canaries=str(path)))
    rows = {r["id"]: r for r in out.evidence}
    assert rows["c1"]["rank"] == 3 and rows["c2"]["rank"] == 1
    assert rows["c1"]["exposure"] == pytest.approx(3 - math.log2(3), abs=1e-4)
    assert rows["c2"]["exposure"] == pytest.approx(3.0)


def test_exposure_ties_count_in_canary_favour() -> None:
    """Rank = 1 + number of strictly more likely secrets (ties do not push the canary down)."""
    assert ce.exact_rank(-2.0, np.array([-1.0, -2.0, -2.0, -3.0])) == 2
    assert ce.exposure_from_rank(1, 1024) == 10.0


def test_secrets_never_in_clear(tmp_path: Path) -> None:
    """Results carry a SHA-256 prefix of each secret and never the secret or the canary text."""
    scores = {s: -float(i) for i, s in enumerate(["aaa", "aab", "aba", "abb", "baa", "bab", "bba", "bbb"])}
    model = table_lm({f"pin {s}": v for s, v in scores.items()})
    path = _write_spec(tmp_path, [{"id": "c1", "secret": "bab", "repeats": 2}])
    out = ce.canary_exposure(_ctx(model, tmp_path), ce.CanaryExposureParams(canaries=str(path)))
    dumped = json.dumps([out.evidence, [m.model_dump() for m in out.metrics],
                         [f.model_dump() for f in out.findings + out.figures]])
    assert "bab" not in dumped and secret_hash("bab") in dumped


def test_skewnorm_within_one_bit_on_synthetic_space() -> None:
    """10^5 log-perplexities drawn from a known skew-normal; canaries at exact ranks 10, 100 and
    1000; the fit on 10^4 sampled references lands within 1 bit of the exact exposure."""
    from scipy.stats import skewnorm

    rng = np.random.default_rng(0)
    space = -skewnorm.rvs(4.0, loc=30, scale=5, size=100_000, random_state=rng)  # log-probs
    order = np.sort(space)[::-1]
    refs = space[rng.choice(space.size, 10_000, replace=False)]
    fit = ce.fit_skewnorm(refs)
    for rank in (10, 100, 1000):
        canary = order[rank - 1]
        exact = ce.exposure_from_rank(ce.exact_rank(canary, space), space.size)
        assert abs(ce.skewnorm_exposure(canary, fit, space.size) - exact) < 1.0


def test_batched_scoring_equals_one_at_a_time(tiny_gpt2_dir: Path) -> None:
    """The adapter's shared-parent, length-grouped scorer equals a plain loop: one unpadded
    forward pass per text over its own token ids (BOS convention applied by hand), on
    mixed-length texts, at two batch sizes."""
    import torch

    from audit.models.hf import load_hf

    words = "zero one two three four five six seven eight nine".split()
    texts = [f"my pin code is {a} {b} {c}" for a in words[:2] for b in words[:2] for c in words]
    texts += ["my pin is one", "the secret number is two three"]
    model = load_hf(str(tiny_gpt2_dir), batch_size=1)
    tok, net = model.tokenizer, model.torch_module
    bos = [tok.bos_token_id] if tok.bos_token_id is not None and tok("a")["input_ids"][0] != tok.bos_token_id else []
    single = []
    for text in texts:
        ids = torch.tensor([bos + tok(text)["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(net(input_ids=ids).logits[0].double(), -1)
        single.append(float(sum(logp[t, ids[0, t + 1]] for t in range(ids.shape[1] - 1))))
    np.testing.assert_allclose(model.sequence_log_prob(texts), single, rtol=1e-5, atol=1e-5)
    model.batch_size = 64
    np.testing.assert_allclose(model.sequence_log_prob(texts), single, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_skewnorm_within_one_bit_on_tiny_gpt2(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    """Real tiny GPT-2, a 10^5 space (five number words): the sampled skew-normal exposure of
    canaries at exact ranks 10, 100 and 1000 is within 1 bit of the exact exposure."""
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_gpt2_dir), batch_size=64)
    words = "zero one two three four five six seven eight nine".split()
    spec = ce.CanarySpec(format="my pin code is {secret}", alphabet=words, length=5,
                         separator=" ", canaries=[])
    space = ce.all_secrets(spec)
    scores = model.sequence_log_prob([spec.text(s) for s in space])
    order = np.argsort(-scores, kind="stable")
    refs = scores[np.random.default_rng(1).choice(len(space), 10_000, replace=False)]
    fit = ce.fit_skewnorm(refs)
    for rank in (10, 100, 1000):
        canary = scores[order[rank - 1]]
        exact = ce.exposure_from_rank(ce.exact_rank(canary, scores), len(space))
        assert abs(ce.skewnorm_exposure(canary, fit, len(space)) - exact) < 1.0


def test_sampled_method_runs_and_is_reproducible(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    """The sampled method on a real tiny model: same seed, same exposures; never above log2 |R|."""
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_gpt2_dir), batch_size=64)
    words = "zero one two three four five six seven eight nine".split()
    path = _write_spec(tmp_path, [{"id": "c", "secret": "one two three four", "repeats": 1}],
                       alphabet=words, length=4, fmt="my pin code is {secret}")
    spec = json.loads(path.read_text())
    spec["separator"] = " "
    path.write_text(json.dumps(spec))
    params = ce.CanaryExposureParams(canaries=str(path), method="sampled", n_references=1000)
    a = ce.canary_exposure(_ctx(model, tmp_path, seed=3), params)
    b = ce.canary_exposure(_ctx(model, tmp_path, seed=3), params)
    assert a.evidence == b.evidence
    assert 0 <= a.evidence[0]["exposure"] <= math.log2(10 ** 4)


@pytest.mark.parametrize("spec,problem", [
    ({"format": "pin", "alphabet": "01", "length": 2, "canaries": [{"secret": "01"}]}, "{secret}"),
    ({"format": "pin {secret}", "alphabet": "01", "length": 2, "canaries": [{"secret": "0x"}]},
     "secret space"),
    ({"format": "pin {secret}", "alphabet": "01", "length": 2, "canaries": []}, "no canaries"),
])
def test_bad_canary_files_are_usage_errors(tmp_path: Path, spec: dict, problem: str) -> None:
    """Malformed canary files give a one-line UsageError that never echoes a secret."""
    from audit.errors import UsageError

    path = tmp_path / "c.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(UsageError, match=problem.replace("{", r"\{").replace("}", r"\}")) as info:
        ce.load_spec(_ctx(None, tmp_path), str(path))
    assert "0x" not in str(info.value) and "\n" not in str(info.value)
