"""A record of fallbacks taken while a check runs (Presidio unavailable -> built-in validators,
a redactor failure -> regex redaction, ...), so none is silent: the runner turns each into a
warning finding on the check that used it (``audit.runner``)."""

from __future__ import annotations

_TAKEN: list[str] = []


def note(message: str) -> None:
    """Record that a fallback was used (each distinct message once per check)."""
    if message not in _TAKEN:
        _TAKEN.append(message)


def reset() -> None:
    """Forget recorded fallbacks (the runner calls this before each check)."""
    _TAKEN.clear()


def take() -> list[str]:
    """The fallbacks recorded since the last reset, then forget them."""
    out = list(_TAKEN)
    _TAKEN.clear()
    return out
