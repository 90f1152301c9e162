"""The check registry: one registration path, the ``@check`` decorator.

A check is a plain function ``fn(ctx: CheckContext, params: ParamsModel) -> CheckOutput``.
Built-in checks live one per module under ``audit/checks/<area>/``; the registry finds them by
importing every module of the ``audit.checks`` package once, on first need (their heavy imports
sit inside functions, so this costs well under a second and ``audit --help`` never pays it).
Third-party packages add checks by declaring an entry point in the group ``audit.checks`` whose
value is a module (importing it runs its ``@check`` decorators) or a decorated function.

The docstring of a check is its method card. Write it as a summary paragraph, then sections that
start with ``Purpose:``, ``Method:``, ``Citation:`` and ``Limitations:``.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ConfigDict

from audit.results import MethodCard

ENTRY_POINT_GROUP = "audit.checks"

class NoParams(BaseModel):
    """Parameters of a check that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class CheckSpec:
    """A registered check: its function, parameter model, area and capability needs.

    ``requires`` is a list of alternatives: the check runs when the adapter has every capability
    of at least one set (e.g. ``[{"tokenize", "masked_log_probs"}, {"sequence_log_prob"}]``).
    """

    name: str
    fn: Callable[..., Any]
    params: type[BaseModel]
    area: str
    requires: list[frozenset[str]]
    summary: str
    method: MethodCard
    item_metrics: dict[str, Any] = field(default_factory=dict)

    def missing_capabilities(self, capabilities: Iterable[str]) -> str | None:
        """Return why an adapter with ``capabilities`` cannot run this check, or None if it can."""
        have = set(capabilities)
        if not self.requires or any(need <= have for need in self.requires):
            return None
        options = " or ".join("+".join(sorted(n)) for n in self.requires)
        return f"needs {options}; the model adapter offers {', '.join(sorted(have)) or 'nothing'}"


_REGISTRY: dict[str, CheckSpec] = {}
_ENTRY_POINTS_LOADED = False
_BUILTINS_LOADED = False

_SECTION = re.compile(r"^\s*(Purpose|Method|Citation|Citations|Limitations|References):\s*(.*)$")


def parse_method_card(doc: str | None) -> MethodCard:
    """Split a check's docstring into summary, purpose, method, citation and limitations."""
    lines = (doc or "").strip().splitlines()
    sections: dict[str, list[str]] = {"summary": []}
    current = "summary"
    for line in lines:
        match = _SECTION.match(line)
        if match:
            current = {"citations": "citation", "references": "citation"}.get(
                match.group(1).lower(), match.group(1).lower())
            sections.setdefault(current, [])
            if match.group(2):
                sections[current].append(match.group(2))
        else:
            sections.setdefault(current, []).append(line.strip())
    text = {k: " ".join(" ".join(v).split()) for k, v in sections.items()}
    summary = text.get("summary", "")
    return MethodCard(summary=summary, purpose=text.get("purpose", summary),
                      method=text.get("method", ""), citation=text.get("citation", ""),
                      limitations=text.get("limitations", ""))


def check(name: str, *, area: str, params: type[BaseModel] = NoParams,
          requires: Iterable[Iterable[str]] | Iterable[str] | None = None,
          item_metrics: dict[str, Any] | None = None) -> Callable:
    """Register ``fn`` as the check ``name`` (decorator).

    ``requires`` is either one set of capability names or a list of alternative sets.
    ``item_metrics`` maps metric names to ``audit.items.ItemMetric``: how each follows from the
    check's per-item records (for re-derivation and paired comparison).
    """
    alternatives = _normalise_requires(requires)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        card = parse_method_card(fn.__doc__)
        _REGISTRY[name] = CheckSpec(name=name, fn=fn, params=params, area=area,
                                    requires=alternatives, summary=card.summary.split(". ")[0],
                                    method=card, item_metrics=dict(item_metrics or {}))
        fn.check_name = name  # type: ignore[attr-defined]
        return fn

    return decorate


def _normalise_requires(requires: Any) -> list[frozenset[str]]:
    if not requires:
        return []
    items = list(requires)
    if all(isinstance(i, str) for i in items):
        return [frozenset(items)]
    return [frozenset(i) for i in items]


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken plugin must not break the harness
            import warnings

            warnings.warn(f"audit: could not load check plugin {ep.name!r} ({ep.value}): {exc}")


def _load_builtins() -> None:
    """Import every module under ``audit.checks`` once (running their ``@check`` decorators)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    import pkgutil

    import audit.checks as package

    for info in pkgutil.walk_packages(package.__path__, prefix="audit.checks."):
        importlib.import_module(info.name)


def known_check_names() -> list[str]:
    """Names of all checks: built-in ones and those added through entry points."""
    _load_builtins()
    _load_entry_points()
    return sorted(_REGISTRY)


def get_check(name: str) -> CheckSpec:
    """Return the registered check ``name`` (KeyError if there is none)."""
    if name not in _REGISTRY:
        _load_builtins()
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        raise KeyError(name)
    return _REGISTRY[name]


def all_checks() -> list[CheckSpec]:
    """Every check, built-in and plugin, imported (used by `audit list`)."""
    return [_REGISTRY[name] for name in known_check_names()]


@dataclass
class CheckOutput:
    """What a check function returns; the runner adds id, status, timing, gates and method card.

    ``evidence`` holds the few rows a reader should see (the strongest cases); ``items`` holds one
    record per scored unit (a pair, a prompt, a canary, a row) with a stable string ``id`` unique
    within the check, enough to re-derive the headline metrics and to pair two runs item by item.
    Both obey the same redaction rules (PII and secrets never raw unless ``--show-pii``).
    """

    metrics: list[Any] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
