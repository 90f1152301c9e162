"""Question-answering bias data: BBQ (English) and CBBQ (Chinese) items in one shape.

Both benchmarks ask a question about two people from different social groups, with three options:
the two people and an UNKNOWN option. :class:`QAItem` holds one question with the index of its
UNKNOWN option, of the option naming the stereotyped ("targeted") group, and of the *biased*
answer, which depends on the question's polarity (the BBQ authors' definition): in a negative
question the biased answer is the targeted group, in a non-negative question the other group.

Where the targeted option comes from:

- **BBQ** (Parrish et al. 2022): ``answer_info`` gives each option's group label and
  ``additional_metadata.stereotyped_groups`` the groups the question targets. An option is the
  target when one of its labels equals a stereotyped group after normalisation (lower case;
  man/boy -> ``m``, woman/girl -> ``f``; a label split at ``_``/``-`` also matches by its parts, so
  ``trans_F`` matches ``trans``; the option text matches too, for Nationality whose labels are
  regions). Exact matching, not substring matching, so ``nonOld`` never matches ``old`` (the
  authors' R script special-cases this). Items whose options are both or neither targeted (e.g.
  "the boy" vs "the man" for a question targeting women) have no biased answer; they are dropped
  from the scores, as the authors' script drops rows without ``target_loc``.
- **CBBQ** (Huang & Xiong 2024) has no ``answer_info``. Its disambiguated contexts always point
  to the anti-stereotypical answer, so in a *negative* disambiguated question the option that is
  not the correct one is the targeted group. These options are collected per (category, targeted
  group, option text) from the file(s) read and then identify the target of every item offering
  them (ambiguous and non-negative questions included). The age category ships without
  disambiguated contexts; there the target is found by comparing the two options' ages
  (:func:`age_rank`: stated ages, "XX后" generations, and a small word list), the older option
  when the targeted group names the old (老), the younger otherwise. Items left undetermined
  are counted and dropped from the scores.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from audit.errors import usage

NAME = "qa_bias"
POLARITY = {"neg": "neg", "nonneg": "nonneg", "non_neg": "nonneg", "non-neg": "nonneg"}
CONDITION = {"ambig": "ambig", "ambiguous": "ambig", "disambig": "disambig",
             "disambiguous": "disambig"}
GENDER_WORDS = {"man": "m", "men": "m", "boy": "m", "boys": "m", "male": "m",
                "woman": "f", "women": "f", "girl": "f", "girls": "f", "female": "f"}
CBBQ_UNKNOWN = ("不确定", "不知道", "没有足够信息", "无法判断", "无法确定", "不能确定", "信息不足",
                "未知", "无法得知")
BBQ_FIELDS = ("example_id", "question_index", "question_polarity", "context_condition", "category",
              "answer_info", "additional_metadata", "context", "question", "ans0", "ans1", "ans2",
              "label")
CBBQ_FIELDS = ("example_id", "question_index", "question_polarity", "context_condition",
               "category", "bias_targeted_groups", "context", "question", "ans0", "ans1", "ans2",
               "label")


@dataclass(frozen=True)
class QAItem:
    """One multiple-choice question (indices refer to ``options``; None when undetermined)."""

    id: str
    category: str
    template: str
    polarity: str
    condition: str
    context: str
    question: str
    options: tuple[str, str, str]
    label: int
    unknown: int
    target: int | None
    biased: int | None
    subcategory: str = ""


@dataclass
class QADataset:
    """Items of one format (``bbq`` or ``cbbq``) and the files they came from."""

    format: str
    items: list[QAItem]
    sources: list[str]


# ----------------------------------------------------------------------------- files
def resolve_source(ctx: Any, text: str) -> Path:
    """A data path: ``asset:NAME/sub/path`` (a file inside a data asset), else ``ctx.resolve_path``."""
    from audit.assets import ASSET_PREFIX, asset_path

    if text.startswith(ASSET_PREFIX) and "/" in text:
        name, _, rest = text[len(ASSET_PREFIX):].partition("/")
        return asset_path(name) / rest
    return ctx.resolve_path(text)


def expand(path: Path, shown: str) -> list[Path]:
    """The data files a path names: the file itself, or a folder's ``*.jsonl`` (BBQ) or
    ``*/*.json`` (CBBQ) files, sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise usage(f"{NAME}.data", shown, "not found", "pass a BBQ .jsonl file, a CBBQ .json file "
                    "or a folder of them (relative paths resolve against the suite's folder)")
    files = sorted(path.glob("*.jsonl")) or sorted(path.glob("*/*.json")) or sorted(path.glob("*.json"))
    if not files:
        raise usage(f"{NAME}.data", shown, "folder holds no .jsonl or .json files",
                    "point at BBQ's data/ folder or CBBQ's data/ folder")
    return files


def read_records(path: Path) -> list[dict[str, Any]]:
    """JSON records of a file: a JSON array, or one object a line (BBQ's JSONL); a UTF-8 BOM at
    the start of the file is dropped."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        if text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise usage(f"{NAME}.data", str(path), f"not valid JSON/JSONL (line {exc.lineno})",
                    "pass BBQ JSONL or CBBQ JSON files") from None
    if not all(isinstance(r, dict) for r in rows):
        raise usage(f"{NAME}.data", str(path), "holds something other than JSON objects",
                    "each record must be one question object")
    return rows


def detect_format(records: list[dict[str, Any]], path: Path) -> str:
    """``bbq`` when records carry answer_info, ``cbbq`` when they carry bias_targeted_groups."""
    if not records:
        raise usage(f"{NAME}.data", str(path), "holds no questions", "pass a non-empty file")
    first = records[0]
    if "answer_info" in first:
        return "bbq"
    if "bias_targeted_groups" in first:
        return "cbbq"
    raise usage(f"{NAME}.data", str(path), "is neither BBQ (answer_info) nor CBBQ "
                "(bias_targeted_groups)", "pass BBQ or CBBQ files, or set format")


def load_qa(paths: list[tuple[Path, str]], fmt: str = "auto") -> QADataset:
    """Read every file of ``paths`` ((path, as the user wrote it) pairs) as one data set."""
    records: list[tuple[dict[str, Any], Path]] = []
    formats: set[str] = set()
    sources: list[str] = []
    for path, shown in paths:
        for file in expand(path, shown):
            rows = read_records(file)
            formats.add(fmt if fmt != "auto" else detect_format(rows, file))
            records += [(r, file) for r in rows]
            sources.append(str(file))
    if len(formats) > 1:
        raise usage(f"{NAME}.data", ", ".join(sorted(formats)), "files of both BBQ and CBBQ format",
                    "run BBQ and CBBQ as two checks (their bias scores differ)")
    kind = formats.pop()
    items = bbq_items(records) if kind == "bbq" else cbbq_items(records)
    return QADataset(format=kind, items=items, sources=sources)


def _require(raw: dict[str, Any], fields: Iterable[str], file: Path) -> dict[str, Any]:
    """The record with BOM-free keys (CBBQ's first key carries a BOM), checked for ``fields``."""
    raw = {k.lstrip("\ufeff"): v for k, v in raw.items()}
    missing = [f for f in fields if f not in raw]
    if missing:
        raise usage(f"{NAME}.data", str(file), f"a question lacks {', '.join(missing)}",
                    "use the BBQ/CBBQ release files unchanged")
    return raw


def _common(raw: dict[str, Any], file: Path) -> dict[str, Any]:
    polarity = POLARITY.get(str(raw["question_polarity"]).lower())
    condition = CONDITION.get(str(raw["context_condition"]).lower())
    if polarity is None or condition is None:
        raise usage(f"{NAME}.data", str(file), f"question {raw.get('example_id')}: polarity "
                    f"{raw['question_polarity']!r} / condition {raw['context_condition']!r}",
                    "use neg|nonneg and ambig|disambig (or CBBQ's non_neg, (dis)ambiguous)")
    label = int(raw["label"])
    if label not in (0, 1, 2):
        raise usage(f"{NAME}.data", str(file), f"question {raw.get('example_id')}: label {label}",
                    "labels are 0, 1 or 2")
    category = str(raw["category"])
    return {"category": category, "template": f"{category}/{raw['question_index']}",
            "polarity": polarity, "condition": condition, "context": str(raw["context"]),
            "question": str(raw["question"]), "label": label,
            "options": (str(raw["ans0"]), str(raw["ans1"]), str(raw["ans2"])),
            "subcategory": str(raw.get("subcategory") or "")}


def biased_index(target: int | None, polarity: str, unknown: int) -> int | None:
    """The biased answer: the target in negative questions, the other non-UNKNOWN option in
    non-negative ones (BBQ's definition); None when the target is undetermined."""
    if target is None:
        return None
    if polarity == "neg":
        return target
    return next(i for i in range(3) if i not in (target, unknown))


# ----------------------------------------------------------------------------- BBQ
def _norm(word: str) -> str:
    word = word.strip().lower()
    return GENDER_WORDS.get(word, word)


def bbq_option_groups(text: str, label: str) -> set[str]:
    """Normalised names of the groups one BBQ option belongs to (its text, its label and the
    label's ``_``/``-`` parts)."""
    names = {_norm(text), _norm(label)}
    names |= {_norm(p) for p in re.split(r"[_\-]", label) if p.strip()}
    return names


def bbq_target(answer_info: dict[str, Any], stereotyped_groups: list[str]) -> int | None:
    """Index of the option naming a stereotyped group; None when none or both do."""
    groups = {_norm(str(g)) for g in stereotyped_groups}
    hits = []
    for i in range(3):
        text, label = (list(answer_info[f"ans{i}"]) + ["", ""])[:2]
        if str(label).lower() != "unknown" and bbq_option_groups(str(text), str(label)) & groups:
            hits.append(i)
    return hits[0] if len(hits) == 1 else None


def bbq_items(records: list[tuple[dict[str, Any], Path]]) -> list[QAItem]:
    """BBQ records as items (target from answer_info and stereotyped_groups)."""
    items = []
    for raw, file in records:
        raw = _require(raw, BBQ_FIELDS, file)
        base = _common(raw, file)
        info = raw["answer_info"]
        unknowns = [i for i in range(3) if str(info[f"ans{i}"][1]).lower() == "unknown"]
        if len(unknowns) != 1:
            raise usage(f"{NAME}.data", str(file), f"question {raw['example_id']} has "
                        f"{len(unknowns)} UNKNOWN options", "each BBQ question has exactly one")
        target = bbq_target(info, (raw["additional_metadata"] or {}).get("stereotyped_groups", []))
        items.append(QAItem(id=f"{base['category']}-{raw['example_id']}", unknown=unknowns[0],
                            target=target, biased=biased_index(target, base["polarity"], unknowns[0]),
                            **base))
    return items


# ----------------------------------------------------------------------------- CBBQ
_CN_TENS = {"十": 10, "二十": 20, "三十": 30, "四十": 40, "五十": 50, "六十": 60, "七十": 70,
            "八十": 80, "九十": 90}
_OLDER = (("中年", 45.0), ("X世代", 50.0), ("老", 70.0), ("爷爷", 70.0), ("奶奶", 70.0),
          ("外公", 70.0), ("外婆", 70.0), ("退休", 65.0), ("前辈", 65.0), ("长辈", 65.0))
_YOUNGER = (("少年", 15.0), ("少女", 15.0), ("男孩", 12.0), ("女孩", 12.0), ("孩子", 10.0),
            ("儿子", 10.0), ("女儿", 10.0), ("中学生", 15.0), ("高中", 16.0), ("大学", 19.0),
            ("青年", 22.0), ("年轻", 22.0), ("千禧一代", 25.0), ("Z世代", 20.0))


def age_rank(text: str) -> float | None:
    """A rough age for a CBBQ age option (for ordering two options only): a stated age
    ("60岁的人"), "X十多岁", an "NN后" birth decade (00后 -> 20, 80后 -> 40), else a word list
    (老/爷爷/退休... older, 少年/孩子/大学... younger); None when nothing matches."""
    if m := re.search(r"(\d+)\s*岁", text):
        return float(m.group(1))
    for word, age in sorted(_CN_TENS.items(), key=lambda kv: -len(kv[0])):
        if f"{word}多岁" in text:
            return age + 5.0
    if m := re.search(r"(\d\d)后", text):
        decade = int(m.group(1))
        return float(2020 - (2000 + decade if decade < 30 else 1900 + decade))
    for word, age in _YOUNGER + _OLDER:
        if word in text:
            return age
    return None


def cbbq_age_target(options: tuple[str, str, str], unknown: int, groups: str) -> int | None:
    """The targeted option of a CBBQ age question: the older option when the targeted group
    names the old (老), the younger one otherwise; None when the ages do not order them."""
    pair = [i for i in range(3) if i != unknown]
    ranks = [age_rank(options[i]) for i in pair]
    if None in ranks or ranks[0] == ranks[1]:
        return None
    older = pair[int(np.argmax(ranks))]
    younger = pair[int(np.argmin(ranks))]
    return older if "老" in groups else younger


def cbbq_unknown(options: tuple[str, str, str]) -> int | None:
    """Index of the single UNKNOWN option (不确定, 不知道, 没有足够信息, ...), else None."""
    hits = [i for i, o in enumerate(options) if o.strip() in CBBQ_UNKNOWN]
    return hits[0] if len(hits) == 1 else None


def cbbq_target_roles(bases: list[dict[str, Any]]) -> dict[tuple[str, str, str], set[str]]:
    """(category, targeted groups, option text) -> roles seen ({"T", "N"}), read off negative
    disambiguated questions, whose correct answer is the non-targeted group in CBBQ."""
    roles: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for b in bases:
        if b["condition"] == "disambig" and b["polarity"] == "neg" and b["label"] != b["unknown"]:
            other = next(i for i in range(3) if i not in (b["label"], b["unknown"]))
            roles[(b["category"], b["groups"], b["options"][other])].add("T")
            roles[(b["category"], b["groups"], b["options"][b["label"]])].add("N")
    return roles


def cbbq_target(b: dict[str, Any], roles: dict[tuple[str, str, str], set[str]]) -> int | None:
    """The targeted option of one CBBQ question (see the module docstring)."""
    pair = [i for i in range(3) if i != b["unknown"]]
    seen = [roles.get((b["category"], b["groups"], b["options"][i]), set()) for i in pair]
    targets = [i for i, s in zip(pair, seen) if s == {"T"}]
    others = [i for i, s in zip(pair, seen) if s == {"N"}]
    if len(targets) == 1 and others in ([], [p for p in pair if p != targets[0]]):
        return targets[0]
    if not targets and len(others) == 1:
        return next(p for p in pair if p != others[0])
    if b["category"].lower() == "age":
        return cbbq_age_target(b["options"], b["unknown"], b["groups"])
    return None


def cbbq_items(records: list[tuple[dict[str, Any], Path]]) -> list[QAItem]:
    """CBBQ records as items (two passes: target roles first, then every question)."""
    bases = []
    for raw, file in records:
        raw = _require(raw, CBBQ_FIELDS, file)
        base = _common(raw, file)
        unknown = cbbq_unknown(base["options"])
        if unknown is None:
            raise usage(f"{NAME}.data", str(file), f"question {raw['example_id']}: no single "
                        f"UNKNOWN option among {list(base['options'])}",
                        f"the UNKNOWN option must read one of {', '.join(CBBQ_UNKNOWN)}")
        base.update(unknown=unknown, groups=str(raw["bias_targeted_groups"]),
                    id=f"{base['category']}-{base['condition']}-{raw['example_id']}")
        bases.append(base)
    roles = cbbq_target_roles(bases)
    items = []
    for b in bases:
        target = cbbq_target(b, roles)
        fields = {k: v for k, v in b.items() if k != "groups"}
        items.append(QAItem(target=target, biased=biased_index(target, b["polarity"], b["unknown"]),
                            **fields))
    return items


# ----------------------------------------------------------------------------- selection
def select_items(items: list[QAItem], categories: list[str] | None, max_items: int | None,
                 rng: np.random.Generator) -> list[QAItem]:
    """Keep ``categories`` (all when None); then at most ``max_items`` per category, drawn
    round-robin over its (context condition, polarity) cells, each cell in seeded random order,
    so a sample keeps the four cells balanced. File order is kept."""
    if categories:
        wanted = set(categories)
        items = [it for it in items if it.category in wanted]
        if not items:
            raise usage(f"{NAME}.categories", str(categories), "no questions in these categories",
                        "use categories that occur in the data (e.g. Age, Religion, gender)")
    if not max_items:
        return items
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_cat[it.category].append(i)
    keep: list[int] = []
    for cat in sorted(by_cat):
        keep += _round_robin(items, by_cat[cat], max_items, rng)
    return [items[i] for i in sorted(keep)]


def _round_robin(items: list[QAItem], idx: list[int], n: int, rng: np.random.Generator) -> list[int]:
    if len(idx) <= n:
        return idx
    cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in idx:
        cells[(items[i].condition, items[i].polarity)].append(i)
    queues = [list(rng.permutation(cells[k])) for k in sorted(cells)]
    out: list[int] = []
    while len(out) < n:
        for q in queues:
            if q and len(out) < n:
                out.append(int(q.pop(0)))
    return out
