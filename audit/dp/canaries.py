"""Audit canaries for `audit train-dp --audit-canaries M` (the one-run audit's training side).

``M`` canaries are drawn from the run seed: random-token texts (tokens drawn uniformly from the
tokenizer's vocabulary, special tokens excluded), each with a uniformly random class label when
the model is a classifier (a random label on a random text is a mislabeled example: nothing but
memorisation can make the model predict it). Each canary is included in the training set
independently with probability 1/2 (Steinke, Nasr & Jagielski 2023).

Two files come out of it:

- ``audit_canaries.json`` in the model folder: every canary's text (and label), not which were
  used. It is what the auditor scores.
- the *secret* (default ``<model folder>.audit-secret.json``, beside the folder, never inside it):
  the inclusion bits and the SHA-256 of the canary file. The ledger stores only the SHA-256 of
  the secret (a commitment, so a swapped secret is detected), never the bits.

The bits are a deterministic function of the run seed (same seed, same files), so anyone who
knows the seed can recompute them: the audit's validity does not rest on hiding them (the
``dp_audit`` check guesses from the model's outputs alone and reads the secret only to count
correct guesses), but do not hand the secret to whoever produces the guesses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import usage

CANARIES_FILE = "audit_canaries.json"
CANARIES_SCHEMA = "audit.dp_canaries/1"
SECRET_SCHEMA = "audit.dp_canary_secret/1"
SECRET_SUFFIX = ".audit-secret.json"


@dataclass
class CanarySet:
    """The drawn canaries and their inclusion bits (the secret)."""

    kind: str
    texts: list[str]
    labels: list[int] | None
    included: np.ndarray
    tokens: int

    def public(self) -> dict[str, Any]:
        """The canary file's content: texts (and labels), not the inclusion bits."""
        rows = []
        for j, text in enumerate(self.texts):
            row: dict[str, Any] = {"id": canary_id(j), "text": text}
            if self.labels is not None:
                row["label"] = int(self.labels[j])
            rows.append(row)
        return {"schema": CANARIES_SCHEMA, "kind": self.kind, "count": len(self.texts),
                "tokens": self.tokens, "inclusion_probability": 0.5, "canaries": rows}


def canary_id(j: int) -> str:
    """The stable id of canary ``j``."""
    return f"canary-{j:05d}"


def default_secret_path(output: str | Path) -> Path:
    """``<output>.audit-secret.json`` beside the model folder."""
    out = Path(output)
    return out.parent / (out.name + SECRET_SUFFIX)


def draw_canaries(tokenizer: Any, task: str, count: int, tokens: int, num_labels: int | None,
                  seed: int) -> CanarySet:
    """Draw ``count`` distinct random-token canaries (random labels for a classifier) and their
    inclusion bits, all from ``seed``."""
    from audit.context import stable_seed

    rng = np.random.default_rng(stable_seed(seed, "audit-canaries"))
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocab = np.array([i for i in range(len(tokenizer)) if i not in special])
    if len(vocab) < 2:
        raise usage("train-dp", "--audit-canaries", "the tokenizer has no ordinary tokens",
                    "use a model with a real vocabulary")
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < count:
        text = " ".join(tokenizer.decode(rng.choice(vocab, size=tokens)).split())
        if text and text not in seen:
            seen.add(text)
            texts.append(text)
    labels = None
    if task == "classifier":
        labels = [int(x) for x in rng.integers(0, int(num_labels or 2), size=count)]
    included = rng.random(count) < 0.5
    return CanarySet(kind=task, texts=texts, labels=labels, included=included, tokens=tokens)


def sha256_text(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canaries_text(canaries: CanarySet) -> str:
    """The canary file's exact bytes (stable: sorted keys)."""
    return json.dumps(canaries.public(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def secret_text(canaries: CanarySet) -> str:
    """The secret file's exact bytes: inclusion bits and the canary file's SHA-256."""
    body = {"schema": SECRET_SCHEMA, "count": len(canaries.texts),
            "canaries_sha256": sha256_text(canaries_text(canaries)),
            "included": [int(b) for b in canaries.included]}
    return json.dumps(body, sort_keys=True) + "\n"


def write_canaries(canaries: CanarySet, folder: Path, secret_path: Path) -> dict[str, Any]:
    """Write the canary file into ``folder`` and the secret to ``secret_path``; returns the
    ledger's ``audit_canaries`` entry (counts and SHA-256s, no bits)."""
    public, secret = canaries_text(canaries), secret_text(canaries)
    (folder / CANARIES_FILE).write_text(public, encoding="utf-8")
    secret_path.parent.mkdir(parents=True, exist_ok=True)
    secret_path.write_text(secret, encoding="utf-8")
    return {"count": len(canaries.texts), "tokens": canaries.tokens, "kind": canaries.kind,
            "file": CANARIES_FILE, "canaries_sha256": sha256_text(public),
            "secret_sha256": sha256_text(secret), "inclusion_probability": 0.5}


def read_canaries(path: Path) -> tuple[dict[str, Any], str]:
    """The canary file's content and its SHA-256; a malformed file is a one-line UsageError."""
    text = _read(path, "canaries")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise usage(str(path), f"line {exc.lineno}", "not valid JSON",
                    f"pass the {CANARIES_FILE} written by `audit train-dp --audit-canaries`"
                    ) from None
    if not isinstance(data, dict) or data.get("schema") != CANARIES_SCHEMA \
            or not isinstance(data.get("canaries"), list) or not data["canaries"]:
        raise usage(str(path), "schema", f"not a canary file ({CANARIES_SCHEMA})",
                    f"pass the {CANARIES_FILE} written by `audit train-dp --audit-canaries`")
    return data, sha256_text(text)


def read_secret(path: Path, count: int) -> tuple[dict[str, Any], str]:
    """The secret's content and SHA-256; checks it has one 0/1 bit per canary."""
    text = _read(path, "secret")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise usage(str(path), f"line {exc.lineno}", "not valid JSON",
                    "pass the secret written by `audit train-dp --audit-canaries`") from None
    bits = data.get("included") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("schema") != SECRET_SCHEMA or not isinstance(
            bits, list) or len(bits) != count or any(b not in (0, 1) for b in bits):
        raise usage(str(path), "included", f"not a canary secret with {count} 0/1 bits",
                    "pass the secret written by the same `audit train-dp --audit-canaries` run")
    return data, sha256_text(text)


def _read(path: Path, what: str) -> str:
    if not path.is_file():
        raise usage(str(path), what, "file not found" if not path.exists() else "not a file",
                    f"pass the {what} file written by `audit train-dp --audit-canaries`")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise usage(str(path), what, "not UTF-8 text",
                    f"pass the {what} file written by `audit train-dp --audit-canaries`") from None
