"""Responses adapter: logged prompt -> completion pairs served as ``generate`` and ``chat``.

A CSV, JSON Lines or JSON file of what some model answered (a closed API, a product, a model
nobody can call any more) is audited like a live model: every check that needs only
``generate`` or ``chat`` runs on it, and each request is answered by looking its prompt up in
the file. The file's rows hold

- ``prompt``: the text the model was given (for ``chat``: the last user message);
- ``completion``: what it answered;
- optional ``id``: a row identifier (used in error messages);
- optional ``messages``: the whole conversation before the reply, as a JSON list of
  ``{"role", "content"}`` (when present, ``chat`` matches the whole conversation first);
- any other columns: metadata, kept in :attr:`ResponsesAdapter.rows` and ignored by lookups.

Column names are options (``prompt_column``, ``completion_column``, ``id_column``,
``messages_column``). Keys compare after stripping and collapsing runs of whitespace. A prompt
with several rows answers successive requests for it within one call with successive rows (so
``n_samples`` sampled requests get ``n`` distinct logged samples); a greedy request gets the
first row. Asking for a prompt the file lacks, or for more samples than it logged, raises a
one-line :class:`~audit.errors.UsageError` naming the prompt and the file (the check is then
recorded as an error that says which prompt is missing). Generation settings (``max_new_tokens``,
``temperature``, ``seed``) cannot change a logged answer and are ignored; ``info()`` says so and
records the file's SHA-256 and row count.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from audit.errors import UsageError, usage
from audit.models.capabilities import Message, Progress
from audit.results import ModelInfo


OPTIONS = ("prompt_column", "completion_column", "id_column", "messages_column")


def normalise(text: str) -> str:
    """The lookup key of a prompt: surrounding whitespace stripped, inner runs collapsed."""
    return " ".join(str(text).split())


def conversation_key(messages: Sequence[Message]) -> str:
    """The lookup key of a conversation: its (role, normalised content) pairs as JSON."""
    return json.dumps([[str(m.get("role", "")), normalise(m.get("content", ""))] for m in messages],
                      ensure_ascii=False)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV/TSV (header line), JSON Lines or JSON (a list of objects) file, as dicts of
    exact strings (no type guessing: an empty completion stays an empty string)."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
        if suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif suffix == ".json":
            data = json.loads(text)
            rows = data.get("responses", data.get("rows")) if isinstance(data, dict) else data
        else:
            rows = list(csv.DictReader(text.splitlines(keepends=True),
                                       delimiter="\t" if suffix == ".tsv" else ","))
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise usage(str(path), "responses file", f"cannot read ({type(exc).__name__}: {exc})",
                    "pass a CSV with prompt,completion columns or JSON Lines of such objects") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise usage(str(path), "responses file", "not a list of rows",
                    'use JSON Lines: {"prompt": "...", "completion": "..."} per line')
    return rows


class ResponsesAdapter:
    """Logged completions served by lookup; capabilities ``generate`` and ``chat``."""

    adapter_name = "responses"
    kind = "responses"
    capabilities = frozenset({"generate", "chat"})

    def __init__(self, rows: list[dict[str, Any]], *, alias: str = "default", source: str = "",
                 sha256: str = "", prompt_column: str = "prompt",
                 completion_column: str = "completion", id_column: str = "id",
                 messages_column: str = "messages") -> None:
        self.alias, self.source, self.sha256 = alias, source, sha256
        self.rows = rows
        self.device = "cpu"
        self.columns = {"prompt": prompt_column, "completion": completion_column,
                        "id": id_column, "messages": messages_column}
        self.by_prompt: dict[str, list[int]] = defaultdict(list)
        self.by_conversation: dict[str, list[int]] = defaultdict(list)
        self._index()

    @classmethod
    def from_file(cls, path: str, alias: str = "default", **options: Any) -> "ResponsesAdapter":
        """Load a responses file (CSV, TSV, JSONL or JSON); options name the columns."""
        from audit.io import sha256_file

        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise usage(str(path), "options", f"unknown option(s) {', '.join(unknown)}",
                        f"use only {', '.join(OPTIONS)}")
        p = Path(path)
        if not p.is_file():
            raise usage(str(path) or "(none)", "responses file", "file not found",
                        "pass an existing CSV/JSONL of prompt,completion rows")
        rows = read_rows(p)
        return cls(rows, alias=alias, source=str(p.resolve()), sha256=sha256_file(p), **options)

    def _index(self) -> None:
        col = self.columns
        if not self.rows:
            raise usage(self.source, "responses file", "the file has no rows",
                        "add prompt,completion rows")
        for i, row in enumerate(self.rows):
            if col["completion"] not in row or row[col["completion"]] is None:
                raise usage(self.source, f"row {i + 1}", f"no {col['completion']!r} value",
                            f"give every row a {col['completion']} (or set completion_column)")
            conv = row.get(col["messages"])
            if conv not in (None, ""):
                self.by_conversation[conversation_key(_parse_messages(conv, self.source, i))].append(i)
            if row.get(col["prompt"]) not in (None, ""):
                self.by_prompt[normalise(row[col["prompt"]])].append(i)
            elif conv in (None, ""):
                raise usage(self.source, f"row {i + 1}", f"neither {col['prompt']!r} nor "
                            f"{col['messages']!r}", "give every row the prompt it answers")

    # -- provenance -------------------------------------------------------------------------
    def info(self) -> ModelInfo:
        """The file, its SHA-256, row and prompt counts, and how lookups work."""
        return ModelInfo(alias=self.alias, source=self.source, adapter="responses",
                         kind="responses", files={Path(self.source).name: self.sha256},
                         details={"rows": len(self.rows), "distinct_prompts": len(self.by_prompt),
                                  "conversations": len(self.by_conversation),
                                  "columns": dict(self.columns),
                                  "note": "logged completions served by prompt lookup; "
                                          "generation settings are ignored"})

    def close(self) -> None:
        """Nothing to free."""

    # -- lookups ----------------------------------------------------------------------------
    def completion(self, row: int) -> str:
        """The completion text of row ``row``."""
        return str(self.rows[row][self.columns["completion"]])

    def _pick(self, candidates: list[int], seen: dict[str, int], key: str, sampled: bool,
              shown: str) -> str:
        """Successive rows for repeated sampled requests of one key; the first row if greedy."""
        k = seen[key] if sampled else 0
        seen[key] += 1
        if k >= len(candidates):
            raise usage(self.source, "prompt", f"{len(candidates)} logged completion(s) for "
                        f"{shown!r}, but {k + 1} samples were requested",
                        "lower the check's n_samples or log more completions per prompt")
        return self.completion(candidates[k])

    def _missing(self, shown: str, n_missing: int) -> UsageError:
        more = f" (and {n_missing - 1} more prompt(s))" if n_missing > 1 else ""
        return usage(self.source, "prompt", f"no logged completion for {_short(shown)!r}{more}",
                     "add rows for these prompts to the responses file, or run the check on "
                     "prompts the file covers")

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                 progress: Progress | None = None) -> list[str]:
        """The logged completion of each prompt (exact prompt lookup after normalising spaces)."""
        keys = [normalise(p) for p in prompts]
        missing = [p for p, k in zip(prompts, keys) if k not in self.by_prompt]
        if missing:
            raise self._missing(missing[0], len(missing))
        seen: dict[str, int] = defaultdict(int)
        out = [self._pick(self.by_prompt[k], seen, k, do_sample, p) for p, k in zip(prompts, keys)]
        if progress:
            progress(len(prompts))
        return out

    def chat(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int = 128,
             do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
             progress: Progress | None = None) -> list[str]:
        """The logged reply to each conversation: by the whole conversation when the file has a
        messages column holding it, otherwise by the last user message."""
        resolved = [self._conversation_rows(c) for c in conversations]
        missing = [shown for rows, _, shown in resolved if rows is None]
        if missing:
            raise self._missing(missing[0], len(missing))
        seen: dict[str, int] = defaultdict(int)
        out = [self._pick(rows, seen, key, do_sample, shown) for rows, key, shown in resolved]
        if progress:
            progress(len(conversations))
        return out

    def _conversation_rows(self, conv: Sequence[Message]) -> tuple[list[int] | None, str, str]:
        """(candidate rows or None, lookup key, text to name in an error) of one conversation."""
        whole = conversation_key(conv)
        if whole in self.by_conversation:
            return self.by_conversation[whole], whole, _last_user(conv)
        last = _last_user(conv)
        key = normalise(last)
        return self.by_prompt.get(key), key, last


def _last_user(conv: Sequence[Message]) -> str:
    users = [m.get("content", "") for m in conv if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def _short(text: str, limit: int = 120) -> str:
    text = normalise(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _parse_messages(value: Any, source: str, index: int) -> list[Message]:
    """A messages cell: a list already (JSON input) or JSON text of one (CSV input)."""
    try:
        msgs = json.loads(value) if isinstance(value, str) else value
        if not isinstance(msgs, list) or not all(isinstance(m, dict) and "content" in m
                                                 for m in msgs):
            raise ValueError("not a list of {role, content}")
    except (json.JSONDecodeError, ValueError) as exc:
        raise usage(source, f"row {index + 1}: messages", f"not a conversation ({exc})",
                    'write [{"role": "user", "content": "..."}]') from None
    return msgs
