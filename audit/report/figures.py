"""Figure view models: one dict per ``Figure`` that the template can show without computing.

SVG kinds (bars, roc, line, heatmap) become ``svg`` Markup drawn by :mod:`audit.report.svg`;
``token_attributions`` become coloured token spans; ``table`` becomes rows of text. A figure whose
data is malformed is shown as a one-line note instead of breaking the report.
"""

from __future__ import annotations

import math
import re
from typing import Any

from audit.report import svg
from audit.report.fmt import fmt_value
from audit.report.redact import redact_text, regex_spans, redact_value
from audit.results import Figure

MAX_TOKENS = 400
# [CLS], [SEP], <s>, </s>, <|endoftext|>, <pad> ...: often carry most of the mass (attention
# sinks), so the colour scale is set by the ordinary tokens and special ones are clipped.
SPECIAL_TOKEN = re.compile(r"^(\[[A-Z]+\]|<\|?[/a-z_]+\|?>|</?s>)$")
MAX_TABLE_ROWS = 200
_SVG_KINDS = {"bars": svg.bars_svg, "roc": svg.roc_svg, "line": svg.line_svg,
              "heatmap": svg.heatmap_svg}


def figure_view(fig: Figure, show_pii: bool) -> dict[str, Any]:
    """The view of one figure: title, caption and exactly one of svg / tokens / table / error."""
    view: dict[str, Any] = {"kind": fig.kind, "title": fig.title, "caption": fig.caption or "",
                            "svg": None, "tokens": None, "table": None, "error": None}
    try:
        if fig.kind in _SVG_KINDS:
            data = redact_value(fig.data, show_pii)  # labels, curve and series names, axes
            if fig.kind == "heatmap":  # attention grids are labelled with subword tokens
                data = dict(data, **{k: [display_token(str(t)) for t in data.get(k) or []]
                                     for k in ("row_labels", "col_labels")})
            view["svg"] = _SVG_KINDS[fig.kind](data, redact_value(fig.title, show_pii))
        elif fig.kind == "token_attributions":
            view["tokens"] = token_view(fig.data, show_pii)
        elif fig.kind == "table":
            view["table"] = table_view(fig.data, show_pii)
    except Exception as exc:  # malformed figure data must not break the whole report
        view["error"] = f"figure not drawn: {type(exc).__name__}: {exc}"[:300]
    return view


def token_view(data: dict[str, Any], show_pii: bool) -> dict[str, Any]:
    """Tokens with background colours proportional to their attribution (red +, blue -)."""
    tokens = [str(t) for t in data.get("tokens", [])][:MAX_TOKENS]
    scores = [float(s) if isinstance(s, (int, float)) and math.isfinite(s) else 0.0
              for s in data.get("scores", [])][: len(tokens)]
    scores += [0.0] * (len(tokens) - len(scores))
    if not show_pii:
        tokens = _mask_pii_tokens(tokens)
    special = [bool(SPECIAL_TOKEN.match(t)) for t in tokens]
    ordinary = [abs(s) for s, sp in zip(scores, special) if not sp]
    scale = max(ordinary, default=0.0) or max((abs(s) for s in scores), default=0.0) or 1.0
    items = [{"text": display_token(t), "score": f"{s:+.3g}",
              "style": _token_style(max(-1.0, min(1.0, s / scale)))}
             for t, s in zip(tokens, scores)]
    return {"label": str(data.get("label", "")), "items": items,
            "special_scaled": any(special) and bool(ordinary) and max(ordinary) > 0,
            "omitted": max(0, len(data.get("tokens", [])) - MAX_TOKENS)}


def display_token(token: str) -> str:
    """A subword token as a reader should see it: byte-level BPE / SentencePiece space markers
    (``Ġ``, ``▁``) dropped, newline (``Ċ``) shown as ``⏎``; WordPiece ``##`` kept (it marks a
    word continuation)."""
    text = token.replace("\u010a", "\u23ce")
    return text[1:] if text[:1] in ("\u0120", "\u2581") and len(text) > 1 else text


def _token_style(t: float) -> str:
    """Inline background colour for a normalised score in [-1, 1] (numbers only)."""
    rgb = "213,94,0" if t >= 0 else "0,114,178"
    return f"background-color: rgba({rgb},{abs(t) * 0.85:.2f})"


def _mask_pii_tokens(tokens: list[str]) -> list[str]:
    """Redact each token, and mask tokens that together spell PII (e.g. an e-mail split in parts,
    or a Chinese identity number split into digit groups)."""
    text, spans_of = detokenize(tokens)
    pii = regex_spans(text) + _builtin_spans(text)
    return ["[PII]" if any(a < e and s < b for a, b in pii) else redact_text(tok)
            for tok, (s, e) in zip(tokens, spans_of)]


def _builtin_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the PII ``audit.pii``'s validators find (Chinese types included), if available."""
    try:
        from audit.pii import detect_builtin
    except ImportError:
        return []
    return [(m.start, m.end) for m in detect_builtin(text)]


def detokenize(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Rebuild text from subword tokens and each token's character span in it.

    Byte-level BPE / SentencePiece (``Ġ`` / ``▁`` mark a leading space): space only before marked
    tokens. WordPiece and plain words: ``##`` glues to the previous token, punctuation glues on
    both sides (so ``jane . doe @ example . com`` becomes ``jane.doe@example.com``), other tokens
    get a space, except next to a CJK character (Chinese is written without spaces) and between
    digit groups (a number split over tokens is rebuilt whole, so it can be recognised as PII).
    """
    from audit.textseg import is_cjk

    bpe = any(t.startswith(("\u0120", "\u2581")) for t in tokens)
    text, spans, prev_glue, prev_digit = "", [], True, False
    for tok in tokens:
        punct = bool(tok) and not any(ch.isalnum() for ch in tok)
        if bpe:
            sep, piece = (" ", tok[1:]) if tok.startswith(("\u0120", "\u2581")) else ("", tok)
        elif tok.startswith("##"):
            sep, piece = "", tok[2:]
        else:
            digits = prev_digit and (tok[:1].isdigit() or tok in ("X", "x"))
            sep, piece = ("" if punct or prev_glue or digits or is_cjk(tok[:1]) else " "), tok
        text += sep
        spans.append((len(text), len(text) + len(piece)))
        text += piece
        prev_glue, prev_digit = punct or is_cjk(tok[-1:]), tok[-1:].isdigit()
    return text, spans


def table_view(data: dict[str, Any], show_pii: bool) -> dict[str, Any]:
    """A table figure (DP ledger, privacy/utility): header and formatted, redacted cells."""
    columns = [str(c) for c in data.get("columns", [])]
    rows = [r for r in data.get("rows", []) if isinstance(r, (list, tuple))]
    cells = [[fmt_value(redact_value(v, show_pii), 300) for v in r] for r in rows[:MAX_TABLE_ROWS]]
    return {"columns": columns, "rows": cells, "omitted": max(0, len(rows) - MAX_TABLE_ROWS)}
