"""A mock adapter built from a handler function, as httpx's ``MockTransport`` (no torch).

``MockAdapter(handler, capabilities=...)`` implements every capability method of
``audit.models.capabilities`` by building a :class:`Call` (method name + arguments) and returning
what ``handler(call)`` returns, so a test scripts exactly what the "model" answers and can drive
the masked-LM, causal-LM, chat and classifier paths of every check::

    def handler(call):
        if call.method == "sequence_log_prob":
            return np.array([-len(t) for t in call.args["texts"]], float)
        return hashed_handler(call)            # everything else: deterministic defaults

    model = MockAdapter(handler, capabilities={"sequence_log_prob", "generate"})

:func:`hashed_handler` answers every method deterministically from SHA-256 hashes of the inputs
(whitespace tokens, pseudo log-probabilities that depend on the token and its context), so a
default mock behaves like a small, consistent model. ``adapter: fake`` in a suite is a
``MockAdapter`` with that handler; its results are marked synthetic.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from audit.models.capabilities import (AttentionMap, MaskedScoreRequest, Message, Progress,
                                       TokenizedText)
from audit.results import ModelInfo

KIND_CAPABILITIES: dict[str, frozenset[str]] = {
    "causal_lm": frozenset({"tokenize", "sequence_log_prob", "generate", "greedy_tokens", "chat",
                            "chat_template", "attentions"}),
    "masked_lm": frozenset({"tokenize", "masked_log_probs", "fill_mask", "embed", "attentions"}),
    "classifier": frozenset({"tokenize", "predict_proba", "embed", "attentions"}),
    "encoder": frozenset({"tokenize", "embed", "attentions"}),
    "chat": frozenset({"chat", "generate"}),
}


@dataclass
class Call:
    """One capability call: the method name, its arguments, and the adapter that got it."""

    method: str
    args: dict[str, Any]
    adapter: "MockAdapter" = field(repr=False)


Handler = Callable[[Call], Any]


class MockAdapter:
    """An adapter whose every answer comes from ``handler`` (see the module docstring)."""

    adapter_name = "mock"

    def __init__(self, handler: Handler | None = None, *, alias: str = "default",
                 kind: str = "causal_lm", capabilities: Sequence[str] | None = None,
                 labels: Sequence[str] | None = None, mask_token: str = "[MASK]",
                 max_length: int = 512, synthetic: bool = True, source: str | None = None):
        self.handler = handler or hashed_handler
        self.alias, self.kind = alias, kind
        caps = capabilities if capabilities is not None else KIND_CAPABILITIES[kind]
        self.capabilities = frozenset(caps)
        self.labels = list(labels or ["negative", "positive"])
        self.mask_token = mask_token
        self.max_length = max_length
        self.special_tokens = {"bos_token": "[BOS]", "pad_token": "[PAD]", "unk_token": "[UNK]",
                               "mask_token": mask_token}
        self.synthetic = synthetic
        self.source = source or f"mock:{kind}"
        self.device = "cpu"
        self.calls: list[Call] = []

    def _call(self, method: str, **args: Any) -> Any:
        call = Call(method, args, self)
        self.calls.append(call)
        return self.handler(call)

    def count(self, method: str) -> int:
        """How many times ``method`` was called (for tests)."""
        return sum(c.method == method for c in self.calls)

    def info(self) -> ModelInfo:
        """Provenance of a mock: no files; ``synthetic`` in details."""
        return ModelInfo(alias=self.alias, source=self.source, adapter=self.adapter_name,
                         kind=self.kind, details={"capabilities": sorted(self.capabilities),
                                                  "synthetic": self.synthetic})

    def close(self) -> None:
        """Nothing to free."""

    # -- tokenize --------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[TokenizedText]:
        """Handler's ``tokenize``."""
        return self._call("tokenize", texts=list(texts), add_special_tokens=add_special_tokens)

    def decode(self, ids: Sequence[int]) -> str:
        """Handler's ``decode``."""
        return self._call("decode", ids=list(ids))

    # -- masked LM -------------------------------------------------------------------------
    def masked_log_probs(self, requests: Sequence[MaskedScoreRequest],
                         progress: Progress | None = None) -> np.ndarray:
        """Handler's ``masked_log_probs``."""
        out = np.asarray(self._call("masked_log_probs", requests=list(requests)), dtype=float)
        if progress:
            progress(len(requests))
        return out

    def fill_mask(self, texts: Sequence[str], top_k: int = 10) -> list[list[tuple[str, float]]]:
        """Handler's ``fill_mask``."""
        return self._call("fill_mask", texts=list(texts), top_k=top_k)

    # -- causal LM -------------------------------------------------------------------------
    def token_log_probs(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Handler's ``token_log_probs``."""
        return [np.asarray(r, dtype=float) for r in self._call("token_log_probs", texts=list(texts))]

    def sequence_log_prob(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Handler's ``sequence_log_prob``."""
        out = np.asarray(self._call("sequence_log_prob", texts=list(texts)), dtype=float)
        if progress:
            progress(len(texts))
        return out

    def continuation_log_prob(self, prompts: Sequence[str], continuations: Sequence[str],
                              progress: Progress | None = None) -> np.ndarray:
        """Handler's ``continuation_log_prob``."""
        out = np.asarray(self._call("continuation_log_prob", prompts=list(prompts),
                                    continuations=list(continuations)), dtype=float)
        if progress:
            progress(len(prompts))
        return out

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                 progress: Progress | None = None) -> list[str]:
        """Handler's ``generate``."""
        out = self._call("generate", prompts=list(prompts), max_new_tokens=max_new_tokens,
                         do_sample=do_sample, temperature=temperature, top_p=top_p, seed=seed)
        if progress:
            progress(len(prompts))
        return list(out)

    def greedy_token_continuations(self, prefixes: Sequence[Sequence[int]], max_new_tokens: int,
                                   progress: Progress | None = None) -> list[list[int]]:
        """Handler's ``greedy_token_continuations``."""
        out = self._call("greedy_token_continuations", prefixes=[list(p) for p in prefixes],
                         max_new_tokens=max_new_tokens)
        if progress:
            progress(len(prefixes))
        return [list(r) for r in out]

    def chat(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int = 128,
             do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
             progress: Progress | None = None) -> list[str]:
        """Handler's ``chat``."""
        out = self._call("chat", conversations=[list(c) for c in conversations],
                         max_new_tokens=max_new_tokens, do_sample=do_sample,
                         temperature=temperature, top_p=top_p, seed=seed)
        if progress:
            progress(len(conversations))
        return list(out)

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """Handler's ``render_chat``."""
        return self._call("render_chat", messages=list(messages),
                          add_generation_prompt=add_generation_prompt)

    # -- classifier / encoder --------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Handler's ``predict_proba``."""
        out = np.asarray(self._call("predict_proba", texts=list(texts)), dtype=float)
        if progress:
            progress(len(texts))
        return out

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Handler's ``embed``."""
        out = np.asarray(self._call("embed", texts=list(texts)), dtype=float)
        if progress:
            progress(len(texts))
        return out

    def attentions(self, text: str) -> AttentionMap:
        """Handler's ``attentions``."""
        return self._call("attentions", text=text)


# ----------------------------------------------------------------------------- hashed model
def unit(text: str, salt: str = "") -> float:
    """A number in [0, 1) from SHA-256 of ``salt`` and ``text`` (deterministic everywhere)."""
    digest = hashlib.sha256(f"{salt}\x1f{text}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


_WORD = re.compile(r"\S+")


class WordVocabulary:
    """A growing word -> id table shared by one mock (ids 0-3 are [PAD] [BOS] [MASK] [UNK])."""

    SPECIALS = ("[PAD]", "[BOS]", "[MASK]", "[UNK]")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {w: i for i, w in enumerate(self.SPECIALS)}
        self.words: list[str] = list(self.SPECIALS)

    def id(self, word: str) -> int:
        """The id of ``word``, added on first sight."""
        if word not in self.ids:
            self.ids[word] = len(self.words)
            self.words.append(word)
        return self.ids[word]


def word_tokenize(adapter: Any, text: str, add_special_tokens: bool = True) -> TokenizedText:
    """Whitespace tokens with character offsets; a ``[BOS]`` special token first when asked.
    The adapter's mask token (e.g. ``[MASK]``) maps to the mask id."""
    vocab = _vocab(adapter)
    ids, offsets, special, words, tokens = [], [], [], [], []
    if add_special_tokens:
        ids.append(1), offsets.append((0, 0)), special.append(True), words.append(None)
        tokens.append("[BOS]")
    for w, m in enumerate(_WORD.finditer(text)):
        word = m.group()
        ids.append(2 if word == getattr(adapter, "mask_token", "[MASK]") else vocab.id(word))
        offsets.append((m.start(), m.end())), special.append(False), words.append(w)
        tokens.append(word)
    return TokenizedText(text=text, ids=tuple(ids), offsets=tuple(offsets), special=tuple(special),
                         word_ids=tuple(words), tokens=tuple(tokens))


def _vocab(adapter: Any) -> WordVocabulary:
    vocab = getattr(adapter, "_vocab", None)
    if vocab is None:
        vocab = WordVocabulary()
        adapter._vocab = vocab
    return vocab


def _token_lp(context: str, token: str) -> float:
    """Pseudo log-probability of ``token`` after ``context``, in [-8, -0.1]."""
    return -0.1 - 7.9 * unit(f"{context}\x1e{token}", "lp")


def hashed_token_log_probs(text: str) -> np.ndarray:
    """Pseudo log-probabilities of each whitespace word of ``text`` given the words before it."""
    words = text.split()
    return np.array([_token_lp(" ".join(words[:i]), w) for i, w in enumerate(words)])


def _masked_lp(req: MaskedScoreRequest) -> float:
    masked = set(req.mask)
    context = ",".join("M" if i in masked else str(t) for i, t in enumerate(req.ids))
    return float(sum(_token_lp(f"{context}@{p}", str(req.ids[p])) for p in req.score))


def _continuation(prompt: str, continuation: str) -> float:
    full = prompt + continuation
    total = 0.0
    for i, m in enumerate(_WORD.finditer(full)):
        if m.end() > len(prompt):
            total += _token_lp(" ".join(full.split()[:i]), m.group())
    return total


def _hashed_words(key: str, n: int) -> str:
    return " ".join(f"w{int(unit(key, str(j)) * 50)}" for j in range(min(n, 8)))


def _generate(call: Call) -> list[str]:
    a = call.args
    return [_hashed_words(f"{p}|{a['seed']}:{i}" if a["do_sample"] else p, a["max_new_tokens"])
            for i, p in enumerate(a["prompts"])]


def _chat(call: Call) -> list[str]:
    a = call.args
    outs = []
    for i, conv in enumerate(a["conversations"]):
        key = "\n".join(f"{m['role']}: {m['content']}" for m in conv)
        outs.append(_hashed_words(f"{key}|{a['seed']}:{i}" if a["do_sample"] else key,
                                  a["max_new_tokens"]))
    return outs


def _render_chat(call: Call) -> str:
    text = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in call.args["messages"])
    return text + ("<|assistant|>\n" if call.args["add_generation_prompt"] else "")


def _greedy(call: Call) -> list[list[int]]:
    n = call.args["max_new_tokens"]
    vocab = _vocab(call.adapter)
    return [[4 + int(unit(",".join(map(str, p)), str(j)) * max(1, len(vocab.words) - 4))
             for j in range(n)] for p in call.args["prefixes"]]


def _proba(call: Call) -> np.ndarray:
    n_classes = len(call.adapter.labels)
    rows = []
    for text in call.args["texts"]:
        logits = np.array([4 * unit(text, f"clf{k}") for k in range(n_classes)])
        e = np.exp(logits - logits.max())
        rows.append(e / e.sum())
    return np.array(rows).reshape(len(call.args["texts"]), n_classes)


def _embed(call: Call, dim: int = 16) -> np.ndarray:
    rows = []
    for text in call.args["texts"]:
        v = np.random.default_rng(int(unit(text, "emb") * 2**32)).standard_normal(dim)
        rows.append(v / np.linalg.norm(v))
    return np.array(rows).reshape(len(call.args["texts"]), dim)


def _attentions(call: Call) -> AttentionMap:
    tt = word_tokenize(call.adapter, call.args["text"])
    n = len(tt.ids)
    att = np.tril(np.ones((n, n)))
    att /= att.sum(-1, keepdims=True)
    return AttentionMap(tokens=list(tt.tokens), values=np.broadcast_to(att, (2, 2, n, n)).copy(),
                        offsets=list(tt.offsets), special=list(tt.special))


def _fill_mask(call: Call) -> list[list[tuple[str, float]]]:
    vocab = ["doctor", "nurse", "teacher", "engineer", "cook", "lawyer", "artist", "farmer"]
    out = []
    for text in call.args["texts"]:
        scores = np.array([unit(text + w, "fill") for w in vocab]) + 1e-9
        probs = scores / scores.sum()
        order = np.argsort(-probs)[:call.args["top_k"]]
        out.append([(vocab[i], float(probs[i])) for i in order])
    return out


_HASHED: dict[str, Callable[[Call], Any]] = {
    "tokenize": lambda c: [word_tokenize(c.adapter, t, c.args["add_special_tokens"])
                           for t in c.args["texts"]],
    "decode": lambda c: " ".join(_vocab(c.adapter).words[i] for i in c.args["ids"]
                                 if i >= 4 and i < len(_vocab(c.adapter).words)),
    "masked_log_probs": lambda c: np.array([_masked_lp(r) for r in c.args["requests"]]),
    "fill_mask": _fill_mask,
    "token_log_probs": lambda c: [hashed_token_log_probs(t) for t in c.args["texts"]],
    "sequence_log_prob": lambda c: np.array([hashed_token_log_probs(t).sum()
                                             for t in c.args["texts"]]),
    "continuation_log_prob": lambda c: np.array([_continuation(p, x) for p, x in
                                                 zip(c.args["prompts"], c.args["continuations"])]),
    "generate": _generate,
    "greedy_token_continuations": _greedy,
    "chat": _chat,
    "render_chat": _render_chat,
    "predict_proba": _proba,
    "embed": _embed,
    "attentions": _attentions,
}


def hashed_handler(call: Call) -> Any:
    """Deterministic answers to every capability method (see the module docstring)."""
    if call.method not in _HASHED:
        raise NotImplementedError(f"mock: no default answer for {call.method}")
    return _HASHED[call.method](call)


def fake_adapter(alias: str = "default", kind: str = "causal_lm",
                 capabilities: Sequence[str] | None = None, labels: Sequence[str] | None = None,
                 responses: dict[str, str] | None = None, raise_on: str | None = None) -> MockAdapter:
    """The adapter behind ``adapter: fake`` in a suite: a hashed mock, plus optional scripted
    ``responses`` (a prompt substring -> the generated text) and ``raise_on`` (a method that
    raises, to test error handling)."""

    def handler(call: Call) -> Any:
        if raise_on and call.method == raise_on:
            raise RuntimeError(f"fake adapter told to fail on {raise_on}")
        if responses and call.method in ("generate", "chat"):
            items = call.args.get("prompts") or [c[-1]["content"] for c in call.args["conversations"]]
            default = _HASHED[call.method](call)
            return [next((v for k, v in responses.items() if k in p), d)
                    for p, d in zip(items, default)]
        return hashed_handler(call)

    adapter = MockAdapter(handler, alias=alias, kind=kind, capabilities=capabilities,
                          labels=labels, source=f"fake:{kind}")
    adapter.adapter_name = "fake"
    return adapter


class NoModel:
    """The adapter of ``model: none``: for checks that read only data (e.g. WEAT on word vectors)."""

    adapter_name = "none"
    kind = "none"
    alias = "none"
    capabilities: frozenset[str] = frozenset()
    device = "cpu"

    def info(self) -> ModelInfo:
        """No model."""
        return ModelInfo(alias="none", source="none", adapter="none", kind="none")

    def close(self) -> None:
        """Nothing to free."""
