"""SHAP's Partition explainer (Owen values over the Text masker's token hierarchy), run for many
texts in lockstep so the model sees a few large batches instead of many calls of 5 texts.

Each text follows exactly the recursion of ``shap.explainers.Partition.owen`` (same priority
queue, same per-text batch of ``batch_size`` nodes, same ``max_evals`` budget, same credit
lowering); only the model calls are pooled across texts, de-duplicated and length-sorted. Ties
in the queue's priority are broken by a seeded per-text generator instead of the global numpy
state, so results match shap's up to the order of exactly tied nodes.
"""

from __future__ import annotations

import queue
from typing import Any, Callable

import numpy as np


class OwenRow:
    """State of the Partition recursion for one text."""

    def __init__(self, text: str, masker: Any, max_evals: int, batch_size: int, seed: int):
        from shap.utils import make_masks

        self.text, self.masker = text, masker
        self.segments = list(masker.data_transform(text)[0])
        self.M = len(self.segments)
        if self.M < 2:  # one token: no hierarchy, its credit is f(x) - f(masked)
            self.clustering, self.mask_matrix = np.zeros((0, 4)), None
        else:
            self.clustering = masker.clustering(text)
            self.mask_matrix = make_masks(self.clustering)
        self.max_evals, self.batch_size = max_evals - 2, batch_size
        self.rng = np.random.default_rng(seed)
        self.queue: queue.PriorityQueue = queue.PriorityQueue()
        self.eval_count, self.done, self.pending = 0, False, []
        self.base = self.full = self.dvalues = None

    def string(self, mask: np.ndarray) -> str:
        """The masked text the model sees for ``mask`` (True = token kept)."""
        return str(self.masker(mask, self.text)[0][0])

    def start(self, f00: np.ndarray, f11: np.ndarray) -> None:
        """Seed the queue with the root node once base and full outputs are known."""
        self.base, self.full = f00, f11
        self.dvalues = np.zeros((2 * self.clustering.shape[0] + 1, len(f00)))
        root = len(self.dvalues) - 1
        self.queue.put((0, 0, (np.zeros(self.M, dtype=bool), f00, f11, root, 1.0)))

    def _child_mask(self, m00: np.ndarray, index: int) -> np.ndarray:
        return m00 | self.mask_matrix[index].toarray().ravel().astype(bool)

    def next_masks(self) -> list[np.ndarray]:
        """The next batch of masks to evaluate ([] once the recursion has finished)."""
        while not self.done:
            if self.queue.empty():
                self.done = True
            elif self.eval_count >= self.max_evals:
                while not self.queue.empty():
                    _, f00, f11, ind, weight = self.queue.get()[2]
                    self.dvalues[ind] += (f11 - f00) * weight
                self.done = True
            else:
                masks = self._fill_batch()
                if masks:
                    return masks
        return []

    def _fill_batch(self) -> list[np.ndarray]:
        self.pending, masks = [], []
        while (not self.queue.empty() and len(masks) < self.batch_size
               and self.eval_count + len(masks) < self.max_evals):
            m00, f00, f11, ind, weight = self.queue.get()[2]
            if ind < self.M or self.clustering[ind - self.M, 2] < 0:  # a leaf keeps the difference
                self.dvalues[ind] += (f11 - f00) * weight
                continue
            lind, rind = (int(v) for v in self.clustering[ind - self.M, :2])
            m10, m01 = self._child_mask(m00, lind), self._child_mask(m00, rind)
            self.pending.append((m00, m10, m01, f00, f11, lind, rind, weight))
            masks += [m10, m01]
        return masks

    def consume(self, outputs: np.ndarray) -> None:
        """Feed back the model outputs of the last batch and queue the children."""
        self.eval_count += len(outputs)
        for i, (m00, m10, m01, f00, f11, lind, rind, weight) in enumerate(self.pending):
            f10, f01, w = outputs[2 * i], outputs[2 * i + 1], weight / 2
            for f_lo, f_hi, mask, child in ((f00, f10, m00, lind), (f00, f01, m00, rind),
                                            (f01, f11, m01, lind), (f10, f11, m10, rind)):
                priority = -np.max(np.abs(f_hi - f_lo)) * w
                self.queue.put((priority, self.rng.standard_normal(), (mask, f_lo, f_hi, child, w)))
        self.pending = []

    def values(self) -> np.ndarray:
        """Owen values per token and output, ``[M, n_outputs]`` (shap's ``lower_credit``)."""
        from shap.explainers._partition import lower_credit

        vals = self.dvalues.copy()
        lower_credit(len(vals) - 1, 0, self.M, vals, self.clustering)
        return vals[:self.M]


def evaluate(predict: Callable[[list[str]], np.ndarray], strings: list[str],
             chunk: int = 512) -> np.ndarray:
    """Model outputs for ``strings``: unique strings only, sorted by length, in large chunks."""
    unique = sorted(set(strings), key=len)
    outs: dict[str, np.ndarray] = {}
    for start in range(0, len(unique), chunk):
        part = unique[start:start + chunk]
        for s, row in zip(part, np.asarray(predict(part), dtype=float)):
            outs[s] = row
    return np.stack([outs[s] for s in strings])


def explain_texts(texts: list[str], predict: Callable[[list[str]], np.ndarray],
                  make_masker: Callable[[], Any], max_evals: int = 500, batch_size: int = 5,
                  seeds: list[int] | None = None, chunk: int = 512,
                  progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Partition-SHAP values of every text; returns per text ``values [M, C]``, ``base [C]``,
    ``full [C]`` (model output on the unmasked text) and ``segments`` (token substrings)."""
    seeds = seeds or list(range(len(texts)))
    rows = [OwenRow(t, make_masker(), max_evals, batch_size, s) for t, s in zip(texts, seeds)]
    ends = [r.string(np.zeros(r.M, dtype=bool)) for r in rows]
    ends += [r.string(np.ones(r.M, dtype=bool)) for r in rows]
    out = evaluate(predict, ends, chunk)
    for i, row in enumerate(rows):
        row.start(out[i], out[len(rows) + i])
    active = rows
    while active:
        work = [(row, row.next_masks()) for row in active]
        work = [(row, masks) for row, masks in work if masks]
        strings = [row.string(m) for row, masks in work for m in masks]
        if strings:
            out, pos = evaluate(predict, strings, chunk), 0
            for row, masks in work:
                row.consume(out[pos:pos + len(masks)])
                pos += len(masks)
            if progress:
                progress(len(strings))
        active = [row for row, _ in work]
    return [{"values": r.values(), "base": r.base, "full": r.full, "segments": r.segments}
            for r in rows]
