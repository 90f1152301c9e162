"""audit/dp has no import cycle (issue 11: loop.py <-> plain.py / private.py used to import each
other, hidden inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import audit.dp

DP = Path(audit.dp.__file__).parent


def _imports(path: Path) -> set[str]:
    """audit.dp modules imported anywhere in ``path``, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("audit.dp"):
            if node.module == "audit.dp":
                found |= {a.name for a in node.names if (DP / f"{a.name}.py").exists()}
            else:
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names
                      if a.name.startswith("audit.dp.")}
    return found - {path.stem}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in ``graph`` as a path, or None (depth-first search)."""
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return trail + [node, nxt]
            if nxt not in state and (found := visit(nxt, trail + [node])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle() -> None:
    """The checker itself can fail: a planted loop -> plain -> loop cycle is reported."""
    assert _cycle({"loop": {"plain"}, "plain": {"steps", "loop"}, "steps": set()}) is not None
    assert _cycle({"loop": {"plain"}, "plain": {"steps"}, "steps": set()}) is None


def test_audit_dp_has_no_import_cycle() -> None:
    """Every module of audit/dp, function-level imports included: the graph is acyclic, and the
    training loops take their shared helpers from the leaf module steps.py."""
    graph = {p.stem: _imports(p) for p in DP.glob("*.py") if p.stem != "__init__"}
    assert _cycle(graph) is None, _cycle(graph)
    assert "loop" not in graph["plain"] | graph["private"]
    assert graph["steps"] <= {"config"}
