"""Masked-LM pair scoring shared by the bias checks (pure Python over adapter capabilities).

Every masked-LM score used here is a sum, over some positions, of ``log p(original token)`` read
from one forward pass of a copy of the sentence with some positions replaced by the mask token.
A :class:`~audit.models.capabilities.MaskedScoreRequest` describes one such copy; the builders
below turn tokenised sentences (the adapter's ``tokenize``) into requests, and the adapter's
``masked_log_probs`` scores them all in length-bucketed batches. The builders give:

- ``crows``: the CrowS-Pairs metric (Nangia et al. 2020, reference ``metric.py``): the tokens two
  sentences share (``difflib.SequenceMatcher`` over token ids, ``equal`` opcodes, special tokens
  excluded), each masked in turn.
- ``pll``: full pseudo-log-likelihood (Salazar et al. 2020): every non-special token masked in turn.
- ``pll_word_l2r``: PLL-word-l2r (Kauf & Ivanova 2023): as ``pll`` but the tokens of the same word
  to the right of the scored token are masked too (words as the tokenizer's word ids give them,
  so no whitespace is assumed).
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from audit.models.capabilities import MaskedScoreRequest, TokenizedText

PLL_METRICS = ("crows", "pll", "pll_word_l2r")
MaskJob = MaskedScoreRequest  # the name the bias checks grew up with


def shared_positions(a: TokenizedText, b: TokenizedText) -> tuple[list[int], list[int]]:
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


def single_mask_jobs(enc: TokenizedText, positions: Iterable[int]) -> list[MaskedScoreRequest]:
    """One request per position: that position masked and scored."""
    ids = tuple(enc.ids)
    return [MaskedScoreRequest(ids, (p,), (p,)) for p in positions]


def word_l2r_jobs(enc: TokenizedText) -> list[MaskedScoreRequest]:
    """PLL-word-l2r requests: token ``p`` scored with itself and later tokens of its word masked."""
    ids, jobs = tuple(enc.ids), []
    for p, word in enumerate(enc.word_ids):
        if enc.special[p]:
            continue
        right = [q for q in range(p + 1, len(ids)) if word is not None and enc.word_ids[q] == word]
        jobs.append(MaskedScoreRequest(ids, (p, *right), (p,)))
    return jobs


def pair_jobs(a: TokenizedText, b: TokenizedText,
              metric: str) -> tuple[list[MaskedScoreRequest], list[MaskedScoreRequest]]:
    """The masked copies that score the two tokenised sentences of a pair under ``metric``."""
    if metric == "crows":
        pa, pb = shared_positions(a, b)
        return single_mask_jobs(a, pa), single_mask_jobs(b, pb)
    if metric == "pll":
        return (single_mask_jobs(a, [i for i, s in enumerate(a.special) if not s]),
                single_mask_jobs(b, [i for i, s in enumerate(b.special) if not s]))
    if metric == "pll_word_l2r":
        return word_l2r_jobs(a), word_l2r_jobs(b)
    raise ValueError(f"unknown metric {metric!r}; expected one of {PLL_METRICS}")


def build_pair_jobs(model: Any, pairs: Sequence[tuple[str, str]],
                    metric: str) -> tuple[list[MaskedScoreRequest], list[int]]:
    """Every masked copy of every pair (tokenised by ``model.tokenize``) and, per copy, the index
    of the sentence it scores (2k: the pair's first sentence, 2k+1: its second)."""
    flat = [t for pair in pairs for t in pair]
    encoded = model.tokenize(flat) if flat else []
    jobs: list[MaskedScoreRequest] = []
    owner: list[int] = []
    for k in range(len(pairs)):
        ja, jb = pair_jobs(encoded[2 * k], encoded[2 * k + 1], metric)
        jobs += ja + jb
        owner += [2 * k] * len(ja) + [2 * k + 1] * len(jb)
    return jobs, owner


def score_pairs_mlm(model: Any, pairs: Sequence[tuple[str, str]], metric: str,
                    progress: Callable[[int], Any] | None = None,
                    on_jobs: Callable[[int], Any] | None = None) -> np.ndarray:
    """Masked-LM scores of sentence pairs, shape ``[n_pairs, 2]`` (column 0: first sentence),
    through the adapter's ``tokenize`` and ``masked_log_probs``; ``on_jobs`` is told how many
    masked copies there are before scoring starts (to size a progress bar)."""
    jobs, owner = build_pair_jobs(model, pairs, metric)
    if on_jobs is not None:
        on_jobs(len(jobs))
    scores = np.zeros(2 * len(pairs), dtype=np.float64)
    if jobs:
        sums = np.asarray(model.masked_log_probs(jobs, progress=progress), dtype=np.float64)
        np.add.at(scores, np.asarray(owner, dtype=np.int64), sums)
    return scores.reshape(-1, 2)
