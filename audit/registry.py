"""The check registry: ``@check`` for built-in checks and the ``audit.checks`` entry-point group.

A check is a plain function ``fn(ctx: CheckContext, params: ParamsModel) -> CheckOutput``.
Built-in checks live one per module under ``audit/checks/<area>/``; they are imported lazily (the
list of modules below is data, so ``audit --help`` never imports torch). Third-party packages add
checks by declaring an entry point in the group ``audit.checks`` whose value is a module (importing
it runs its ``@check`` decorators) or a function decorated with ``@check``.

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

# name -> module that defines it; imported only when the check is needed.
BUILTIN_CHECK_MODULES: dict[str, str] = {
    "template_bias": "audit.checks.bias.template_bias",
    "pair_preference": "audit.checks.bias.pair_preference",
    "embedding_association": "audit.checks.bias.embedding_association",
    "group_fairness": "audit.checks.fairness.group_fairness",
    "counterfactual_fairness": "audit.checks.fairness.counterfactual_fairness",
    "identity_term_auc": "audit.checks.fairness.identity_term_auc",
    "verbatim_memorization": "audit.checks.privacy.verbatim_memorization",
    "canary_exposure": "audit.checks.privacy.canary_exposure",
    "pii_leakage": "audit.checks.privacy.pii_leakage",
    "membership_inference": "audit.checks.privacy.membership_inference",
    "dp_guarantee": "audit.checks.privacy.dp_guarantee",
    "attention": "audit.checks.explain.attention",
    "shap_text": "audit.checks.explain.shap_text",
    "shap_tabular": "audit.checks.explain.shap_tabular",
    "integrated_gradients": "audit.checks.explain.integrated_gradients",
    "attribution_faithfulness": "audit.checks.explain.attribution_faithfulness",
    "refusal": "audit.checks.safety.refusal",
    "generation_bias": "audit.checks.bias.generation_bias",
}

# Light metadata so `audit list` needs no heavy import: name -> (area, needs, summary).
BUILTIN_CHECK_INFO: dict[str, tuple[str, str, str]] = {}


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

    def missing_capabilities(self, capabilities: Iterable[str]) -> str | None:
        """Return why an adapter with ``capabilities`` cannot run this check, or None if it can."""
        have = set(capabilities)
        if not self.requires or any(need <= have for need in self.requires):
            return None
        options = " or ".join("+".join(sorted(n)) for n in self.requires)
        return f"needs {options}; the model adapter offers {', '.join(sorted(have)) or 'nothing'}"


_REGISTRY: dict[str, CheckSpec] = {}
_ENTRY_POINTS_LOADED = False

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
          requires: Iterable[Iterable[str]] | Iterable[str] | None = None) -> Callable:
    """Register ``fn`` as the check ``name`` (decorator).

    ``requires`` is either one set of capability names or a list of alternative sets.
    """
    alternatives = _normalise_requires(requires)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        card = parse_method_card(fn.__doc__)
        _REGISTRY[name] = CheckSpec(name=name, fn=fn, params=params, area=area,
                                    requires=alternatives, summary=card.summary.split(". ")[0],
                                    method=card)
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


def known_check_names() -> list[str]:
    """Names of all checks: built-in ones and those added through entry points."""
    _load_entry_points()
    return sorted(set(BUILTIN_CHECK_MODULES) | set(_REGISTRY))


def get_check(name: str) -> CheckSpec:
    """Return the registered check ``name``, importing its module if needed (KeyError if none)."""
    if name not in _REGISTRY and name in BUILTIN_CHECK_MODULES:
        importlib.import_module(BUILTIN_CHECK_MODULES[name])
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        raise KeyError(name)
    return _REGISTRY[name]


def all_checks() -> list[CheckSpec]:
    """Every check, built-in and plugin, imported (used by `audit list`)."""
    specs = []
    for name in known_check_names():
        try:
            specs.append(get_check(name))
        except (KeyError, ImportError):
            continue
    return specs


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
