"""Batched masked-LM scoring shared by the bias checks.

Every masked-LM score used here is a sum, over some positions, of ``log p(original token)`` read
from one forward pass of a copy of the sentence with some positions replaced by the mask token.
A :class:`MaskJob` describes one such copy; :func:`run_mask_jobs` scores many jobs from many
sentences in length-bucketed batches (jobs sorted by length, padded per batch, log-softmax taken
only at the scored positions). The job builders give:

- ``crows``: the CrowS-Pairs metric (Nangia et al. 2020, reference ``metric.py``): the tokens two
  sentences share (``difflib.SequenceMatcher`` over token ids, ``equal`` opcodes, special tokens
  excluded), each masked in turn.
- ``pll``: full pseudo-log-likelihood (Salazar et al. 2020): every non-special token masked in turn.
- ``pll_word_l2r``: PLL-word-l2r (Kauf & Ivanova 2023): as ``pll`` but the tokens of the same word
  to the right of the scored token are masked too.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

PLL_METRICS = ("crows", "pll", "pll_word_l2r")


@dataclass(frozen=True)
class MaskJob:
    """One masked copy: token ids, the positions to mask and the positions to score."""

    ids: tuple[int, ...]
    mask: tuple[int, ...]
    score: tuple[int, ...]


@dataclass
class Encoded:
    """A tokenized sentence: ids, which positions are special tokens and each token's word id."""

    ids: list[int]
    special: list[bool]
    word_ids: list[int | None]


def encode(tokenizer: Any, text: str) -> Encoded:
    """Tokenize with special tokens; word ids come from fast tokenizers (else one word per token),
    split at CJK characters (``audit.textseg.refine_word_ids``: Chinese has no spaces, so a
    tokenizer's "word" can be a whole clause)."""
    from audit.textseg import refine_word_ids

    fast = bool(getattr(tokenizer, "is_fast", False))
    enc = tokenizer(text, add_special_tokens=True, return_special_tokens_mask=True,
                    **({"return_offsets_mapping": True} if fast else {}))
    ids = list(enc["input_ids"])
    special = [bool(s) for s in enc["special_tokens_mask"]]
    try:
        words = list(enc.word_ids())
    except (ValueError, AttributeError):
        words = [None if s else i for i, s in enumerate(special)]
    if fast and "offset_mapping" in enc:
        words = refine_word_ids(text, [tuple(o) for o in enc["offset_mapping"]], words)
    return Encoded(ids=ids, special=special, word_ids=words)


def shared_positions(a: Encoded, b: Encoded) -> tuple[list[int], list[int]]:
    """Positions of the tokens two sentences share, as in the CrowS-Pairs reference ``get_span``
    (``equal`` opcodes of ``difflib.SequenceMatcher`` over token ids), minus special tokens."""
    matcher = difflib.SequenceMatcher(None, [str(i) for i in a.ids], [str(i) for i in b.ids])
    pos_a: list[int] = []
    pos_b: list[int] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            pos_a.extend(range(a0, a1))
            pos_b.extend(range(b0, b1))
    keep = [k for k in range(len(pos_a)) if not a.special[pos_a[k]] and not b.special[pos_b[k]]]
    return [pos_a[k] for k in keep], [pos_b[k] for k in keep]


def single_mask_jobs(enc: Encoded, positions: Iterable[int]) -> list[MaskJob]:
    """One job per position: that position masked and scored."""
    ids = tuple(enc.ids)
    return [MaskJob(ids, (p,), (p,)) for p in positions]


def word_l2r_jobs(enc: Encoded) -> list[MaskJob]:
    """PLL-word-l2r jobs: token ``p`` scored with itself and later tokens of its word masked."""
    ids, jobs = tuple(enc.ids), []
    for p, word in enumerate(enc.word_ids):
        if enc.special[p]:
            continue
        right = [q for q in range(p + 1, len(ids)) if word is not None and enc.word_ids[q] == word]
        jobs.append(MaskJob(ids, (p, *right), (p,)))
    return jobs


def pair_jobs(tokenizer: Any, more: str, less: str, metric: str) -> tuple[list[MaskJob], list[MaskJob]]:
    """The masked copies that score the two sentences of a pair under ``metric``."""
    a, b = encode(tokenizer, more), encode(tokenizer, less)
    if metric == "crows":
        pa, pb = shared_positions(a, b)
        return single_mask_jobs(a, pa), single_mask_jobs(b, pb)
    if metric == "pll":
        return (single_mask_jobs(a, [i for i, s in enumerate(a.special) if not s]),
                single_mask_jobs(b, [i for i, s in enumerate(b.special) if not s]))
    if metric == "pll_word_l2r":
        return word_l2r_jobs(a), word_l2r_jobs(b)
    raise ValueError(f"unknown metric {metric!r}; expected one of {PLL_METRICS}")


def _batches(order: Sequence[int], lengths: Sequence[int], batch_size: int,
             max_tokens: int) -> Iterable[list[int]]:
    """Split ``order`` (jobs sorted by length) into batches under both size limits."""
    batch: list[int] = []
    for j in order:
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * lengths[j] > max_tokens):
            yield batch
            batch = []
        batch.append(j)
    if batch:
        yield batch


def run_mask_jobs(model: Any, jobs: Sequence[MaskJob], mask_id: int, pad_id: int,
                  batch_size: int = 64, max_tokens: int = 8192, device: Any = "cpu",
                  progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Score every job: ``sum_{p in job.score} log p(ids[p] | ids with job.mask masked)``.

    Jobs are sorted by length and cut into batches of at most ``batch_size`` copies and
    ``max_tokens`` padded tokens; each batch is one forward pass. Returns float64 sums in job order.
    """
    import torch

    out = np.zeros(len(jobs), dtype=np.float64)
    lengths = [len(j.ids) for j in jobs]
    order = sorted(range(len(jobs)), key=lambda i: lengths[i])
    with torch.inference_mode():
        for batch in _batches(order, lengths, batch_size, max_tokens):
            _score_batch(model, [jobs[i] for i in batch], batch, mask_id, pad_id, device, out)
            if progress is not None:
                progress(len(batch))
    return out


def _score_batch(model: Any, jobs: list[MaskJob], index: list[int], mask_id: int, pad_id: int,
                 device: Any, out: np.ndarray) -> None:
    """One forward pass over a padded batch; add each job's scored log-probs into ``out``."""
    import torch

    width = max(len(j.ids) for j in jobs)
    ids = torch.full((len(jobs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(jobs), width), dtype=torch.long)
    rows, cols, targets, owner = [], [], [], []
    for r, job in enumerate(jobs):
        ids[r, :len(job.ids)] = torch.tensor(job.ids)
        attn[r, :len(job.ids)] = 1
        ids[r, list(job.mask)] = mask_id
        for p in job.score:
            rows.append(r), cols.append(p), targets.append(job.ids[p]), owner.append(index[r])
    rows_t, cols_t = torch.tensor(rows, device=device), torch.tensor(cols, device=device)
    picked = _scored_logits(model, ids.to(device), attn.to(device), rows_t, cols_t)
    logp = torch.log_softmax(picked.float(), dim=-1)
    vals = logp.gather(1, torch.tensor(targets, device=logp.device).unsqueeze(1)).squeeze(1)
    np.add.at(out, np.asarray(owner), vals.double().cpu().numpy())


def _scored_logits(model: Any, ids: Any, attn: Any, rows: Any, cols: Any) -> Any:
    """Logits at (rows, cols) only: a pre-hook on the output-embedding layer (the vocabulary
    projection) hands it just the scored positions, which saves most of the LM-head cost. Falls
    back to full logits when the model's head does not have that shape."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None

    def select(_module: Any, args: tuple) -> tuple | None:
        hidden = args[0]
        if hidden.dim() == 3 and hidden.shape[:2] == ids.shape:
            return (hidden[rows, cols], *args[1:])
        return None

    handle = head.register_forward_pre_hook(select) if head is not None else None
    try:
        logits = model(input_ids=ids, attention_mask=attn).logits
    finally:
        if handle is not None:
            handle.remove()
    if logits.dim() == 2 and logits.shape[0] == rows.shape[0]:
        return logits
    return logits[rows, cols]


def score_pairs_mlm(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], metric: str,
                    batch_size: int = 64, max_tokens: int = 8192, device: Any = "cpu",
                    progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Masked-LM scores of sentence pairs, shape ``[n_pairs, 2]`` (column 0: first sentence).

    All masked copies of all sentences go through :func:`run_mask_jobs` together.
    """
    jobs: list[MaskJob] = []
    owner: list[int] = []
    for k, (first, second) in enumerate(pairs):
        ja, jb = pair_jobs(tokenizer, first, second, metric)
        jobs += ja + jb
        owner += [2 * k] * len(ja) + [2 * k + 1] * len(jb)
    sums = run_mask_jobs(model, jobs, tokenizer.mask_token_id, _pad_id(tokenizer), batch_size,
                         max_tokens, device, progress)
    scores = np.zeros(2 * len(pairs), dtype=np.float64)
    if jobs:
        np.add.at(scores, np.asarray(owner), sums)
    return scores.reshape(-1, 2)


def count_pair_jobs(tokenizer: Any, pairs: Sequence[tuple[str, str]], metric: str) -> int:
    """How many masked copies (forward-pass rows) scoring ``pairs`` needs."""
    return sum(len(a) + len(b) for a, b in (pair_jobs(tokenizer, x, y, metric) for x, y in pairs))


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    return int(pad if pad is not None else tokenizer.mask_token_id)
