"""Compare two runs metric by metric (and group by group), direction- and interval-aware.

A metric regresses when it moved in the bad direction by more than ``tolerance`` AND the new
value lies outside the baseline's confidence interval (when the baseline has one): a change that
the baseline's own uncertainty explains is noise, not a regression.

Lost evidence is a regression too (fail closed): a check that ran in the baseline but is absent,
errored or skipped in the new run; a metric or group value defined in the baseline but absent or
undefined in the new run. Regressions are listed first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from audit.results import CheckResult, ConfidenceInterval, Metric, RunResult

RowStatus = Literal["regressed", "improved", "unchanged", "new", "changed"]


@dataclass
class ComparisonRow:
    """One metric (or one group's value of it) in base and new."""

    check_id: str
    metric: str
    group: str | None
    base: float | None
    new: float | None
    base_ci: ConfidenceInterval | None
    new_ci: ConfidenceInterval | None
    delta: float | None
    direction: str
    status: RowStatus
    reason: str = ""

    @property
    def label(self) -> str:
        """``check_id / metric [group]``."""
        group = f" [{self.group}]" if self.group else ""
        return f"{self.check_id} / {self.metric}{group}"


@dataclass
class Comparison:
    """All rows; ``regressions`` is what fails CI."""

    base_run: str
    new_run: str
    tolerance: float
    rows: list[ComparisonRow] = field(default_factory=list)

    @property
    def regressions(self) -> list[ComparisonRow]:
        """Rows that regressed."""
        return [r for r in self.rows if r.status == "regressed"]

    @property
    def exit_code(self) -> int:
        """1 when anything regressed, else 0."""
        return 1 if self.regressions else 0


def _direction(metric: Metric) -> str:
    if metric.higher_is_better is True:
        return "higher"
    if metric.higher_is_better is False:
        return "lower"
    if metric.ideal is not None:
        return f"closer to {metric.ideal:g}"
    return "none"


def _badness(value: float, metric: Metric) -> float | None:
    """A number that grows as the metric gets worse (None when the metric has no direction)."""
    if metric.higher_is_better is True:
        return -value
    if metric.higher_is_better is False:
        return value
    if metric.ideal is not None:
        return abs(value - metric.ideal)
    return None


def _outside(value: float, ci: ConfidenceInterval | None) -> bool:
    if ci is None or ci.low is None or ci.high is None:
        return True
    return value < ci.low or value > ci.high


def compare_values(check_id: str, metric: Metric, group: str | None, base: float | None,
                   new: float | None, base_ci: ConfidenceInterval | None,
                   new_ci: ConfidenceInterval | None, tolerance: float) -> ComparisonRow:
    """Classify one value pair (see the module docstring for the rule)."""
    row = ComparisonRow(check_id, metric.name, group, base, new, base_ci, new_ci,
                        None if base is None or new is None else new - base,
                        _direction(metric), "unchanged")
    if base is None and new is None:
        return row
    if base is None:
        row.status, row.reason = "new", "value only in the new run"
        return row
    if new is None:
        row.status, row.reason = "regressed", "defined in the baseline, absent or undefined now"
        return row
    bad_base, bad_new = _badness(base, metric), _badness(new, metric)
    if bad_base is None or bad_new is None:
        row.status = "changed" if abs(new - base) > tolerance else "unchanged"
        return row
    worse_by = bad_new - bad_base
    if worse_by > tolerance and _outside(new, base_ci):
        row.status, row.reason = "regressed", f"worse by {worse_by:.4g} (> {tolerance:g}) and outside the baseline CI"
    elif worse_by > tolerance:
        row.reason = "worse, but inside the baseline's confidence interval"
    elif -worse_by > tolerance:
        row.status = "improved"
    return row


def _metric_rows(check_id: str, base: Metric | None, new: Metric | None,
                 tolerance: float) -> list[ComparisonRow]:
    ref = new or base
    assert ref is not None
    rows = [compare_values(check_id, ref, None, base.value if base else None,
                           new.value if new else None, base.ci if base else None,
                           new.ci if new else None, tolerance)]
    groups = sorted(set((base.by_group or {}) if base else {}) | set((new.by_group or {}) if new else {}))
    for group in groups:
        b = (base.by_group or {}).get(group) if base else None
        n = (new.by_group or {}).get(group) if new else None
        rows.append(compare_values(check_id, ref, group, b.value if b else None,
                                   n.value if n else None, b.ci if b else None,
                                   n.ci if n else None, tolerance))
    return rows


RAN = ("passed", "failed", "reported")


def _status_row(base: CheckResult | None, new: CheckResult | None) -> ComparisonRow | None:
    """A regression row when the new run lost a check the baseline ran (absent, errored or
    skipped), or a check errored that did not before."""
    cid = (new or base).id  # type: ignore[union-attr]
    lost = base is not None and base.status in RAN and (new is None or new.status not in RAN)
    newly_errored = new is not None and new.status == "error" and (base is None or base.status != "error")
    if not (lost or newly_errored):
        return None
    if new is None:
        why = "check absent from the new run"
    elif new.status == "error":
        why = f"check errored: {new.error}"
    else:
        why = f"check skipped: {new.skip_reason}"
    return ComparisonRow(cid, "(check status)", None, None, None, None, None, None, "none",
                         "regressed", why)


def _check_rows(base: CheckResult | None, new: CheckResult | None, tolerance: float) -> list[ComparisonRow]:
    cid = (new or base).id  # type: ignore[union-attr]
    rows: list[ComparisonRow] = []
    status = _status_row(base, new)
    if status is not None:
        rows.append(status)
    if new is not None and new.status not in RAN:
        return rows  # no new evidence: the status row says so; per-metric rows would only repeat it
    names = [m.name for m in (base.metrics if base else [])]
    names += [m.name for m in (new.metrics if new else []) if m.name not in names]
    for name in names:
        rows.extend(_metric_rows(cid, base.metric(name) if base else None,
                                 new.metric(name) if new else None, tolerance))
    return rows


def compare_runs(base: RunResult, new: RunResult, tolerance: float = 0.0) -> Comparison:
    """Compare every check and metric of two runs."""
    comparison = Comparison(base.run_id, new.run_id, tolerance)
    ids = [c.id for c in base.checks] + [c.id for c in new.checks if base.check(c.id) is None]
    rows = [r for cid in ids for r in _check_rows(base.check(cid), new.check(cid), tolerance)]
    comparison.rows = sorted(rows, key=lambda r: r.status != "regressed")  # stable: regressions first
    return comparison


def format_table(comparison: Comparison, show_all: bool = False) -> str:
    """A plain-text table of the rows (only changes unless ``show_all``)."""
    rows = [r for r in comparison.rows if show_all or r.status != "unchanged"]
    if not rows:
        return "no metric changed beyond the tolerance"
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    header = f"{'status':<10} {'metric':<60} {'base':>10} {'new':>10} {'delta':>10}  note"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.status:<10} {r.label[:60]:<60} {fmt(r.base):>10} {fmt(r.new):>10} "
                     f"{fmt(r.delta):>10}  {r.reason}")
    return "\n".join(lines)
