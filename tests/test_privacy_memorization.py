"""verbatim_memorization: LCP, edit distance, windows, greedy decoding and the check end to end.

Independent references: hand-computed Levenshtein distances (kitten/sitting = 3); a scripted
fake model whose completions are known; transformers' own ``generate`` one prompt at a time for
the batched greedy decoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audit.checks.privacy import verbatim_memorization as vm
from audit.context import CheckContext
from tests.mock_models import parrot


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_edit_distance_and_lcp_hand_computed() -> None:
    """kitten -> sitting needs 3 edits; LCP of 'abcd'/'abxd' is 2; identical sequences score 1."""
    assert vm.edit_distance(list("kitten"), list("sitting")) == 3
    assert vm.edit_distance([], [1, 2]) == 2
    assert vm.common_prefix_len(list("abcd"), list("abxd")) == 2
    assert vm.window_scores([1, 2, 3, 4], [1, 2, 3, 4]) == {"exact": 1.0, "lcp": 4.0, "edit_sim": 1.0}
    s = vm.window_scores([1, 2, 9, 4], [1, 2, 3, 4])
    assert s == {"exact": 0.0, "lcp": 2.0, "edit_sim": 0.75}


def test_windows_are_non_overlapping_and_bounded() -> None:
    """A 25-token text with k=4, m=6 yields windows at 0 and 10 (20+10 > 25), at most per_text."""
    seq = list(range(25))
    wins = vm.make_windows([seq], 4, 6, per_text=5)
    assert [(w.prefix[0], w.target[0]) for w in wins] == [(0, 4), (10, 14)]
    assert len(vm.make_windows([seq], 4, 6, per_text=1)) == 1


def test_probe_and_control_sets_are_matched() -> None:
    """The shipped sets have equal size, distinct texts and no control text copied from a probe."""
    probe = [json.loads(x) for x in vm.packaged("memorization/probe.jsonl").read_text().splitlines()]
    control = [json.loads(x) for x in vm.packaged("memorization/control.jsonl").read_text().splitlines()]
    assert len(probe) == len(control) == 20
    probe_8grams = {" ".join(p["text"].split()[i:i + 8]) for p in probe
                    for i in range(len(p["text"].split()) - 7)}
    for c in control:
        words = c["text"].split()
        assert not any(" ".join(words[i:i + 8]) in probe_8grams for i in range(len(words) - 7)), c["id"]


def _ctx(model, tmp_path: Path, show_pii: bool = False) -> CheckContext:
    return CheckContext(model=model, seed=0, rng=np.random.default_rng(0), base_dir=tmp_path,
                        quiet=True, check_id="mem", show_pii=show_pii)


def test_check_with_a_parrot_model(tmp_path: Path) -> None:
    """A model that has memorised the probe texts (not the control ones): exact-match rate 1 on
    probes, 0 on controls, excess 1; evidence is redacted (a probe holds an e-mail address)."""
    words = [f"w{i}" for i in range(40)]
    probe = [" ".join(words[:20]) + " mail me at ann@example.org " + " ".join(words[20:]),
             " ".join(reversed(words))]
    control = [" ".join(f"c{i}" for i in range(40)), " ".join(f"d{i}" for i in range(40))]
    (tmp_path / "p.txt").write_text("\n".join(probe))
    (tmp_path / "c.txt").write_text("\n".join(control))
    params = vm.MemorizationParams(data="p.txt", control="c.txt", prefix_tokens=8,
                                   suffix_tokens=8, windows_per_text=2, n_boot=200)
    out = vm.verbatim_memorization(_ctx(parrot(probe), tmp_path), params)
    metrics = {m.name: m for m in out.metrics}
    assert metrics["exact_match_rate"].by_group["probe"].value == 1.0
    assert metrics["exact_match_rate"].by_group["control"].value == 0.0
    assert metrics["exact_match_excess"].value == 1.0
    assert "ann@example.org" not in json.dumps(out.evidence)
    shown = vm.verbatim_memorization(_ctx(parrot(probe), tmp_path, show_pii=True), params)
    assert "ann@example.org" in json.dumps(shown.evidence)


def test_too_short_texts_are_a_usage_error(tmp_path: Path) -> None:
    """Texts shorter than k + m tokens leave no window: a one-line UsageError says what to lower."""
    from audit.errors import UsageError

    (tmp_path / "p.txt").write_text("only five words here today")
    with pytest.raises(UsageError, match="prefix_tokens"):
        vm.verbatim_memorization(_ctx(parrot([]), tmp_path),
                                 vm.MemorizationParams(data="p.txt", control=None))


def test_batched_greedy_equals_generate_one_by_one(tiny_gpt2_dir: Path) -> None:
    """Batched greedy decoding of equal-length prompts equals HF generate on each prompt alone."""
    import torch

    from audit.models.hf import load_hf

    model = load_hf(str(tiny_gpt2_dir), batch_size=4)
    rng = np.random.default_rng(0)
    prompts = rng.integers(2, len(model.tokenizer), size=(6, 5))
    batched = model.greedy_token_continuations(prompts.tolist(), 7)
    for row, out in zip(prompts, batched):
        with torch.inference_mode():
            ref = model.torch_module.generate(input_ids=torch.as_tensor(row[None, :]), max_new_tokens=7,
                                              do_sample=False, pad_token_id=0,
                                              attention_mask=torch.ones(1, 5, dtype=torch.long))
        assert out == ref[0, 5:].tolist()


def test_check_runs_on_a_real_tiny_model(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    """The torch path on a tiny GPT-2: rates lie in [0, 1], LCP in [0, m], and it is deterministic."""
    from audit.models.hf import load_hf

    model = load_hf(str(tiny_gpt2_dir))
    text = " ".join(["the cat likes the dog and the dog likes the cat ."] * 4)
    (tmp_path / "p.txt").write_text(text + "\n" + text.replace("cat", "car"))
    params = vm.MemorizationParams(data="p.txt", control=None, prefix_tokens=6, suffix_tokens=6,
                                   n_boot=100)
    a = vm.verbatim_memorization(_ctx(model, tmp_path), params)
    b = vm.verbatim_memorization(_ctx(model, tmp_path), params)
    assert a.evidence == b.evidence
    lcp = next(m for m in a.metrics if m.name == "mean_lcp_tokens").value
    assert 0 <= lcp <= 6 and 0 <= a.metrics[0].value <= 1
