"""A deterministic, scriptable adapter for fast tests (no torch).

Every output is a pure function of the input text (SHA-256 based), so results are reproducible.
Options: ``kind`` (causal_lm | masked_lm | classifier | encoder), ``capabilities`` (override),
``responses`` (prompt substring -> generation), ``keywords`` (word -> score shift for
``predict_proba``), ``dim`` (embedding size), ``raise_on`` (capability name that raises).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from audit.results import ModelInfo

_KIND_CAPS = {
    "causal_lm": {"sequence_log_prob", "generate"},
    "masked_lm": {"fill_mask", "embed"},
    "classifier": {"predict_proba", "embed"},
    "encoder": {"embed", "attentions"},
}


def _unit(text: str, salt: str = "") -> float:
    digest = hashlib.sha256(f"{salt}\x1f{text}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


class FakeAdapter:
    """Deterministic stand-in for a model; see the module docstring for its options."""

    adapter_name = "fake"

    def __init__(self, alias: str = "default", kind: str = "causal_lm",
                 capabilities: list[str] | None = None, responses: dict[str, str] | None = None,
                 keywords: dict[str, float] | None = None, dim: int = 16,
                 raise_on: str | None = None, labels: list[str] | None = None):
        self.alias, self.kind = alias, kind
        self.capabilities = frozenset(capabilities if capabilities is not None else _KIND_CAPS[kind])
        self.responses = responses or {}
        self.keywords = keywords or {}
        self.dim = dim
        self.raise_on = raise_on
        self.labels = labels or ["negative", "positive"]
        self.mask_token = "[MASK]"
        self.device = "cpu"
        self.batch_size = 8

    def _maybe_raise(self, capability: str) -> None:
        if self.raise_on == capability:
            raise RuntimeError(f"fake adapter told to fail on {capability}")

    def info(self) -> ModelInfo:
        """Fake provenance (no files)."""
        return ModelInfo(alias=self.alias, source=f"fake:{self.kind}", adapter="fake",
                         kind=self.kind, details={"capabilities": sorted(self.capabilities)})

    def close(self) -> None:
        """Nothing to free."""

    def token_log_probs(self, texts: list[str]) -> list[np.ndarray]:
        """Per-word pseudo log-probabilities in [-8, -0.1], a function of the word and its prefix."""
        self._maybe_raise("sequence_log_prob")
        out = []
        for text in texts:
            words = text.split()
            out.append(np.array([-0.1 - 7.9 * _unit(" ".join(words[: i + 1]), "lp")
                                 for i in range(len(words))]))
        return out

    def sequence_log_prob(self, texts: list[str]) -> np.ndarray:
        """Sum of ``token_log_probs``."""
        return np.array([float(lp.sum()) for lp in self.token_log_probs(texts)])

    def generate(self, prompts: list[str], max_new_tokens: int = 32, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int = 0, **_: Any) -> list[str]:
        """A scripted response when a ``responses`` key is in the prompt, else a hashed word list."""
        self._maybe_raise("generate")
        outs = []
        for i, prompt in enumerate(prompts):
            scripted = next((v for k, v in self.responses.items() if k in prompt), None)
            if scripted is None:
                words = [f"w{int(_unit(prompt, f'{seed}:{i}:{j}' if do_sample else str(j)) * 50)}"
                         for j in range(min(max_new_tokens, 8))]
                scripted = " ".join(words)
            outs.append(scripted)
        return outs

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Two-class probabilities: sigmoid of keyword weights plus a small hashed offset."""
        self._maybe_raise("predict_proba")
        rows = []
        for text in texts:
            score = sum(w for k, w in self.keywords.items() if k in text.lower().split())
            score += (_unit(text, "clf") - 0.5) * 0.2
            p = 1 / (1 + np.exp(-score))
            rows.append([1 - p, p])
        return np.array(rows).reshape(len(texts), 2)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors seeded by the text's hash."""
        self._maybe_raise("embed")
        rows = []
        for text in texts:
            rng = np.random.default_rng(int(_unit(text, "emb") * 2**32))
            v = rng.standard_normal(self.dim)
            rows.append(v / np.linalg.norm(v))
        return np.array(rows).reshape(len(texts), self.dim)

    def attentions(self, text: str) -> tuple[list[str], np.ndarray]:
        """Uniform causal attention over whitespace tokens: [2 layers, 2 heads, n, n]."""
        self._maybe_raise("attentions")
        tokens = text.split() or [""]
        n = len(tokens)
        att = np.tril(np.ones((n, n)))
        att /= att.sum(-1, keepdims=True)
        return tokens, np.broadcast_to(att, (2, 2, n, n)).copy()

    def fill_mask(self, texts: list[str], top_k: int = 10) -> list[list[tuple[str, float]]]:
        """Hashed fills from a tiny vocabulary."""
        vocab = ["doctor", "nurse", "teacher", "engineer", "cook", "lawyer", "artist", "farmer"]
        out = []
        for text in texts:
            scores = np.array([_unit(text + w, "fill") for w in vocab])
            probs = scores / scores.sum()
            order = np.argsort(-probs)[:top_k]
            out.append([(vocab[i], float(probs[i])) for i in order])
        return out


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
