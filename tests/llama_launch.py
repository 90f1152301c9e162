"""Start llama-cpp-python's OpenAI server with one speed fix for ``logprobs`` requests.

llama-cpp-python 0.3.36 builds ``top_logprobs`` by sorting the whole vocabulary in Python for
every returned token (``sorted(zip(logprobs_token, range(n_vocab)), reverse=True)``), then keeps
the first ``logprobs`` entries. Measured here (2 busy cores): ~0.6 s per token for SmolLM2's
49k vocabulary and ~5 s per token for Gemma 3's 262k, so echo-scoring a CrowS-Pairs sentence
with Gemma takes about a minute. This launcher replaces that one ``sorted`` call (only the call
on a ``zip`` of a 1-D numpy array and a range, in reverse) by a numpy top-k with the same order
(value descending, then index descending) for the first :data:`TOP` entries; every other
``sorted`` call is untouched, and so are the returned ``token_logprobs`` (what audit scores).
The tests check that echo log-probabilities are identical with and without it.

Usage: ``python tests/llama_launch.py <llama_cpp.server arguments>``.
"""

from __future__ import annotations

import builtins
import runpy
from typing import Any

import numpy as np

TOP = 20
_builtin_sorted = builtins.sorted


def _array_of(iterable: Any) -> np.ndarray | None:
    """The 1-D array behind ``zip(array, range(len(array)))`` (unstarted), else None."""
    if type(iterable) is not zip:
        return None
    try:
        _, parts = iterable.__reduce__()[:2]
        if len(parts) != 2 or type(parts[1]).__name__ != "range_iterator":
            return None
        fn, args, *state = parts[0].__reduce__()
    except (TypeError, ValueError, AttributeError):
        return None
    values = args[0] if args else None
    if not isinstance(values, np.ndarray) or values.ndim != 1 or (state and state[0] != 0):
        return None
    return values


def top_sorted(iterable: Any, *, key: Any = None, reverse: bool = False) -> list:
    """``sorted`` that answers the vocabulary sort with a numpy top-:data:`TOP`."""
    values = _array_of(iterable) if key is None and reverse else None
    if values is None:
        return _builtin_sorted(iterable, key=key, reverse=reverse)
    k = min(TOP, len(values))
    kth = values[np.argpartition(-values, k - 1)[k - 1]]
    top = np.flatnonzero(values >= kth)  # every tie at the boundary, then Python's order
    top = top[np.lexsort((-top, -values[top]))][:k]
    return [(values[i], int(i)) for i in top]


def main() -> None:
    """Patch, then run ``llama_cpp.server`` as ``python -m`` would."""
    import llama_cpp.llama as llama_module

    llama_module.sorted = top_sorted  # module global shadows the builtin in that module only
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
