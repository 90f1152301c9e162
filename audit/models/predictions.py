"""Predictions adapter: a CSV/Parquet of predictions, so any model at all can get a fairness audit.

Expected columns (names configurable in the checks' params): ``y_true``, ``y_pred``, optional
``score`` (probability of the positive class) and any sensitive/group columns.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from audit.errors import usage
from audit.results import ModelInfo


def read_table(path: str | Path, what: str = "data") -> Any:
    """Read a CSV or Parquet file into a DataFrame; one-line errors for missing/unreadable files."""
    import pandas as pd

    p = Path(path)
    if not str(path) or not p.exists():
        raise usage(str(path) or "(none)", what, "file not found", "pass an existing CSV or Parquet file")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif p.suffix.lower() in (".jsonl", ".json"):
            frame = pd.read_json(p, lines=p.suffix.lower() == ".jsonl")
        else:
            frame = pd.read_csv(p)
    except Exception as exc:  # pandas raises many types
        raise usage(str(p), what, f"cannot read ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                    "pass a valid CSV, JSONL or Parquet file") from None
    if frame.empty:
        raise usage(str(p), what, "the file has no rows", "pass a file with data rows")
    return frame


class PredictionsAdapter:
    """Wraps a table of predictions; capability ``predictions`` (``.frame``)."""

    adapter_name = "predictions"
    kind = "predictions"
    capabilities = frozenset({"predictions"})

    def __init__(self, frame: Any, alias: str = "default", source: str = "", sha256: str = ""):
        self.frame, self.alias, self.source, self.sha256 = frame, alias, source, sha256
        self.device = "cpu"

    @classmethod
    def from_file(cls, path: str, alias: str = "default", **_: Any) -> "PredictionsAdapter":
        """Load a predictions file (CSV, JSONL or Parquet)."""
        frame = read_table(path, "predictions")
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return cls(frame, alias=alias, source=str(Path(path).resolve()), sha256=digest)

    def info(self) -> ModelInfo:
        """Source file, its hash, row count and columns."""
        return ModelInfo(alias=self.alias, source=self.source, adapter="predictions",
                         kind="predictions", files={Path(self.source).name: self.sha256},
                         details={"rows": int(len(self.frame)), "columns": list(map(str, self.frame.columns))})

    def close(self) -> None:
        """Nothing to free."""
