"""Typed model capabilities: the one boundary between checks and models.

Each capability is a small ``typing.Protocol`` (as httpx's transport interface): an adapter that
lists a capability name in ``capabilities`` promises the methods of that protocol, with exactly
these signatures. A check declares the capabilities it needs (``@check(requires=...)``) and the
runner marks it ``skipped`` with the reason when the adapter lacks them. Checks reach models only
through these methods: batching, padding, truncation, KV reuse, dtype, retries and caching live in
the adapter, so every check runs on every adapter that has the capability (in-process
transformers, a served OpenAI-compatible endpoint, logged responses, a mock).

Capability names and their protocols:

============================  =============================================================
``tokenize``                  :class:`Tokenizes`: token ids, character offsets, special-token
                              and word ids of texts, and ``decode``
``masked_log_probs``          :class:`MaskedLMScorer`: masked-LM log-probabilities of the
                              original tokens at given positions of masked copies
``fill_mask``                 :class:`FillsMask`: top-k fills of the mask token
``sequence_log_prob``         :class:`CausalScorer`: token, sequence and continuation
                              log-probabilities of a causal LM (natural log)
``generate``                  :class:`Generates`: text continuations of prompts
``greedy_tokens``             :class:`GeneratesTokens`: greedy continuations of token-id
                              prefixes (token-level memorization)
``chat``                      :class:`Chats`: replies to conversations (chat messages)
``chat_template``             :class:`RendersChat`: the model's chat template as text, so a
                              conversation can be scored with ``sequence_log_prob``
``predict_proba``             :class:`Classifier`: class probabilities of texts
``embed``                     :class:`Embedder`: one vector per text
``attentions``                :class:`AttentionMaps`: per-layer, per-head attention of a text
``differentiable``            :class:`Differentiable`: the torch module itself, for gradient
                              methods only (Captum IG, Opacus)
``predictions``               :class:`HasPredictions`: a table of y_true / y_pred / score
``tabular``                   :class:`TabularModel`: a scikit-learn style model over a table
============================  =============================================================

Conventions shared by every adapter:

- Log-probabilities are natural logs, float64 numpy arrays, one entry per input, in input order.
- ``token_log_probs(texts)[i][t]`` is ``log p(token_{t+1} | tokens_{<=t})`` over the tokens of
  ``texts[i]`` as the adapter tokenises it, with a BOS token prepended when the model has one
  that its tokenizer does not add (so the first word is scored too, as lm-evaluation-harness
  does for GPT-2). ``sequence_log_prob`` is the sum of those values.
- ``continuation_log_prob(prompts, continuations)[i]`` is the summed log-probability of the
  tokens of ``prompts[i] + continuations[i]`` that carry at least one character of the
  continuation (their character span ends after ``len(prompts[i])``), given everything before.
  Put the separating space at the start of the continuation (``"He is a" + " nurse"``) so no
  token straddles the boundary.
- ``progress`` arguments, where present, are called with the number of items just finished.
- Sampled generation is reproducible from ``seed`` wherever the backend allows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

Progress = Callable[[int], Any]
"""A callback told how many items were just finished (e.g. ``tqdm.update``)."""

Message = Mapping[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""


@dataclass(frozen=True)
class TokenizedText:
    """One text as a model tokenises it.

    ``offsets[t]`` is the character span of token ``t`` in ``text`` (``(0, 0)`` for special
    tokens); ``special[t]`` marks tokens the tokenizer added (BOS, CLS, SEP, ...);
    ``word_ids[t]`` numbers the word a token belongs to (None for special tokens), so pieces of
    one word share an id. ``tokens`` are the token strings, for display only.
    """

    text: str
    ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    special: tuple[bool, ...]
    word_ids: tuple[int | None, ...]
    tokens: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)

    def positions_in(self, start: int, end: int) -> list[int]:
        """Positions of the non-special tokens whose character span overlaps ``[start, end)``."""
        return [p for p, (a, b) in enumerate(self.offsets)
                if not self.special[p] and b > a and a < end and b > start]


@dataclass(frozen=True)
class MaskedScoreRequest:
    """One masked copy of a tokenised text: replace ``mask`` positions by the mask token and
    score ``sum_{p in score} log p(ids[p] | the masked copy)``."""

    ids: tuple[int, ...]
    mask: tuple[int, ...]
    score: tuple[int, ...]


@dataclass
class AttentionMap:
    """Attention of one text: ``values[layer, head, query, key]`` over ``tokens`` (special tokens
    included), with their character ``offsets`` and ``special`` flags."""

    tokens: list[str]
    values: np.ndarray
    offsets: list[tuple[int, int]] = field(default_factory=list)
    special: list[bool] = field(default_factory=list)


@dataclass
class TorchHandle:
    """What the ``differentiable`` capability hands to gradient methods: the torch module, its
    tokenizer and device. Only Captum (Integrated Gradients) and Opacus may use it."""

    module: Any
    tokenizer: Any
    device: str
    kind: str


@runtime_checkable
class ModelAdapter(Protocol):
    """What every adapter has, whatever its capabilities."""

    alias: str
    kind: str
    capabilities: frozenset[str]

    def info(self) -> Any:
        """A ``ModelInfo``: source, adapter, kind, file hashes, details."""
        ...

    def close(self) -> None:
        """Free the model's memory (or connections)."""
        ...


@runtime_checkable
class Tokenizes(Protocol):
    """``tokenize``: how the model splits text into tokens. ``special_tokens`` names the
    tokenizer's special tokens by role (``mask_token``, ``sep_token``, ``bos_token``,
    ``eos_token``, ``pad_token``, ``cls_token``, ``unk_token``: whichever it has)."""

    max_length: int
    special_tokens: dict[str, str]

    def tokenize(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[TokenizedText]:
        """Tokenise each text (no truncation)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids (special tokens skipped)."""
        ...


@runtime_checkable
class MaskedLMScorer(Protocol):
    """``masked_log_probs``: scoring of masked copies by a masked LM (with ``tokenize``)."""

    mask_token: str

    def masked_log_probs(self, requests: Sequence[MaskedScoreRequest],
                         progress: Progress | None = None) -> np.ndarray:
        """For each request, ``sum_{p in score} log p(ids[p] | ids with mask positions masked)``;
        batched and length-bucketed inside the adapter."""
        ...


@runtime_checkable
class FillsMask(Protocol):
    """``fill_mask``: the most likely fills of the (first) mask token of each text."""

    mask_token: str

    def fill_mask(self, texts: Sequence[str], top_k: int = 10) -> list[list[tuple[str, float]]]:
        """Top-k (token, probability) per text."""
        ...


@runtime_checkable
class CausalScorer(Protocol):
    """``sequence_log_prob``: log-probabilities of text under a causal LM (see the module
    docstring for the token conventions)."""

    def token_log_probs(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per-token log-probabilities of each text."""
        ...

    def sequence_log_prob(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Total log-probability of each text."""
        ...

    def continuation_log_prob(self, prompts: Sequence[str], continuations: Sequence[str],
                              progress: Progress | None = None) -> np.ndarray:
        """Log-probability of each continuation given its prompt."""
        ...


@runtime_checkable
class Generates(Protocol):
    """``generate``: text continuations of prompts (only the new text is returned)."""

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                 progress: Progress | None = None) -> list[str]:
        """One continuation per prompt; greedy unless ``do_sample``."""
        ...


@runtime_checkable
class GeneratesTokens(Protocol):
    """``greedy_tokens``: greedy decoding from token-id prefixes (with ``tokenize``)."""

    def greedy_token_continuations(self, prefixes: Sequence[Sequence[int]], max_new_tokens: int,
                                   progress: Progress | None = None) -> list[list[int]]:
        """Up to ``max_new_tokens`` greedily decoded token ids after each prefix (no BOS added)."""
        ...


@runtime_checkable
class Chats(Protocol):
    """``chat``: assistant replies to conversations."""

    def chat(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int = 128,
             do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
             progress: Progress | None = None) -> list[str]:
        """One reply per conversation; greedy unless ``do_sample``."""
        ...


@runtime_checkable
class RendersChat(Protocol):
    """``chat_template``: a conversation as the text the model sees (to score it)."""

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The model's chat template applied to ``messages``."""
        ...


@runtime_checkable
class Classifier(Protocol):
    """``predict_proba``: class probabilities of texts."""

    labels: list[str]

    def predict_proba(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Array ``[n_texts, n_classes]`` of probabilities (rows sum to 1)."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """``embed``: one vector per text (mean-pooled last hidden state for transformers)."""

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Array ``[n_texts, dim]``."""
        ...


@runtime_checkable
class AttentionMaps(Protocol):
    """``attentions``: the attention weights the model computes on one text."""

    def attentions(self, text: str) -> AttentionMap:
        """Per-layer, per-head attention of ``text``."""
        ...


@runtime_checkable
class Differentiable(Protocol):
    """``differentiable``: the torch module, for gradient-based methods (Captum, Opacus) only."""

    def differentiable(self) -> TorchHandle:
        """The module, tokenizer and device."""
        ...


@runtime_checkable
class HasPredictions(Protocol):
    """``predictions``: a table of y_true / y_pred / score and group columns."""

    frame: Any


@runtime_checkable
class TabularModel(Protocol):
    """``tabular``: a scikit-learn style model over a table."""

    frame: Any
    feature_columns: list[str]
    label_column: str

    def predict_proba_frame(self, frame: Any) -> np.ndarray:
        """Class probabilities of the rows of ``frame``."""
        ...


PROTOCOLS: dict[str, type] = {
    "tokenize": Tokenizes,
    "masked_log_probs": MaskedLMScorer,
    "fill_mask": FillsMask,
    "sequence_log_prob": CausalScorer,
    "generate": Generates,
    "greedy_tokens": GeneratesTokens,
    "chat": Chats,
    "chat_template": RendersChat,
    "predict_proba": Classifier,
    "embed": Embedder,
    "attentions": AttentionMaps,
    "differentiable": Differentiable,
    "predictions": HasPredictions,
    "tabular": TabularModel,
}
"""Capability name -> the protocol an adapter advertising it must satisfy."""

CAPABILITIES: tuple[str, ...] = tuple(PROTOCOLS)


def has(adapter: Any, capability: str) -> bool:
    """True when ``adapter`` advertises ``capability``."""
    return capability in getattr(adapter, "capabilities", frozenset())


def conformance_problems(adapter: Any) -> list[str]:
    """Capabilities an adapter advertises but whose protocol it does not satisfy (method missing);
    used by tests to keep every adapter honest."""
    problems = []
    for name in sorted(getattr(adapter, "capabilities", ())):
        proto = PROTOCOLS.get(name)
        if proto is None:
            problems.append(f"{name}: unknown capability")
        elif not isinstance(adapter, proto):
            problems.append(f"{name}: {type(adapter).__name__} lacks a method of {proto.__name__}")
    return problems
