"""The HTML transparency report: content, formatting, charts, purity and file writing."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audit.report import render_html, write_report
from audit.report.fmt import fmt_ci, fmt_num, md_escape
from audit.report.svg import bars_svg, log_ticks, nice_domain, nice_ticks, roc_svg
from audit.results import ConfidenceInterval, Figure
from tests.report_fixtures import rich_run


class _Collect(HTMLParser):
    """Tags with their attributes, and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collect:
    p = _Collect()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def html() -> str:
    return render_html(rich_run())


def test_report_has_every_part(html: str) -> None:
    """Scorecard, provenance, one section per area, every check, reproducibility block."""
    ids = {a.get("id") for _, a in parse(html).tags}
    assert {"scorecard", "provenance", "reproduce", "area-bias", "area-fairness",
            "area-privacy", "area-explain"} <= ids
    assert {f"check-{i}" for i in range(1, len(rich_run().checks) + 1)} <= ids
    text = " ".join(parse(html).text)
    assert "needs predict_proba" in text            # skipped reason
    assert "RuntimeError: boom" in text             # error message
    assert "audit run suites/release.yaml --seed 1234" in text
    assert "Why template_bias matters." in text and "What dp_guarantee misses." in text
    assert "cdcd" * 16 in text                      # model file hash
    assert "10 more rows in results.json" in text   # 30 evidence rows, 20 shown


def test_scorecard_rows_and_outcomes(html: str) -> None:
    """One row per gate with threshold, value, CI and a pass/fail badge; failed rows marked."""
    section = html.split('id="scorecard"')[1].split("Checks at a glance")[0]
    rows = re.findall(r"<tr class=\"(passed|failed)\">", section)
    assert rows == ["failed", "passed", "passed"]
    assert "\u2264 0.15" in section and "[0.3, 0.55]" in section and "95% bootstrap-percentile" in section
    # by hand: [0.3, 0.55] vs 0.15 and [0.22, 0.40] vs 0.5 are settled; [0.05, 0.11] spans 0.1
    assert section.count("CI spans the threshold") == 1
    run = rich_run()
    run.checks[0].gates[1].threshold = 0.35        # now inside [0.22, 0.40]
    assert render_html(run).count("CI spans the threshold") == 2


def test_every_figure_kind_is_drawn(html: str) -> None:
    """bars, roc, line, heatmap as inline SVG; token attributions as spans; tables as tables."""
    tags = parse(html).tags
    svg_classes = [a["class"] for t, a in tags if t == "svg"]
    assert sorted(svg_classes) == ["chart bars", "chart heatmap", "chart line", "chart roc",
                                   "chart roc"]    # ROC: linear and log-log panels
    assert sum(1 for t, a in tags if t == "span" and a.get("class") == "tok") == 15
    figs = [a["class"] for t, a in tags if t == "figure"]
    assert figs.count("fig fig-table") == 3
    assert "not drawn" not in html


def test_self_contained_no_scripts_no_external_refs(html: str) -> None:
    """No script elements, no src attributes, links only to in-page anchors; CSP forbids fetches."""
    tags = parse(html).tags
    assert not any(t in {"script", "iframe", "img", "link", "object", "embed"} for t, _ in tags)
    assert not any("src" in a for _, a in tags)
    assert all(a["href"].startswith("#") for t, a in tags if t == "a")
    csp = next(a["content"] for t, a in tags if a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp


def test_rendering_is_pure() -> None:
    """Same results in, byte-identical HTML out."""
    assert render_html(rich_run()) == render_html(rich_run())


def test_number_formatting() -> None:
    """Hand-written expectations: 4 significant digits, separators, scientific for tiny values."""
    cases = {0.123456: "0.1235", 12.3456: "12.35", 1234.56: "1235", 123456.7: "123,457",
             3.2e-6: "3.20e-06", 2100.0: "2,100", 7: "7", -0.5: "-0.5", None: "\u2014",
             float("nan"): "NaN", float("inf"): "\u221e"}
    for value, text in cases.items():
        assert fmt_num(value) == text, value
    assert fmt_num(12.5, "%") == "12.5%"
    assert fmt_ci(ConfidenceInterval(low=0.1, high=0.25)) == "[0.1, 0.25]"
    assert fmt_ci(None) == "\u2014"


def test_markdown_escape() -> None:
    """Markdown metacharacters are escaped, intraword underscores kept, list markers escaped."""
    assert md_escape("a|b <i>") == "a\\|b &lt;i&gt;"
    assert md_escape("max_group_gap") == "max_group_gap"
    assert md_escape("- item") == "\\- item"


def test_ticks() -> None:
    """Round ticks (hand-checked) and domains widened to whole ticks."""
    assert nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_domain(-0.3, 0.5) == (-0.4, 0.6, [-0.4, -0.2, 0.0, 0.2, 0.4, 0.6])
    assert log_ticks(0, 1.51) == [1, 2, 5, 10, 20]


def test_bar_geometry_matches_scale() -> None:
    """Bar lengths are proportional to values. Data span [-0.4, 0.35] widens to the round domain
    [-0.4, 0.4] drawn over 244 units (x 144..388): zero sits at 144 + 0.5*244 = 266, a bar of
    +0.3 is 0.3/0.8*244 = 91.5 wide from 266, a bar of -0.3 spans 174.5..266."""
    svg = str(bars_svg({"labels": ["a", "b"], "values": [0.3, -0.3], "ci_low": [0.2, -0.4],
                        "ci_high": [0.35, -0.2]}))
    rects = re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)
    assert rects[0] == ("266.0", "91.5")
    assert rects[1] == ("174.5", "91.5")


def test_malformed_figure_becomes_a_note() -> None:
    """A figure whose data cannot be drawn (a heatmap whose values are a number) shows a
    one-line note in its place, with the error; the rest of the report renders; a line series
    of non-numbers plots no point."""
    run = rich_run()
    run.checks[0].figures.append(Figure(kind="line", title="broken", data={"x": [1, 2],
                                                                         "series": [{"y": "zz"}]}))
    run.checks[0].figures.append(Figure(kind="heatmap", title="broken2", data={"values": 5}))
    html = render_html(run)
    assert "Exposure by repeat count" in html and "broken2" in html
    broken2 = html.split('<div class="figtitle">broken2</div>')[1].split("</figure>")[0]
    assert "figure not drawn: TypeError" in broken2 and "<svg" not in broken2
    assert html.count("figure not drawn: ") == 1  # the other figures draw
    # a line series whose y values are not numbers draws no point (an empty frame, no fake data)
    broken = html.split('<div class="figtitle">broken</div>')[1].split("</figure>")[0]
    assert '<polyline points=""' in broken and "<circle" not in broken


def test_long_text_is_truncated() -> None:
    """A 10,000-character model output is cut in the evidence table, saying how much was cut."""
    run = rich_run()
    run.checks[0].evidence = [{"output": "x" * 10_000}]
    html = render_html(run)
    assert "x" * 241 not in html and "(+9760 chars)" in html


def test_write_report_writes_both_files_atomically(tmp_path: Path) -> None:
    """report.html and model_card.md appear, and no temporary file is left behind."""
    paths = write_report(rich_run(), tmp_path / "out")
    assert set(paths) == {"html", "model_card"}
    assert paths["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert paths["model_card"].read_text(encoding="utf-8").startswith("---\n")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model_card.md", "report.html"]


def test_print_and_phone_styles_present(html: str) -> None:
    """The stylesheet has a print layout and a narrow-screen layout; the viewport is set."""
    assert "@media print" in html and "@media (max-width: 700px)" in html
    assert 'name="viewport"' in html


def test_group_matrix_and_repeated_method_cards() -> None:
    """By-group values form one table (a row per group, a column per metric) with each CI and
    group gate; a second check with the same method card links to the first instead of repeating
    it."""
    run = rich_run()
    second = run.checks[1].model_copy(deep=True)
    second.id, second.gates = "adult-fairness-2", []
    run.checks.insert(2, second)
    html = render_html(run)
    bias = html.split('id="check-1"')[1].split('id="check-2"')[0]
    table = bias.split('<table class="groups">')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], flags=re.S)
    assert [re.sub(r"<[^>]+>", " ", r).split()[:3] for r in rows] == [
        ["women", "120", "0.31"], ["men", "118", "-0.12"]]
    assert "[0.22, 0.4]" in rows[0] and "gate \u2264 0.5" in rows[0] and "small-n" in rows[1]
    third = html.split('id="check-3"')[1].split('id="check-4"')[0]
    assert 'Method card: as for <a href="#check-2">adult-fairness</a>' in third
    assert "Why group_fairness matters." not in third


def test_token_shading_by_hand() -> None:
    """Shade = |score| / max |score| of ordinary tokens, times 0.85 opacity; red for +, blue for
    -; a special token ([CLS]) with a larger score is clipped to full shade. By hand: scale 1.0,
    so 'a' (1.0) -> 0.85 red, 'b' (-0.5) -> 0.42 blue, [CLS] (10) -> 0.85 red."""
    from audit.report.figures import token_view

    view = token_view({"tokens": ["[CLS]", "a", "b"], "scores": [10.0, 1.0, -0.5]}, False)
    styles = [i["style"] for i in view["items"]]
    assert styles == ["background-color: rgba(213,94,0,0.85)",
                      "background-color: rgba(213,94,0,0.85)",
                      "background-color: rgba(0,114,178,0.42)"]
    assert view["special_scaled"] is True


def test_log_roc_geometry() -> None:
    """Log-log ROC panel, by hand: smallest positive FPR 0.002 -> axes start at 1e-3 (3 decades
    over 300 units from x=52, y=312 up). (0.002, 0.05) maps to x = 52 + 100*log10(2) = 82.1,
    y = 312 - 100*(3 + log10(0.05)) = 142.1; (0.01, 0.1) to x = 52 + 100 = 152,
    y = 312 - 200 = 112; points with FPR or TPR 0 are left out on log axes."""
    svg = str(roc_svg({"curves": [{"name": "a", "fpr": [0.0, 0.002, 0.01, 1.0],
                                   "tpr": [0.0, 0.05, 0.1, 1.0], "auc": 0.6}]}))
    linear, log = re.findall(r'<polyline points="([^"]+)"', svg)
    assert linear.split()[0] == "52.0,312.0" and len(linear.split()) == 4
    assert log.split() == ["82.1,142.1", "152.0,112.0", "352.0,12.0"]


def test_verdict_is_recounted_from_the_checks() -> None:
    """A stale stored summary (here: claims success) does not hide a failed gate: the verdict and
    counts come from the checks (audit.gate.summarise) and a note says the file disagreed."""
    from audit.results import GateSummary

    run = rich_run()
    assert "differs from its checks" not in render_html(run)
    run.summary = GateSummary(checks_passed=9, exit_code=0)
    html = render_html(run)
    assert "At least one check errored" in html and "differs from its checks" in html
    assert "<li><b>1</b> gates failed</li>" in html


def test_display_token() -> None:
    """Space markers of byte-level BPE and SentencePiece are dropped; newlines made visible."""
    from audit.report.figures import display_token

    assert [display_token(t) for t in ["\u0120the", "\u2581cat", "##ing", "\u010a", "a"]] == [
        "the", "cat", "##ing", "\u23ce", "a"]
