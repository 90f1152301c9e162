"""PII redaction for everything the report shows from untrusted text (model outputs, evidence).

The project's redactor is ``audit.pii.redact`` (Presidio when installed). It is imported lazily;
when it is missing or fails, a local regex redactor covers the common identifiers. The regex pass
also runs after the project's redactor, as a cheap second line of defence.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("EMAIL", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")),
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("CREDIT_CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b")),
    ("IP_ADDRESS", re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")),
    ("PHONE", re.compile(r"(?<![\w.])(?:\+?\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .\-]\d{3,4}[ .\-]?\d{3,4}(?![\w.])")),
]


def regex_redact(text: str) -> str:
    """Replace e-mail addresses, SSNs, card numbers, IPv4 addresses and phone numbers."""
    for label, pattern in _PATTERNS:
        text = pattern.sub(f"[{label}]", text)
    return text


def regex_spans(text: str) -> list[tuple[int, int]]:
    """Character spans the regex redactor would replace (for token-level masking)."""
    return [m.span() for _, p in _PATTERNS for m in p.finditer(text)]


@lru_cache(maxsize=1)
def _project_redactor() -> Callable[[str], str] | None:
    """``audit.pii.redact`` if the project ships it, else None."""
    try:
        from audit.pii import redact  # noqa: PLC0415 (lazy: presidio is heavy)
    except Exception:  # module absent or its optional dependency missing
        return None
    return redact


FALLBACKS: list[str] = []
"""Why the regex pass alone redacted some text during this process (shown in the report)."""


def redact_text(text: str) -> str:
    """Redact PII in one string: the project's redactor (if any), then the regex pass. When the
    project's redactor is missing or fails, the regex pass alone runs and the reason is kept in
    ``FALLBACKS`` (the report shows it: never silent)."""
    fn = _project_redactor()
    if fn is None:
        _note("audit.pii could not be imported: PII was redacted by the regex pass only")
    else:
        try:
            result = fn(text)
            text = result if isinstance(result, str) else getattr(result, "text", text)
        except Exception as exc:  # a redactor failure must never leak the raw text
            _note(f"audit.pii.redact failed ({type(exc).__name__}): the regex pass alone redacted "
                  "some text")
    return regex_redact(text)


def _note(message: str) -> None:
    if message not in FALLBACKS:
        FALLBACKS.append(message)


def redact_value(value: Any, show_pii: bool) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists) unless ``show_pii``."""
    if show_pii:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(v, show_pii) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, show_pii) for v in value]
    return value
