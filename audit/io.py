"""Atomic file writes: a reader never sees a half-written results.json or report."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_table(path: str | Path, what: str = "data") -> Any:
    """Read a CSV, TSV, JSON / JSON-lines or Parquet file into a DataFrame (pandas, imported
    lazily); one-line usage errors for a missing, unreadable or empty file."""
    import pandas as pd

    from audit.errors import usage

    p = Path(path)
    if not str(path) or not p.exists():
        raise usage(str(path) or "(none)", what, "file not found", "pass an existing CSV or Parquet file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif suffix in (".jsonl", ".json"):
            frame = pd.read_json(p, lines=suffix == ".jsonl")
        else:
            frame = pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
    except Exception as exc:  # pandas raises many types
        raise usage(str(p), what, f"cannot read ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                    "pass a valid CSV, TSV, JSONL or Parquet file") from None
    if frame.empty:
        raise usage(str(p), what, "the file has no rows", "pass a file with data rows")
    return frame
