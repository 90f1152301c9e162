"""The canary LM demo: corpus construction (splits, insertion counts) and a tiny training run.

Independent references: counts of canary lines in train.txt against the requested repeats;
set algebra on the member / non-member files; the saved folder loaded back by load_hf.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audit.demos.canary import build_canary_corpus, read_lines, train_canary_lm


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_corpus_splits_and_insertion_counts(tmp_path: Path) -> None:
    """Each canary appears in train.txt exactly `repeats` times (0 for the control group);
    members are all in train.txt, non-members never; same seed, same files."""
    spec = build_canary_corpus(tmp_path / "a", repeats=(1, 4, 16), n_canaries_per_repeat=2,
                               seed=3, n_members=50, n_nonmembers=50)
    train = read_lines(tmp_path / "a" / "train.txt")
    members = read_lines(tmp_path / "a" / "members.txt")
    nonmembers = read_lines(tmp_path / "a" / "nonmembers.txt")
    assert sorted({c["repeats"] for c in spec["canaries"]}) == [0, 1, 4, 16]
    for can in spec["canaries"]:
        assert train.count(spec["format"].format(secret=can["secret"])) == can["repeats"]
        assert len(can["secret"]) == 6 and can["secret"].isdigit()
    assert set(members) <= set(train) and not set(nonmembers) & set(train)
    assert len(train) == 50 + 2 * (1 + 4 + 16)
    again = build_canary_corpus(tmp_path / "b", repeats=(1, 4, 16), n_canaries_per_repeat=2,
                                seed=3, n_members=50, n_nonmembers=50)
    assert again == spec
    assert (tmp_path / "a" / "train.txt").read_bytes() == (tmp_path / "b" / "train.txt").read_bytes()
    assert json.loads((tmp_path / "a" / "canaries.json").read_text())["space_size"] == 10 ** 6


@pytest.mark.slow
def test_tiny_training_run_saves_a_loadable_model(tmp_path: Path) -> None:
    """One epoch of a 1-layer model: the loss is finite and the same on a second run with the
    same seed, the folder is safetensors + tokenizer, and load_hf scores text with it (digits
    are single tokens, so secrets tokenise uniformly)."""
    from audit.models.hf import load_hf

    build_canary_corpus(tmp_path / "c", repeats=(2,), n_canaries_per_repeat=1, seed=0,
                        n_members=30, n_nonmembers=10)
    out = train_canary_lm(tmp_path / "c", tmp_path / "m", epochs=1, seed=0, vocab_size=400,
                          n_embd=32, n_layer=1, max_length=64)
    log = json.loads((out / "training_log.json").read_text())
    assert np.isfinite(log["epoch_loss"][0]) and (out / "model.safetensors").exists()
    again = train_canary_lm(tmp_path / "c", tmp_path / "m2", epochs=1, seed=0, vocab_size=400,
                            n_embd=32, n_layer=1, max_length=64)
    assert json.loads((again / "training_log.json").read_text())["epoch_loss"] == log["epoch_loss"]
    model = load_hf(str(out))
    assert model.kind == "causal_lm"
    ids = [model.tokenizer(f"my pin code is {s}")["input_ids"] for s in ("000000", "987654")]
    assert len(ids[0]) == len(ids[1])
    assert np.isfinite(model.sequence_log_prob(["my pin code is 123456"])).all()
