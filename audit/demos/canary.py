"""A small GPT-2-style "canary LM" trained offline, to exercise the privacy checks for real.

``build_canary_corpus`` turns the paragraphs of Python's own documentation (``pydoc_data.topics``,
shipped with every CPython) into a member / non-member split and inserts random secrets
("canaries", Carlini et al. 2019) into the training file at chosen repeat counts.
``train_canary_lm`` trains a byte-level BPE tokenizer and a GPT-2 model from a config on it and
saves a transformers folder (safetensors) that ``audit`` loads like any other model.

Layout written by ``build_canary_corpus(out_dir)``:

- ``train.txt``: one training document per line (member documents plus canary copies, shuffled)
- ``members.txt`` / ``nonmembers.txt``: documents seen / not seen in training (for membership
  inference)
- ``canaries.json``: ``{"format", "alphabet", "length", "space_size", "canaries": [{"id",
  "secret", "repeats"}]}``; canaries with ``repeats == 0`` are never inserted (a control group)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

DEFAULT_FORMAT = "my pin code is {secret}"
EOS = "<|endoftext|>"


def corpus_documents(min_chars: int = 150, max_chars: int = 600) -> list[str]:
    """Paragraphs of the Python documentation topics, whitespace-normalised, sorted by topic."""
    from pydoc_data import topics

    docs: list[str] = []
    for _, text in sorted(topics.topics.items()):
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            if min_chars <= len(para) <= max_chars:
                docs.append(para)
    return list(dict.fromkeys(docs))  # drop exact duplicates, keep order


def make_canaries(repeats: Sequence[int], n_per_repeat: int, rng: np.random.Generator,
                  alphabet: str = "0123456789", length: int = 6) -> list[dict[str, Any]]:
    """Distinct random secrets, ``n_per_repeat`` for each repeat count (0 = never inserted)."""
    counts = sorted(set(int(r) for r in repeats) | {0})
    seen: set[str] = set()
    canaries = []
    for reps in counts:
        for i in range(n_per_repeat):
            secret = "".join(rng.choice(list(alphabet), size=length))
            while secret in seen:
                secret = "".join(rng.choice(list(alphabet), size=length))
            seen.add(secret)
            canaries.append({"id": f"r{reps}-{i}", "secret": secret, "repeats": reps})
    return canaries


def build_canary_corpus(out_dir: Path, repeats: Sequence[int] = (1, 4, 16),
                        n_canaries_per_repeat: int = 4, seed: int = 0, n_members: int = 250,
                        n_nonmembers: int = 250, secret_length: int = 6,
                        canary_format: str = DEFAULT_FORMAT) -> dict[str, Any]:
    """Write train/members/nonmembers/canaries files to ``out_dir``; return canaries.json's dict.

    Documents are shuffled with ``seed`` and split into members (trained on) and non-members
    (held out, same distribution). Each canary ``canary_format.format(secret=...)`` is appended
    ``repeats`` times to the training documents, which are then shuffled again.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    docs = corpus_documents()
    if n_members + n_nonmembers > len(docs):
        raise ValueError(f"only {len(docs)} documents; ask for fewer members/non-members")
    order = rng.permutation(len(docs))
    members = [docs[i] for i in order[:n_members]]
    nonmembers = [docs[i] for i in order[n_members:n_members + n_nonmembers]]
    canaries = make_canaries(repeats, n_canaries_per_repeat, rng, length=secret_length)
    train = list(members)
    for can in canaries:
        train += [canary_format.format(secret=can["secret"])] * can["repeats"]
    train = [train[i] for i in rng.permutation(len(train))]
    spec = {"format": canary_format, "alphabet": "0123456789", "length": secret_length,
            "space_size": 10 ** secret_length, "seed": seed, "canaries": canaries}
    _write_lines(out_dir / "train.txt", train)
    _write_lines(out_dir / "members.txt", members)
    _write_lines(out_dir / "nonmembers.txt", nonmembers)
    (out_dir / "canaries.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return spec


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def read_lines(path: Path) -> list[str]:
    """Non-empty lines of a UTF-8 text file."""
    return [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def build_tokenizer(texts: Sequence[str], vocab_size: int = 2048) -> Any:
    """Train a byte-level BPE tokenizer (digits split one per token) and wrap it for transformers.

    No beginning-of-sequence token is added, so a text is scored exactly as it was trained.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS,
                                   bos_token=EOS, unk_token=EOS)


def make_model(vocab_size: int, eos_id: int, n_positions: int = 128, n_embd: int = 128,
               n_layer: int = 4, n_head: int = 4, seed: int = 0) -> Any:
    """A freshly initialised GPT-2 model from a config (no download)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd,
                     n_layer=n_layer, n_head=n_head, bos_token_id=eos_id, eos_token_id=eos_id,
                     pad_token_id=eos_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(cfg)


def encode_documents(tokenizer: Any, docs: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of each document between end-of-text tokens, truncated to max_length.

    The leading end-of-text token doubles as beginning-of-sequence, which is what
    ``HFAdapter.token_log_probs`` prepends when scoring, so training and scoring agree.
    """
    eos = tokenizer.eos_token_id
    ids = tokenizer(list(docs), add_special_tokens=False)["input_ids"]
    return [([eos] + row + [eos])[:max_length] for row in ids]


def collate(rows: Sequence[Sequence[int]], pad_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids`` / ``attention_mask`` / ``labels`` (-100 on padding)."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, :len(row)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def train_canary_lm(corpus_dir: Path, out_dir: Path, epochs: int = 15, seed: int = 0,
                    batch_size: int = 16, lr: float = 2e-3, vocab_size: int = 2048,
                    max_length: int = 96, n_embd: int = 128, n_layer: int = 4,
                    threads: int | None = 1, log: Any = None) -> Path:
    """Train a GPT-2-style LM on ``corpus_dir/train.txt`` and save it to ``out_dir``.

    Saves model (safetensors), tokenizer and ``training_log.json`` (losses, config, seed);
    returns ``out_dir``. Deterministic for a given seed on one machine (CPU).
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    train = read_lines(corpus_dir / "train.txt")
    tokenizer = build_tokenizer(train, vocab_size)
    model = make_model(len(tokenizer), tokenizer.eos_token_id, max_length, n_embd, n_layer,
                       max(1, n_embd // 32), seed)
    rows = encode_documents(tokenizer, train, max_length)
    losses = _train_loop(model, rows, tokenizer.pad_token_id, epochs, batch_size, lr, seed, log)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    meta = {"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "vocab_size": len(tokenizer), "max_length": max_length, "n_embd": n_embd,
            "n_layer": n_layer, "n_train_docs": len(train), "epoch_loss": losses,
            "corpus": str(corpus_dir)}
    (out_dir / "training_log.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return out_dir


def _train_loop(model: Any, rows: list[list[int]], pad_id: int, epochs: int, batch_size: int,
                lr: float, seed: int, log: Any) -> list[float]:
    """AdamW with linear warm-up and cosine decay; returns the mean loss of each epoch."""
    import torch

    rng = np.random.default_rng(seed)
    steps = epochs * ((len(rows) + batch_size - 1) // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / steps))))
    model.train()
    losses = []
    for epoch in range(epochs):
        order, total = rng.permutation(len(rows)), 0.0
        for start in range(0, len(rows), batch_size):
            batch = collate([rows[i] for i in order[start:start + batch_size]], pad_id)
            loss = model(**batch).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(batch["input_ids"])
        losses.append(total / len(rows))
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {losses[-1]:.3f}")
    model.eval()
    return losses
