"""Training data for `audit train-dp`: read CSV/JSONL/text, split, subsample and tokenize.

All selection is seeded; the row indices kept for training and evaluation are returned so the
caller can record them (they define the member set a later membership-inference audit needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import usage


@dataclass
class TextData:
    """Texts (and labels for a classifier) read from one file, with the file's SHA-256."""

    texts: list[str]
    labels: list[int] | None
    path: str
    sha256: str


def read_texts(path: str | Path, text_column: str = "text", label_column: str | None = "label",
               ) -> TextData:
    """Read a .csv, .jsonl/.json or .txt (one example per line) file of texts and labels."""
    from audit.dp.ledger import sha256_file

    p = Path(path)
    if not p.is_file():
        raise usage(str(p), "data", "file not found", "pass a CSV, JSONL or text file")
    suffix = p.suffix.lower()
    if suffix in (".txt", ".text"):
        texts = [line.rstrip("\n") for line in p.read_text(encoding="utf-8").splitlines()]
        texts, labels = [t for t in texts if t.strip()], None
    elif suffix in (".csv", ".tsv", ".jsonl", ".json"):
        texts, labels = _read_table(p, text_column, label_column)
    else:
        raise usage(str(p), "data", f"unknown file type {suffix!r}",
                    "use .csv, .tsv, .jsonl or .txt")
    if not texts:
        raise usage(str(p), "data", "no examples in the file", "pass a non-empty file")
    return TextData(texts=texts, labels=labels, path=str(p), sha256=sha256_file(p))


def _read_table(p: Path, text_column: str, label_column: str | None,
                ) -> tuple[list[str], list[int] | None]:
    from audit.io import read_table

    frame = read_table(p, "--data")
    if text_column not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise usage(str(p), text_column, f"no such column (columns: {columns})",
                    "pass --text-column")
    frame = frame.dropna(subset=[text_column])
    texts = [str(t) for t in frame[text_column]]
    if not label_column or label_column not in frame.columns:
        return texts, None
    return texts, _label_ids(p, frame[label_column].tolist(), label_column)


def _label_ids(p: Path, raw: list[Any], column: str) -> list[int]:
    """Integer class ids: integer labels kept as they are, other labels mapped in sorted order."""
    if all(isinstance(v, (int, np.integer)) or (isinstance(v, float) and float(v).is_integer())
           for v in raw):
        ids = [int(v) for v in raw]
        if min(ids) < 0:
            raise usage(str(p), column, "negative class id", "use labels 0..K-1")
        return ids
    names = sorted({str(v) for v in raw})
    return [names.index(str(v)) for v in raw]


def split_indices(n: int, eval_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of range(n) into (train, eval) index arrays, each sorted."""
    if not 0.0 <= eval_fraction < 1.0:
        raise usage("train-dp", "--eval-fraction", f"{eval_fraction} is not in [0, 1)",
                    "pass e.g. 0.1")
    perm = np.random.default_rng(seed).permutation(n)
    n_eval = int(round(n * eval_fraction))
    return np.sort(perm[n_eval:]), np.sort(perm[:n_eval])


def subsample(indices: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """At most ``limit`` of ``indices``, chosen with a seeded generator, kept sorted."""
    if limit is None or limit >= len(indices):
        return indices
    if limit <= 0:
        raise usage("train-dp", "--max-train-samples", f"{limit} is not positive", "pass >= 1")
    rng = np.random.default_rng(seed + 1)
    return np.sort(rng.choice(indices, size=limit, replace=False))


def encode(tokenizer: Any, texts: list[str], labels: list[int] | None, max_length: int,
           task: str) -> Any:
    """A TensorDataset (input_ids, attention_mask, labels), padded to ``max_length``.

    For a causal LM the labels are the input ids with padding set to -100 (ignored by the loss),
    and a beginning-of-sequence token (BOS, else EOS) is prepended when the tokenizer adds none,
    so the first real token is predicted too.
    """
    import torch
    from torch.utils.data import TensorDataset

    bos = _missing_bos(tokenizer) if task == "causal_lm" else None
    width = max_length - (bos is not None)
    enc = tokenizer(texts, truncation=True, max_length=width, padding="max_length",
                    return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    if bos is not None:  # score-time adapters prepend it too, so training and scoring agree
        ids = torch.cat([torch.full((len(ids), 1), bos, dtype=ids.dtype), ids], dim=1)
        mask = torch.cat([torch.ones((len(mask), 1), dtype=mask.dtype), mask], dim=1)
    if task == "causal_lm":
        target = ids.masked_fill(mask == 0, -100)
    else:
        target = torch.tensor(labels, dtype=torch.long)
    return TensorDataset(ids, mask, target)


def _missing_bos(tokenizer: Any) -> int | None:
    """The BOS (else EOS) id when the tokenizer does not add one itself, else None."""
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if bos is None:
        return None
    first = tokenizer("a")["input_ids"]
    return None if first and first[0] == bos else int(bos)
