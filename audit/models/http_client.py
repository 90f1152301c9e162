"""HTTP transport of the ``openai`` adapter: bounded concurrency, retries, timeouts, cache, counts.

One :class:`ApiClient` talks to one OpenAI-compatible server over httpx (the synchronous client is
thread-safe; a thread pool of ``max_concurrency`` workers runs requests side by side). Each POST:

1. is answered from the :class:`~audit.models.http_cache.ResponseCache` when the same request
   (base URL + model + endpoint + canonical JSON body) was answered before;
2. else is sent with a per-request timeout; a transport failure (connection refused or reset,
   timeout), HTTP 408/425/429/500/502/503/504 or a body that is not JSON (truncated) is retried
   up to ``max_retries`` times with exponential backoff and jitter, waiting at least the
   server's ``Retry-After`` on 429/503; other 4xx answers are not retried;
3. after ``max_retries`` retries raises :class:`ApiError` with a one-line reason.

The API key lives only in the client's ``Authorization`` header: it is never part of a cache key,
a cached body, an error message or :meth:`ApiClient.stats`.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping, Sequence

from audit.models.http_cache import ResponseCache, cache_key

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class ApiError(RuntimeError):
    """A request that failed for good (one line: endpoint, problem, attempts)."""


class ApiRejected(ApiError):
    """The server answered a 4xx that retrying cannot fix (bad request, unknown model, auth)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass
class ClientStats:
    """Counts for provenance: HTTP requests sent (retries included), retries, cache hits,
    failures, token usage reported by the server, and system fingerprints seen."""

    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    fingerprints: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {"requests": self.requests, "retries": self.retries, "cache_hits": self.cache_hits,
                "failures": self.failures, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "system_fingerprints": sorted(self.fingerprints)}


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half of ``min(cap, base * 2**attempt)`` fixed,
    half uniform, so concurrent clients spread out but never retry at once."""
    step = min(cap_s, base_s * (2 ** attempt))
    return step / 2 + rng.uniform(0, step / 2)


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


class ApiClient:
    """A retrying, caching, bounded-concurrency JSON client for one server (see module doc)."""

    def __init__(self, base_url: str, *, model: str, api_key: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 4, max_concurrency: int = 4,
                 cache: ResponseCache | None = None, transport: Any = None,
                 sleep: Callable[[float], None] = time.sleep, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, max_retry_after_s: float = 120.0):
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s, self.max_retries = float(timeout_s), int(max_retries)
        self.max_concurrency = max(1, int(max_concurrency))
        self.cache = cache
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._rng = random.Random()  # jitter only: timing, never results
        self._secret = api_key or None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=self.max_concurrency,
                              max_keepalive_connections=self.max_concurrency)
        self._http = httpx.Client(headers=headers, timeout=httpx.Timeout(self.timeout_s),
                                  limits=limits, transport=transport)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.stats = ClientStats()

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r}, model={self.model!r})"

    # -- public ---------------------------------------------------------------------------
    def get(self, endpoint: str, retries: int | None = None) -> dict[str, Any]:
        """GET ``endpoint`` (never cached); ``retries`` overrides ``max_retries``."""
        return self._send("GET", endpoint, None, retries)

    def post(self, endpoint: str, body: Mapping[str, Any], use_cache: bool = True,
             retries: int | None = None) -> dict[str, Any]:
        """POST a JSON body; answered from the cache when this exact request was answered before;
        ``retries`` overrides ``max_retries`` (probes use fewer)."""
        key = (cache_key(self.base_url, self.model, endpoint, body)
               if self.cache is not None else None)
        if key and use_cache:
            hit = self.cache.get(key)
            if hit is not None:
                self._count(cache_hits=1)
                return hit
        data = self._send("POST", endpoint, body, retries)
        if key:
            self.cache.put(key, endpoint, data)
        return data

    def map_post(self, endpoint: str, bodies: Sequence[Mapping[str, Any]],
                 progress: Callable[[int], Any] | None = None) -> list[dict[str, Any]]:
        """POST every body (at most ``max_concurrency`` at a time); answers in input order.
        The first request that fails for good cancels those not yet started and is raised."""
        if self.max_concurrency == 1 or len(bodies) <= 1:
            out = []
            for body in bodies:
                out.append(self.post(endpoint, body))
                if progress:
                    progress(1)
            return out
        pool = self._executor()
        futures: dict[Future, int] = {pool.submit(self.post, endpoint, b): i
                                      for i, b in enumerate(bodies)}
        results: list[dict[str, Any] | None] = [None] * len(bodies)
        try:
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                if progress:
                    progress(1)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Close connections, the worker pool and the cache."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._http.close()
        if self.cache is not None:
            self.cache.close()

    # -- internals ------------------------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="audit-api")
            return self._pool

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[api key]") if self._secret else text

    def _send(self, method: str, endpoint: str, body: Mapping[str, Any] | None,
              retries: int | None = None) -> dict[str, Any]:
        """One logical request: attempts until success, a non-retryable answer, or exhaustion."""
        retries = self.max_retries if retries is None else retries
        problem = "no attempt made"
        for attempt in range(retries + 1):
            data, problem, wait = self._attempt(method, endpoint, body)
            if data is not None:
                return data
            if attempt == retries:
                break
            self._count(retries=1)
            delay = backoff_delay(attempt, self.backoff_s, self.max_backoff_s, self._rng)
            if wait is not None:
                delay = max(delay, min(wait, self.max_retry_after_s))
            self._sleep(delay)
        self._count(failures=1)
        raise ApiError(self._redact(f"{method} {self.base_url}{endpoint}: {problem} (gave up "
                                    f"after {retries + 1} attempts)"))

    def _attempt(self, method: str, endpoint: str, body: Mapping[str, Any] | None
                 ) -> tuple[dict[str, Any] | None, str, float | None]:
        """One HTTP attempt -> (data, "", None) or (None, problem, Retry-After seconds)."""
        import httpx

        self._count(requests=1)
        try:
            resp = self._http.request(method, self.base_url + endpoint, json=body)
        except httpx.TimeoutException:
            return None, f"no answer within the {self.timeout_s:g} s timeout", None
        except httpx.TransportError as exc:
            return None, f"{type(exc).__name__} ({one_line(str(exc), 120) or 'connection failed'})", None
        if resp.status_code in RETRY_STATUS:
            return None, f"HTTP {resp.status_code}", retry_after_seconds(resp.headers.get("retry-after"))
        if resp.status_code >= 400:
            self._count(failures=1)
            raise ApiRejected(self._redact(f"{method} {self.base_url}{endpoint}: HTTP "
                                           f"{resp.status_code}: {one_line(_error_text(resp))}"),
                              resp.status_code)
        try:
            data = resp.json()
        except ValueError:
            return None, "the response was not valid JSON (truncated?)", None
        if not isinstance(data, dict):
            return None, "the response was not a JSON object", None
        self._account(data)
        return data, "", None

    def _account(self, data: Mapping[str, Any]) -> None:
        usage = data.get("usage") or {}
        with self._lock:
            self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)
            if data.get("system_fingerprint"):
                self.stats.fingerprints.add(str(data["system_fingerprint"]))


def _error_text(resp: Any) -> str:
    """The server's error message (OpenAI shape ``{"error": {"message": ...}}``) or raw text."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text or resp.reason_phrase
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])
    if isinstance(data, dict) and data.get("detail"):
        return str(data["detail"])
    return str(data)
