"""Small helpers shared by the privacy checks: reading text files, hashing secrets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from audit.errors import usage


def secret_hash(secret: str) -> str:
    """First 16 hex digits of SHA-256 of a secret: identifies it in results without showing it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


def read_texts(ctx: Any, path: str, where: str, field: str = "text",
               min_count: int = 1) -> list[str]:
    """Texts from a file: ``.jsonl`` (one object with ``field`` per line), ``.json`` (a list of
    strings or of objects with ``field``) or anything else (one non-empty line per text)."""
    from audit.io import read_text_file

    p = ctx.resolve_path(path)
    raw = read_text_file(p, f"{where} ({path})")
    try:
        texts = _parse(raw, p.suffix.lower(), field)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise usage(where, path, f"cannot read texts ({type(exc).__name__}: {exc})",
                    f"use one text per line, or JSON Lines with a {field!r} field") from None
    texts = [t for t in texts if t.strip()]
    if len(texts) < min_count:
        raise usage(where, path, f"holds {len(texts)} texts, needs at least {min_count}",
                    "add more texts")
    return texts


def _parse(raw: str, suffix: str, field: str) -> list[str]:
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        return [r if isinstance(r, str) else str(r[field]) for r in rows]
    if suffix == ".json":
        data = json.loads(raw)
        if isinstance(data, dict):
            data = data.get("texts") or data.get("items") or []
        return [r if isinstance(r, str) else str(r[field]) for r in data]
    return [line for line in raw.splitlines()]


def packaged(relative: str) -> Path:
    """Path of a file shipped in ``audit/probes``."""
    return Path(__file__).resolve().parents[2] / "probes" / relative
