"""The ``openai`` adapter: any OpenAI-compatible server (vLLM, TGI, llama.cpp, a hosted API).

Capabilities are probed when the adapter is made, not assumed (see ``audit.models.openai_probe``):

- ``generate``: /v1/completions answers a short greedy request;
- ``chat``: /v1/chat/completions answers;
- ``sequence_log_prob`` (``token_log_probs``, ``sequence_log_prob``, ``continuation_log_prob``):
  only when /v1/completions returns prompt-token log-probabilities with ``echo`` and they pass
  the consistency probe; never computed from generated-token log-probabilities;
- ``embed``: /v1/embeddings answers.

Each probed capability that is absent keeps its reason in ``capability_notes`` (the runner adds
it to a skipped check's reason; ``info()`` records it, with :data:`SERVED_NEVER`). Sampled requests carry a seed derived from the caller's
seed and the item's position when the server accepts ``seed``. Requests run concurrently
(bounded), retry with backoff, time out, and are cached (``audit.models.http_client``).

Scoring conventions: a text is scored as the server tokenises it. Servers differ on the first
token: vLLM scores it after the BOS token; llama-cpp-python (like OpenAI's legacy API) returns no
log-probability for it, so its ``sequence_log_prob`` omits the first token's term
(``info().details["probe"]["first_token_scored"]`` says which).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

import numpy as np

from audit.models.capabilities import Message, Progress
from audit.models.http_client import ApiClient, ApiError, ApiRejected, one_line
from audit.models.openai_probe import EchoScore, echo_body, parse_echo, probe_scoring
from audit.results import ModelInfo

SERVED_NEVER = {
    "tokenize": "a served model exposes no tokenizer to the client",
    "greedy_tokens": "a served model exposes no tokenizer to the client",
    "chat_template": "the server applies its chat template itself and does not return it",
    "attentions": "servers do not return attention weights",
    "differentiable": "a served model has no local torch module",
    "masked_log_probs": "the OpenAI API has no masked-LM scoring",
    "fill_mask": "the OpenAI API has no masked-LM scoring",
    "predict_proba": "the OpenAI API has no classifier endpoint",
}
"""Capabilities no OpenAI-compatible server can give, and why (for skip reasons)."""


def item_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th sampled request of a call (31 bits, stable)."""
    from audit.context import stable_seed

    return int(stable_seed(seed, "openai-item", index) % (2**31 - 1))


def api_root(base_url: str) -> str:
    """``base_url`` with ``/v1`` added when it names only a host (``http://h:8000``)."""
    parts = urlsplit(base_url)
    if parts.username or parts.password:
        from audit.errors import usage

        raise usage("models", "base_url", "credentials in the URL would end up in results",
                    "put the key in an environment variable and name it with api_key_env")
    root = base_url.rstrip("/")
    return root + "/v1" if parts.path in ("", "/") else root


class OpenAIAdapter:
    """A model behind an OpenAI-compatible API (see the module docstring)."""

    adapter_name = "openai"
    live_info = True  # request / retry / cache-hit counts change during a run

    def __init__(self, client: ApiClient, *, alias: str = "default",
                 api_key_env: str | None = None, extra_body: Mapping[str, Any] | None = None,
                 probe_tolerance: float = 0.1, cache_path: str | None = None):
        self.client = client
        self.alias, self.kind, self.device = alias, "causal_lm", "remote"
        self.model = client.model
        self.api_key_env = api_key_env
        self.extra_body = dict(extra_body or {})
        self.probe_tolerance = probe_tolerance
        self.cache_path = cache_path
        self.models_entry: dict[str, Any] | None = None
        self.seed_accepted: bool | None = None
        self.scoring_probe: dict[str, Any] | None = None
        self.capability_notes: dict[str, str] = {}  # probed capability -> why it is absent
        self.capabilities: frozenset[str] = frozenset()
        self._probe()

    # -- probing ----------------------------------------------------------------------------
    def _probe(self) -> None:
        """Ask the server what it can do (models list, generate, seed, chat, echo, embeddings)."""
        caps: set[str] = set()
        self.models_entry = self._models_entry()
        if self._answers("generate", "/completions", self._body(prompt="Hello", max_tokens=1,
                                                                 temperature=0)):
            caps.add("generate")
            self.seed_accepted = self._answers(None, "/completions", self._body(
                prompt="Hello", max_tokens=1, temperature=1.0, seed=1))
            probe = probe_scoring(self._probe_post, self.model, self.extra_body,
                                  self.probe_tolerance)
            self.scoring_probe = probe.as_dict()
            if probe.passed:
                caps.add("sequence_log_prob")
            else:
                self.capability_notes["sequence_log_prob"] = probe.reason
        else:
            self.capability_notes["sequence_log_prob"] = "needs /v1/completions, which failed"
        if self._answers("chat", "/chat/completions", self._body(
                messages=[{"role": "user", "content": "Hello"}], max_tokens=1, temperature=0)):
            caps.add("chat")
        if self._answers("embed", "/embeddings", {"model": self.model, "input": ["Hello"]}):
            caps.add("embed")
        self.capabilities = frozenset(caps)
        self.kind = "causal_lm" if caps & {"generate", "sequence_log_prob"} else "chat"

    def _probe_post(self, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.client.post(endpoint, body)

    def _answers(self, capability: str | None, endpoint: str, body: Mapping[str, Any]) -> bool:
        """True when ``endpoint`` answers ``body``; else the reason goes to the notes."""
        try:
            data = self.client.post(endpoint, body, retries=1)
        except ApiError as exc:
            if capability:
                self.capability_notes[capability] = f"{endpoint} failed: {exc}"
            return False
        ok = bool(data.get("choices") or data.get("data"))
        if not ok and capability:
            self.capability_notes[capability] = f"{endpoint} answered without choices or data"
        return ok

    def _models_entry(self) -> dict[str, Any] | None:
        """This model's entry in /v1/models (None when the server has no such list)."""
        try:
            listing = self.client.get("/models")
        except ApiRejected:
            return None
        served = [m for m in listing.get("data") or [] if isinstance(m, dict)]
        entry = next((m for m in served if m.get("id") == self.model), None)
        if served and entry is None:
            from audit.errors import usage

            names = ", ".join(str(m.get("id")) for m in served[:10])
            raise usage(self.client.base_url, "model", f"{self.model!r} is not served here "
                        f"(served: {names})", "set `model:` to one of the served ids")
        return entry

    # -- provenance -------------------------------------------------------------------------
    def info(self) -> ModelInfo:
        """Server, model entry, probe outcomes and request / retry / cache-hit / token counts."""
        details = {"base_url": self.client.base_url, "model": self.model,
                   "models_entry": self.models_entry, "capabilities": sorted(self.capabilities),
                   "capability_notes": dict(self.capability_notes),
                   "never_served": dict(SERVED_NEVER),
                   "scoring_probe": self.scoring_probe, "seed_accepted": self.seed_accepted,
                   "api_key_env": self.api_key_env, "extra_body": self.extra_body,
                   "max_concurrency": self.client.max_concurrency,
                   "timeout_s": self.client.timeout_s, "max_retries": self.client.max_retries,
                   "cache": self.cache_path, **self.client.stats.as_dict()}
        return ModelInfo(alias=self.alias, source=f"{self.client.base_url} ({self.model})",
                         adapter="openai", kind=self.kind, details=details)

    def close(self) -> None:
        """Close connections and the cache."""
        self.client.close()

    # -- requests ---------------------------------------------------------------------------
    def _body(self, **fields: Any) -> dict[str, Any]:
        body = dict(self.extra_body)
        body.update(fields)
        body["model"] = self.model
        return body

    def _sampling(self, do_sample: bool, temperature: float, top_p: float, seed: int,
                  index: int) -> dict[str, Any]:
        if not do_sample:
            return {"temperature": 0}
        out: dict[str, Any] = {"temperature": temperature, "top_p": top_p}
        if self.seed_accepted:
            out["seed"] = item_seed(seed, index)
        return out

    # -- generate / chat ----------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                 progress: Progress | None = None) -> list[str]:
        """One continuation per prompt from /v1/completions (greedy unless ``do_sample``)."""
        bodies = [self._body(prompt=p, max_tokens=max_new_tokens,
                             **self._sampling(do_sample, temperature, top_p, seed, i))
                  for i, p in enumerate(prompts)]
        return [_choice(r, "text") for r in self.client.map_post("/completions", bodies, progress)]

    def chat(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int = 128,
             do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
             progress: Progress | None = None) -> list[str]:
        """One assistant reply per conversation from /v1/chat/completions (stripped)."""
        bodies = [self._body(messages=[dict(m) for m in conv], max_tokens=max_new_tokens,
                             **self._sampling(do_sample, temperature, top_p, seed, i))
                  for i, conv in enumerate(conversations)]
        replies = self.client.map_post("/chat/completions", bodies, progress)
        return [_choice(r, "message").strip() for r in replies]

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """One vector per text from /v1/embeddings (one request per text, concurrently)."""
        bodies = [{"model": self.model, "input": [t]} for t in texts]
        rows = [np.asarray(r["data"][0]["embedding"], dtype=float)
                for r in self.client.map_post("/embeddings", bodies, progress)]
        return np.stack(rows) if rows else np.zeros((0, 0))

    # -- scoring ------------------------------------------------------------------------------
    def echo_scores(self, texts: Sequence[str], progress: Progress | None = None) -> list[EchoScore]:
        """Prompt-token log-probabilities of each text (echo requests, cached, concurrent)."""
        bodies = [echo_body(self.model, t, self.extra_body) for t in texts]
        responses = self.client.map_post("/completions", bodies, progress)
        out = []
        for text, resp in zip(texts, responses):
            try:
                out.append(parse_echo(text, resp))
            except Exception as exc:  # a server that changed its answers mid-run
                raise ApiError(f"/completions echo of {one_line(text, 60)!r}: {exc}") from None
        return out

    def token_log_probs(self, texts: Sequence[str], progress: Progress | None = None) -> list[np.ndarray]:
        """Log-probabilities of each text's tokens that the server scores (float64)."""
        return [e.scored() for e in self.echo_scores(texts, progress)]

    def sequence_log_prob(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Summed token log-probabilities of each text."""
        return np.array([float(e.scored().sum()) for e in self.echo_scores(texts, progress)])

    def continuation_log_prob(self, prompts: Sequence[str], continuations: Sequence[str],
                              progress: Progress | None = None) -> np.ndarray:
        """Summed log-probabilities of the tokens of ``prompt + continuation`` that carry a
        character of the continuation."""
        if len(prompts) != len(continuations):
            raise ValueError("prompts and continuations differ in length")
        echoes = self.echo_scores([p + c for p, c in zip(prompts, continuations)], progress)
        return np.array([e.continuation(len(p)) for e, p in zip(echoes, prompts)])


def _choice(response: Mapping[str, Any], field: str) -> str:
    """The first choice's text (``field="text"``) or message content (``"message"``)."""
    choices = response.get("choices") or []
    if not choices:
        raise ApiError("the server answered without choices")
    if field == "message":
        return str((choices[0].get("message") or {}).get("content") or "")
    return str(choices[0].get("text") or "")


def load_openai(spec: Any, *, alias: str = "default", transport: Any = None,
                sleep: Any = None) -> OpenAIAdapter:
    """Build the adapter from a ``ModelSpec`` with ``adapter: openai`` (key from the env var
    named by ``api_key_env``; the cache in ``~/.cache/audit/http/responses.sqlite`` unless
    ``cache`` is false or a path)."""
    from audit.errors import usage
    from audit.models.http_cache import ResponseCache

    if not spec.base_url or not spec.model:
        raise usage("models", f"{alias}", "adapter: openai needs base_url and model",
                    "add `base_url: http://HOST:PORT/v1` and `model: NAME`")
    key = None
    if spec.api_key_env:
        key = os.environ.get(spec.api_key_env)
        if not key:
            raise usage("models", f"{alias}.api_key_env", f"environment variable "
                        f"{spec.api_key_env} is not set", f"export {spec.api_key_env}=... first")
    cache_path = _cache_path(spec.cache)
    kwargs: dict[str, Any] = {"sleep": sleep} if sleep else {}
    client = ApiClient(api_root(spec.base_url), model=spec.model, api_key=key,
                       timeout_s=spec.timeout_s, max_retries=spec.max_retries,
                       max_concurrency=spec.max_concurrency,
                       cache=ResponseCache(cache_path) if cache_path else None,
                       transport=transport, **kwargs)
    try:
        return OpenAIAdapter(client, alias=alias, api_key_env=spec.api_key_env,
                             extra_body=spec.extra_body, probe_tolerance=spec.probe_tolerance,
                             cache_path=cache_path)
    except BaseException:
        client.close()
        raise


def _cache_path(cache: bool | str) -> str | None:
    if cache is False:
        return None
    if cache is True:
        from audit.assets import cache_dir

        return str(cache_dir() / "http" / "responses.sqlite")
    return str(Path(str(cache)).expanduser())
