"""Batched causal-LM scoring and decoding shared by the privacy checks.

``score_texts`` gives the total log-probability of many short texts. With a torch module it
tokenises every text, groups them by token length and, within a group, runs one forward pass per
distinct *parent* (the sequence minus its last token): the parent's teacher-forced log-probability
plus the last position's distribution then score every child at once. For a secret space such
as six digits this needs one pass per 10 candidates, with no padding, and gives exactly the
log-probabilities a one-at-a-time pass gives. Without a torch module it falls back to the
adapter's ``sequence_log_prob``.

``greedy_continuations`` decodes greedily from equal-length token prefixes (no padding needed).
Token conventions match ``HFAdapter.token_log_probs``: a BOS token is prepended when the tokenizer
does not add one, and the first real token is scored given it.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


def bos_prefix(tokenizer: Any) -> list[int]:
    """``[bos_token_id]`` when the tokenizer has a BOS token but does not add it; else ``[]``."""
    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and (not probe or probe[0] != bos):
        return [bos]
    return []


def tokenize(tokenizer: Any, texts: Sequence[str], chunk: int = 20000) -> list[list[int]]:
    """Token ids of each text with the BOS convention above (fast tokenizer, in chunks)."""
    bos = bos_prefix(tokenizer)
    out: list[list[int]] = []
    for start in range(0, len(texts), chunk):
        enc = tokenizer(list(texts[start:start + chunk]), add_special_tokens=True)["input_ids"]
        out.extend(bos + list(row) for row in enc)
    return out


def has_torch(adapter: Any) -> bool:
    """True when the adapter exposes a usable torch module and tokenizer."""
    return (getattr(adapter, "torch_module", None) is not None
            and getattr(adapter, "tokenizer", None) is not None
            and "torch_module" in getattr(adapter, "capabilities", ()))


def score_texts(adapter: Any, texts: Sequence[str], batch_size: int | None = None,
                progress: Callable[..., Any] | None = None) -> np.ndarray:
    """Total log-probability (nats) of each text; exact, batched by shared parents."""
    if not has_torch(adapter):
        return np.asarray(adapter.sequence_log_prob(list(texts)), dtype=float)
    ids = tokenize(adapter.tokenizer, texts)
    return score_token_rows(adapter.torch_module, ids, adapter.device,
                            batch_size or 4 * getattr(adapter, "batch_size", 16), progress)


def score_token_rows(model: Any, rows: Sequence[Sequence[int]], device: str,
                     batch_size: int = 64, progress: Callable[..., Any] | None = None) -> np.ndarray:
    """Sum of log p(token_t | tokens_<t) for t >= 1 of each row, grouped by length."""
    scores = np.zeros(len(rows))
    lengths = np.array([len(r) for r in rows])
    for length in np.unique(lengths):
        where = np.flatnonzero(lengths == length)
        if length < 2:
            continue
        arr = np.array([rows[i] for i in where], dtype=np.int64)
        scores[where] = _score_same_length(model, arr, device, batch_size, progress)
    return scores


def _score_same_length(model: Any, arr: np.ndarray, device: str, batch_size: int,
                       progress: Callable[..., Any] | None) -> np.ndarray:
    """Score rows of equal length: one forward pass per distinct parent (row minus last token)."""
    import torch

    parents, inverse = np.unique(arr[:, :-1], axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(parents) + 1))
    out = np.zeros(len(arr))
    starts = range(0, len(parents), batch_size)
    for u0 in (progress(starts, desc="scoring") if progress else starts):
        u1 = min(u0 + batch_size, len(parents))
        batch = torch.as_tensor(parents[u0:u1], device=device)
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=batch).logits.float(), dim=-1)
        own = logp[:, :-1].gather(-1, batch[:, 1:].unsqueeze(-1)).squeeze(-1).double().sum(-1)
        kids = order[bounds[u0]:bounds[u1]]
        local = torch.as_tensor(inverse[kids] - u0, device=device)
        last = torch.as_tensor(arr[kids, -1], device=device)
        out[kids] = (own[local] + logp[local, -1, last].double()).cpu().numpy()
    return out


def score_one_at_a_time(model: Any, rows: Sequence[Sequence[int]], device: str) -> np.ndarray:
    """The naive baseline: one forward pass per row (used by the benchmark and the tests)."""
    import torch

    out = np.zeros(len(rows))
    for i, row in enumerate(rows):
        ids = torch.as_tensor([list(row)], device=device)
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)
        out[i] = float(logp[0, :-1].gather(-1, ids[0, 1:].unsqueeze(-1)).double().sum())
    return out


def greedy_continuations(model: Any, prompts: np.ndarray, n_new: int, device: str,
                         pad_id: int, batch_size: int = 16,
                         progress: Callable[..., Any] | None = None) -> np.ndarray:
    """Greedy-decode ``n_new`` tokens after each equal-length prompt row; returns [n, n_new]."""
    import torch

    out = np.full((len(prompts), n_new), -1, dtype=np.int64)
    starts = range(0, len(prompts), batch_size)
    for s in (progress(starts, desc="decoding") if progress else starts):
        batch = torch.as_tensor(prompts[s:s + batch_size], device=device)
        with torch.inference_mode():
            gen = model.generate(input_ids=batch, attention_mask=torch.ones_like(batch),
                                 max_new_tokens=n_new, do_sample=False, pad_token_id=pad_id)
        new = gen[:, batch.shape[1]:].cpu().numpy()
        out[s:s + len(new), :new.shape[1]] = new
    return out
