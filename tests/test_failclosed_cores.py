"""The pure cores, function by function: gates, comparison, statistics, fairness arithmetic,
WEAT, canary exposure and membership-inference scoring.

These tests pin each branch and boundary that a plausible slip would change (``<`` for ``<=``,
a dropped NaN guard, a swapped argument, a wrong default, a wrong message), which is what the
mutation run (scripts/mutation, docs/testing.md) measures. Every expected value is hand-derived
or comes from an independent reference (scipy, scikit-learn, itertools, a plain loop written
here); none is read back from the code under test.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib

import numpy as np
import pytest

from audit.checks.bias import weat as W
from audit.checks.fairness import metrics as fm
from audit.checks.privacy import canary_exposure as ce
from audit.checks.privacy import membership_inference as mi
from audit.compare import ComparisonRow, compare_runs, compare_values, format_table
from audit.config import CheckConfig, Gate
from audit.gate import absent_check, apply_gate, gate_check, regate, summarise
from audit.results import (CheckResult, ConfidenceInterval, Finding, GroupValue, Metric,
                           Provenance, RunResult, SuiteInfo)
from audit.stats import bootstrap_ci, percentile_ci, wilson_ci

NAN = float("nan")


def _ci(low, high) -> ConfidenceInterval:
    return ConfidenceInterval(low=low, high=high)


def _check(cid="c", status="passed", metrics=(), findings=(), **kw) -> CheckResult:
    return CheckResult(id=cid, check="x", status=status, metrics=list(metrics),
                       findings=list(findings), **kw)


def _m(name="m", value=0.5, groups=None, hib=False, **kw) -> Metric:
    by = {g: GroupValue(value=v) for g, v in groups.items()} if groups else None
    return Metric(name=name, value=value, by_group=by, higher_is_better=hib, **kw)


def _run(checks, fail_on=()) -> RunResult:
    run = RunResult(run_id="r", created_at="t", seed=0, suite=SuiteInfo(name="s"), checks=checks,
                    provenance=Provenance(audit_version="0", python="3", platform="p"))
    return run.model_copy(update={"summary": summarise(checks, list(fail_on))})


# ============================================================================ gate.py

@pytest.mark.parametrize("op,threshold,value,passed", [
    ("max", 0.5, 0.5, True), ("max", 0.5, 0.5000001, False), ("max", 0.5, 0.4, True),
    ("min", 0.5, 0.5, True), ("min", 0.5, 0.4999999, False), ("min", 0.5, 0.9, True)])
def test_gate_boundaries_are_inclusive(op, threshold, value, passed):
    """`max: t` passes value <= t, `min: t` passes value >= t (hand-stated contract)."""
    result = apply_gate(_check(metrics=[_m(value=value)]), Gate(metric="m", **{op: threshold}))
    assert (result.passed, result.op, result.threshold, result.value) == (passed, op, threshold, value)
    sign = "<=" if op == "max" else ">="
    verdict = "ok" if passed else "FAILED"
    assert result.message == f"m = {value:.4g} (must be {sign} {threshold:g}): {verdict}"
    assert result.check_id == "c" and result.metric == "m" and result.group is None


def test_gate_on_a_group_value():
    """A group gate reads the group's value and labels the metric `m[g]`."""
    check = _check(metrics=[_m(value=0.9, groups={"g": 0.2, "h": 0.8})])
    ok = apply_gate(check, Gate(metric="m", group="g", max=0.3))
    assert (ok.passed, ok.value, ok.group) == (True, 0.2, "g")
    assert ok.message == "m[g] = 0.2 (must be <= 0.3): ok"
    bad = apply_gate(check, Gate(metric="m", group="h", max=0.3))
    assert (bad.passed, bad.value) == (False, 0.8)


@pytest.mark.parametrize("metrics,gate,reason", [
    ([], Gate(metric="m", max=1), "m: metric not reported: FAILED"),
    ([_m(value=None)], Gate(metric="m", max=1), "m: value undefined: FAILED"),
    ([_m(groups={"a": 0.1})], Gate(metric="m", group="b", max=1),
     "m[b]: group 'b' not reported: FAILED"),
    ([_m(groups={"a": None})], Gate(metric="m", group="a", max=1), "m[a]: value undefined: FAILED"),
    ([_m(value=0.1)], Gate(metric="m", group="a", max=1), "m[a]: group 'a' not reported: FAILED"),
])
def test_gate_without_evidence_fails_with_the_reason(metrics, gate, reason):
    """Missing metric, undefined value, missing or undefined group: the gate fails, value None."""
    result = apply_gate(_check(metrics=metrics), gate)
    assert (result.passed, result.value, result.message) == (False, None, reason)


@pytest.mark.parametrize("status,reason,message", [
    ("skipped", "needs chat", "m: check skipped (needs chat), gate not evaluated"),
    ("skipped", None, "m: check skipped (skipped), gate not evaluated"),
    ("error", None, "m: check error (error), gate not evaluated")])
def test_gate_on_a_check_that_did_not_run_fails(status, reason, message):
    """An errored or skipped check fails its gates even if a stale metric value is present."""
    check = _check(status=status, metrics=[_m(value=0.0)], skip_reason=reason)
    result = apply_gate(check, Gate(metric="m", max=1))
    assert (result.passed, result.value, result.message) == (False, None, message)


@pytest.mark.parametrize("status,gates,expected", [
    ("passed", [], "reported"), ("failed", [], "reported"), ("reported", [], "reported"),
    ("passed", [Gate(metric="m", max=1)], "passed"), ("reported", [Gate(metric="m", max=1)], "passed"),
    ("passed", [Gate(metric="m", max=1), Gate(metric="m", max=0.1)], "failed"),
    ("error", [], "error"), ("skipped", [Gate(metric="m", max=1)], "skipped")])
def test_gate_check_status_words(status, gates, expected):
    """Status after gating: passed/failed only with gates, reported without; error and skipped
    are kept (their gates fail)."""
    out = gate_check(_check(status=status, metrics=[_m(value=0.5)]), gates)
    assert out.status == expected and len(out.gates) == len(gates)
    if status in ("error", "skipped"):
        assert not any(g.passed for g in out.gates)


def _summary_checks():
    crit = Finding(severity="critical", message="c")
    warn = Finding(severity="warning", message="w")
    return [gate_check(_check("a", metrics=[_m(value=0.5)]), [Gate(metric="m", max=1)]),
            gate_check(_check("b", metrics=[_m(value=0.5)]), [Gate(metric="m", max=0.1),
                                                               Gate(metric="m", max=1)]),
            gate_check(_check("c", findings=[crit, crit, warn]), []),
            _check("d", status="skipped"), _check("e", status="skipped")]


def test_summarise_counts_everything():
    """Hand count of the five checks above: 1 passed, 1 failed, 1 reported, 0 errors, 2 skipped;
    gates 2 passed, 1 failed; findings 2 critical, 1 warning; exit 1 (a gate failed)."""
    s = summarise(_summary_checks())
    assert (s.checks_passed, s.checks_failed, s.checks_reported, s.checks_error,
            s.checks_skipped) == (1, 1, 1, 0, 2)
    assert (s.gates_passed, s.gates_failed) == (2, 1)
    assert (s.findings_critical, s.findings_warning) == (2, 1)
    assert s.exit_code == 1 and s.fail_on == []


def test_summarise_exit_code_precedence():
    """0 clean; critical counts only with fail_on; 1 gate; 2 error beats 1; 4 usage beats 2."""
    crit = _check("c", status="reported", findings=[Finding(severity="critical", message="x")])
    assert summarise([crit]).exit_code == 0
    assert summarise([crit], ["critical"]).exit_code == 1
    assert summarise([crit], ["critical"]).fail_on == ["critical"]
    failed = _check("f", status="failed")
    assert summarise([failed]).exit_code == 1
    runtime = _check("e", status="error", error_type="runtime")
    assert summarise([failed, runtime]).exit_code == 2
    usage = _check("u", status="error", error_type="usage")
    assert summarise([failed, runtime, usage]).exit_code == 4
    assert summarise([_check("u", status="passed", error_type="usage")]).exit_code == 0
    assert summarise([]).exit_code == 0


def test_absent_check_and_regate_from_a_suite():
    """A suite entry missing from the results becomes a skipped placeholder whose gates fail;
    checks present are re-gated with the suite's thresholds (0.5 <= 0.6 now passes)."""
    entry = CheckConfig(id="b", check="k", model="m2", params={"p": 1},
                        gate=[Gate(metric="m", max=1)])
    placeholder = absent_check(entry)
    assert (placeholder.status, placeholder.skip_reason, placeholder.check, placeholder.model,
            placeholder.params) == ("skipped", "not in the results file", "k", "m2", {"p": 1})
    stored = gate_check(_check("a", metrics=[_m(value=0.5)]), [Gate(metric="m", max=0.4)])
    run = _run([stored])
    entries = [CheckConfig(id="a", check="x", gate=[Gate(metric="m", max=0.6)]), entry]
    out = regate(run, entries)
    assert [c.id for c in out.checks] == ["a", "b"]
    assert [c.status for c in out.checks] == ["passed", "skipped"]
    assert (out.summary.gates_passed, out.summary.gates_failed, out.summary.exit_code) == (1, 1, 1)


def test_regate_from_recorded_gates_and_fail_on():
    """Without a suite the recorded gates are re-applied (the failed one stays failed, the
    ungated check stays reported); fail_on comes from the stored summary unless given."""
    crit = Finding(severity="critical", message="x")
    stored = [gate_check(_check("a", metrics=[_m(value=0.5)]), [Gate(metric="m", min=0.6)]),
              gate_check(_check("b", metrics=[_m(value=0.5)], findings=[crit]), []),
              _check("e", status="error")]
    run = _run(stored, fail_on=["critical"])
    out = regate(run)
    assert [c.status for c in out.checks] == ["failed", "reported", "error"]
    assert out.checks[0].gates[0].op == "min" and out.checks[0].gates[0].threshold == 0.6
    assert out.summary.fail_on == ["critical"]
    assert regate(run, fail_on=[]).summary.fail_on == []
    clean = _run([gate_check(_check("b", metrics=[_m()], findings=[crit]), [])], ["critical"])
    assert regate(clean).summary.exit_code == 1 and regate(clean, fail_on=[]).summary.exit_code == 0


# ============================================================================ compare.py

def _row(metric, base, new, base_ci=None, tol=0.0, group=None) -> ComparisonRow:
    return compare_values("c", metric, group, base, new, base_ci, None, tol)


@pytest.mark.parametrize("hib,ideal,base,new,status", [
    (False, None, 0.10, 0.20, "regressed"), (False, None, 0.20, 0.10, "improved"),
    (True, None, 0.20, 0.10, "regressed"), (True, None, 0.10, 0.20, "improved"),
    (None, 0.5, 0.50, 0.70, "regressed"), (None, 0.5, 0.70, 0.45, "improved"),
    (None, 0.5, 0.40, 0.60, "unchanged"), (None, None, 0.10, 0.20, "changed"),
    (None, None, 0.10, 0.10, "unchanged"), (False, None, 0.10, 0.10, "unchanged")])
def test_compare_direction(hib, ideal, base, new, status):
    """Worse/better follow higher_is_better, else distance to the ideal, else only 'changed'."""
    row = _row(_m(hib=hib, ideal=ideal), base, new)
    assert row.status == status
    assert row.delta == pytest.approx(new - base)
    assert row.direction == {True: "higher", False: "lower"}.get(
        hib, f"closer to {ideal:g}" if ideal is not None else "none")


def test_compare_tolerance_and_interval():
    """Worse by exactly the tolerance is not a regression (strict >); worse but inside the
    baseline CI (ends included) is noise with a reason; outside it regresses; a CI with a
    missing end does not protect."""
    m = _m(hib=False)
    assert _row(m, 0.1, 0.15, tol=0.05).status == "unchanged"
    assert _row(m, 0.1, 0.1501, tol=0.05).status == "regressed"
    assert _row(m, 0.1, 0.12, tol=0.05).status == "unchanged"
    assert _row(m, 0.1, 0.05, tol=0.05).status == "unchanged"
    assert _row(m, 0.1, 0.0499, tol=0.05).status == "improved"
    inside = _row(m, 0.1, 0.3, base_ci=_ci(0.0, 0.3))
    assert inside.status == "unchanged" and "inside the baseline" in inside.reason
    outside = _row(m, 0.1, 0.3001, base_ci=_ci(0.0, 0.3))
    assert outside.status == "regressed" and "outside the baseline CI" in outside.reason
    assert "worse by 0.2001 (> 0)" in outside.reason
    assert _row(m, 0.1, 0.3, base_ci=_ci(None, 0.5)).status == "regressed"
    assert _row(m, 0.1, 0.3, base_ci=_ci(0.0, None)).status == "regressed"
    low_side = _row(_m(hib=True), 0.5, 0.2, base_ci=_ci(0.2, 0.9))
    assert low_side.status == "unchanged"
    assert _row(_m(hib=True), 0.5, 0.1999, base_ci=_ci(0.2, 0.9)).status == "regressed"


def test_compare_missing_values():
    """Both undefined: unchanged; only new: 'new'; defined before, undefined now: regressed."""
    m = _m()
    both = _row(m, None, None)
    assert (both.status, both.delta, both.reason) == ("unchanged", None, "")
    only_new = _row(m, None, 0.3)
    assert (only_new.status, only_new.reason) == ("new", "value only in the new run")
    lost = _row(m, 0.3, None)
    assert lost.status == "regressed" and lost.reason.startswith("defined in the baseline")


def test_compare_runs_rows_order_and_status_rows():
    """Rows: base checks in order, then checks only in new; regressions sorted first (stable);
    a newly errored check and a check lost to a skip each add one status row; a check errored
    on both sides adds none; a check only in the new run gives 'new' rows."""
    base = _run([_check("a", metrics=[_m(value=0.5)]), _check("b", metrics=[_m(value=0.5)]),
                 _check("e", status="error", error="old"), _check("s", metrics=[_m(value=0.1)])])
    new = _run([_check("a", metrics=[_m(value=0.4)]), _check("b", status="error", error="boom"),
                _check("e", status="error", error="still"), _check("s", status="skipped",
                                                                     skip_reason="why"),
                _check("n", metrics=[_m(value=0.2, groups={"g": 0.1})])])
    comparison = compare_runs(base, new)
    labels = [(r.label, r.status) for r in comparison.rows]
    assert labels == [("b / (check status)", "regressed"), ("s / (check status)", "regressed"),
                      ("a / m", "improved"), ("n / m", "new"), ("n / m [g]", "new")]
    assert comparison.rows[0].reason == "check errored: boom"
    assert comparison.rows[1].reason == "check skipped: why"
    assert [r.label for r in comparison.regressions] == ["b / (check status)", "s / (check status)"]
    assert comparison.exit_code == 1 and comparison.base_run == "r"
    assert compare_runs(base, base).exit_code == 0
    absent = compare_runs(base, _run([]))
    assert ("a / (check status)", "check absent from the new run") in [
        (r.label, r.reason) for r in absent.rows]
    newly = compare_runs(_run([]), _run([_check("z", status="error", error="x")]))
    assert [(r.label, r.status) for r in newly.rows] == [("z / (check status)", "regressed")]


def test_compare_groups_and_metrics_union():
    """Group rows cover the union of both runs' groups (sorted); a metric only in the baseline
    regresses, one only in the new run is new."""
    base = _run([_check("a", metrics=[_m("x", 0.1, {"b": 0.1, "a": 0.2}), _m("y", 0.3)])])
    new = _run([_check("a", metrics=[_m("x", 0.1, {"a": 0.2, "c": 0.5}), _m("z", 0.3)])])
    rows = {r.label: r.status for r in compare_runs(base, new).rows}
    assert rows == {"a / x": "unchanged", "a / x [a]": "unchanged", "a / x [b]": "regressed",
                    "a / x [c]": "new", "a / y": "regressed", "a / z": "new"}
    order = [r.label for r in compare_runs(base, new).rows]
    assert order == ["a / x [b]", "a / y", "a / x", "a / x [a]", "a / x [c]", "a / z"]


def test_format_table():
    """Only changed rows unless show_all; '-' for missing values; 4 significant digits."""
    comparison = compare_runs(_run([_check("a", metrics=[_m("x", 0.123456), _m("y", 0.5)])]),
                              _run([_check("a", metrics=[_m("x", 0.2), _m("y", 0.5)])]))
    text = format_table(comparison)
    lines = text.splitlines()
    assert lines[0].split() == ["status", "metric", "base", "new", "delta", "note"]
    assert set(lines[1]) == {"-"} and len(lines) == 3
    assert lines[2].split()[:5] == ["regressed", "a", "/", "x", "0.1235"]
    assert "0.2" in lines[2] and "0.07654" in lines[2]
    assert len(format_table(comparison, show_all=True).splitlines()) == 4
    same = compare_runs(_run([_check("a", metrics=[_m("x", 0.1)])]),
                        _run([_check("a", metrics=[_m("x", 0.1)])]))
    assert format_table(same) == "no metric changed beyond the tolerance"
    lost = compare_runs(_run([_check("a", metrics=[_m("x", 0.1)])]),
                        _run([_check("a", metrics=[_m("x", None)])]))
    assert format_table(lost).splitlines()[2].split()[4:7] == ["0.1", "-", "-"]


# ============================================================================ stats.py

def test_percentile_ci_by_hand():
    """Replicates 1..100: numpy's linear quantiles at 2.5% and 97.5% are 3.475 and 97.525
    (hand: position 0.025 * 99 = 2.475 between 3 and 4); NaN replicates are ignored; no finite
    replicate gives an undefined interval; level and method are recorded."""
    reps = np.arange(1, 101, dtype=float)
    ci = percentile_ci(np.r_[reps, np.nan, np.inf])
    assert (ci.low, ci.high) == (pytest.approx(3.475), pytest.approx(97.525))
    assert (ci.level, ci.method) == (0.95, "bootstrap-percentile")
    ninety = percentile_ci(reps, level=0.9, method="m")
    assert (ninety.low, ninety.high, ninety.level, ninety.method) == (
        pytest.approx(5.95), pytest.approx(95.05), 0.9, "m")
    empty = percentile_ci(np.array([np.nan, np.nan]), level=0.8, method="k")
    assert (empty.low, empty.high, empty.level, empty.method) == (None, None, 0.8, "k")


def test_bootstrap_ci_equals_an_explicit_resampling_loop():
    """Reference: a loop drawing the same index rows from an identically seeded generator and
    taking the mean (default) or a given statistic; empty input gives an undefined interval."""
    values = np.array([1.0, 4.0, 2.0, 8.0, 5.0, 7.0])
    idx = np.random.default_rng(3).integers(0, 6, size=(300, 6))
    means = [values[i].mean() for i in idx]
    ci = bootstrap_ci(values, np.random.default_rng(3), n_boot=300)
    assert (ci.low, ci.high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    maxes = [values[i].max() for i in idx]
    ci = bootstrap_ci(values, np.random.default_rng(3), statistic=lambda m: m.max(axis=1),
                      n_boot=300, level=0.5)
    assert (ci.low, ci.high) == pytest.approx(tuple(np.quantile(maxes, [0.25, 0.75])))
    assert ci.level == 0.5
    empty = bootstrap_ci([], np.random.default_rng(0), level=0.9)
    assert (empty.low, empty.high, empty.level) == (None, None, 0.9)


@pytest.mark.parametrize("x,n,level", [(3, 10, 0.95), (0, 12, 0.95), (12, 12, 0.95),
                                       (7, 40, 0.9), (1, 1, 0.99)])
def test_wilson_ci_equals_scipy(x, n, level):
    """Reference: scipy.stats.binomtest(x, n).proportion_ci(method='wilson')."""
    from scipy.stats import binomtest

    ref = binomtest(x, n).proportion_ci(confidence_level=level, method="wilson")
    ci = wilson_ci(x, n, level)
    assert (ci.low, ci.high) == (pytest.approx(ref.low, abs=1e-12), pytest.approx(ref.high, abs=1e-12))
    assert (ci.level, ci.method) == (level, "wilson")
    assert 0.0 <= ci.low <= ci.high <= 1.0


def test_wilson_ci_of_nothing_is_undefined():
    ci = wilson_ci(0, 0, 0.9)
    assert (ci.low, ci.high, ci.level, ci.method) == (None, None, 0.9, "wilson")


# ============================================================================ fairness metrics

def test_rates_by_hand_and_zero_denominators():
    """Counts (tp, fp, fn, tn) = (3, 1, 2, 4): selection 4/10, accuracy 7/10, TPR 3/5, FPR 1/5,
    FNR 2/5, precision 3/4; a group with no positives has undefined TPR/FNR, one with no
    predicted positives undefined precision, an empty group undefined everything but count 0."""
    r = fm.rates(np.array([[3, 1, 2, 4], [0, 2, 0, 3], [0, 0, 1, 1], [0, 0, 0, 0]]))
    np.testing.assert_allclose(r["count"], [10, 5, 2, 0])
    np.testing.assert_allclose(r["selection_rate"], [0.4, 0.4, 0.0, NAN])
    np.testing.assert_allclose(r["accuracy"], [0.7, 0.6, 0.5, NAN])
    np.testing.assert_allclose(r["tpr"], [0.6, NAN, 0.0, NAN])
    np.testing.assert_allclose(r["fpr"], [0.2, 0.4, 0.0, NAN])
    np.testing.assert_allclose(r["fnr"], [0.4, NAN, 1.0, NAN])
    np.testing.assert_allclose(r["precision"], [0.75, 0.0, NAN, NAN])
    np.testing.assert_allclose(fm._div(np.array([1.0, 1.0, 0.0]), np.array([2.0, 0.0, -1.0])),
                               [0.5, NAN, NAN])


def test_confusion_counts_cells_and_empty_groups():
    """Each (label, prediction) pair lands in its cell; a group code with no rows gives zeros."""
    counts = fm.confusion_counts(np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0]),
                                 np.array([2, 2, 2, 2]), 3)
    assert counts.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]


@pytest.mark.parametrize("values,gap,ratio", [
    ([0.2, 0.5, 0.4], 0.3, 0.4), ([0.2, NAN, 0.6], 0.4, 1 / 3), ([0.5, NAN], NAN, NAN),
    ([NAN, NAN], NAN, NAN), ([0.0, 0.0], 0.0, NAN), ([0.0, 0.5], 0.5, 0.0), ([0.7], NAN, NAN)])
def test_gap_and_ratio_by_hand(values, gap, ratio):
    """Max - min and min / max over defined groups; undefined with fewer than two defined
    groups, and the ratio undefined when the max is 0."""
    np.testing.assert_allclose(fm.gap(np.array(values)), gap)
    np.testing.assert_allclose(fm.ratio(np.array(values)), ratio)


def test_gap_and_ratio_per_replicate():
    """Shape [B, G]: one gap / ratio per replicate row."""
    v = np.array([[0.1, 0.3], [0.4, NAN], [0.2, 0.8]])
    np.testing.assert_allclose(fm.gap(v), [0.2, NAN, 0.6])
    np.testing.assert_allclose(fm.ratio(v), [1 / 3, NAN, 0.25])


def test_between_group_by_hand():
    """Equalized odds = the larger of the TPR and FPR gaps (a NaN gap ignored); four-fifths flag
    1 below 0.8, 0 at 0.8, undefined when the ratio is."""
    table = {"selection_rate": np.array([0.4, 0.5]), "tpr": np.array([0.5, 0.9]),
             "fpr": np.array([0.1, 0.2]), "precision": np.array([0.7, 0.6])}
    b = fm.between_group(table)
    assert b["demographic_parity_difference"] == pytest.approx(0.1)
    assert b["demographic_parity_ratio"] == pytest.approx(0.8)
    assert b["equalized_odds_difference"] == pytest.approx(0.4)
    assert b["equal_opportunity_difference"] == pytest.approx(0.4)
    assert b["predictive_parity_difference"] == pytest.approx(0.1)
    assert b["four_fifths_violation"] == 0.0
    table["selection_rate"] = np.array([0.39, 0.5])
    table["tpr"] = np.array([0.5, NAN])
    b = fm.between_group(table)
    assert b["four_fifths_violation"] == 1.0
    assert b["equalized_odds_difference"] == pytest.approx(0.1)
    table["selection_rate"] = np.array([0.0, 0.0])
    assert np.isnan(fm.between_group(table)["four_fifths_violation"])


def test_bootstrap_counts_shapes_and_laws():
    """rows: each replicate has the total count (group sizes vary); stratified: each group keeps
    its size, an empty group stays empty; both equal numpy's multinomial draws made here with
    an identically seeded generator; an all-zero table gives zero replicates."""
    counts = np.array([[5, 3, 2, 10], [0, 0, 0, 0], [1, 4, 4, 1]])
    rows = fm.bootstrap_counts(counts, np.random.default_rng(1), 50)
    ref = np.random.default_rng(1).multinomial(30, counts.ravel() / 30, size=50).reshape(50, 3, 4)
    np.testing.assert_array_equal(rows, ref)
    strat = fm.bootstrap_counts(counts, np.random.default_rng(2), 50, mode="stratified")
    gen = np.random.default_rng(2)
    ref0 = gen.multinomial(20, counts[0] / 20, size=50)
    ref2 = gen.multinomial(10, counts[2] / 10, size=50)
    np.testing.assert_array_equal(strat[:, 0], ref0)
    np.testing.assert_array_equal(strat[:, 2], ref2)
    assert (strat[:, 1] == 0).all() and strat.shape == (50, 3, 4)
    zero = fm.bootstrap_counts(np.zeros((2, 4), int), np.random.default_rng(0), 7)
    assert zero.shape == (7, 2, 4) and not zero.any()


def test_weighted_auc_edge_cases():
    """No positive or no negative row: undefined; weights that drop every negative: undefined;
    hand case with a tie: positives {0.8, 0.5}, negatives {0.5, 0.2}: (1 + 1 + 0.5 + 1) / 4."""
    y = np.array([1, 1, 0, 0])
    s = np.array([0.8, 0.5, 0.5, 0.2])
    assert fm.weighted_auc(y, s)[0] == pytest.approx(0.875)
    assert np.isnan(fm.weighted_auc(np.ones(3), np.arange(3.0))).all()
    assert np.isnan(fm.weighted_auc(np.zeros(3), np.arange(3.0))).all()
    w = np.array([[1, 1, 0, 0], [2, 0, 1, 0], [0, 1, 1, 1]])
    got = fm.weighted_auc(y, s, w)
    assert np.isnan(got[0])
    assert got[1] == pytest.approx(1.0) and got[2] == pytest.approx((0.5 + 1) / 2)


def test_ece_bins_and_weights_by_hand():
    """Bins [k/10, (k+1)/10), 1.0 in the last; ECE = sum_b |sum(y - p)| / n; row weights count
    rows that many times."""
    np.testing.assert_array_equal(fm.ece_bins(np.array([0.0, 0.0999, 0.1, 0.55, 0.99, 1.0]), 10),
                                  [0, 0, 1, 5, 9, 9])
    y, p = np.array([1, 0, 1]), np.array([0.9, 0.95, 0.2])
    # bin 9: (1 - 0.9) + (0 - 0.95) = -0.85; bin 2: 1 - 0.2 = 0.8; (0.85 + 0.8) / 3
    assert fm.weighted_ece(y, p)[0] == pytest.approx(1.65 / 3)
    # weights (2, 0, 1): bin 9: 2 * 0.1 = 0.2; bin 2: 0.8; total 1.0 over 3 rows
    assert fm.weighted_ece(y, p, weights=np.array([[2, 0, 1]]))[0] == pytest.approx(1.0 / 3)
    assert fm.weighted_ece(y, p, n_bins=1)[0] == pytest.approx(abs(2 - 2.05) / 3)


@pytest.mark.parametrize("mode", ["rows", "stratified"])
def test_resample_weights_blocks(mode):
    """Blocks add up to n_boot replicates; each replicate draws n rows (per group n_g rows when
    stratified); a small max_cells splits the work into several blocks without changing the
    laws; the rows mode equals a plain index draw from an identically seeded generator."""
    codes = np.array([0, 0, 0, 1, 1, 2])
    blocks = list(fm.resample_weights(np.random.default_rng(0), 7, codes, mode, max_cells=12))
    assert [b.shape for b in blocks] == [(2, 6), (2, 6), (2, 6), (1, 6)]
    w = np.vstack(blocks)
    assert (w.sum(axis=1) == 6).all()
    if mode == "stratified":
        for g, size in ((0, 3), (1, 2), (2, 1)):
            assert (w[:, codes == g].sum(axis=1) == size).all()
    else:
        one = next(fm.resample_weights(np.random.default_rng(5), 3, codes, mode))
        idx = np.random.default_rng(5).integers(0, 6, size=(3, 6))
        np.testing.assert_array_equal(one, [np.bincount(i, minlength=6) for i in idx])


# ============================================================================ WEAT

def test_associations_and_unit_rows_by_hand():
    """w = (1, 0), A = {(1, 0), (0, 1)}, B = {(-1, 0)}: s = mean(1, 0) - (-1) = 1.5; a zero
    vector has cosine 0 with everything (no NaN); lengths do not matter."""
    s = W.associations(np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 0.0]]),
                       np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[-1.0, 0.0]]))
    np.testing.assert_allclose(s, [1.5, 0.0, 1.5])


def test_effect_size_ddof_and_degenerate_cases():
    """d with ddof=0 on s = {1, 3} vs {0, 0}: population std of {1,3,0,0} = sqrt(1.5), so
    d = 2 / sqrt(1.5); equal values: undefined; one value with ddof 1: undefined."""
    assert W.effect_size(np.array([1.0, 3.0]), np.array([0.0, 0.0]), ddof=0) == pytest.approx(
        2 / math.sqrt(1.5))
    assert math.isnan(W.effect_size(np.array([1.0, 1.0]), np.array([1.0, 1.0])))
    assert math.isnan(W.effect_size(np.array([1.0]), np.array([])))
    assert W.n_partitions(3, 2) == 10 and W.n_partitions(8, 8) == 12870


def test_subset_sums_equal_itertools():
    """Every size-k subset sum, in itertools.combinations order, also across chunk borders."""
    v = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    ref = [sum(v[list(c)]) for c in itertools.combinations(range(5), 2)]
    np.testing.assert_array_equal(W._subset_sums(v, 2), ref)
    np.testing.assert_array_equal(W._subset_sums(v, 2, chunk=3), ref)


def test_p_value_exact_limit_ties_and_sampling():
    """At exactly exact_max partitions the p-value is exact; above it, sampled with the given
    number of draws (deterministic for a seeded generator, default generator otherwise); a
    re-partition tying the observed statistic does not count as more extreme."""
    sx, sy = np.array([2.0, 1.0]), np.array([3.0, 0.0])
    assert W.permutation_p_value(sx, sy, exact_max=6)[1:] == ("exact", 6)
    p, method, n = W.permutation_p_value(sx, sy, np.random.default_rng(0), exact_max=5,
                                         n_samples=4000)
    assert (method, n) == ("sampled", 4000) and p == pytest.approx(2 / 6, abs=0.03)
    assert W.permutation_p_value(sx, sy, exact_max=5, n_samples=50) == \
        W.permutation_p_value(sx, sy, np.random.default_rng(0), exact_max=5, n_samples=50)
    tied = W.permutation_p_value(np.array([1.0, 1.0]), np.array([1.0, 1.0]))
    assert tied == (0.0, "exact", 6)


def test_weat_result_fields():
    """Statistic = sum s(X) - sum s(Y); associations listed; partitions C(4, 2)."""
    x, y = np.array([[1.0, 0.0], [1.0, 0.1]]), np.array([[0.0, 1.0], [0.1, 1.0]])
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    r = W.weat(x, y, a, b, ddof=0)
    sx, sy = W.associations(x, a, b), W.associations(y, a, b)
    assert r.statistic == pytest.approx(sx.sum() - sy.sum())
    assert r.associations_x == pytest.approx(list(sx)) and r.associations_y == pytest.approx(list(sy))
    assert r.effect_size == pytest.approx(W.effect_size(sx, sy, 0))
    assert (r.n_partitions, r.p_method, r.p_value) == (6, "exact", pytest.approx(0.0))


def test_word_vectors_and_reader(tmp_path):
    """Lookup keeps order and lists missing words; an empty lookup has shape (0, dim); the
    reader skips newlines between entries, rejects a bad header and a truncated entry."""
    blob = b"3 2\n" + b"".join(w + b" " + struct.pack("<2f", *v) + b"\n"
                               for w, v in ((b"a", (1, 2)), (b"b", (3, 4)), (b"c", (5, 6))))
    (tmp_path / "v.bin").write_bytes(blob)
    wv = W.read_word2vec_bin(tmp_path / "v.bin")
    assert len(wv) == 3 and "b" in wv and "z" not in wv and wv.dim == 2
    rows, found, missing = wv.lookup(["c", "z", "a"])
    assert found == ["c", "a"] and missing == ["z"] and rows.tolist() == [[5, 6], [1, 2]]
    assert wv.lookup(["z"])[0].shape == (0, 2)
    (tmp_path / "t.bin").write_bytes(blob[:-5])
    with pytest.raises(ValueError, match="truncated at entry 2 of 3"):
        W.read_word2vec_bin(tmp_path / "t.bin")
    (tmp_path / "h.bin").write_bytes(b"x y\n")
    with pytest.raises(ValueError, match="first line"):
        W.read_word2vec_bin(tmp_path / "h.bin")


# ============================================================================ canary exposure

def test_exposure_functions_by_hand():
    """Rank 1 + strictly more likely; exposure log2|R| - log2 rank; empirical exposure over n
    references is log2(n + 1) - log2 rank (7 references, 2 above the canary: 3 - log2 3)."""
    refs = np.array([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -0.5])
    assert ce.exact_rank(-1.5, refs) == 3
    assert ce.exact_rank(-1.0, refs) == 2
    assert ce.exposure_from_rank(4, 64) == 4.0
    assert ce.empirical_exposure(-1.5, refs) == pytest.approx(3 - math.log2(3))
    assert ce.empirical_exposure(0.0, refs) == pytest.approx(3.0)


def test_skewnorm_fit_and_exposure_against_scipy():
    """The fit is of the log-perplexities (-score): scipy's skewnorm.fit on -scores gives the
    same parameters; exposure = -log2 CDF(-score), clipped to [0, log2|R|]."""
    from scipy.stats import skewnorm

    scores = -skewnorm.rvs(3.0, loc=20, scale=4, size=3000, random_state=np.random.default_rng(1))
    params = ce.fit_skewnorm(scores)
    assert params == pytest.approx(tuple(skewnorm.fit(-scores)))
    assert params[0] > 0 and 15 < params[1] < 25
    canary = -14.0
    expected = -skewnorm.logcdf(14.0, *params) / math.log(2)
    assert ce.skewnorm_exposure(canary, params, 2**40) == pytest.approx(expected)
    assert ce.skewnorm_exposure(-1.0, params, 2**10) == 10.0           # clipped at log2 |R|
    assert ce.skewnorm_exposure(-100.0, params, 2**10) == pytest.approx(0.0, abs=1e-12)


# ============================================================================ MIA scoring

def test_attack_scores_edge_cases():
    """Unknown attack and 'reference' without reference log-probs raise; a text without scored
    tokens is undefined (NaN) under every attack; min_k keeps at least one token; reference
    subtracts the reference mean."""
    lp = [np.array([-1.0, -3.0]), np.array([])]
    texts = ["ab", "c"]
    with pytest.raises(ValueError):
        mi.attack_scores(lp, texts, "entropy", 0.2)
    with pytest.raises(ValueError):
        mi.attack_scores(lp, texts, "reference", 0.2)
    for attack in ("loss", "zlib", "min_k"):
        assert np.isnan(mi.attack_scores(lp, texts, attack, 0.2)[1])
    assert mi.attack_scores(lp, texts, "loss", 0.2)[0] == -2.0
    assert mi.attack_scores(lp, texts, "min_k", 0.2)[0] == -3.0          # int(2 * 0.2) = 0 -> 1
    assert mi.attack_scores(lp, texts, "min_k", 1.0)[0] == -2.0
    assert mi.attack_scores(lp, texts, "zlib", 0.2)[0] == -4.0 / len(zlib.compress(b"ab"))
    ref = [np.array([-0.5, -0.5]), np.array([-1.0])]
    out = mi.attack_scores(lp, texts, "reference", 0.2, ref)
    assert out[0] == -1.5 and np.isnan(out[1])
    empty_ref = mi.attack_scores([np.array([-1.0])], ["a"], "reference", 0.2, [np.array([])])
    assert np.isnan(empty_ref[0])


def test_auc_and_tpr_at_fpr_by_hand():
    """Members {3, 2, 2}, non-members {2, 1}: AUC = (1 + 1 + 0.5 + 1 + 0.5 + 1) / 6 = 5/6;
    the ROC goes (0,0) -> (0, 1/3) -> (1/2, 1) -> (1, 1); TPR at FPR 0 is 1/3, at 0.5 is 1."""
    m, n = np.array([3.0, 2.0, 2.0]), np.array([2.0, 1.0])
    assert mi.auc_score(m, n) == pytest.approx(5 / 6)
    fpr, tpr = mi.roc_points(m, n)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 1, 1])
    assert mi.tpr_at_fpr(m, n, 0.0) == pytest.approx(1 / 3)
    assert mi.tpr_at_fpr(m, n, 0.49) == pytest.approx(1 / 3)
    assert mi.tpr_at_fpr(m, n, 0.5) == 1.0


def test_bootstrap_metrics_equals_a_plain_stratified_loop():
    """Reference: members and non-members resampled separately in a loop with an identically
    seeded generator; percentile intervals of AUC and TPR at each FPR level."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    m, n = rng.normal(0.5, 1, 30), rng.normal(0, 1, 25)
    got = mi.bootstrap_metrics(m, n, np.random.default_rng(4), 200)
    gen = np.random.default_rng(4)
    reps = {"auc": [], **{k: [] for k in mi.FPR_LEVELS}}
    for _ in range(200):
        bm, bn = m[gen.integers(0, 30, 30)], n[gen.integers(0, 25, 25)]
        reps["auc"].append(roc_auc_score(np.r_[np.ones(30), np.zeros(25)], np.r_[bm, bn]))
        for key, level in mi.FPR_LEVELS.items():
            reps[key].append(mi.tpr_at_fpr(bm, bn, level))
    assert set(got) == set(reps)
    for key, values in reps.items():
        low, high = np.quantile(values, [0.025, 0.975])
        assert (got[key].low, got[key].high) == (pytest.approx(low), pytest.approx(high)), key


def test_wilson_ci_default_level_is_95_percent():
    """The default level (what every check relies on) is 95%: 5 of 10 gives the hand-checked
    (statsmodels proportion_confint, method='wilson') interval 0.23659-0.76341. Mutation testing
    found a changed default survived every test that passed the level explicitly."""
    ci = wilson_ci(5, 10)
    assert ci.level == 0.95
    assert (ci.low, ci.high) == (pytest.approx(0.2365930905, abs=1e-9),
                                 pytest.approx(0.7634069095, abs=1e-9))
