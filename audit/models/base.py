"""The model-adapter protocol and its capability vocabulary.

An adapter wraps one model and advertises narrow capabilities; a check declares which it needs
and the runner skips it (with the reason) when the adapter lacks them. Capabilities and the
methods they promise:

- ``fill_mask``: ``fill_mask(texts, top_k) -> list[list[(token, prob)]]`` and ``mask_token``
- ``pseudo_log_likelihood``: a masked LM; ``torch_module``/``tokenizer`` are set (checks batch
  the masked copies themselves)
- ``sequence_log_prob``: ``token_log_probs(texts) -> list[np.ndarray]`` (log p of each token
  after the first, given its prefix) and ``sequence_log_prob(texts) -> np.ndarray`` (their sums)
- ``generate``: ``generate(prompts, max_new_tokens, do_sample, temperature, top_p, seed)``
- ``predict_proba``: ``predict_proba(texts) -> np.ndarray[n, n_classes]`` and ``labels``
- ``embed``: ``embed(texts) -> np.ndarray[n, dim]`` (mean-pooled last hidden state)
- ``attentions``: ``attentions(text) -> (tokens, np.ndarray[layers, heads, seq, seq])``
- ``torch_module``: ``torch_module``, ``tokenizer`` and ``device`` are usable directly (Captum,
  Opacus, custom batching)
- ``predictions``: ``frame`` is a pandas DataFrame of y_true / y_pred / score / group columns
- ``tabular``: ``frame`` (features + label + sensitive columns), ``feature_columns``,
  ``label_column`` and ``predict_proba_frame(df) -> np.ndarray`` (a scikit-learn style model)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

CAPABILITIES = (
    "fill_mask", "pseudo_log_likelihood", "sequence_log_prob", "generate", "predict_proba",
    "embed", "attentions", "torch_module", "predictions", "tabular",
)


@runtime_checkable
class ModelAdapter(Protocol):
    """What every adapter has; the capability methods are listed in the module docstring."""

    alias: str
    kind: str
    capabilities: frozenset[str]

    def info(self) -> Any:
        """Return a ``ModelInfo`` (source, adapter, kind, file hashes, details)."""
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...


def has(adapter: Any, capability: str) -> bool:
    """True when ``adapter`` advertises ``capability``."""
    return capability in getattr(adapter, "capabilities", frozenset())
