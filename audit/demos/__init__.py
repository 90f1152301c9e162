"""Demonstration models and corpora built offline from data in installed wheels.

- ``adult``: a scikit-learn model on UCI Adult and its predictions file (fairness demo)
- ``compas``: ProPublica's filtered COMPAS table as a predictions file (fairness demo)
- ``dreaddit``: a MiniLM stress classifier trained on dreaddit (``dreaddit-classifier`` asset)
- ``canary``: a small GPT-2-style LM with inserted secrets (privacy demo)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_table(frame: Any, path: str | Path) -> Path:
    """Write a DataFrame to ``path`` as Parquet (by suffix) or CSV, creating folders; returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path
