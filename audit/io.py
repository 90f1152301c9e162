"""Atomic file writes: a reader never sees a half-written results.json or report."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator


@contextmanager
def atomic_binary_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``path`` only when the block ends without
    error (temporary file in the same folder, fsync, ``os.replace``); on error nothing changes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are ordinary files
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    with atomic_binary_file(path) as fh:
        fh.write(text.encode("utf-8"))
    return Path(path)


def check_readable(path: str | Path, what: str = "data") -> Path:
    """``path`` as a Path if it is an existing file; one-line usage errors for a missing path or
    a folder."""
    from audit.errors import usage

    p = Path(path)
    if not str(path) or not p.exists():
        raise usage(str(path) or "(none)", what, "file not found",
                    "check the path (relative paths start at the suite's folder)")
    if p.is_dir():
        raise usage(str(p), what, "is a folder, not a file", "name a file inside it")
    return p


def read_text_file(path: str | Path, what: str = "data") -> str:
    """A text file's contents (UTF-8, a BOM allowed); one-line usage errors for a missing path,
    a folder, a binary file or text that is not UTF-8."""
    from audit.errors import usage

    p = check_readable(path, what)
    data = p.read_bytes()
    if b"\x00" in data[:8192]:
        raise usage(str(p), what, "a binary file, not text", f"pass a UTF-8 text file as {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise usage(str(p), f"{what} (byte {exc.start})", "not UTF-8 text",
                    "re-save the file as UTF-8") from None


def read_table(path: str | Path, what: str = "data") -> Any:
    """Read a CSV, TSV, JSON / JSON-lines or Parquet file into a DataFrame (pandas, imported
    lazily); one-line usage errors for a missing, unreadable, binary, non-UTF-8 or empty file."""
    import io

    import pandas as pd

    from audit.errors import UsageError, usage

    p = check_readable(path, what)
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(p)
        elif suffix in (".jsonl", ".json"):
            frame = pd.read_json(io.StringIO(read_text_file(p, what)), lines=suffix == ".jsonl")
        else:
            frame = pd.read_csv(io.StringIO(read_text_file(p, what)),
                                sep="\t" if suffix == ".tsv" else ",")
    except UsageError:
        raise
    except Exception as exc:  # pandas raises many types
        raise usage(str(p), what, f"cannot read ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                    "pass a valid CSV, TSV, JSONL or Parquet file") from None
    if frame.empty:
        raise usage(str(p), what, "the file has no rows", "pass a file with data rows")
    return frame


HASHED_SUFFIXES = (".safetensors", ".json", ".bin", ".gguf", ".txt", ".model", ".pt")


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes (streamed): the one file hasher of audit."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: str | Path, limit_bytes: int = 4 * 2**30) -> dict[str, str]:
    """SHA-256 of each weight/config/tokenizer file directly in ``folder`` (model provenance)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix in HASHED_SUFFIXES and p.stat().st_size <= limit_bytes}
