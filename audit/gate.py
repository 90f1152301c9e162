"""Gates: pure functions from results (+ suite gates) to pass/fail and an exit code.

A gate passes only on evidence: a missing or undefined metric, or a check that errored, was
skipped or is absent from the results, fails every gate placed on it. A check without gates is
``reported`` (its numbers inform, they do not pass). Critical findings are counted and, with
``fail_on=["critical"]``, fail the run like a gate.
"""

from __future__ import annotations

from audit.config import CheckConfig, Gate
from audit.errors import EXIT_CHECK_ERROR, EXIT_GATE_FAILED, EXIT_OK, EXIT_USAGE
from audit.results import CheckResult, GateResult, GateSummary, Metric, RunResult

FAIL_ON = ("critical",)


def _metric_value(metric: Metric | None, group: str | None) -> float | None:
    if metric is None:
        return None
    if group is None:
        return metric.value
    entry = (metric.by_group or {}).get(group)
    return entry.value if entry else None


def _missing_reason(check: CheckResult, metric: Metric | None, group: str | None) -> str:
    if metric is None:
        return "metric not reported"
    if group is not None and group not in (metric.by_group or {}):
        return f"group {group!r} not reported"
    return "value undefined"


def apply_gate(check: CheckResult, gate: Gate) -> GateResult:
    """Evaluate one gate on one check's result; a missing or undefined value fails the gate."""
    op = "max" if gate.max is not None else "min"
    threshold = float(gate.max if gate.max is not None else gate.min)  # type: ignore[arg-type]
    metric = check.metric(gate.metric)
    value = _metric_value(metric, gate.group)
    label = f"{gate.metric}[{gate.group}]" if gate.group else gate.metric
    base = dict(check_id=check.id, metric=gate.metric, op=op, threshold=threshold,
                group=gate.group)
    if check.status in ("error", "skipped"):
        why = check.skip_reason if check.status == "skipped" and check.skip_reason else check.status
        return GateResult(**base, value=None, passed=False,
                          message=f"{label}: check {check.status} ({why}), gate not evaluated")
    if value is None:
        return GateResult(**base, value=None, passed=False,
                          message=f"{label}: {_missing_reason(check, metric, gate.group)}: FAILED")
    passed = value <= threshold if op == "max" else value >= threshold
    sign = "<=" if op == "max" else ">="
    verdict = "ok" if passed else "FAILED"
    return GateResult(**base, value=value, passed=passed,
                      message=f"{label} = {value:.4g} (must be {sign} {threshold:g}): {verdict}")


def gate_check(check: CheckResult, gates: list[Gate]) -> CheckResult:
    """Apply a check's gates and set its status: passed / failed when it has gates, reported
    when it ran without any; error and skipped stay as they are."""
    results = [apply_gate(check, g) for g in gates]
    status = check.status
    if status in ("passed", "failed", "reported"):
        if not results:
            status = "reported"
        else:
            status = "failed" if any(not r.passed for r in results) else "passed"
    return check.model_copy(update={"gates": results, "status": status})


def summarise(checks: list[CheckResult], fail_on: list[str] | tuple[str, ...] = ()) -> GateSummary:
    """Counts by status, gate outcome and finding severity, and the exit code they imply:
    4 when a check failed on bad input (a data file, a parameter), else 2 when a check errored,
    else 1 when a gate failed (or, with ``fail_on=["critical"]``, a critical finding exists),
    else 0."""
    counts = {s: sum(c.status == s for c in checks)
              for s in ("passed", "failed", "reported", "error", "skipped")}
    gates = [g for c in checks for g in c.gates]
    failed_gates = sum(not g.passed for g in gates)
    critical = sum(f.severity == "critical" for c in checks for f in c.findings)
    warning = sum(f.severity == "warning" for c in checks for f in c.findings)
    code = EXIT_OK
    if counts["failed"] or failed_gates or ("critical" in fail_on and critical):
        code = EXIT_GATE_FAILED
    if counts["error"]:
        code = EXIT_CHECK_ERROR
    if any(c.status == "error" and c.error_type == "usage" for c in checks):
        code = EXIT_USAGE
    return GateSummary(checks_passed=counts["passed"], checks_failed=counts["failed"],
                       checks_reported=counts["reported"], checks_error=counts["error"],
                       checks_skipped=counts["skipped"], gates_passed=len(gates) - failed_gates,
                       gates_failed=failed_gates, findings_critical=critical,
                       findings_warning=warning, fail_on=list(fail_on), exit_code=code)


def absent_check(entry: CheckConfig) -> CheckResult:
    """The placeholder for a suite entry that the results do not contain: skipped, so every
    gate placed on it fails."""
    return CheckResult(id=entry.id, check=entry.check, model=entry.model, params=entry.params,
                       status="skipped", skip_reason="not in the results file")


def regate(run: RunResult, entries: list[CheckConfig] | None = None,
           fail_on: list[str] | tuple[str, ...] | None = None) -> RunResult:
    """Re-apply gates to a finished run, from its suite ``entries`` (every entry counts: one
    absent from the results fails its gates) or from the gates it recorded."""
    fail_on = list(run.summary.fail_on if fail_on is None else fail_on)
    checks = list(run.checks)
    if entries is not None:
        present = {c.id for c in checks}
        checks += [absent_check(e) for e in entries if e.id not in present]
    by_id = {e.id: e.gate for e in entries} if entries is not None else None
    out = []
    for check in checks:
        gates = by_id.get(check.id, []) if by_id is not None else [
            Gate(metric=g.metric, group=g.group, **{g.op: g.threshold}) for g in check.gates]
        ran = "passed" if check.status in ("failed", "reported") else check.status
        out.append(gate_check(check.model_copy(update={"status": ran}), gates))
    return run.model_copy(update={"checks": out, "summary": summarise(out, fail_on)})
