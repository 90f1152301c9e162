#!/usr/bin/env python3
"""Accessibility check of an HTML report: axe-core run inside headless Chromium.

axe-core (Deque's rules engine for WCAG 2.x A/AA and best practices; npm package ``axe-core``) is
read from ``.a11y/node_modules/axe-core/axe.min.js`` (``scripts/install_axe`` puts it there; the
folder is git-ignored) or from ``$AXE_JS``. The page is opened from disk with the same headless
Chromium as ``scripts/browser_check.py``; axe's source is injected through WebDriver (the report's
Content-Security-Policy forbids scripts in the page itself, not the driver's), and ``axe.run``
checks the whole document. Usage:

    python scripts/a11y_check.py out/report.html            # JSON of violations by impact

Exit 0 when no violation is serious or critical, 1 otherwise, 4 when axe-core, Chromium or
selenium is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BLOCKING = ("serious", "critical")
WIDTHS = (1280, 390)


def axe_path() -> Path | None:
    """axe.min.js from $AXE_JS, else from .a11y/node_modules; None when it is not installed."""
    env = os.environ.get("AXE_JS")
    path = Path(env) if env else ROOT / ".a11y" / "node_modules" / "axe-core" / "axe.min.js"
    return path if path.is_file() else None


def _browser_check() -> Any:
    """scripts/browser_check.py as a module (its Chromium discovery and driver options)."""
    spec = importlib.util.spec_from_file_location("browser_check", ROOT / "scripts" / "browser_check.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


_RUN_AXE_JS = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']})
   .then(r => done({violations: r.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help, tags: v.tags,
        nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 200),
                                  summary: n.failureSummary}))})),
      version: axe.version}))
   .catch(e => done({error: String(e)}));
"""


def run_axe(path: Path, axe_js: Path | None = None,
            widths: tuple[int, ...] = WIDTHS) -> dict[str, Any]:
    """axe-core's violations on the page at ``path`` at each viewport width (desktop and phone:
    tables that fit at 1280 px scroll sideways at 390 px), merged by rule: ``{"version",
    "violations": [{id, impact, help, tags, nodes: [{target, html, summary, width}]}]}``."""
    bc = _browser_check()
    found = bc.find_browser()
    axe_js = axe_js or axe_path()
    if found is None or axe_js is None:
        raise RuntimeError("needs chromium + chromedriver and axe-core (scripts/install_axe)")
    source = axe_js.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="audit-axe-") as profile:
        drv = bc._driver(found[0], found[1], profile)
        try:
            drv.set_script_timeout(120)
            results = [_axe_at(drv, path, source, width) for width in widths]
        finally:
            drv.quit()
    return _merge(results)


def _axe_at(drv: Any, path: Path, source: str, width: int) -> dict[str, Any]:
    """One axe run with the viewport ``width`` px wide (device emulation, as a phone would)."""
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
    drv.get(path.resolve().as_uri())
    drv.execute_script(source)
    result = drv.execute_async_script(_RUN_AXE_JS)
    if "error" in result:
        raise RuntimeError(f"axe-core failed on {path} at {width} px: {result['error']}")
    for v in result["violations"]:
        for n in v["nodes"]:
            n["width"] = width
    return result


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Violations of several runs, one entry per rule, nodes de-duplicated by target."""
    merged: dict[str, dict[str, Any]] = {}
    for result in results:
        for v in result["violations"]:
            into = merged.setdefault(v["id"], dict(v, nodes=[]))
            seen = {n["target"] for n in into["nodes"]}
            into["nodes"] += [n for n in v["nodes"] if n["target"] not in seen]
    return {"version": results[0]["version"] if results else "", "violations": list(merged.values())}


def by_impact(result: dict[str, Any]) -> dict[str, list[str]]:
    """Violation ids (with their node counts) grouped by impact."""
    out: dict[str, list[str]] = {}
    for v in result["violations"]:
        out.setdefault(v["impact"] or "unknown", []).append(f"{v['id']} ({len(v['nodes'])})")
    return out


def blocking(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The serious and critical violations."""
    return [v for v in result["violations"] if v["impact"] in BLOCKING]


def main(argv: list[str] | None = None) -> int:
    """CLI: print violations by impact (and the blocking ones in full)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, nargs="+")
    args = ap.parse_args(argv)
    if axe_path() is None:
        print("axe-core: not installed (fix: scripts/install_axe)", file=sys.stderr)
        return 4
    if importlib.util.find_spec("selenium") is None or _browser_check().find_browser() is None:
        print("chromium/selenium: not found (fix: apt-get install -y chromium chromium-driver; "
              "pip install selenium)", file=sys.stderr)
        return 4
    bad = 0
    for page in args.report:
        result = run_axe(page)
        print(json.dumps({"file": str(page), "axe": result["version"], "by_impact": by_impact(result),
                          "blocking": blocking(result)}, indent=2))
        bad += len(blocking(result))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
