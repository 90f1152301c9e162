"""The executive summary at the top of report.html (audit/report/summary.py; issue 17 item 4).

Ranking is checked on a hand-built RunResult whose expected order is worked out by hand in each
test's docstring (not by calling the ranking code); links are checked by parsing the rendered
page; escaping with hostile check ids, metric and group names.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from audit.report import render_html
from audit.report.i18n import use
from audit.report.summary import MAX_DISPARITIES, executive_summary, sentence
from audit.results import (CheckResult, ConfidenceInterval, Finding, GateResult, GroupValue,
                           Metric, Provenance, RunResult, SuiteInfo)
from tests.report_fixtures import HOSTILE, rich_run


def _ci(lo: float, hi: float) -> ConfidenceInterval:
    return ConfidenceInterval(low=lo, high=hi, level=0.95)


def _gate(cid: str, metric: str, op: str, thr: float, value: float | None) -> GateResult:
    passed = value is not None and (value <= thr if op == "max" else value >= thr)
    return GateResult(check_id=cid, metric=metric, op=op, threshold=thr, value=value,
                      passed=passed)


def _run(checks: list[CheckResult]) -> RunResult:
    return RunResult(run_id="r", created_at="2026-01-01T00:00:00Z", seed=0,
                     suite=SuiteInfo(name="s"), checks=checks,
                     provenance=Provenance(audit_version="0", python="3", platform="x"))


def _ranked_run() -> RunResult:
    """Every kind of entry, with the expected order worked out by hand:

    failed gates: g-none (value unknown: first), g-max (0.2 vs <= 0.1: excess 0.1/0.2 = 0.5),
    g-min (0.5 vs >= 0.9: 0.4/0.9 = 0.444); then critical findings in check order (crit-1,
    crit-2; the warning is not listed); then the errored check; then disparities by standard
    errors from no disparity, se = CI half-width / 1.96:
    d-groups: tpr a 0.9 [0.85, 0.95] vs b 0.5 [0.45, 0.55]: 0.4 / (sqrt(2) * 0.0255) = 11.1,
    intervals apart (tier 0); d-named: best of gap_small 0.05 [0.04, 0.06] (z = 9.8) and
    gap_big 0.2 [0.1, 0.3] (z = 3.9), so gap_small; d-wide: 0.5 [-0.5, 1.5] includes 0 (tier 1);
    d-noci: 3.0 with no interval (tier 2), last although the largest number.
    Not listed: a privacy by-group spread, a by-group metric with no direction, a gap of 0,
    and g-max's metric again (already a failed gate)."""
    mk = CheckResult
    gv = GroupValue
    return _run([
        mk(id="d-noci", check="x", area="bias", status="reported",
           metrics=[Metric(name="score_gap", value=3.0, higher_is_better=False)]),
        mk(id="g-max", check="x", area="fairness", status="failed",
           metrics=[Metric(name="demographic_parity_difference", value=0.2,
                           higher_is_better=False, ci=_ci(0.15, 0.25))],
           gates=[_gate("g-max", "demographic_parity_difference", "max", 0.1, 0.2)]),
        mk(id="crit-1", check="x", area="privacy", status="reported",
           findings=[Finding(severity="warning", message="only a warning"),
                     Finding(severity="critical", message="first critical")]),
        mk(id="d-wide", check="x", area="bias", status="reported",
           metrics=[Metric(name="mean_gap", value=0.5, higher_is_better=False,
                           ci=_ci(-0.5, 1.5))]),
        mk(id="g-min", check="x", area="privacy", status="failed",
           metrics=[Metric(name="auc", value=0.5, higher_is_better=True)],
           gates=[_gate("g-min", "auc", "min", 0.9, 0.5)]),
        mk(id="d-named", check="x", area="explain", status="reported",
           metrics=[Metric(name="gap_big", value=0.2, higher_is_better=False, ci=_ci(0.1, 0.3)),
                    Metric(name="gap_small", value=0.05, higher_is_better=False,
                           ci=_ci(0.04, 0.06)),
                    Metric(name="zero_gap", value=0.0, higher_is_better=False)]),
        mk(id="err", check="x", area="bias", status="error", error="boom"),
        mk(id="d-groups", check="x", area="fairness", status="reported",
           metrics=[Metric(name="tpr", value=0.7, higher_is_better=True, by_group={
               "a": gv(value=0.9, ci=_ci(0.85, 0.95)), "b": gv(value=0.5, ci=_ci(0.45, 0.55))}),
                    Metric(name="count", value=10, by_group={"a": gv(value=1), "b": gv(value=99)})]),
        mk(id="privacy-groups", check="x", area="privacy", status="reported",
           metrics=[Metric(name="leak_rate", value=0.5, higher_is_better=False, by_group={
               "email": gv(value=1.0, ci=_ci(0.99, 1.0)), "phone": gv(value=0.0, ci=_ci(0, 0.01))})]),
        mk(id="g-none", check="x", area="fairness", status="failed",
           metrics=[Metric(name="eod", value=None, higher_is_better=False)],
           gates=[_gate("g-none", "eod", "max", 0.1, None)]),
        mk(id="crit-2", check="x", area="bias", status="reported",
           findings=[Finding(severity="critical", message="second critical")]),
    ])


def _check_of(entry: dict) -> str:
    return next(text for kind, text in entry["parts"] if kind == "link")


def _metric_of(entry: dict) -> str:
    return next(text for kind, text in entry["parts"] if kind == "id")


def test_ranking_order_on_a_hand_built_run() -> None:
    """The order of the entries is the one worked out by hand in ``_ranked_run``'s docstring;
    ranking disparities by raw size instead would put d-noci (3.0) and d-wide (0.5) first."""
    with use("en"):
        entries = executive_summary(_ranked_run())["entries"]
    got = [(e["kind"], _check_of(e)) for e in entries]
    assert got == [("gate", "g-none"), ("gate", "g-max"), ("gate", "g-min"),
                   ("critical", "crit-1"), ("critical", "crit-2"), ("error", "err"),
                   ("disparity", "d-groups"), ("disparity", "d-named"),
                   ("disparity", "d-wide"), ("disparity", "d-noci")]
    assert _metric_of(entries[7]) == "gap_small"
    assert [e["badge_class"] for e in entries[6:]] == ["warning", "warning", "info", "info"]
    text = {c: "".join(t for _, t in e["parts"]) for e, (_, c) in zip(entries, got)}
    assert text["g-max"] == ("demographic_parity_difference in g-max is 0.2 (95% CI [0.15, 0.25]),"
                             " above the maximum of 0.1.")
    assert text["g-min"] == "auc in g-min is 0.5, below the minimum of 0.9."
    assert "could not be computed" in text["g-none"]
    assert text["d-groups"] == ("tpr in d-groups is highest for a (0.9, 95% CI [0.85, 0.95]) and "
                                "lowest for b (0.5, 95% CI [0.45, 0.55]), a difference of 0.4; "
                                "the two intervals do not overlap.")
    assert "includes 0" in text["d-wide"] and "no confidence interval" in text["d-noci"]


def test_disparities_are_capped_one_per_check() -> None:
    """Eight checks each with two gaps: MAX_DISPARITIES entries, each check at most once, and
    the checks with the narrowest intervals (largest z; interval width set per check) first."""
    checks = [CheckResult(id=f"c{i}", check="x", area="bias", status="reported", metrics=[
        Metric(name="gap_a", value=0.3, higher_is_better=False, ci=_ci(0.3 - 0.01 * (i + 1),
                                                                         0.3 + 0.01 * (i + 1))),
        Metric(name="gap_b", value=0.3, higher_is_better=False, ci=_ci(0.0, 0.6))])
        for i in range(8)]
    with use("en"):
        entries = executive_summary(_run(checks))["entries"]
    assert [_check_of(e) for e in entries] == [f"c{i}" for i in range(MAX_DISPARITIES)]
    assert all(_metric_of(e) == "gap_a" for e in entries)


class _Page(HTMLParser):
    """Ids of the page, the summary's links (href, text), and check articles' first h3 text."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[list[str]] = []
        self.tags_in_summary: list[str] = []
        self.article_titles: dict[str, str] = {}
        self._in_summary = self._in_link = False
        self._article: str | None = None
        self._in_h3 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "section" and a.get("id") == "summary":
            self._in_summary = True
        if self._in_summary:
            self.tags_in_summary.append(tag)
        if self._in_summary and tag == "a":
            self.links.append([a.get("href") or "", ""])
            self._in_link = True
        if tag == "article":
            self._article = a.get("id")
        if tag == "h3" and self._article and self._article not in self.article_titles:
            self._in_h3 = True
            self.article_titles[self._article] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._in_summary = False
        self._in_link = self._in_link and tag != "a"
        self._in_h3 = self._in_h3 and tag != "h3"

    def handle_data(self, data: str) -> None:
        if self._in_link:
            self.links[-1][1] += data
        if self._in_h3 and self._article:
            self.article_titles[self._article] += data


def _page(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    return p


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("make", [_ranked_run, rich_run], ids=["hand-built", "rich"])
def test_summary_links_resolve_to_the_check_sections(make, lang) -> None:
    """Every link in the summary points at an id that exists, and that id is the article of the
    check the link names (its h3 is the check id)."""
    page = _page(render_html(make(), lang=lang))
    entry_links = [(h, t) for h, t in page.links if h != "#scorecard"]
    assert len(entry_links) >= 3
    for href, text in entry_links:
        assert href.startswith("#") and href[1:] in page.ids, href
        assert page.article_titles[href[1:]] == text


def test_duplicate_check_ids_link_to_their_own_sections() -> None:
    """Two checks with the same id: each summary entry links to its own article."""
    a = CheckResult(id="same", check="x", area="bias", status="reported",
                    findings=[Finding(severity="critical", message="A")])
    b = a.model_copy(update={"findings": [Finding(severity="critical", message="B")]})
    with use("en"):
        entries = executive_summary(_run([a, b]))["entries"]
    assert [e["anchor"] for e in entries] == ["check-1", "check-2"]


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_check_id_metric_and_group_names_stay_text(payload: str, lang: str) -> None:
    """A hostile check id, metric name, group name and finding reach the summary as text: the
    summary has only the tags our template writes, and each payload is visible verbatim."""
    run = _run([
        CheckResult(id=f"c{payload}", check="x", area="fairness", status="failed",
                    findings=[Finding(severity="critical", message=f"m{payload}")],
                    metrics=[Metric(name=f"gap{payload}", value=0.3, higher_is_better=False,
                                    ci=_ci(0.2, 0.4)),
                             Metric(name="tpr", value=0.5, higher_is_better=True, by_group={
                                 f"g{payload}": GroupValue(value=0.9, ci=_ci(0.8, 1.0)),
                                 "h": GroupValue(value=0.1, ci=_ci(0.0, 0.2))})],
                    gates=[_gate(f"c{payload}", f"gap{payload}", "max", 0.1, 0.3)]),
        CheckResult(id=f"d{payload}", check="x", area="fairness", status="reported",
                    metrics=[Metric(name="tpr", value=0.5, higher_is_better=True, by_group={
                        f"g{payload}": GroupValue(value=0.9, ci=_ci(0.8, 1.0)),
                        "h": GroupValue(value=0.1, ci=_ci(0.0, 0.2))})])])
    html = render_html(run, lang=lang)
    page = _page(html)
    assert set(page.tags_in_summary) <= {"section", "h2", "p", "ol", "li", "span", "a", "b"}
    start = html.index('id="summary"')
    section = html[start:html.index("</section>", start)]
    from html import unescape

    visible = unescape(section)
    for piece in (f"c{payload}", f"gap{payload}", f"g{payload}", f"m{payload}"):
        assert piece in visible
    if any(ch in payload for ch in '<>"'):  # markup characters arrive escaped, never raw
        assert payload not in section
    for href, _text in page.links:
        assert href.startswith("#check-") or href == "#scorecard"


def test_malformed_translation_falls_back_to_english() -> None:
    """A translation that names a field the sentence does not have is not used."""
    parts = sentence("{nope} bad", "{check} good", {"check": ("link", "c1")})
    assert parts == [("link", "c1"), ("t", " good")]


def test_empty_run_says_nothing_to_rank() -> None:
    """A run with nothing to report says so instead of showing an empty list."""
    with use("en"):
        s = executive_summary(_run([CheckResult(id="ok", check="x", status="passed")]))
    assert s["entries"] == [] and s["empty"].startswith("Nothing to rank")
    assert "Nothing to rank" in render_html(_run([CheckResult(id="ok", check="x")]))
