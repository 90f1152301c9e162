"""Pure numpy computations on attention tensors: row checks, rollout and head entropy.

All functions take one sentence's attentions as ``att[layers, heads, seq, seq]`` where row ``i``
of a matrix is the distribution of query position ``i`` over key positions.
"""

from __future__ import annotations

import numpy as np

from audit.errors import usage


def validate_attentions(att: np.ndarray, where: str = "attentions") -> np.ndarray:
    """Return ``att`` as float64 after checking it is ``[layers, heads, seq, seq]`` and finite."""
    arr = np.asarray(att, dtype=np.float64)
    if arr.ndim != 4 or arr.shape[-1] != arr.shape[-2] or 0 in arr.shape:
        raise usage(where, "shape", f"expected [layers, heads, seq, seq], got {list(arr.shape)}",
                    "return one square attention matrix per layer and head")
    if not np.all(np.isfinite(arr)):
        raise usage(where, "values", "attention weights contain NaN or inf",
                    "load the model in float32 with attn_implementation='eager'")
    return arr


def row_sum_error(att: np.ndarray) -> float:
    """Largest ``|sum_j A[i, j] - 1|`` over every layer, head and row (0 for softmax rows)."""
    return float(np.max(np.abs(att.sum(axis=-1) - 1.0)))


def is_causal(att: np.ndarray, tol: float = 1e-6) -> bool:
    """True when no query attends to a later key (strict upper triangle ~ 0 everywhere)."""
    seq = att.shape[-1]
    upper = np.triu(np.ones((seq, seq), dtype=bool), k=1)
    return bool(seq > 1 and np.all(att[..., upper] <= tol))


def attention_rollout(att: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Attention rollout of Abnar & Zuidema (2020): ``R = Â_L ... Â_2 Â_1``.

    Each layer's heads are averaged, the residual connection is modelled as
    ``Â = (1 - residual) * A + residual * I`` and rows are renormalised to sum to 1.
    Row ``i`` of the result is how much each input token flows into position ``i`` at the top.
    """
    mean = att.mean(axis=1)
    seq = mean.shape[-1]
    eye = np.eye(seq)
    rolled = eye.copy()
    for layer in mean:
        mixed = (1.0 - residual) * layer + residual * eye
        mixed = mixed / mixed.sum(axis=-1, keepdims=True)
        rolled = mixed @ rolled
    return rolled


def head_entropy(att: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean row entropy per head, in nats and normalised to [0, 1], each ``[layers, heads]``.

    Rows are normalised by ``log(n_keys)``: ``n_keys = seq`` for bidirectional attention and
    ``i + 1`` for causal attention (row ``i``); rows with one possible key are left out.
    """
    seq = att.shape[-1]
    p = np.clip(att, 0.0, None)
    ent = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)).sum(axis=-1)
    n_keys = np.arange(1, seq + 1) if is_causal(att) else np.full(seq, seq)
    rows = n_keys > 1
    if not rows.any():
        zeros = np.zeros(att.shape[:2])
        return zeros, zeros
    norm = ent[..., rows] / np.log(n_keys[rows])
    return ent[..., rows].mean(axis=-1), norm.mean(axis=-1)


def query_row(rollout: np.ndarray, causal: bool) -> np.ndarray:
    """The rollout row that summarises the sentence: the first token ([CLS]) for encoders, the
    last token (the one predicting what comes next) for causal LMs."""
    return rollout[-1] if causal else rollout[0]
