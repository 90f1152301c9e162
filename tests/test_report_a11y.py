"""Accessibility of the reports: axe-core (Deque's WCAG 2.x A/AA + best-practice rules) inside
headless Chromium finds no serious or critical violation (issue 17 item 5).

Pages: the rich default-style report, the default suite's report (when scripts/demo has written
its results), the Chinese report, and a comparison report with its paired-items table. Each is
checked at 1280 px and 390 px wide (tables that fit on a desktop scroll sideways on a phone).
A control page with known violations shows the harness can fail. Moderate and minor violations
are printed, not asserted. Needs chromium + chromedriver, selenium and axe-core
(``scripts/install_axe``); skipped with the reason when one is missing. The SVG text-alternative
test needs none of them.
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audit.report import render_compare_html, render_html, write_report
from tests.report_fixtures import browser_checker_or_skip, rich_run, script_module

ROOT = Path(__file__).resolve().parents[1]
DEMO_RESULTS = Path(os.environ.get("AUDIT_REPORT_RESULTS",
                                   ROOT / "audit-out" / "demo" / "results.json"))


@pytest.fixture(scope="module")
def axe():
    browser_checker_or_skip()
    module = script_module("a11y_check")
    if module.axe_path() is None:
        pytest.skip("axe-core not installed (scripts/install_axe)")
    return module


def _compare_page(tmp_path: Path) -> Path:
    """A comparison report with a paired-items table (the paired-compare test's runs)."""
    from audit.compare import compare_runs
    from audit.items import verified_items
    from tests.test_items_paired import N_PAIRS, _model, _pairs_csv, _run

    data = _pairs_csv(tmp_path)
    wins = set(range(0, N_PAIRS, 2))
    base, bdir = _run(tmp_path, "base", _model(wins), data)
    new, ndir = _run(tmp_path, "new", _model(wins | set(range(1, 25, 2))), data)
    comparison = compare_runs(base, new, tolerance=1.0, base_items=verified_items(base, bdir),
                              new_items=verified_items(new, ndir))
    page = tmp_path / "compare.html"
    page.write_text(render_compare_html(base, new, comparison), encoding="utf-8")
    assert "Paired comparison on shared items" in page.read_text(encoding="utf-8")
    return page


def _page(kind: str, tmp_path: Path) -> Path:
    if kind == "default":
        return write_report(rich_run(), tmp_path)["html"]
    if kind == "zh":
        return write_report(rich_run(), tmp_path, lang="zh")["html"]
    if kind == "compare":
        return _compare_page(tmp_path)
    if not DEMO_RESULTS.is_file():
        pytest.skip(f"no default-suite results at {DEMO_RESULTS} (run scripts/demo first)")
    from audit.results import load_run

    return write_report(load_run(str(DEMO_RESULTS)), tmp_path)["html"]


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["default", "default-suite", "zh", "compare"])
def test_no_serious_or_critical_axe_violations(axe, kind: str, tmp_path: Path) -> None:
    """axe-core finds nothing serious or critical; anything milder is printed."""
    result = axe.run_axe(_page(kind, tmp_path))
    print(kind, "axe", result["version"], axe.by_impact(result))
    assert axe.blocking(result) == []


@pytest.mark.browser
def test_axe_flags_a_page_with_known_violations(axe, tmp_path: Path) -> None:
    """Control: an image without alt text (critical) and grey-on-grey text (serious) are
    flagged, so the test above can fail."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html lang="en"><head><title>t</title></head><body><main>'
                    '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
                    '<p style="color:#999;background:#aaa">faint</p></main></body></html>',
                    encoding="utf-8")
    ids = {v["id"] for v in axe.blocking(axe.run_axe(page, widths=(1280,)))}
    assert {"image-alt", "color-contrast"} <= ids


class _Svgs(HTMLParser):
    """Each <svg>'s title and desc text."""

    def __init__(self) -> None:
        super().__init__()
        self.svgs: list[dict[str, str]] = []
        self._depth, self._field = 0, ""

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "svg":
            self.svgs.append({"role": dict(attrs).get("role") or "", "title": "", "desc": ""})
        if self.svgs and tag in ("title", "desc") and self._depth == 0:
            self._field = tag
        elif self.svgs and tag in ("g", "rect"):
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "desc"):
            self._field = ""
        elif tag in ("g", "rect") and self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._field and self.svgs and not self.svgs[-1][self._field]:
            self.svgs[-1][self._field] = data


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_svg_chart_has_a_title_and_a_description_of_its_numbers(lang: str) -> None:
    """Every chart is role=img with a <title> and a <desc>; the bar chart's desc lists each
    group's value and interval as the fixture gives them (women 0.31 [0.22, 0.4], men -0.12
    [-0.2, -0.05]), and the line chart's its points."""
    svgs = _Svgs()
    svgs.feed(render_html(rich_run(), lang=lang))
    assert len(svgs.svgs) == 5  # bars, two ROC panels, line, heatmap
    assert all(s["role"] == "img" and s["title"] and s["desc"] for s in svgs.svgs)
    descs = " | ".join(s["desc"] for s in svgs.svgs)
    assert "women: 0.31 [0.22, 0.4]; men: -0.12 [-0.2, -0.05]" in descs
    assert "loss attack (AUC 0.56)" in descs and "32 \u2192 12.3" in descs
