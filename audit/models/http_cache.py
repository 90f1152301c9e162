"""SQLite cache of API responses, so a crashed or resumed run does not pay for a request twice.

Keys are SHA-256 digests of ``[base_url, model, endpoint, request]`` where ``request`` is the
JSON body in canonical form (sorted keys, no whitespace). Sampled requests carry their seed in the
body, so each seed is its own entry. Only the response body is stored: never a header, so an API
key cannot end up in the cache. Several threads (and processes) may share one file: writes go
through one lock per cache object, and SQLite's WAL journal serialises processes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Mapping

SCHEMA = ("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, endpoint TEXT NOT NULL, "
          "response TEXT NOT NULL, created REAL NOT NULL)")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal requests give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(base_url: str, model: str, endpoint: str, request: Mapping[str, Any]) -> str:
    """The cache key of one request (a hex SHA-256 digest)."""
    text = canonical_json([base_url.rstrip("/"), model, endpoint, request])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResponseCache:
    """A key -> JSON response store in one SQLite file (created with its folder if missing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(SCHEMA)
            self._db.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response for ``key``, or None."""
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, endpoint: str, response: Mapping[str, Any]) -> None:
        """Store ``response`` under ``key`` (replacing any older entry)."""
        import time

        text = canonical_json(response)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                             (key, endpoint, text, time.time()))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()
