"""WEAT math (Caliskan et al. 2017) and a reader for word2vec binary vector files.

Pure numpy: the association ``s(w, A, B)``, the test statistic ``s(X, Y, A, B)``, the effect size
``d`` and the one-sided permutation p-value (exact enumeration when the partitions are few,
sampled otherwise). Used by ``embedding_association`` for static word vectors and, with the
same functions, for sentence embeddings (SEAT, May et al. 2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

DEFAULT_EXACT_MAX = 100_000


@dataclass
class WeatResult:
    """Outcome of one WEAT: statistic, effect size, p-value and how the p-value was computed."""

    statistic: float
    effect_size: float
    p_value: float
    p_method: str
    n_partitions: int
    associations_x: list[float] = field(default_factory=list)
    associations_y: list[float] = field(default_factory=list)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


def associations(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b)`` for every row ``w`` (vectorised)."""
    wu, au, bu = _unit_rows(w), _unit_rows(a), _unit_rows(b)
    return (wu @ au.T).mean(axis=1) - (wu @ bu.T).mean(axis=1)


def effect_size(sx: np.ndarray, sy: np.ndarray, ddof: int = 1) -> float:
    """``d = (mean_x s - mean_y s) / std_{w in X u Y} s`` (NaN when the std is 0)."""
    pooled = np.concatenate([sx, sy])
    std = float(np.std(pooled, ddof=ddof)) if pooled.size > ddof else 0.0
    if std == 0.0:
        return float("nan")
    return float((np.mean(sx) - np.mean(sy)) / std)


def n_partitions(nx: int, ny: int) -> int:
    """Number of ways to split ``nx + ny`` items into sets of sizes ``nx`` and ``ny``."""
    return math.comb(nx + ny, nx)


def permutation_p_value(sx: np.ndarray, sy: np.ndarray, rng: np.random.Generator | None = None,
                        exact_max: int = DEFAULT_EXACT_MAX,
                        n_samples: int = 10_000) -> tuple[float, str, int]:
    """One-sided p = Pr[s(X_i, Y_i) > s(X, Y)] over equal-size re-partitions of ``X u Y``.

    Exact enumeration when the number of partitions is at most ``exact_max``; otherwise
    ``n_samples`` random partitions (a Monte Carlo estimate). Returns (p, method, n_evaluated).
    """
    values = np.concatenate([np.asarray(sx, float), np.asarray(sy, float)])
    nx, total = len(sx), float(values.sum())
    observed = 2.0 * float(np.sum(sx)) - total
    tol = 1e-9 * max(1.0, abs(observed))
    count = n_partitions(nx, len(sy))
    if count <= exact_max:
        sums = _subset_sums(values, nx)
        return float(np.mean(2.0 * sums - total > observed + tol)), "exact", count
    gen = rng if rng is not None else np.random.default_rng(0)
    order = np.argsort(gen.random((n_samples, values.size)), axis=1)[:, :nx]
    stats = 2.0 * values[order].sum(axis=1) - total
    return float(np.mean(stats > observed + tol)), "sampled", n_samples


def _subset_sums(values: np.ndarray, k: int, chunk: int = 65_536) -> np.ndarray:
    """Sums of ``values`` over every size-``k`` subset, in lexicographic order."""
    out: list[np.ndarray] = []
    it = combinations(range(values.size), k)
    while True:
        block = np.fromiter((i for c in _take(it, chunk) for i in c), dtype=np.int64)
        if block.size == 0:
            break
        out.append(values[block.reshape(-1, k)].sum(axis=1))
    return np.concatenate(out) if out else np.zeros(1)


def _take(it, n: int):
    for _, item in zip(range(n), it):
        yield item


def weat(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray,
         rng: np.random.Generator | None = None, exact_max: int = DEFAULT_EXACT_MAX,
         n_samples: int = 10_000, ddof: int = 1) -> WeatResult:
    """Run one WEAT on embedding matrices (rows are words or sentences)."""
    sx, sy = associations(x, a, b), associations(y, a, b)
    p, method, n_eval = permutation_p_value(sx, sy, rng, exact_max, n_samples)
    return WeatResult(statistic=float(sx.sum() - sy.sum()), effect_size=effect_size(sx, sy, ddof),
                      p_value=p, p_method=method, n_partitions=n_partitions(len(sx), len(sy)),
                      associations_x=sx.tolist(), associations_y=sy.tolist())


class WordVectors:
    """Static word vectors read from a word2vec binary file (no gensim needed)."""

    def __init__(self, words: list[str], matrix: np.ndarray) -> None:
        self.words = words
        self.matrix = matrix
        self.index = {w: i for i, w in enumerate(words)}

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __len__(self) -> int:
        return len(self.words)

    def lookup(self, words: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
        """Vectors of the words found, the words found and the words missing (order kept)."""
        found = [w for w in words if w in self.index]
        missing = [w for w in words if w not in self.index]
        rows = self.matrix[[self.index[w] for w in found]] if found else np.zeros((0, self.dim))
        return np.asarray(rows, dtype=np.float64), found, missing

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])


def read_word2vec_bin(path: str | Path) -> WordVectors:
    """Parse the word2vec C binary format: a ``"<count> <dim>\\n"`` header, then per word its
    UTF-8 bytes, one space and ``dim`` little-endian float32 values (optionally a newline).

    Raises ValueError with a reason when the file is not in that format.
    """
    data = Path(path).read_bytes()
    head_end = data.find(b"\n")
    try:
        count, dim = (int(v) for v in data[:head_end].split())
    except ValueError:
        raise ValueError("first line is not '<count> <dim>'") from None
    words, rows, pos, width = [], np.empty((count, dim), np.float32), head_end + 1, 4 * dim
    for i in range(count):
        while data[pos:pos + 1] in (b"\n", b" "):
            pos += 1
        space = data.find(b" ", pos)
        if space < 0 or space + 1 + width > len(data):
            raise ValueError(f"truncated at entry {i} of {count}")
        words.append(data[pos:space].decode("utf-8", errors="replace"))
        rows[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + width
    return WordVectors(words, rows)
