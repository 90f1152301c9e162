"""Helpers shared by the explainability checks: input texts, truncation, token segments."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.errors import usage
from audit.models.capabilities import has


class TextInputParams(BaseModel):
    """Where the explain checks get their texts: inline ``texts``, or ``data`` (a file or
    ``asset:NAME``) with its ``text_column``; ``max_tokens`` truncates long texts (with a warning)."""

    model_config = ConfigDict(extra="forbid")
    texts: list[str] | None = None
    data: str | None = None
    text_column: str = "text"
    max_tokens: int | None = Field(None, ge=2, le=100_000)

PROBES = Path(__file__).resolve().parents[2] / "probes" / "explain_sentences.json"


def load_probe_sentences(path: Path = PROBES) -> list[dict[str, Any]]:
    """The shipped probe sentences: ``[{"text": str, "identity_terms": [str, ...]}, ...]``."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)["sentences"]


def _read_table(path: Path, column: str, where: str) -> list[str]:
    """Read the text column of a CSV, JSON-lines or JSON list file."""
    from audit.io import read_table

    if not path.exists():
        raise usage(where, "data", f"file not found: {path}", "give a CSV/JSONL path or an asset name")
    frame = read_table(path, "data")
    if column not in frame.columns:
        raise usage(where, "text_column", f"{path.name} has no column {column!r}",
                    f"use one of {list(frame.columns)[:8]}")
    return [str(t) for t in frame[column].tolist()]


def _resolve_data(ctx: Any, data: str) -> Path:
    """A data path relative to the suite, or an offline asset name (e.g. ``dreaddit_test``)."""
    path = ctx.resolve_path(data)
    if path.exists() or "/" in data or "." in data:
        return path
    try:
        from audit.assets import asset_path
    except ImportError:
        return path
    try:
        return Path(asset_path(data))
    except Exception:
        return path


def resolve_texts(ctx: Any, texts: list[str] | None, data: str | None, text_column: str,
                  n: int, where: str) -> list[str]:
    """Texts to explain: inline ``texts``, else ``n`` sampled from ``data``, else the probes."""
    if texts is not None:
        chosen = list(texts)
    elif data is not None:
        pool = _read_table(_resolve_data(ctx, data), text_column, where)
        if len(pool) > n:
            idx = np.sort(ctx.sub_rng("texts").choice(len(pool), size=n, replace=False))
            pool = [pool[i] for i in idx]
        chosen = pool
    else:
        chosen = [p["text"] for p in load_probe_sentences()][:n]
    return validate_texts(chosen, where)


def validate_texts(texts: list[str], where: str) -> list[str]:
    """Reject an empty list and empty or whitespace-only texts with a one-line usage error."""
    if not texts:
        raise usage(where, "texts", "no texts to explain", "pass texts, data or use the probes")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise usage(where, f"texts[{i}]", "empty text", "remove empty texts from the input")
    return texts


def model_max_tokens(adapter: Any) -> int | None:
    """The adapter's maximum sequence length in tokens (special tokens included), if known."""
    value = getattr(adapter, "max_length", None)
    return value if isinstance(value, int) and 0 < value < 1_000_000 else None


def _tokenized(adapter: Any, text: str, add_special_tokens: bool = True) -> Any:
    """The adapter's ``tokenize`` of one text, or None when it has no ``tokenize`` capability."""
    if not has(adapter, "tokenize"):
        return None
    return adapter.tokenize([text], add_special_tokens=add_special_tokens)[0]


def truncate_text(text: str, adapter: Any, max_tokens: int | None) -> tuple[str, bool]:
    """Cut ``text`` after the last token that fits in ``max_tokens`` (special tokens counted),
    using the adapter's own tokenisation; texts of adapters without ``tokenize`` are kept."""
    if max_tokens is None:
        return text, False
    with_special = _tokenized(adapter, text)
    if with_special is None:
        return text, False
    n_special = sum(with_special.special)
    plain = _tokenized(adapter, text, add_special_tokens=False)
    budget = max_tokens - n_special
    if len(plain.ids) <= budget:
        return text, False
    end = plain.offsets[max(budget, 1) - 1][1]
    return text[:end], True


def fit_texts(ctx: Any, adapter: Any, texts: list[str], max_tokens: int | None = None) -> list[str]:
    """Truncate texts longer than the model's maximum (or a smaller ``max_tokens``), recording
    one warning that names the truncated texts."""
    model_limit = model_max_tokens(adapter)
    limits = [x for x in (max_tokens, model_limit) if x]
    limit = min(limits) if limits else None
    what = "the model maximum" if limit == model_limit else "max_tokens"
    out, cut_ids = [], []
    for i, text in enumerate(texts):
        cut, truncated = truncate_text(text, adapter, limit)
        if truncated:
            cut_ids.append(i)
        out.append(cut)
    if cut_ids:
        shown = ", ".join(map(str, cut_ids[:10])) + (" ..." if len(cut_ids) > 10 else "")
        ctx.warn(f"{len(cut_ids)} of {len(texts)} texts were longer than {what} of {limit} tokens "
                 f"and were truncated to fit (texts {shown})")
    return out


def word_offsets(text: str) -> list[tuple[int, int]]:
    """Offsets of the pieces between ``\\W+`` separators, as shap's default Text masker
    (``SimpleTokenizer``) splits text when a model has no tokenizer, with every CJK character a
    piece of its own (``audit.textseg.word_spans``: Chinese has no spaces between words)."""
    from audit.textseg import word_spans

    return word_spans(text)


def segments(text: str, adapter: Any | None) -> list[str]:
    """Split ``text`` into one substring per non-special token (the adapter's ``tokenize``;
    shap's ``\\W+`` words when it has none), each running to the next token's start, so
    ``"".join`` gives the text back. No whitespace is assumed: Chinese text splits by token."""
    tt = _tokenized(adapter, text, add_special_tokens=False) if adapter is not None else None
    offsets = word_offsets(text) if tt is None else list(tt.offsets)
    starts = [s for s, _ in offsets]
    if not starts:
        return [text]
    bounds = [0] + starts[1:] + [len(text)]
    return [text[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def special_flags(text: str, adapter: Any) -> list[bool]:
    """Special-token flags of ``text`` as the model sees it (special tokens included)."""
    tt = _tokenized(adapter, text)
    return [] if tt is None else list(tt.special)


class ShapTokenizer:
    """The adapter's ``tokenize`` in the shape shap's ``Text`` masker calls a tokenizer:
    ``tok(s, return_offsets_mapping=True) -> {"input_ids", "offset_mapping"}`` plus the
    attributes it reads (``mask_token``, ``sep_token``, ``special_tokens_map``, ``decode``).
    Checks never see the model's own tokenizer."""

    def __init__(self, adapter: Any):
        self.adapter = adapter
        self.special_tokens_map = dict(getattr(adapter, "special_tokens", {}) or {})
        self.mask_token = self.special_tokens_map.get("mask_token")
        self.sep_token = self.special_tokens_map.get("sep_token")
        probe = adapter.tokenize(["a"])[0]
        self._names = dict(zip(probe.ids, probe.tokens))

    def __call__(self, s: str, return_offsets_mapping: bool = True) -> dict[str, Any]:
        tt = self.adapter.tokenize([s])[0]
        self._names.update(zip(tt.ids, tt.tokens))
        out: dict[str, Any] = {"input_ids": list(tt.ids)}
        if return_offsets_mapping:
            out["offset_mapping"] = [tuple(o) for o in tt.offsets]
        return out

    def decode(self, ids: Any) -> str:
        """Token string of special ids (what shap compares against ``special_tokens_map``)."""
        ids = [ids] if isinstance(ids, int) else list(ids)
        return "".join(self._names.get(i, "") for i in ids)


def target_index(adapter: Any, target: str | int | None, probs: np.ndarray) -> np.ndarray:
    """Class index per text: ``target`` (label name or index) or, if None, the predicted class."""
    n_classes = probs.shape[1]
    if target is None:
        return probs.argmax(axis=1)
    labels = [str(x) for x in (getattr(adapter, "labels", None) or range(n_classes))]
    if isinstance(target, int) or str(target).isdigit():
        idx = int(target)
    elif str(target) in labels:
        idx = labels.index(str(target))
    else:
        raise usage("params", "target", f"unknown label {target!r}", f"use one of {labels}")
    if not 0 <= idx < n_classes:
        raise usage("params", "target", f"class index {idx} out of range", f"use 0..{n_classes - 1}")
    return np.full(len(probs), idx)


def label_name(adapter: Any, idx: int) -> str:
    """Human name of class ``idx`` (the adapter's labels, else the index)."""
    labels = getattr(adapter, "labels", None)
    return str(labels[idx]) if labels and idx < len(labels) else str(idx)


def rounded(values: Any, digits: int = 4) -> Any:
    """Nested lists of floats rounded for the results file."""
    return np.round(np.asarray(values, dtype=float), digits).tolist()


def identity_terms_default() -> list[str]:
    """The identity terms listed in the probe file (lower case)."""
    with open(PROBES, encoding="utf-8") as fh:
        return [t.lower() for t in json.load(fh)["identity_terms"]]


def identity_flags(segs: list[str], terms: list[str]) -> np.ndarray:
    """True for segments that overlap a whole word from ``terms`` (case-insensitive)."""
    from audit.textseg import has_cjk

    text = "".join(segs)
    wanted = {t.lower() for t in terms}
    spans = [(m.start(), m.end()) for m in re.finditer(r"[\w']+", text)
             if m.group().lower() in wanted]
    # Chinese terms sit inside runs of \w without spaces: match them as substrings.
    spans += [m.span() for t in wanted if has_cjk(t) for m in re.finditer(re.escape(t), text)]
    flags, pos = [], 0
    for seg in segs:
        a, b = pos, pos + len(seg)
        flags.append(bool(seg.strip()) and any(a < e and s < b for s, e in spans))
        pos = b
    return np.array(flags, dtype=bool)


def identity_ratio(segment_lists: list[list[str]], score_lists: list[np.ndarray],
                   terms: list[str]) -> tuple[float | None, int]:
    """Mean over texts containing identity terms of (share of |attribution| on identity tokens)
    / (share of tokens that are identity tokens); 1 = proportional. Returns (ratio, n_texts)."""
    ratios = []
    for segs, scores in zip(segment_lists, score_lists):
        flags = identity_flags(segs, terms)
        mass = np.abs(np.asarray(scores, dtype=float))
        if flags.any() and mass.sum() > 0:
            ratios.append((mass[flags].sum() / mass.sum()) / flags.mean())
    return (float(np.mean(ratios)) if ratios else None), len(ratios)


def show_text(ctx: Any, text: str, limit: int = 300) -> str:
    """A text for evidence: PII-redacted unless ``--show-pii``, shortened to ``limit`` chars."""
    if not getattr(ctx, "show_pii", False):
        from audit.report.redact import redact_text

        text = redact_text(text)
    return text if len(text) <= limit else text[:limit] + "…"


def label_tokens(segs: list[str], ctx: Any = None) -> list[str]:
    """Segments as display tokens (whitespace stripped, empty ones shown as '␣'); tokens that
    overlap PII found by ``audit.pii`` are shown as ``[ENTITY]`` unless ``--show-pii``."""
    labels = [s.strip() or "␣" for s in segs]
    if ctx is None or getattr(ctx, "show_pii", False):
        return labels
    from audit.pii import detect_builtin  # core module: no silent fall-open to raw tokens

    spans = [(m.start, m.end, m.entity) for m in detect_builtin("".join(segs))]
    pos = 0
    for i, seg in enumerate(segs):
        a, b = pos, pos + len(seg)
        hit = next((e for s, t, e in spans if a < t and s < b and seg.strip()), None)
        labels[i] = f"[{hit}]" if hit else labels[i]
        pos = b
    return labels
