"""Torch compute behind the transformers adapter: the one causal scorer, masked-copy scoring and
greedy decoding. Only ``audit.models.hf`` (and benchmarks/tests of it) import this module.

Causal scoring (:func:`causal_token_log_probs`): rows that share everything but their last token
(canary candidates, answer options that differ in one token) share one forward pass of that
parent; parents are sorted by length and right-padded into batches of at most ``max_tokens``
tokens (causal attention never reads the padding after a real token); the vocabulary projection
runs only from the first position a caller reads, and (when the model's logits are exactly its
output layer's, checked once per model) by hand on the real positions, 128 at a time, so no
[batch, positions, vocabulary] logits tensor is ever built. Continuations of shared prompts
(:func:`continuation_log_probs_kv`): equal-length prompts in one pass, their KV cache gathered
per continuation.

Masked scoring (:func:`masked_log_probs`): many masked copies of many sentences, sorted by length
and cut into padded batches. Only the scored positions are read, so for BERT-layout encoders (a
one-time check per model against its own full pass) the last layer computes keys and values at
every position but its query, attention output, feed-forward block and the MLM head at the scored
positions only (BERT-base on CrowS copies: ~10% faster than the full last layer); other models
get the vocabulary projection at the scored positions only (a forward pre-hook on the
output-embedding layer: the LM head over every position is most of the waste).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from audit.models.capabilities import MaskedScoreRequest

Progress = Callable[[int], Any]


# ------------------------------------------------------------------------------ batching
PAD_COST = 32
"""Padding positions one more forward pass is worth: batches of length-sorted rows are cut where
the next row would add more padding than this to the rows before it. Measured on 2 CPU cores
(192 CrowS sentences): MiniLM embed 1.12 s in 3 batches of 64 -> 0.79 s (cost 32; 8: 0.91 s,
128: 0.90 s); SmolLM2 sequence scoring 11.1 s -> 8.5 s (16 and 32 alike, 8: 8.9 s)."""

ENCODER_TOKENS_PER_ROW = 512
"""Padded tokens per unit of batch size in an encoder batch (``embed``, ``predict_proba``,
``fill_mask``): batch size rows of 512 tokens (the longest BERT-family input), so short texts go
in larger batches within the same memory."""


def _batches(order: Sequence[int], lengths: Sequence[int], batch_size: int,
             max_tokens: int, pad_cost: float = float("inf")) -> Iterable[list[int]]:
    """Split ``order`` (requests sorted by length, shortest first) into batches under both size
    limits; with ``pad_cost``, also start a new batch where the next request would add more than
    that many padding positions to the rows already in the batch. Each cut depends only on the
    current batch, so a run of whole batches, split on its own, gives the same batches."""
    batch: list[int] = []
    for j in order:
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * lengths[j] > max_tokens
                      or len(batch) * (lengths[j] - lengths[batch[-1]]) > pad_cost):
            yield batch
            batch = []
        batch.append(j)
    if batch:
        yield batch


def length_plan(lengths: Sequence[int], max_rows: int, max_tokens: int,
                pad_cost: float = PAD_COST) -> list[list[int]]:
    """Indices of each forward-pass batch, in order: sorted by length (ties keep input order),
    at most ``max_rows`` rows and ``max_tokens`` padded tokens, and a new batch wherever the
    next row would add more than ``pad_cost`` padding positions. A run of whole batches,
    planned on its own, gives the same batches (the basis for splitting across replicas)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return list(_batches(order, lengths, max_rows, max_tokens, pad_cost))


# ------------------------------------------------------------------------------ causal scoring
def causal_token_log_probs(model: Any, rows: Sequence[Sequence[int]], device: str,
                           max_tokens: int = 2048, max_rows: int = 256, pad_id: int = 0,
                           progress: Progress | None = None,
                           score_from: Sequence[int] | None = None) -> list[np.ndarray]:
    """``out[i][t] = log p(rows[i][t+1] | rows[i][:t+1])`` (float64).

    Rows that share everything but their last token (canary candidates, answer options) share
    their parent's forward pass: each distinct parent is run once and every child's last token
    is read from the parent's last position. Parents are sorted by length and batched with right
    padding: a causal model never attends to positions after a token, so padding at the end
    changes no value (math-exact; floats may differ in the last bits from a one-row pass).

    ``score_from[i]``: the first ``t`` the caller needs for row ``i`` (a continuation's first
    token minus one); earlier values are NaN (rows sharing a parent: from the smallest of
    theirs). The vocabulary projection then runs only from the smallest such position of a
    batch onwards (for a 190-token prompt and a one-token answer, one position instead of 190:
    the LM head is a fifth of a small LM's FLOPs per position).
    """
    out: list[np.ndarray] = [np.zeros(0)] * len(rows)
    parents, children = _parents(rows)
    needed = _parent_starts(parents, children, score_from)
    for batch in _parent_batches(parents, max_rows, max_tokens):
        _score_parents(model, [parents[j] for j in batch], [children[j] for j in batch],
                       device, pad_id, out, [needed[j] for j in batch])
        if progress:
            progress(sum(len(children[j]) for j in batch))
    if progress:
        progress(sum(len(r) < 2 for r in rows))
    return out


def _parents(rows: Sequence[Sequence[int]]) -> tuple[list[tuple[int, ...]], list[list[tuple[int, int]]]]:
    """Distinct parents (row minus its last token), in order of first appearance, and each
    parent's children as (row index, last token)."""
    index: dict[tuple[int, ...], int] = {}
    parents: list[tuple[int, ...]] = []
    children: list[list[tuple[int, int]]] = []
    for i, row in enumerate(rows):
        if len(row) < 2:
            continue
        key = tuple(row[:-1])
        if key not in index:
            index[key] = len(parents)
            parents.append(key)
            children.append([])
        children[index[key]].append((i, int(row[-1])))
    return parents, children


def _parent_starts(parents: list[tuple[int, ...]], children: list[list[tuple[int, int]]],
                   score_from: Sequence[int] | None) -> list[int]:
    """Per parent, the first position whose logits any of its children needs (0: all)."""
    if score_from is None:
        return [0] * len(parents)
    return [max(0, min(min(int(score_from[i]) for i, _ in kids), len(p) - 1))
            for p, kids in zip(parents, children)]


def _parent_batches(parents: list[tuple[int, ...]], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Parents sorted by length (stable) and cut greedily into forward-pass batches (also where
    padding would cost more than a batch: ``PAD_COST``)."""
    return length_plan([len(p) for p in parents], max_rows, max_tokens)


def causal_plan(rows: Sequence[Sequence[int]], max_tokens: int = 2048,
                max_rows: int = 256) -> list[list[int]]:
    """The row indices of each forward-pass batch :func:`causal_token_log_probs` runs, in order
    (rows too short to score form a last unit). Any contiguous run of these units, scored on its
    own, reproduces exactly the batches it had in the whole call, hence the same bits: the
    basis for splitting a call across replicas (``audit.backends.ray``)."""
    parents, children = _parents(rows)
    units = [[i for j in batch for i, _ in children[j]]
             for batch in _parent_batches(parents, max_rows, max_tokens)]
    short = [i for i, r in enumerate(rows) if len(r) < 2]
    return units + ([short] if short else [])


def _score_parents(model: Any, parents: list[tuple[int, ...]], kids: list[list[tuple[int, int]]],
                   device: str, pad_id: int, out: list[np.ndarray],
                   starts: list[int] | None = None) -> None:
    """One right-padded forward pass over parents; per-token log-probs of each parent's own
    tokens from its ``starts`` entry on (NaN before it) plus each child's last token, written
    into ``out``. The vocabulary projection runs from the smallest start onwards."""
    import torch

    starts = starts or [0] * len(parents)
    start = min(starts)

    width = max(len(p) for p in parents)
    ids = torch.full((len(parents), width), pad_id, dtype=torch.long)
    for r, p in enumerate(parents):
        ids[r, :len(p)] = torch.tensor(p, dtype=torch.long)
    ids = ids.to(device)
    with torch.inference_mode():
        hidden = _head_input(model, ids, start) if _head_is_last(model, device) else None
        if hidden is not None:
            own_t, last_logits = _chunked_head_scores(model.get_output_embeddings(), hidden, ids,
                                                      [len(p) for p in parents], start)
        else:
            own_t, last_logits = _full_logit_scores(model, ids, [len(p) for p in parents], start)
        last_lse = torch.logsumexp(last_logits, dim=-1)
        own = own_t.double().cpu().numpy()
        own = np.concatenate([np.full((len(parents), start), np.nan), own], axis=1)
        for r, first in enumerate(starts):
            own[r, :first] = np.nan
    for r, (p, children) in enumerate(zip(parents, kids)):
        head = own[r, :len(p) - 1]
        ks = torch.tensor([k for _, k in children], device=last_logits.device)
        tails = (last_logits[r, ks] - last_lse[r]).double().cpu().numpy()
        for (i, _), tail in zip(children, tails):
            out[i] = np.append(head, tail)


@contextmanager
def _head_from(model: Any, shape: Any, pick: Callable[[Any], Any] | None) -> Iterator[None]:
    """While active, a pre-hook on the output-embedding layer (the vocabulary projection) hands
    it ``pick(hidden)`` instead of the hidden states of a ``shape``-d batch, so the LM head runs
    only where a caller reads it. A model without such a layer, or whose head input is not
    ``[batch, positions, hidden]``, is left alone (callers then select from the full logits).
    ``pick=None``: no hook."""
    head = model.get_output_embeddings() if pick and hasattr(model, "get_output_embeddings") else None

    def select(_module: Any, args: tuple) -> tuple | None:
        hidden = args[0]
        if hidden.dim() == 3 and tuple(hidden.shape[:2]) == tuple(shape):
            return (pick(hidden), *args[1:])
        return None

    handle = head.register_forward_pre_hook(select) if head is not None else None
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()


def _logits_from(model: Any, ids: Any, start: int) -> Any:
    """Logits at positions ``start`` onwards of every row (the LM head runs on those only
    where its shape allows, else the full logits are sliced)."""
    with _head_from(model, ids.shape, (lambda h: h[:, start:]) if start else None):
        logits = model(input_ids=ids).logits
    return logits if logits.shape[1] == ids.shape[1] - start else logits[:, start:]


def _full_logit_scores(model: Any, ids: Any, lengths: list[int], start: int) -> tuple[Any, Any]:
    """Own-token log-probs [b, width - start] and each row's last-position logits [b, V] from
    the model's logits (any model: the LM head over positions ``start`` onwards)."""
    import torch

    logits = _logits_from(model, ids, start).float()  # [b, width - start, V]
    lse = torch.logsumexp(logits, dim=-1)
    nxt = _next_tokens(ids, start).to(logits.device)
    own = logits.gather(-1, nxt.unsqueeze(-1)).squeeze(-1) - lse
    last = torch.tensor([n - 1 - start for n in lengths], device=logits.device)
    return own, logits[torch.arange(len(lengths), device=logits.device), last]


def _next_tokens(ids: Any, start: int) -> Any:
    """The token after each position from ``start`` on ([b, width - start]; the last column
    wraps to the row's first token and is never read as an own token)."""
    import torch

    return torch.cat([ids[:, 1:], ids[:, :1]], dim=1)[:, start:]


HEAD_CHUNK_ROWS = 128
"""Positions per vocabulary projection in :func:`_chunked_head_scores` (128 x 49k words = 25 MB
of logits, reused, instead of one fresh [batch, positions, vocabulary] tensor of ~400 MB)."""


def _chunked_head_scores(head: Any, hidden: Any, ids: Any, lengths: list[int],
                         start: int) -> tuple[Any, Any]:
    """As :func:`_full_logit_scores`, from the hidden states the LM head receives: the head
    runs on real (non-padding) positions only, ``HEAD_CHUNK_ROWS`` at a time, and each chunk's
    log-normaliser is taken before the next, so no logits tensor of the whole batch exists."""
    import torch

    b, width, _ = hidden.shape
    real = torch.zeros((b, width), dtype=torch.bool, device=hidden.device)
    for r, n in enumerate(lengths):
        real[r, :max(0, n - 1 - start)] = True  # positions whose next token is the row's own
    rows = hidden[real]
    nxt = _next_tokens(ids, start)[real]
    flat = torch.empty(rows.shape[0], dtype=torch.float32, device=hidden.device)
    for s in range(0, rows.shape[0], HEAD_CHUNK_ROWS):
        logits = head(rows[s:s + HEAD_CHUNK_ROWS]).float()
        flat[s:s + HEAD_CHUNK_ROWS] = (logits.gather(1, nxt[s:s + HEAD_CHUNK_ROWS, None]).squeeze(1)
                                       - torch.logsumexp(logits, dim=-1))
    own = torch.full((b, width), float("nan"), device=hidden.device)
    own[real] = flat
    last = torch.tensor([n - 1 - start for n in lengths], device=hidden.device)
    return own, head(hidden[torch.arange(b, device=hidden.device), last]).float()


def _head_input(model: Any, ids: Any, start: int) -> Any:
    """The hidden states the LM head receives at positions ``start`` onwards of an ``ids``
    batch ([b, width - start, hidden]); the head itself is handed no position. None if the
    model's head input does not have that shape."""
    seen: list[Any] = []

    def keep_none(hidden: Any) -> Any:
        seen.append(hidden[:, start:])
        return hidden[:, :0]

    with _head_from(model, ids.shape, keep_none):
        model(input_ids=ids)
    return seen[0] if seen else None


def _once_per_model(model: Any, name: str, check: Callable[[], bool]) -> bool:
    """``check()`` run once per model and remembered as attribute ``name``; an exception counts
    as False (any surprise means: keep the model's own computation)."""
    known = getattr(model, name, None)
    if known is None:
        try:
            known = bool(check())
        except Exception:  # noqa: BLE001 - see the docstring
            known = False
        setattr(model, name, known)
    return bool(known)


def _head_is_last(model: Any, device: Any) -> bool:
    """Whether the model's logits are exactly its output-embedding layer applied to that layer's
    input (no softcapping or scaling after it, as Gemma 2 or Cohere models apply), so the head
    may be run by hand in chunks. Checked once per model on a short input, then remembered."""

    def check() -> bool:
        import torch

        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if head is None:
            return False
        vocab = getattr(head, "out_features", None) or getattr(model.config, "vocab_size", 2)
        ids = (torch.arange(1, 9, device=device) % int(vocab)).unsqueeze(0)
        seen: list[Any] = []
        with torch.inference_mode():
            with _head_from(model, ids.shape, lambda h: seen.append(h) or h):
                logits = model(input_ids=ids).logits
            return bool(seen) and torch.equal(head(seen[0]).float(), logits.float())

    return _once_per_model(model, "_audit_head_is_last", check)


def causal_one_at_a_time(model: Any, rows: Sequence[Sequence[int]], device: str) -> list[np.ndarray]:
    """The plain baseline: one forward pass per row (tests and benchmarks compare against it)."""
    import torch

    out = []
    for row in rows:
        ids = torch.as_tensor([list(row)], device=device)
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)
        out.append(logp[0, :-1].gather(-1, ids[0, 1:].unsqueeze(-1)).squeeze(-1).double().cpu().numpy())
    return out


# ------------------------------------------------------------------------------ greedy decoding
GENERATION_TOKENS = 16384
"""Most tokens of one generation batch: rows x (longest prompt + new tokens), which bounds its
KV cache (8 GB for a 7B model in fp16)."""


def generation_plan(lengths: Sequence[int], n_new: int, max_rows: int,
                    max_tokens: int = GENERATION_TOKENS) -> list[list[int]]:
    """Prompt indices of each generation batch: shortest prompts first (less left padding; ties
    keep input order), at most ``max_rows`` rows and ``max_tokens`` padded prompt-plus-new
    tokens. A run of whole batches, planned on its own, gives the same batches."""
    return length_plan([n + n_new for n in lengths], max_rows, max_tokens, float("inf"))


def greedy_plan(prefixes: Sequence[Sequence[int]], n_new: int, max_rows: int = 64,
                max_tokens: int = GENERATION_TOKENS) -> list[list[int]]:
    """Prefix indices of each decoding batch: equal lengths together (shortest first), at most
    ``max_rows`` rows and ``max_tokens`` prefix-plus-new tokens each."""
    lengths = np.array([len(p) for p in prefixes])
    sizes = (lengths + n_new).tolist()
    units: list[list[int]] = []
    for length in np.unique(lengths):
        units += _batches(np.flatnonzero(lengths == length).tolist(), sizes, max_rows, max_tokens)
    return units


def greedy_continuations(model: Any, prefixes: Sequence[Sequence[int]], n_new: int, device: str,
                         pad_id: int, max_rows: int = 64,
                         progress: Progress | None = None) -> list[list[int]]:
    """Greedy-decode ``n_new`` tokens after each prefix; equal-length prefixes are batched
    together, so no padding enters the computation."""
    import torch

    out: list[list[int]] = [[] for _ in prefixes]
    for idx in greedy_plan(prefixes, n_new, max_rows):
        batch = torch.as_tensor(np.array([prefixes[i] for i in idx], dtype=np.int64), device=device)
        with torch.inference_mode():
            gen = model.generate(input_ids=batch, attention_mask=torch.ones_like(batch),
                                 max_new_tokens=n_new, do_sample=False, pad_token_id=pad_id)
        for i, row in zip(idx, gen[:, batch.shape[1]:].cpu().tolist()):
            out[i] = list(row)
        if progress:
            progress(len(idx))
    return out


# ------------------------------------------------------------------------------ masked LMs
def masked_plan(requests: Sequence[MaskedScoreRequest], batch_size: int = 64,
                max_tokens: int = 8192) -> list[list[int]]:
    """The request indices of each forward-pass batch of :func:`masked_log_probs`, in order."""
    return length_plan([len(r.ids) for r in requests], batch_size, max_tokens)


def masked_log_probs(model: Any, requests: Sequence[MaskedScoreRequest], mask_id: int, pad_id: int,
                     batch_size: int = 64, max_tokens: int = 8192, device: Any = "cpu",
                     progress: Progress | None = None) -> np.ndarray:
    """``sum_{p in r.score} log p(r.ids[p] | r.ids with r.mask masked)`` for every request.

    Requests are sorted by length and cut into batches of at most ``batch_size`` copies and
    ``max_tokens`` padded tokens (and where padding would cost more than a batch: ``PAD_COST``);
    each batch is one forward pass. Float64 sums in request order.
    """
    import torch

    out = np.zeros(len(requests), dtype=np.float64)
    with torch.inference_mode():
        for batch in masked_plan(requests, batch_size, max_tokens):
            _score_batch(model, [requests[i] for i in batch], batch, mask_id, pad_id, device, out)
            if progress is not None:
                progress(len(batch))
    return out


def _score_batch(model: Any, reqs: list[MaskedScoreRequest], index: list[int], mask_id: int,
                 pad_id: int, device: Any, out: np.ndarray) -> None:
    """One forward pass over a padded batch; add each request's scored log-probs into ``out``."""
    import torch

    width = max(len(r.ids) for r in reqs)
    ids = torch.full((len(reqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(reqs), width), dtype=torch.long)
    rows, cols, targets, owner = [], [], [], []
    for r, req in enumerate(reqs):
        ids[r, :len(req.ids)] = torch.tensor(req.ids)
        attn[r, :len(req.ids)] = 1
        ids[r, list(req.mask)] = mask_id
        for p in req.score:
            rows.append(r), cols.append(p), targets.append(req.ids[p]), owner.append(index[r])
    rows_t, cols_t = torch.tensor(rows, device=device), torch.tensor(cols, device=device)
    picked = logits_at(model, ids.to(device), attn.to(device), rows_t, cols_t)
    logp = torch.log_softmax(picked.float(), dim=-1)
    vals = logp.gather(1, torch.tensor(targets, device=logp.device).unsqueeze(1)).squeeze(1)
    np.add.at(out, np.asarray(owner, dtype=np.int64), vals.double().cpu().numpy())


def logits_at(model: Any, ids: Any, attn: Any, rows: Any, cols: Any) -> Any:
    """A masked LM's logits at (rows, cols) only, [R, vocabulary]. Where the one-time check
    allows (:func:`_last_layer_ok`) the last encoder layer runs at those positions only
    (:func:`_last_layer_at`); otherwise the vocabulary projection gets just the scored positions
    (:func:`_head_from`); full logits, then the selection, for heads of another shape."""
    if _last_layer_ok(model, ids.device):
        with _last_layer_at(model, attn, rows, cols):
            return model(input_ids=ids, attention_mask=attn).logits[:, 0]
    with _head_from(model, ids.shape, lambda h: h[rows, cols]):
        logits = model(input_ids=ids, attention_mask=attn).logits
    if logits.dim() == 2 and logits.shape[0] == rows.shape[0]:
        return logits
    return logits[rows, cols]


def _last_encoder_layer(model: Any) -> Any:
    """The last layer of a BERT-layout encoder (``base_model.encoder.layer[-1]``: BERT,
    RoBERTa, XLM-R, ELECTRA, MiniLM ...), or None."""
    layers = getattr(getattr(getattr(model, "base_model", None), "encoder", None), "layer", None)
    return layers[-1] if layers is not None and len(layers) else None


def _layer_rows(layer: Any, hidden: Any, attn: Any, rows: Any, cols: Any) -> Any:
    """A BERT-layout encoder layer's output at positions (rows, cols) only, [R, 1, hidden]:
    keys and values from every position of ``hidden`` (the previous layer's output), the
    query, attention output and feed-forward block at the R positions. ``attn``: the [b, width]
    padding mask (1 = real token)."""
    import torch

    att = layer.attention.self
    heads, size = att.num_attention_heads, att.attention_head_size
    b, width, _ = hidden.shape

    def split(x: Any) -> Any:  # [b, width, h] -> [b, heads, width, size]
        return x.view(b, width, heads, size).transpose(1, 2)

    key, value = split(att.key(hidden))[rows], split(att.value(hidden))[rows]
    here = hidden[rows, cols]  # [R, h]
    query = att.query(here).view(-1, heads, 1, size)
    keep = attn[rows].bool()[:, None, None, :]
    context = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=keep, scale=getattr(att, "scaling", size ** -0.5))
    mixed = layer.attention.output(context.reshape(len(here), -1), here)
    return layer.output(layer.intermediate(mixed), mixed).unsqueeze(1)


@contextmanager
def _last_layer_at(model: Any, attn: Any, rows: Any, cols: Any) -> Iterator[None]:
    """While active, the model's last encoder layer returns its output at (rows, cols) only,
    as R one-position sequences ([R, 1, hidden]); the MLM head after it is position-wise, so
    the logits come out [R, 1, vocabulary]. Whether that holds for a model is what
    :func:`_last_layer_ok` checks."""
    layer = _last_encoder_layer(model)
    own = layer.__dict__.get("forward")  # e.g. an accelerate hook's wrapper: put back after
    layer.forward = lambda hidden, *_args, **_kwargs: _layer_rows(layer, hidden, attn, rows, cols)
    try:
        yield
    finally:
        del layer.forward
        if own is not None:
            layer.forward = own


LAST_LAYER_TOLERANCE = 1e-4
"""Largest |log-prob| difference the one-time check of :func:`_last_layer_ok` accepts."""


def _last_layer_ok(model: Any, device: Any) -> bool:
    """Whether scoring may run the last encoder layer at the scored positions only: a float32
    (or float64) masked LM of BERT layout whose log-probs at a few masked positions of a padded
    probe batch, computed that way, match its own full forward pass within
    ``LAST_LAYER_TOLERANCE``. Any other model, layout or surprise keeps the full last layer.
    Checked once per model, then remembered."""

    def check() -> bool:
        import torch

        if _last_encoder_layer(model) is None:
            return False
        if next(model.parameters()).dtype not in (torch.float32, torch.float64):
            return False
        vocab = int(getattr(model.config, "vocab_size", 0) or 0)
        ids = (torch.arange(7, 7 + 18, device=device) * 37 % max(vocab, 1)).view(2, 9)
        attn = torch.ones_like(ids)
        attn[1, 6:] = 0
        rows, cols = torch.tensor([0, 0, 1], device=device), torch.tensor([1, 8, 5], device=device)
        with torch.inference_mode():
            full = model(input_ids=ids, attention_mask=attn).logits[rows, cols]
            with _last_layer_at(model, attn, rows, cols):
                part = model(input_ids=ids, attention_mask=attn).logits[:, 0]
        if full.shape != part.shape:
            return False
        diff = torch.log_softmax(full.double(), -1) - torch.log_softmax(part.double(), -1)
        return bool(diff.abs().max() <= LAST_LAYER_TOLERANCE)

    return _once_per_model(model, "_audit_last_layer_ok", check)


def masked_one_at_a_time(model: Any, requests: Sequence[MaskedScoreRequest], mask_id: int,
                         device: Any = "cpu") -> np.ndarray:
    """The plain baseline: one unpadded full forward pass per request (tests, benchmarks)."""
    import torch

    out = np.zeros(len(requests))
    for i, req in enumerate(requests):
        ids = torch.tensor([req.ids], device=device)
        ids[0, list(req.mask)] = mask_id
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        out[i] = float(sum(logp[p, req.ids[p]].item() for p in req.score))
    return out


# ------------------------------------------------------------------------------ shared prefixes
def kv_plan(prefixes: Sequence[Sequence[int]], max_prefixes: int = 64,
            max_tokens: int = 2048) -> list[list[int]]:
    """Row indices of each batch :func:`continuation_log_probs_kv` runs, in order: distinct
    prefixes grouped by length (shortest first, then first appearance), at most
    ``max_prefixes`` and ``max_tokens`` prefix tokens per batch, each with all the rows that
    share them. Any contiguous run of these units, scored
    on its own, runs exactly these batches again (the basis for splitting across replicas)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(prefixes):
        groups.setdefault(tuple(p), []).append(i)
    by_length: dict[int, list[tuple[int, ...]]] = {}
    for key in sorted(groups, key=len):
        by_length.setdefault(len(key), []).append(key)
    units = []
    for length, keys in by_length.items():
        size = max(1, min(max_prefixes, max_tokens // max(1, length)))
        for s in range(0, len(keys), size):
            units.append([i for key in keys[s:s + size] for i in groups[key]])
    return units


def continuation_log_probs_kv(model: Any, prefixes: Sequence[Sequence[int]],
                              continuations: Sequence[Sequence[int]], device: str,
                              max_prefixes: int = 64, progress: Progress | None = None) -> np.ndarray:
    """``sum_t log p(cont[t] | prefix + cont[:t])`` for every (prefix, continuation) pair.

    Distinct prefixes of equal length run together in one forward pass (no padding; the LM
    head only at their last position), which scores every continuation's first token; the
    pass's KV cache is then gathered row by row for the continuations of more than one token,
    which run in one right-padded pass on it (causal attention never looks at the padding
    after a real token). Equal, up to float rounding, to scoring each ``prefix + continuation``
    in full; on template probes (120 prompts of ~7 tokens, 2,560 targets) about 3x faster than
    the plain rows on 2 CPU cores (6.3-7.6 s vs 19.5-20.4 s, scripts/bench_template.py)."""
    out = np.zeros(len(prefixes))
    for unit in kv_plan(prefixes, max_prefixes):
        _score_kv_batch(model, prefixes, continuations, unit, device, out)
        if progress:
            progress(len(unit))
    return out


def _score_kv_batch(model: Any, prefixes: Sequence[Sequence[int]],
                    continuations: Sequence[Sequence[int]], rows: list[int], device: str,
                    out: np.ndarray) -> None:
    """One prefix pass for the distinct prefixes of ``rows`` (equal length), then passes of
    the multi-token continuations on the gathered cache."""
    import copy

    import torch

    keys = list(dict.fromkeys(tuple(prefixes[i]) for i in rows))
    slot = {key: b for b, key in enumerate(keys)}
    ids = torch.tensor(keys, dtype=torch.long, device=device)
    with torch.inference_mode(), _head_from(model, ids.shape, lambda h: h[:, -1:]):
        first = model(input_ids=ids, use_cache=True)
    head = torch.log_softmax(first.logits[:, -1].float(), dim=-1).double().cpu().numpy()
    multi = []
    for i in rows:
        cont = list(continuations[i])
        out[i] = head[slot[tuple(prefixes[i])], cont[0]] if cont else 0.0
        if len(cont) > 1:
            multi.append(i)
    chunks = _tail_passes(multi, continuations, max(1, CACHE_ROW_TOKENS // ids.shape[1]))
    for n, chunk in enumerate(chunks):
        cache = _cache_of(first) if n == len(chunks) - 1 else copy.deepcopy(_cache_of(first))
        cache.reorder_cache(torch.tensor([slot[tuple(prefixes[i])] for i in chunk], device=device))
        _score_tails(model, cache, continuations, chunk, device, out)


CACHE_ROW_TOKENS = 16384
"""Most prefix tokens of gathered KV cache held at once (rows x prefix length)."""


def _tail_passes(rows: list[int], continuations: Sequence[Sequence[int]],
                 per_pass: int) -> list[list[int]]:
    """Rows of each tail pass: equal continuation lengths together (no padding: one long
    continuation would otherwise widen every row of its pass), at most ``per_pass`` rows."""
    by_length: dict[int, list[int]] = {}
    for i in rows:
        by_length.setdefault(len(continuations[i]), []).append(i)
    return [group[s:s + per_pass] for _, group in sorted(by_length.items())
            for s in range(0, len(group), per_pass)]


def _score_tails(model: Any, cache: Any, continuations: Sequence[Sequence[int]],
                 rows: list[int], device: str, out: np.ndarray) -> None:
    """Tokens 2.. of each continuation in one pass on ``cache`` (one cache row per
    continuation; right-padded if lengths differ), added to ``out``."""
    import torch

    width = max(len(continuations[i]) for i in rows) - 1
    inp = torch.zeros((len(rows), width), dtype=torch.long)
    for r, i in enumerate(rows):
        inp[r, :len(continuations[i]) - 1] = torch.tensor(list(continuations[i])[:-1])
    with torch.inference_mode():
        logits = model(input_ids=inp.to(device), use_cache=True, **{_CACHE_KW: cache}).logits
    logp = torch.log_softmax(logits.float(), dim=-1)
    for r, i in enumerate(rows):
        cont = list(continuations[i])
        tgt = torch.tensor(cont[1:], device=logp.device)
        out[i] += float(logp[r, torch.arange(len(cont) - 1), tgt].double().sum())


_CACHE_KW = "cache"  # transformers >= 5.2x; "past_key_values" before (deprecated there)


def _cache_of(output: Any) -> Any:
    """The KV cache a forward pass returned (its attribute name changed across versions)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


