"""Per-item records: one compressed JSON Lines file next to results.json, and what they allow.

Every check may return ``CheckOutput.items``: one record per scored unit (a CrowS pair, a template
cell, a prompt's completion, a canary, a row) with a stable string ``id`` unique within the check.
The runner redacts them like evidence (PII and secrets never raw unless ``--show-pii``) and writes
``items.jsonl.gz`` beside results.json: one line per item, ``{"check": ID, "item": {...}}``.
Each check result records how many items it has and the SHA-256 of their canonical JSON, so a
tampered or stale items file is detected. ``audit report`` and ``audit gate`` never need the file.

A check declares how its headline metrics follow from its items with ``item_metrics=`` on
``@check``: metric name -> :class:`ItemMetric`. :func:`rederive` recomputes those metrics from the
items alone (tests compare them with the reported values), and ``audit compare`` uses the same
declarations to pair two runs item by item (McNemar's exact test for binary values, a paired
bootstrap for continuous ones).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

ITEMS_FILE = "items.jsonl.gz"


@dataclass(frozen=True)
class ItemMetric:
    """How one metric follows from a check's items.

    ``value(item)`` gives the item's number (None: the item does not count toward this metric).
    By default the metric is ``scale * mean(values)`` and items can be paired across runs
    (``kind`` "binary" for 0/1 values, "continuous" otherwise). A metric that is not a mean
    (an AUC, a maximum, a gap) gives ``aggregate(items) -> float | None`` instead; it is
    re-derived but compared between runs by the interval rule only.
    """

    value: Callable[[dict[str, Any]], float | None] | None = None
    kind: Literal["binary", "continuous"] = "continuous"
    scale: float = 1.0
    aggregate: Callable[[list[dict[str, Any]]], float | None] | None = None

    @property
    def pairable(self) -> bool:
        """True when the metric is a mean of per-item values (paired tests apply)."""
        return self.aggregate is None and self.value is not None

    def values(self, items: Iterable[dict[str, Any]]) -> dict[str, float]:
        """Item id -> value, for the items this metric counts."""
        assert self.value is not None
        out = {}
        for item in items:
            v = self.value(item)
            if v is not None:
                out[str(item["id"])] = float(v)
        return out

    def compute(self, items: list[dict[str, Any]]) -> float | None:
        """The metric from items alone (None when no item counts)."""
        if self.aggregate is not None:
            return self.aggregate(items)
        vals = list(self.values(items).values())
        return self.scale * sum(vals) / len(vals) if vals else None


def items_digest(items: list[dict[str, Any]]) -> str:
    """SHA-256 of a check's items as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(items, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def validate_items(check_id: str, items: list[dict[str, Any]]) -> None:
    """Every item is a mapping with a string ``id`` unique within the check."""
    seen: set[str] = set()
    for item in items:
        key = item.get("id") if isinstance(item, dict) else None
        if not isinstance(key, str) or not key:
            raise ValueError(f"check {check_id}: an item has no string 'id'")
        if key in seen:
            raise ValueError(f"check {check_id}: item id {key!r} is not unique")
        seen.add(key)


def write_items(out_dir: Path, items_by_check: dict[str, list[dict[str, Any]]]) -> Path:
    """Write every check's items to ``out_dir/items.jsonl.gz`` atomically (temp file + rename).
    The gzip header carries no timestamp, so the same items give the same bytes."""
    from audit.io import atomic_binary_file

    path = Path(out_dir) / ITEMS_FILE
    with atomic_binary_file(path) as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                         filename="") as gz:
        for check_id, items in items_by_check.items():
            for item in items:
                line = json.dumps({"check": check_id, "item": item}, sort_keys=True,
                                  default=str, ensure_ascii=False)
                gz.write(line.encode("utf-8") + b"\n")
    return path


def read_items(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Check id -> its items, from an items file (or the folder that holds one); {} if absent."""
    p = Path(path)
    if p.is_dir():
        p = p / ITEMS_FILE
    if not p.exists():
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    with gzip.open(p, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            out.setdefault(row["check"], []).append(row["item"])
    return out


def verified_items(run: Any, folder: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The items of each check in ``run`` whose count and digest match what results.json
    recorded (a check whose items do not match is left out: stale or edited evidence is not
    evidence)."""
    found = read_items(folder)
    out = {}
    for check in run.checks:
        items = found.get(check.id)
        if items is not None and check.items_sha256 and items_digest(items) == check.items_sha256:
            out[check.id] = items
    return out


def rederive(check_name: str, items: list[dict[str, Any]]) -> dict[str, float | None]:
    """The metrics a check declares in ``item_metrics``, recomputed from its items alone."""
    from audit.registry import get_check

    spec = get_check(check_name)
    return {name: m.compute(items) for name, m in spec.item_metrics.items()}
