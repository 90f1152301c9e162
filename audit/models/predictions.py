"""Predictions adapter: a CSV/Parquet of predictions, so any model at all can get a fairness audit.

Expected columns (names configurable in the checks' params): ``y_true``, ``y_pred``, optional
``score`` (probability of the positive class) and any sensitive/group columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.io import read_table, sha256_file
from audit.results import ModelInfo


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
        digest = sha256_file(path)
        return cls(frame, alias=alias, source=str(Path(path).resolve()), sha256=digest)

    def info(self) -> ModelInfo:
        """Source file, its hash, row count and columns."""
        return ModelInfo(alias=self.alias, source=self.source, adapter="predictions",
                         kind="predictions", files={Path(self.source).name: self.sha256},
                         details={"rows": int(len(self.frame)), "columns": list(map(str, self.frame.columns))})

    def close(self) -> None:
        """Nothing to free."""
