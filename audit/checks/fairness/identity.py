"""Identity terms: the shipped lexicon, term matching, counterfactual swaps and template filling.

The lexicon (``audit/probes/identity_lexicon.json``) lists, per axis (gender, race/ethnicity,
religion, sexual orientation, disability, age, nationality), groups whose forms are aligned by
position: form i of one group swaps with form i of another. Languages other than English sit
under ``languages.<code>.axes`` and are chosen with a prefix (``zh.gender``); the default is the
English axes. Terms written in Chinese (or Japanese) script are matched inside running text, as
that script has no spaces between words; ``not_within`` lists words that contain a term without
meaning it (``其他`` contains ``他``), which are never matched. Templates
(``audit/probes/identity_templates.json``) are labelled sentences with an ``{identity}`` slot.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from audit.errors import usage

PROBES = Path(__file__).resolve().parents[2] / "probes"
LEXICON = PROBES / "identity_lexicon.json"
TEMPLATES = PROBES / "identity_templates.json"


@dataclass
class Axis:
    """One identity axis: groups of aligned forms; ambiguous terms are not matched in real text."""

    name: str
    groups: dict[str, list[str]]
    ambiguous: set[str] = field(default_factory=set)
    not_within: list[str] = field(default_factory=list)

    def adjective(self, group: str) -> str:
        """The group's first form (usable as 'a(n) {form} person')."""
        return self.groups[group][0]

    def forms(self, group: str, real_text: bool) -> list[str]:
        """Distinct forms of ``group``; in real text without the ambiguous ones."""
        out = list(dict.fromkeys(self.groups[group]))
        return [f for f in out if not (real_text and f.lower() in self.ambiguous)]


def _read_section(src: Path, key: str, field: str, what: str) -> Any:
    """``json[key]`` of a shipped or user JSON file; a one-line usage error when unreadable."""
    try:
        return json.loads(src.read_text(encoding="utf-8"))[key]
    except (OSError, ValueError, KeyError) as exc:
        raise usage(str(src), field, f"cannot read {what} ({exc})",
                    f"pass a JSON file with a `{key}` mapping like the shipped one") from None


def load_lexicon(path: str | Path | None = None, axes: Iterable[str] | None = None
                 ) -> dict[str, Axis]:
    """The identity lexicon (shipped one, or a JSON file of the same shape), limited to ``axes``
    (default: every English axis); ``zh.gender`` names the ``gender`` axis of the ``zh`` section."""
    src = Path(path) if path else LEXICON
    raw = dict(_read_section(src, "axes", "lexicon", "identity lexicon"))
    chosen = list(axes) if axes else list(raw)
    for lang in {a.split(".", 1)[0] for a in chosen if "." in a}:
        section = _read_section(src, "languages", "lexicon", "identity lexicon").get(lang) or {}
        raw.update({f"{lang}.{k}": v for k, v in (section.get("axes") or {}).items()})
    unknown = [a for a in chosen if a not in raw]
    if unknown:
        raise usage(str(src), "axes", f"unknown axis {unknown[0]!r}", f"use some of {list(raw)}")
    return {a: Axis(a, {g: list(f) for g, f in raw[a]["groups"].items()},
                    {t.lower() for t in raw[a].get("ambiguous", [])},
                    list(raw[a].get("not_within", []))) for a in chosen}


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _pattern(forms: Iterable[str]) -> re.Pattern[str]:
    """Case-insensitive whole-word pattern of the forms (longest first; spaces match any blank).
    A form that starts (ends) with a CJK character needs no word boundary on that side: Chinese
    is written without spaces, so its words touch their neighbours."""
    alts = sorted(set(forms), key=len, reverse=True)
    body = "|".join((r"" if _CJK.match(f[:1]) else r"(?<!\w)")
                    + re.escape(f).replace(r"\ ", r"\s+")
                    + (r"" if _CJK.match(f[-1:]) else r"(?!\w)") for f in alts)
    return re.compile(rf"(?:{body})", re.IGNORECASE)


def _blocked(text: str, axis: Axis) -> list[tuple[int, int]]:
    """Spans of the axis's ``not_within`` words in ``text`` (no form is matched inside them)."""
    return [m.span() for w in axis.not_within for m in re.finditer(re.escape(w), text)]


def _free(m: re.Match[str], blocked: list[tuple[int, int]]) -> bool:
    """True when the match does not overlap a blocked span."""
    return all(m.end() <= a or m.start() >= b for a, b in blocked)


def mentioned_groups(text: str, axis: Axis, real_text: bool = True) -> list[str]:
    """Groups of ``axis`` whose forms occur in ``text`` (a group whose only forms are ambiguous
    has none in real text: it is never mentioned, rather than matched by an empty pattern)."""
    blocked = _blocked(text, axis)
    return [g for g in axis.groups if axis.forms(g, real_text)
            and any(_free(m, blocked) for m in _pattern(axis.forms(g, real_text)).finditer(text))]


def _match_case(found: str, replacement: str) -> str:
    """Carry the case of the matched word over to its replacement."""
    if found.isupper() and len(found) > 1:
        return replacement.upper()
    if found[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def swap(text: str, axis: Axis, mapping: dict[str, str], real_text: bool = True) -> str:
    """Replace, in one pass, every form of each source group by the aligned form of its target."""
    table: dict[str, str] = {}
    for src, dst in mapping.items():
        for i, form in enumerate(axis.groups[src]):
            if real_text and form.lower() in axis.ambiguous:
                continue
            table.setdefault(" ".join(form.lower().split()), axis.groups[dst][i])
    if not table:
        return text
    pattern, blocked = _pattern(table), _blocked(text, axis)
    return pattern.sub(lambda m: _match_case(m.group(0), table[" ".join(m.group(0).lower()
                                                                            .split())])
                       if _free(m, blocked) else m.group(0), text)


def counterfactual_variants(text: str, axis: Axis) -> list[tuple[str, str, str]]:
    """(source group, target group, swapped text) for a real input.

    Two-group axes (gender) swap both ways at once (counterfactual data augmentation, Lu et al.
    2018); other axes replace each mentioned group by each other group.
    """
    present = mentioned_groups(text, axis, real_text=True)
    out = []
    if len(axis.groups) == 2 and present:
        a, b = list(axis.groups)
        swapped = swap(text, axis, {a: b, b: a})
        out.append(("+".join(present), "swapped", swapped))
        return [v for v in out if v[2] != text]
    for src in present:
        for dst in axis.groups:
            if dst != src:
                new = swap(text, axis, {src: dst})
                if new != text:
                    out.append((src, dst, new))
    return out


def article(word: str) -> str:
    """'an' before a vowel letter, else 'a' (a spelling heuristic)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def fill(template: str, term: str) -> str:
    """Fill ``{identity}`` / ``{a_identity}`` with ``term``; capitalise the first letter."""
    text = template.replace("{a_identity}", f"{article(term)} {term}").replace("{identity}", term)
    return text[:1].upper() + text[1:]


def load_templates(task: str, path: str | Path | None = None) -> dict[str, Any]:
    """A labelled template task: ``{"positive_label", "positive": [...], "negative": [...]}``."""
    src = Path(path) if path else TEMPLATES
    tasks = _read_section(src, "tasks", "templates", "templates")
    if task not in tasks:
        raise usage(str(src), "templates", f"unknown template task {task!r}",
                    f"use one of {list(tasks)}")
    return tasks[task]


def template_rows(task: dict[str, Any], lexicon: dict[str, Axis]) -> list[dict[str, Any]]:
    """The templated synthetic identity set: one row per template x identity group.

    Row keys: text, label (1 = the task's positive class), template (index), axis, group.
    """
    rows = []
    templates = [(t, 1) for t in task["positive"]] + [(t, 0) for t in task["negative"]]
    for t_idx, (template, label) in enumerate(templates):
        for axis in lexicon.values():
            for group in axis.groups:
                rows.append({"text": fill(template, axis.adjective(group)), "label": label,
                             "template": t_idx, "axis": axis.name, "group": group})
    return rows
