"""The comparison report: both runs side by side, regressions first and highlighted.

The expected statuses come from ``audit.compare.compare_runs`` (the same rows `audit compare`
prints), so the HTML and the exit code always agree; the test checks the page shows them.
"""

from __future__ import annotations

import re

from audit.compare import compare_runs
from audit.report import render_compare_html
from tests.report_fixtures import rich_run


def _pair():
    base, new = rich_run(), rich_run()
    new.run_id = "run-2"
    dp = new.checks[1].metrics[0]            # demographic_parity_difference, lower is better
    dp.value = 0.2                           # worse, outside the base CI [0.05, 0.11]
    new.checks[1].gates[0].value, new.checks[1].gates[0].passed = 0.2, False
    new.checks[2].metrics[0].value = 0.51    # mia auc, lower is better: improved
    new.checks[5].status, new.checks[5].error = "error", "RuntimeError: new failure"
    return base, new


def test_regressions_first_and_highlighted() -> None:
    """The first metric rows are the regressions (marked), and the delta is signed."""
    base, new = _pair()
    comparison = compare_runs(base, new)
    html = render_compare_html(base, new, comparison)
    metrics = html.split('id="metrics"')[1]
    statuses = re.findall(r'<span class="badge (\w+)">', metrics)
    n_reg = len(comparison.regressions)
    assert n_reg == 2 and statuses[:n_reg] == ["regressed"] * n_reg
    assert "regressed" not in statuses[n_reg:] and "improved" in statuses
    assert metrics.count('<tr class="failed">') == n_reg
    assert "+0.12" in metrics and "delta-bad" in metrics and "-0.05" in metrics
    assert "2 regressions" in html


def test_both_runs_and_gate_changes_side_by_side() -> None:
    """Both run ids are shown; a gate that passed in base and fails in new is flagged; a check
    that errored only in the new run is marked worse."""
    base, new = _pair()
    html = render_compare_html(base, new, compare_runs(base, new))
    runs = html.split('id="runs"')[1].split('id="gates"')[0]
    assert "run-1" in runs and "run-2" in runs
    gates = html.split('id="gates"')[1].split('id="checks"')[0]
    assert gates.count("newly failing") == 1
    checks = html.split('id="checks"')[1].split('id="metrics"')[0]
    assert checks.count("<b>worse</b>") == 1
    assert "Figures side by side" in html


def test_identical_runs_have_no_regressions() -> None:
    """Comparing a run with itself: nothing regressed, every row unchanged."""
    run = rich_run()
    html = render_compare_html(run, rich_run(), None)
    assert "No regressions" in html and 'class="badge regressed"' not in html
