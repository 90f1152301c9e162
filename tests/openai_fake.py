"""A scripted OpenAI-compatible server for httpx.MockTransport (no network, no model).

Text is split into word tokens with their leading spaces (``" nurse"``), as byte-level BPE does.
The "model" gives ``log p(token | context) = lp(context, token)`` from a SHA-256 hash, so a test
can recompute every number independently. Switches reproduce real servers' behaviour:

- ``echo="aligned"``: echo log-probabilities are right (first token None, as llama-cpp-python
  and OpenAI's legacy API return it);
- ``echo="misaligned"``: each prompt token is scored one position late (llama-cpp-python 0.3.36
  on models without BOS: ``p(t_i | t_<=i)`` instead of ``p(t_i | t_<i)``);
- ``echo="ignored"``: ``echo`` is ignored (llama.cpp's own server, Ollama);
- ``embeddings``: whether /v1/embeddings answers; ``seed``: whether ``seed`` is accepted.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from audit.models.mock import unit

TOKEN = re.compile(r"\s*\S+")


def tokens_of(text: str) -> list[str]:
    """Word tokens with their leading whitespace."""
    return TOKEN.findall(text)


def lp(context: str, token: str) -> float:
    """The fake model's log-probability of ``token`` after ``context`` (in [-6.1, -0.1])."""
    return -0.1 - 6.0 * unit(f"{context}\x1e{token}", "fake-openai")


def next_token(context: str, salt: str = "") -> str:
    """The fake model's greedy (or, with a salt, sampled) next token."""
    return f" w{int(unit(context + salt, 'next') * 100)}"


@dataclass
class FakeOpenAI:
    """Handler state: behaviour switches, a request log, and optional scripted failures."""

    model: str = "fake-model"
    echo: str = "aligned"
    embeddings: bool = False
    seed: bool = True
    failures: list[Callable[[Any], Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    before: Callable[[Any], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def transport(self) -> Any:
        import httpx

        return httpx.MockTransport(self.handle)

    def handle(self, request: Any) -> Any:
        import httpx

        body = json.loads(request.content) if request.content else None
        with self._lock:
            self.requests.append({"path": request.url.path, "body": body})
            self.headers.append(dict(request.headers))
            failure = self.failures.pop(0) if self.failures else None
        if self.before:
            self.before(request)
        if failure is not None:
            answer = failure(request)
            if answer is not None:
                return answer
        path = request.url.path
        if path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": [
                {"id": self.model, "object": "model", "owned_by": "test"}]})
        if path.endswith("/chat/completions"):
            return httpx.Response(200, json=self.chat(body))
        if path.endswith("/completions"):
            if body.get("seed") is not None and not self.seed:
                return httpx.Response(400, json={"error": {"message": "unknown field seed"}})
            return httpx.Response(200, json=self.completion(body))
        if path.endswith("/embeddings") and self.embeddings:
            return httpx.Response(200, json={"data": [
                {"embedding": [unit(t, str(k)) for k in range(4)]} for t in body["input"]]})
        return httpx.Response(404, json={"error": {"message": "not found"}})

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt, n = body["prompt"], int(body.get("max_tokens") or 16)
        salt = f"|{body.get('seed')}" if body.get("temperature", 1) > 0 else ""
        gen, ctx = [], prompt
        for _ in range(n):
            tok = next_token(ctx, salt)
            gen.append((tok, lp(ctx, tok)))
            ctx += tok
        text = "".join(t for t, _ in gen)
        if not body.get("logprobs") and body.get("logprobs") != 0:
            return _answer(text, None)
        if body.get("echo") and self.echo != "ignored":
            return _answer(prompt + text, self._echo_logprobs(prompt, gen))
        offsets = [len(prompt) + sum(len(t) for t, _ in gen[:i]) for i in range(len(gen))]
        return _answer(text, {"tokens": [t for t, _ in gen], "token_logprobs": [v for _, v in gen],
                              "text_offset": offsets, "top_logprobs": None})

    def _echo_logprobs(self, prompt: str, gen: list[tuple[str, float]]) -> dict[str, Any]:
        toks = tokens_of(prompt)
        shift = 1 if self.echo == "misaligned" else 0
        values: list[float | None] = [None] + [lp("".join(toks[:i + shift]), toks[i])
                                               for i in range(1, len(toks))]
        offsets = [sum(len(t) for t in toks[:i]) for i in range(len(toks))]
        offsets.append(len(prompt))
        return {"tokens": toks + [gen[0][0]], "token_logprobs": values + [gen[0][1]],
                "text_offset": offsets, "top_logprobs": None}

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        last = body["messages"][-1]["content"]
        salt = f"|{body.get('seed')}" if body.get("temperature", 1) > 0 else ""
        reply = next_token(last, salt).strip()
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                             "finish_reason": "length"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


def _answer(text: str, logprobs: dict[str, Any] | None) -> dict[str, Any]:
    return {"object": "text_completion", "system_fingerprint": "fp-test",
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
