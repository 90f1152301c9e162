"""The report in a real browser: headless Chromium opens report.html from disk.

Needs Debian's chromium + chromium-driver (``apt-get install -y chromium chromium-driver``) and
selenium; skipped with the reason when they are absent. Timing and size are printed, not asserted
(``scripts/browser_check.py`` measures them for the note).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audit.report import render_compare_html, write_report
from tests.report_fixtures import browser_checker_or_skip, rich_run

ROOT = Path(__file__).resolve().parents[1]
# The default suite's results (scripts/demo writes them here); AUDIT_REPORT_RESULTS overrides.
DEMO_RESULTS = Path(os.environ.get("AUDIT_REPORT_RESULTS", ROOT / "audit-out" / "demo" / "results.json"))


@pytest.fixture(scope="module")
def checker():
    return browser_checker_or_skip()


@pytest.mark.browser
def test_report_opens_offline_without_errors(checker, tmp_path: Path) -> None:
    """No console errors, no network requests, no sideways scrolling at 390 px, screenshots saved."""
    html = write_report(rich_run(), tmp_path)["html"]
    result = checker.check_report(html, tmp_path / "shots")
    print({k: result[k] for k in ("size_bytes", "load_event_ms", "get_wall_s")})
    assert result["console_errors"] == []
    assert result["network_requests"] == []
    for view in ("desktop", "phone"):
        shots = result["screenshots"][view]
        assert Path(shots["top"]).stat().st_size > 10_000
        assert shots["horizontal_overflow_px"] == 0, view


@pytest.mark.browser
def test_compare_report_opens_offline_without_errors(checker, tmp_path: Path) -> None:
    """The comparison report, too, loads with no console errors and no network requests."""
    base, new = rich_run(), rich_run()
    new.checks[1].metrics[0].value = 0.3
    page = tmp_path / "compare.html"
    page.write_text(render_compare_html(base, new, None), encoding="utf-8")
    result = checker.check_report(page, tmp_path / "shots")
    assert result["console_errors"] == [] and result["network_requests"] == []
    assert result["screenshots"]["phone"]["horizontal_overflow_px"] == 0


@pytest.mark.browser
def test_default_suite_report_in_browser(checker, tmp_path: Path) -> None:
    """The report re-rendered from the default suite's results.json (scripts/demo) opens from
    disk with no console errors or network requests; size and load time are printed."""
    if not DEMO_RESULTS.is_file():
        pytest.skip(f"no default-suite results at {DEMO_RESULTS} (run scripts/demo first)")
    from audit.results import load_run

    html = write_report(load_run(str(DEMO_RESULTS)), tmp_path)["html"]
    result = checker.check_report(html, tmp_path / "shots")
    print({k: result[k] for k in ("size_bytes", "load_event_ms", "get_wall_s")})
    assert result["console_errors"] == [] and result["network_requests"] == []
    assert result["screenshots"]["phone"]["horizontal_overflow_px"] == 0


@pytest.mark.browser
def test_chinese_report_draws_every_glyph(checker, tmp_path: Path) -> None:
    """The Chinese report (--lang zh) opens offline with no console errors, no network requests,
    no sideways scrolling at 390 px, and every character of its text drawn by an installed font
    (none renders as the missing-glyph box). Control: a page with a cuneiform character (U+12000), which no
    installed font covers, is flagged, so the glyph check can fail. Screenshots go to
    $AUDIT_SHOTS when set (to look at), else to the temporary folder."""
    shots = Path(os.environ.get("AUDIT_SHOTS", tmp_path / "shots"))
    html = write_report(rich_run(), tmp_path, lang="zh")["html"]
    result = checker.check_report(html, shots)
    print({k: result[k] for k in ("size_bytes", "load_event_ms", "glyphs_checked",
                                  "missing_glyphs")})
    assert result["console_errors"] == [] and result["network_requests"] == []
    assert result["glyphs_checked"] > 100 and result["missing_glyphs"] == []
    assert result["screenshots"]["phone"]["horizontal_overflow_px"] == 0
    control = tmp_path / "control.html"
    control.write_text("<!DOCTYPE html><html lang=\"zh-Hans\"><meta charset=\"utf-8\"><body>"
                       "计分卡 \U00012000</body></html>", encoding="utf-8")
    flagged = checker.check_report(control, tmp_path / "control")
    assert flagged["missing_glyphs"] == ["\U00012000"]
