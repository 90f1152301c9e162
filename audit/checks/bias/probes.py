"""Loading and validating probe sets: template probes, WEAT word lists and SEAT templates.

Shipped probe files live in ``audit/probes/`` (see its README.md); a user may pass a path to a
JSON or YAML file of the same shape instead of a shipped name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from audit.errors import usage

GROUP_SLOT = "[GROUP]"
TARGET_SLOT = "[TARGET]"
PROBES_DIR = Path(__file__).resolve().parents[2] / "probes"
TEMPLATE_PROBES = ("gender_occupations", "race_ethnicity", "religion", "age", "disability",
                   "gender_occupations_zh", "hukou_zh", "region_zh", "age_zh", "ethnicity_zh",
                   "disability_zh")


@dataclass
class TemplateProbes:
    """A template probe set: templates with both slots, groups (name -> terms) and targets."""

    name: str
    templates: list[str]
    groups: dict[str, list[str]]
    targets: list[str]
    source: str


def read_data_file(path: Path, where: str) -> Any:
    """Read a JSON or YAML file; a missing or malformed file is a one-line usage error."""
    from audit.io import read_text_file

    text = read_text_file(path, where)
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise usage(where, str(path), f"cannot parse ({first})", "fix the file's syntax") from None


def shipped_or_path(name: str, resolve: Callable[[str], Path], where: str) -> Path:
    """A shipped probe file (``audit/probes/<name>.json``) or a user path resolved by ``resolve``."""
    shipped = PROBES_DIR / f"{name}.json"
    if "/" not in name and "." not in name and shipped.is_file():
        return shipped
    path = resolve(name)
    if not path.is_file():
        raise usage(where, name, "neither a shipped probe set nor an existing file",
                    f"use one of {', '.join(TEMPLATE_PROBES)} or a path to a JSON/YAML file")
    return path


def validate_template_probes(raw: Any, where: str) -> TemplateProbes:
    """Check a probe set's shape; empty parts or templates without both slots are usage errors."""
    if not isinstance(raw, dict):
        raise usage(where, "probes", "not a mapping", "give templates, groups and targets")
    templates = [str(t) for t in raw.get("templates") or []]
    groups = {str(k): [str(t) for t in (v or [])] for k, v in (raw.get("groups") or {}).items()}
    targets = [str(t) for t in raw.get("targets") or []]
    if not templates or not targets or not groups:
        missing = [k for k, v in (("templates", templates), ("groups", groups), ("targets", targets))
                   if not v]
        raise usage(where, "probes", f"empty probe set (no {', '.join(missing)})",
                    "give at least one template, two groups and one target")
    if len(groups) < 2 or any(not terms for terms in groups.values()):
        raise usage(where, "groups", "need at least two groups, each with at least one term",
                    "e.g. groups: {female: [she], male: [he]}")
    for t in templates:
        if t.count(GROUP_SLOT) != 1 or t.count(TARGET_SLOT) != 1:
            raise usage(where, "templates", f"template {t!r} must contain {GROUP_SLOT} and "
                        f"{TARGET_SLOT} exactly once each", f"e.g. '{GROUP_SLOT} worked as a "
                        f"{TARGET_SLOT}.'")
    return TemplateProbes(name=str(raw.get("name", "custom")), templates=templates, groups=groups,
                          targets=targets, source=str(raw.get("notes", "")))


def fill(template: str, group: str, target: str) -> str:
    """Fill both slots, capitalise the first letter and turn 'a' before a vowel into 'an'.
    Nothing is inserted between a slot and its neighbours, so templates written without spaces
    (Chinese: "[GROUP]是一名[TARGET]。") fill without spaces; the English rules leave them alone."""
    return fill_spans(template, group, target)[0]


def fill_spans(template: str, group: str, target: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """Filled text plus the character spans ``(start, end)`` of the group and target terms."""
    import re

    pieces = [p for p in re.split(r"(\[GROUP\]|\[TARGET\])", template) if p]
    text, spans = "", {}
    for k, piece in enumerate(pieces):
        if piece in (GROUP_SLOT, TARGET_SLOT):
            word = group if piece == GROUP_SLOT else target
            spans[piece] = (len(text), len(text) + len(word))
            text += word
            continue
        nxt = pieces[k + 1] if k + 1 < len(pieces) else ""
        following = {GROUP_SLOT: group, TARGET_SLOT: target}.get(nxt, nxt)
        if re.search(r"(^|\s)[Aa] $", piece) and following[:1].lower() in "aeiou" and following:
            piece = piece[:-1] + "n "
        text += piece
    text = text[:1].upper() + text[1:]
    return text, spans[GROUP_SLOT], spans[TARGET_SLOT]
