"""Gates: pure functions from results (+ suite gates) to pass/fail and an exit code."""

from __future__ import annotations

from audit.config import CheckConfig, Gate
from audit.errors import EXIT_CHECK_ERROR, EXIT_GATE_FAILED, EXIT_OK
from audit.results import CheckResult, GateResult, GateSummary, Metric, RunResult


def _metric_value(metric: Metric | None, group: str | None) -> float | None:
    if metric is None:
        return None
    if group is None:
        return metric.value
    entry = (metric.by_group or {}).get(group)
    return entry.value if entry else None


def apply_gate(check: CheckResult, gate: Gate) -> GateResult:
    """Evaluate one gate on one check's result; a missing or undefined value fails the gate."""
    op = "max" if gate.max is not None else "min"
    threshold = float(gate.max if gate.max is not None else gate.min)  # type: ignore[arg-type]
    metric = check.metric(gate.metric)
    value = _metric_value(metric, gate.group)
    label = f"{gate.metric}[{gate.group}]" if gate.group else gate.metric
    if check.status in ("error", "skipped"):
        return GateResult(check_id=check.id, metric=gate.metric, op=op, threshold=threshold,
                          value=None, passed=False, group=gate.group,
                          message=f"{label}: check {check.status}, gate not evaluated")
    if value is None:
        why = "metric not reported" if metric is None else "value undefined"
        return GateResult(check_id=check.id, metric=gate.metric, op=op, threshold=threshold,
                          value=None, passed=False, group=gate.group, message=f"{label}: {why}")
    passed = value <= threshold if op == "max" else value >= threshold
    sign = "<=" if op == "max" else ">="
    verdict = "ok" if passed else "FAILED"
    return GateResult(check_id=check.id, metric=gate.metric, op=op, threshold=threshold,
                      value=value, passed=passed, group=gate.group,
                      message=f"{label} = {value:.4g} (must be {sign} {threshold:g}): {verdict}")


def gate_check(check: CheckResult, gates: list[Gate]) -> CheckResult:
    """Apply a check's gates and set its status (passed/failed) unless it errored or skipped."""
    results = [apply_gate(check, g) for g in gates]
    status = check.status
    if status in ("passed", "failed"):
        status = "failed" if any(not r.passed for r in results) else "passed"
    return check.model_copy(update={"gates": results, "status": status})


def summarise(checks: list[CheckResult]) -> GateSummary:
    """Counts by status and the exit code: 2 if a check errored, 1 if a gate failed, else 0."""
    counts = {s: sum(c.status == s for c in checks) for s in ("passed", "failed", "error", "skipped")}
    gates = [g for c in checks for g in c.gates]
    failed_gates = sum(not g.passed for g in gates)
    code = EXIT_OK
    if counts["failed"] or any(not g.passed for g in gates):
        code = EXIT_GATE_FAILED
    if counts["error"]:
        code = EXIT_CHECK_ERROR
    return GateSummary(checks_passed=counts["passed"], checks_failed=counts["failed"],
                       checks_error=counts["error"], checks_skipped=counts["skipped"],
                       gates_passed=len(gates) - failed_gates, gates_failed=failed_gates,
                       exit_code=code)


def regate(run: RunResult, entries: list[CheckConfig] | None = None) -> RunResult:
    """Re-apply gates to a finished run (from its suite entries, or the gates it recorded)."""
    by_id = {e.id: e.gate for e in entries} if entries is not None else None
    checks = []
    for check in run.checks:
        gates = by_id.get(check.id, []) if by_id is not None else [
            Gate(metric=g.metric, group=g.group, **{g.op: g.threshold}) for g in check.gates]
        base = check.model_copy(update={"status": "passed" if check.status == "failed" else check.status})
        checks.append(gate_check(base, gates))
    return run.model_copy(update={"checks": checks, "summary": summarise(checks)})
