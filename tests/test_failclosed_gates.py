"""Fail closed in `audit gate`, `audit compare` and the status words (issue 11).

Results files are built here with the results models (hand-set values), written to disk and fed
to the CLI (``audit.cli.main``), so the expectations are hand-derived from the definitions:
a gate passes only on evidence; losing evidence between two runs is a regression; a check
without gates is not "passed"; critical findings are counted and can fail the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.cli import main
from audit.results import CheckResult, GroupValue, Metric, Provenance, RunResult, SuiteInfo


def _run(checks: list[CheckResult], run_id: str = "r") -> RunResult:
    return RunResult(run_id=run_id, created_at="2026-11-28T00:00:00Z", seed=0,
                     suite=SuiteInfo(name="s"), checks=checks,
                     provenance=Provenance(audit_version="0", python="3", platform="x"))


def _write(tmp_path: Path, name: str, run: RunResult) -> str:
    path = tmp_path / name
    path.write_text(run.model_dump_json(indent=2))
    return str(path)


def _metric(name: str, value: float | None, groups: dict[str, float | None] | None = None,
            higher_is_better: bool | None = False) -> Metric:
    by_group = {g: GroupValue(value=v) for g, v in groups.items()} if groups else None
    return Metric(name=name, value=value, higher_is_better=higher_is_better, by_group=by_group)


def _check(cid: str, *metrics: Metric, **kw) -> CheckResult:
    return CheckResult(id=cid, check="group_fairness", metrics=list(metrics), **kw)


# -- audit gate --suite -----------------------------------------------------------------------

def test_gate_with_suite_fails_the_gate_of_a_check_absent_from_the_results(tmp_path, capsys):
    """The suite gates `a` (present, value 0.05 <= 0.1: passes) and `b` (absent from the
    results): exit 1, one FAIL line for b, and the count says 1 passed, 1 failed."""
    results = _write(tmp_path, "r.json", _run([_check("a", _metric("dp", 0.05))]))
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nchecks:\n"
                     "  - {id: a, check: group_fairness, gate: [{metric: dp, max: 0.1}]}\n"
                     "  - {id: b, check: group_fairness, gate: [{metric: dp, max: 0.1}]}\n")
    code = main(["gate", results, "--suite", str(suite)])
    out = capsys.readouterr().out
    assert code == 1, out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1 and fails[0].startswith("FAIL b:"), out
    assert "gates 1 passed, 1 failed" in out


def test_gate_fails_on_an_undefined_metric_and_a_missing_group(tmp_path, capsys):
    """A gate on a null metric and a gate on a group the metric does not report both fail, with
    the reason; the defined group's gate passes (0.2 <= 0.3)."""
    check = _check("a", _metric("dp", None), _metric("tpr", 0.8, {"x": 0.2}))
    results = _write(tmp_path, "r.json", _run([check]))
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nchecks:\n  - id: a\n    check: group_fairness\n    gate:\n"
                     "      - {metric: dp, max: 1.0}\n      - {metric: tpr, group: x, max: 0.3}\n"
                     "      - {metric: tpr, group: y, max: 0.3}\n")
    code = main(["gate", results, "--suite", str(suite)])
    out = capsys.readouterr().out
    assert code == 1
    assert "PASS a: tpr[x]" in out and "FAIL a: dp: value undefined" in out
    assert "FAIL a: tpr[y]: group 'y' not reported" in out


# -- audit compare ------------------------------------------------------------------------------

def _compare(tmp_path, capsys, base: list[CheckResult], new: list[CheckResult]) -> tuple[int, list[str]]:
    code = main(["compare", _write(tmp_path, "base.json", _run(base, "base")),
                 _write(tmp_path, "new.json", _run(new, "new"))])
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines[2:] if line.strip() and not line[0].isdigit()]
    return code, rows


@pytest.mark.parametrize("case", ["lost_metric", "undefined_metric", "lost_group",
                                  "undefined_group", "lost_check", "skipped", "errored"])
def test_compare_counts_lost_evidence_as_a_regression_listed_first(tmp_path, capsys, case):
    """Each way of losing evidence between base and new is a regression (exit 1), listed before
    an improvement that comes earlier in check order ('z-first' improves 0.5 -> 0.1, lower is
    better)."""
    first = _check("z-first", _metric("err", 0.5))
    base = [first.model_copy(), _check("a", _metric("dp", 0.1, {"x": 0.1, "y": 0.2}),
                                       _metric("eo", 0.1))]
    lost = {
        "lost_metric": [_check("a", _metric("dp", 0.1, {"x": 0.1, "y": 0.2}))],
        "undefined_metric": [_check("a", _metric("dp", 0.1, {"x": 0.1, "y": 0.2}),
                                    _metric("eo", None))],
        "lost_group": [_check("a", _metric("dp", 0.1, {"x": 0.1}), _metric("eo", 0.1))],
        "undefined_group": [_check("a", _metric("dp", 0.1, {"x": 0.1, "y": None}),
                                   _metric("eo", 0.1))],
        "lost_check": [],
        "skipped": [_check("a", status="skipped", skip_reason="needs predict_proba")],
        "errored": [_check("a", status="error", error="RuntimeError: boom")],
    }[case]
    code, rows = _compare(tmp_path, capsys, base, [_check("z-first", _metric("err", 0.1))] + lost)
    assert code == 1, rows
    assert rows[0].startswith("regressed") and " a / " in rows[0], rows
    assert any(r.startswith("improved") and "z-first / err" in r for r in rows), rows
    improved_at = next(i for i, r in enumerate(rows) if r.startswith("improved"))
    assert all(r.startswith("regressed") for r in rows[:improved_at]), rows


def test_compare_of_identical_runs_has_no_regression(tmp_path, capsys):
    """The same evidence on both sides (undefined values included) is not a regression."""
    checks = [_check("a", _metric("dp", 0.1, {"x": 0.1, "y": None}), _metric("eo", None))]
    code, rows = _compare(tmp_path, capsys, checks, [c.model_copy() for c in checks])
    assert code == 0 and not any(r.startswith("regressed") for r in rows)


# -- status words and critical findings ---------------------------------------------------------

def _single_group_suite(tmp_path: Path, gate: str = "") -> Path:
    """Predictions whose sensitive column is empty in every row: one group only."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    pd.DataFrame({"y_true": y, "y_pred": rng.integers(0, 2, 60), "g": [""] * 60}).to_csv(
        tmp_path / "p.csv", index=False)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nmodels: {default: p.csv}\nchecks:\n  - id: fair\n"
                     "    check: group_fairness\n    params: {sensitive: [g], n_boot: 20}\n"
                     + gate)
    return suite


def test_empty_sensitive_column_gives_undefined_gaps_and_a_failing_gate(tmp_path, capsys):
    """One group (every sensitive value missing): demographic parity difference and ratio are
    undefined (null), not 0 / 1, so a `max: 0.1` gate on the difference fails (exit 1)."""
    suite = _single_group_suite(tmp_path, "    gate: [{metric: demographic_parity_difference, "
                                          "max: 0.1}]\n")
    code = main(["run", str(suite), "--out", str(tmp_path / "o"), "--quiet", "--no-report"])
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    metrics = {m["name"]: m["value"] for m in results["checks"][0]["metrics"]}
    assert metrics["demographic_parity_difference"] is None
    assert metrics["demographic_parity_ratio"] is None
    assert metrics["equalized_odds_difference"] is None
    assert code == 1 and results["checks"][0]["status"] == "failed"


def test_ungated_check_with_a_critical_finding_is_not_passed(tmp_path, capsys):
    """No gates + a critical finding (single group): the status is 'reported', never 'passed';
    the critical finding is counted in results.json and printed; exit 0 by default, 1 with
    --fail-on critical (run and gate agree)."""
    suite = _single_group_suite(tmp_path)
    code = main(["run", str(suite), "--out", str(tmp_path / "o"), "--no-report"])
    out = capsys.readouterr().out
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    check = results["checks"][0]
    assert check["status"] == "reported"
    assert results["summary"]["checks_passed"] == 0
    assert results["summary"]["findings_critical"] == 1
    assert code == 0 and "CRITICAL" in out and "1 critical findings" in out
    strict = main(["run", str(suite), "--out", str(tmp_path / "o2"), "--quiet", "--no-report",
                   "--fail-on", "critical"])
    assert strict == 1
    assert json.loads((tmp_path / "o2" / "results.json").read_text())["summary"]["exit_code"] == 1
    assert main(["gate", str(tmp_path / "o" / "results.json"), "--fail-on", "critical"]) == 1
    assert main(["gate", str(tmp_path / "o" / "results.json")]) == 0
