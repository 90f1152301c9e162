"""What an OpenAI-compatible server can do, found by asking it (the ``openai`` adapter's probes).

Scoring (``sequence_log_prob``) is granted only when the server returns log-probabilities of
*prompt* tokens (``echo`` + ``logprobs`` on /v1/completions) and they pass a consistency probe:
a short greedy continuation is generated with its per-token log-probabilities, then prompt +
continuation is scored with ``echo``; the echoed log-probabilities of the continuation's tokens
must match those reported at generation: mean absolute difference at most ``tolerance`` nats
and no token more than ``MAX_FACTOR * tolerance`` apart (quantised kernels differ a little
between batched prompt processing and one-token decoding). Tokens are paired by their text and character
offset in the continuation, so no local tokenizer is needed. A server that ignores ``echo``
(llama.cpp's own server, Ollama, ``transformers serve``) or returns misaligned prompt
log-probabilities (llama-cpp-python 0.3.36 on models without a BOS token) gets no scoring
capability, and the reason is kept for the runner's skip message and the provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

PROBE_PROMPTS: tuple[str, ...] = ('The nurse said, "I\'m not', "The capital of France is")
"""Prompts of the scoring probe (greedy continuations of a few tokens each)."""

PROBE_NEW_TOKENS = 6
MIN_COMPARED = 3
MAX_FACTOR = 5.0
"""A single token may differ by up to MAX_FACTOR x tolerance: llama.cpp's Q4_K_M kernels give
the same token up to 0.17 nat apart between batched prompt evaluation and one-token decoding
(measured on Gemma 3 270M), while misaligned log-probabilities are off by several nats on
nearly every token."""


class EchoUnavailable(Exception):
    """The server's answer holds no usable prompt-token log-probabilities (message: why)."""


@dataclass
class EchoScore:
    """Prompt tokens of one echoed text: token strings, character offsets, log-probabilities
    (None where the server gives none, e.g. the first token)."""

    text: str
    tokens: list[str]
    offsets: list[int]
    log_probs: list[float | None]

    def scored(self) -> np.ndarray:
        """The log-probabilities that the server reported (None entries dropped), float64."""
        return np.array([v for v in self.log_probs if v is not None], dtype=np.float64)

    def continuation(self, cut: int) -> float:
        """Sum over the tokens that carry a character at or after ``cut`` (their span, up to the
        next token's offset, ends after ``cut``)."""
        ends = self.offsets[1:] + [len(self.text)]
        return float(sum(v for v, end in zip(self.log_probs, ends) if end > cut and v is not None))


def echo_body(model: str, text: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The request that scores ``text``: echo the prompt with log-probabilities, one new token
    (``max_tokens: 0`` means "unlimited" on some servers)."""
    body = dict(extra or {})
    body.update({"model": model, "prompt": text, "max_tokens": 1, "temperature": 0,
                 "logprobs": 1, "echo": True})
    return body


def parse_echo(text: str, response: Mapping[str, Any]) -> EchoScore:
    """The prompt part of an echo response (tokens whose offset lies inside ``text``)."""
    choices = response.get("choices") or []
    if not choices:
        raise EchoUnavailable("the echo response had no choices")
    choice = choices[0]
    lp = choice.get("logprobs") or {}
    tokens, values = lp.get("tokens"), lp.get("token_logprobs")
    if not tokens or values is None or len(values) != len(tokens):
        raise EchoUnavailable("the server returned no token log-probabilities with echo")
    if not str(choice.get("text") or "").startswith(text):
        raise EchoUnavailable("the server ignored `echo` (the prompt is not in the returned text)")
    offsets = lp.get("text_offset") or list(np.cumsum([0] + [len(t) for t in tokens[:-1]]))
    n = sum(1 for off in offsets if int(off) < len(text))
    if n == 0 or all(v is None for v in values[:n]):
        raise EchoUnavailable("the server returned log-probabilities of generated tokens only, "
                              "none of the prompt's")
    return EchoScore(text=text, tokens=[str(t) for t in tokens[:n]],
                     offsets=[int(o) for o in offsets[:n]],
                     log_probs=[None if v is None else float(v) for v in values[:n]])


def generated_tokens(response: Mapping[str, Any]) -> tuple[list[str], list[float]]:
    """Tokens and log-probabilities of a completion's generated text (empty when absent)."""
    choices = response.get("choices") or [{}]
    lp = choices[0].get("logprobs") or {}
    tokens, values = lp.get("tokens") or [], lp.get("token_logprobs") or []
    if len(tokens) != len(values) or any(v is None for v in values):
        return [], []
    return [str(t) for t in tokens], [float(v) for v in values]


def compare_continuation(prompt: str, tokens: Sequence[str], gen_lps: Sequence[float],
                         echo: EchoScore) -> list[dict[str, Any]]:
    """Pairs (token, generation log-prob, echo log-prob) of the continuation's tokens, matched
    by their text and character offset after the prompt."""
    echoed = {(off - len(prompt), tok): v for off, tok, v in
              zip(echo.offsets, echo.tokens, echo.log_probs) if off >= len(prompt) and v is not None}
    pairs, start = [], 0
    for tok, g in zip(tokens, gen_lps):
        e = echoed.get((start, tok))
        if e is not None:
            pairs.append({"token": tok, "generation": round(g, 4), "echo": round(e, 4)})
        start += len(tok)
    return pairs


@dataclass
class ScoringProbe:
    """Outcome of the consistency probe: passed or not, why, and the compared tokens."""

    passed: bool
    reason: str
    compared: list[dict[str, Any]]
    max_abs_diff: float | None
    tolerance: float
    first_token_scored: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record for the provenance."""
        return {"passed": self.passed, "reason": self.reason, "mode": "echo",
                "tolerance": self.tolerance, "max_abs_diff": self.max_abs_diff,
                "first_token_scored": self.first_token_scored, "compared": self.compared}


def judge(compared: list[dict[str, Any]], tolerance: float, first: bool | None) -> ScoringProbe:
    """Pass when enough tokens were compared and every pair agrees within ``tolerance``."""
    if len(compared) < MIN_COMPARED:
        return ScoringProbe(False, f"the consistency probe could align only {len(compared)} "
                            f"continuation token(s) between generation and echo (needs "
                            f"{MIN_COMPARED})", compared, None, tolerance, first)
    diffs = np.abs([p["generation"] - p["echo"] for p in compared])
    worst, mean = float(diffs.max()), float(diffs.mean())
    if mean <= tolerance and worst <= MAX_FACTOR * tolerance:
        return ScoringProbe(True, f"echo log-probabilities match generation over "
                            f"{len(compared)} tokens (mean |diff| {mean:.3f}, max {worst:.3f} "
                            f"nat)", compared, worst, tolerance, first)
    shown = ", ".join(f"{p['echo']:.2f} vs {p['generation']:.2f}" for p in compared[:5])
    return ScoringProbe(False, f"prompt log-probabilities fail the consistency probe: echo scores "
                        f"the greedy continuation's tokens at {shown} (echo vs generation; mean "
                        f"|diff| {mean:.2f} nat, max {worst:.2f}; allowed mean {tolerance:g}, max "
                        f"{MAX_FACTOR * tolerance:g})", compared, worst, tolerance, first)


def probe_scoring(post: Any, model: str, extra: Mapping[str, Any] | None, tolerance: float,
                  prompts: Sequence[str] = PROBE_PROMPTS) -> ScoringProbe:
    """Run the consistency probe with ``post(endpoint, body)`` (see the module docstring)."""
    from audit.models.http_client import ApiRejected

    compared: list[dict[str, Any]] = []
    first: bool | None = None
    for prompt in prompts:
        body = dict(extra or {})
        body.update({"model": model, "prompt": prompt, "max_tokens": PROBE_NEW_TOKENS,
                     "temperature": 0, "logprobs": 1})
        try:
            tokens, lps = generated_tokens(post("/completions", body))
            if not tokens:
                return ScoringProbe(False, "the server returns no log-probabilities of generated "
                                    "tokens, so its prompt log-probabilities cannot be checked",
                                    compared, None, tolerance)
            full = prompt + "".join(tokens)
            echo = parse_echo(full, post("/completions", echo_body(model, full, extra)))
        except EchoUnavailable as exc:
            return ScoringProbe(False, str(exc), compared, None, tolerance)
        except ApiRejected as exc:
            return ScoringProbe(False, f"the server rejected a log-probability request ({exc})",
                                compared, None, tolerance)
        first = echo.log_probs[0] is not None if first is None else first
        compared += compare_continuation(prompt, tokens, lps, echo)
    return judge(compared, tolerance, first)
