"""Scripted models for tests, each a ``MockAdapter`` built from a handler (no torch).

Every helper answers the methods it scripts and falls back to the deterministic hashed model of
``audit.models.mock.hashed_handler`` for the rest.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from audit.models.mock import Call, MockAdapter, hashed_handler, hashed_token_log_probs, unit


def scripted(answers: dict[str, Callable[[Call], object]], **kwargs) -> MockAdapter:
    """A mock answering ``answers[method](call)``; other methods get the hashed defaults."""

    def handler(call: Call) -> object:
        fn = answers.get(call.method)
        return fn(call) if fn is not None else hashed_handler(call)

    return MockAdapter(handler, **kwargs)


def table_lm(table: dict[str, float], **kwargs) -> MockAdapter:
    """A causal LM whose sequence log-probabilities come from ``table`` (text -> nats)."""
    kwargs.setdefault("capabilities", {"sequence_log_prob"})
    return scripted({"sequence_log_prob": lambda c: np.array([table[t] for t in c.args["texts"]])},
                    **kwargs)


def shifted_lm(shift: float, prefix: str = "member", **kwargs) -> MockAdapter:
    """Hashed token log-probs, shifted by ``shift`` nats per token for texts starting with
    ``prefix`` (a perfectly leaky model when shift > 0)."""

    def token_lps(call: Call) -> list[np.ndarray]:
        return [hashed_token_log_probs(t) + (shift if t.startswith(prefix) else 0.0)
                for t in call.args["texts"]]

    return scripted({"token_log_probs": token_lps,
                     "sequence_log_prob": lambda c: np.array([lp.sum() for lp in token_lps(c)])},
                    capabilities={"sequence_log_prob"}, **kwargs)


def keyword_classifier(keywords: dict[str, float], **kwargs) -> MockAdapter:
    """Two-class probabilities: sigmoid of the summed weights of the keywords present (whole
    lower-case words) plus a small hashed offset in [-0.1, 0.1]."""

    def proba(call: Call) -> np.ndarray:
        rows = []
        for text in call.args["texts"]:
            score = sum(w for k, w in keywords.items() if k in text.lower().split())
            score += (unit(text, "clf") - 0.5) * 0.2
            p = 1 / (1 + np.exp(-score))
            rows.append([1 - p, p])
        return np.array(rows).reshape(len(call.args["texts"]), 2)

    kwargs.setdefault("kind", "classifier")
    return scripted({"predict_proba": proba}, **kwargs)


def parrot(known: list[str], **kwargs) -> MockAdapter:
    """A generator that continues any prompt found inside a known text with its true
    continuation (whitespace words), and babbles otherwise. Text-only: ``generate``."""

    def generate(call: Call) -> list[str]:
        outs = []
        for p in call.args["prompts"]:
            src = next((t for t in known if p in t), None)
            rest = src[src.index(p) + len(p):] if src else "la " * 5
            outs.append(" ".join(rest.split()[:call.args["max_new_tokens"]]))
        return outs

    kwargs.setdefault("capabilities", {"generate"})
    return scripted({"generate": generate}, **kwargs)
