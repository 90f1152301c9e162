"""Split one capability call into shards for several model replicas, and put the answers back in
input order (pure Python; used by the Ray backend, testable without Ray).

An adapter that can be split says how with ``shard_plan(method, kwargs)``: input indices grouped
in units that are whole internal batches, in processing order. Giving each replica a contiguous
run of units reproduces exactly the batches of the unsplit call, so the merged answer is
bit-identical to the local backend's (``tests/test_backend_sharding.py`` checks it on real
models). A method without a plan, or a call too small to split, goes whole to one replica.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

# The list-valued argument of each splittable method (everything else is passed unchanged).
SPLIT_ARG = {
    "sequence_log_prob": ("texts",), "token_log_probs": ("texts",),
    "continuation_log_prob": ("prompts", "continuations"), "masked_log_probs": ("requests",),
    "predict_proba": ("texts",), "embed": ("texts",), "generate": ("prompts",),
    "greedy_token_continuations": ("prefixes",), "chat": ("conversations",),
}


def contiguous_shards(units: list[list[int]], n: int) -> list[tuple[int, list[int]]]:
    """Cut ``units`` into at most ``n`` contiguous runs of about equal item counts (each unit
    goes to the shard its midpoint falls in); each run is (index of its first unit, its input
    indices in unit order)."""
    total = sum(len(u) for u in units)
    if n <= 1 or len(units) <= 1 or total == 0:
        return [(0, [i for u in units for i in u])]
    shards: dict[int, tuple[int, list[int]]] = {}
    before = 0
    for k, unit in enumerate(units):
        slot = min(n - 1, int((before + len(unit) / 2) / total * n))
        shards.setdefault(slot, (k, []))[1].extend(unit)
        before += len(unit)
    return [shards[s] for s in sorted(shards)]


def shard_kwargs(method: str, kwargs: dict[str, Any], indices: list[int],
                 first_unit: int) -> dict[str, Any]:
    """The arguments of one shard: the split arguments restricted to ``indices``; sampled
    generation gets its seed advanced by the shard's first batch index, as the unsplit call
    advances it batch by batch."""
    out = dict(kwargs)
    for name in SPLIT_ARG[method]:
        values = kwargs[name]
        out[name] = [values[i] for i in indices]
    if method in ("generate", "chat") and "seed" in out:
        out["seed"] = int(out["seed"]) + first_unit
    out.pop("progress", None)
    return out


def merge(method: str, n_items: int, parts: Sequence[tuple[list[int], Any]]) -> Any:
    """Answers of the shards, scattered back to input order."""
    if method in ("sequence_log_prob", "continuation_log_prob", "masked_log_probs"):
        out = np.zeros(n_items)
        for idx, values in parts:
            out[np.asarray(idx, dtype=np.int64)] = np.asarray(values, dtype=float)
        return out
    if method in ("predict_proba", "embed"):
        width = next((np.asarray(v).shape[1] for idx, v in parts if len(idx)), 0)
        arr = np.zeros((n_items, width))
        for idx, values in parts:
            if len(idx):
                arr[np.asarray(idx, dtype=np.int64)] = np.asarray(values, dtype=float)
        return arr
    out_list: list[Any] = [None] * n_items
    for idx, values in parts:
        for i, v in zip(idx, values):
            out_list[i] = v
    return out_list
