"""Word units for text written without spaces (Chinese, Japanese kana and kanji).

English splits into words at spaces and punctuation; Chinese does not put spaces between words,
so every tool that finds "words" by spaces or by ``\\W+`` sees a whole Chinese clause as one word
("我的朋友是一名护士" has no ``\\W`` in it). Without a word segmenter the dependable unit is the
character, as Chinese BERT models use: here every CJK character is its own word, and runs of
other characters keep the usual rules. Three helpers apply that rule:

- :func:`word_spans`: shap's default text splitting (``\\W+`` separators) with CJK characters
  split out, so word-level SHAP masking works on Chinese;
- :class:`WordTokenizer`: the same as a callable shap's ``Text`` masker accepts;
- :func:`refine_word_ids`: a fast tokenizer's word ids split at CJK characters, so "the later
  tokens of the same word" (PLL-word-l2r) means the later byte or sub-character tokens of one
  character, not the rest of the clause.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

# CJK Unified Ideographs (+ Extension A), compatibility ideographs, hiragana and katakana.
_CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF),
               (0x20000, 0x2FA1F))


def is_cjk(ch: str) -> bool:
    """True for a CJK ideograph or a Japanese kana character."""
    code = ord(ch) if ch else 0
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def has_cjk(text: str) -> bool:
    """True when ``text`` contains at least one CJK character."""
    return any(is_cjk(ch) for ch in text)


def split_cjk(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into spans: one per CJK character, one per run of others."""
    spans: list[tuple[int, int]] = []
    run = start
    for i in range(start, end):
        if is_cjk(text[i]):
            if run < i:
                spans.append((run, i))
            spans.append((i, i + 1))
            run = i + 1
    if run < end or not spans:
        spans.append((run, end))
    return spans


def word_spans(text: str, split_pattern: str = r"\W+") -> list[tuple[int, int]]:
    """The pieces between ``split_pattern`` separators (as shap's ``SimpleTokenizer``, including
    its empty first piece when the text starts with a separator), each split by
    :func:`split_cjk`. Text without CJK characters gets exactly shap's pieces."""
    pos, spans = 0, []
    for m in re.finditer(split_pattern, text):
        spans += split_cjk(text, pos, m.start())
        pos = m.end()
    if pos != len(text):
        spans += split_cjk(text, pos, len(text))
    return spans


class WordTokenizer:
    """A callable with the interface shap's ``Text`` masker expects of a tokenizer (string
    pieces as ``input_ids`` and their ``offset_mapping``), splitting by :func:`word_spans`."""

    def __init__(self, split_pattern: str = r"\W+"):
        self.split_pattern = split_pattern

    def __call__(self, s: str, return_offsets_mapping: bool = True) -> dict[str, Any]:
        spans = word_spans(s, self.split_pattern)
        out: dict[str, Any] = {"input_ids": [s[a:b] for a, b in spans]}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out


def _char_units(text: str) -> list[int]:
    """A unit number per character: each CJK character its own unit, a run of other non-space
    characters one unit, spaces their own."""
    units, unit, prev = [], -1, None
    for ch in text:
        kind = "cjk" if is_cjk(ch) else ("space" if ch.isspace() else "other")
        if kind != "other" or prev != "other":
            unit += 1
        units.append(unit)
        prev = kind
    return units


def refine_word_ids(text: str, offsets: Sequence[tuple[int, int]],
                    word_ids: Sequence[int | None]) -> list[int | None]:
    """Word ids split at CJK characters. In a word whose characters include CJK ones, tokens
    share a word only while they start in the same character unit (one CJK character, or one
    run of other characters; leading spaces skipped). Words without CJK characters keep the
    tokenizer's grouping. Special tokens (word id None) keep None; ids are renumbered 0, 1, ..."""
    units = _char_units(text)
    cjk_words = {w for (a, b), w in zip(offsets, word_ids)
                 if w is not None and has_cjk(text[a:b])}
    keys: dict[tuple[int, int], int] = {}
    out: list[int | None] = []
    for (a, b), w in zip(offsets, word_ids):
        if w is None:
            out.append(None)
            continue
        unit = -1
        if w in cjk_words:
            start = next((i for i in range(a, max(a, b)) if not text[i].isspace()), a)
            unit = units[start] if 0 <= start < len(units) else -1
        out.append(keys.setdefault((int(w), unit), len(keys)))
    return out
