"""Compare two runs metric by metric (and group by group), direction- and interval-aware.

A metric regresses when it moved in the bad direction by more than ``tolerance`` AND the new
value lies outside the baseline's confidence interval (when the baseline has one): a change that
the baseline's own uncertainty explains is noise, not a regression.

When both runs carry per-item records (``items.jsonl.gz``) and the check declares how a metric
follows from its items (a mean of per-item values), that metric is compared on the paired items
instead (``audit.paired``: McNemar's exact test for binary outcomes, a paired bootstrap for
continuous ones): it regresses when it got worse by more than ``tolerance`` AND the paired test
is significant at ``alpha``; noise alone is not flagged, and a change the interval rule misses
is found.

Lost evidence is a regression too (fail closed): a check that ran in the baseline but is absent,
errored or skipped in the new run; a metric or group value defined in the baseline but absent or
undefined in the new run. Regressions are listed first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

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
    paired: Any = None  # audit.paired.PairedResult when the row was decided on paired items

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
    alpha: float = 0.05
    paired_checks: list[str] = field(default_factory=list)

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


def decide_paired(row: ComparisonRow, metric: Metric, result: Any, tolerance: float,
                  alpha: float) -> ComparisonRow:
    """Re-decide a metric's overall row on paired items: worse by more than ``tolerance`` and
    significant at ``alpha`` -> regressed; better likewise -> improved; else unchanged."""
    row.paired = result
    bad_base, bad_new = _badness(result.base, metric), _badness(result.new, metric)
    sig = result.p_value < alpha
    note = f"{result.test}, {result.n_pairs} paired items, p={result.p_value:.3g}"
    if result.discordant:
        note += f", discordant {result.discordant['1->0']} lost / {result.discordant['0->1']} gained"
    if bad_base is None or bad_new is None:
        row.status = "changed" if sig and abs(result.delta) > tolerance else "unchanged"
    elif bad_new - bad_base > tolerance and sig:
        row.status = "regressed"
    elif bad_base - bad_new > tolerance and sig:
        row.status = "improved"
    else:
        row.status = "unchanged"
        note += "; not significant" if not sig else "; within tolerance"
    row.reason = note
    return row


def _metric_rows(check_id: str, base: Metric | None, new: Metric | None, tolerance: float,
                 paired: Any = None, alpha: float = 0.05) -> list[ComparisonRow]:
    ref = new or base
    assert ref is not None
    rows = [compare_values(check_id, ref, None, base.value if base else None,
                           new.value if new else None, base.ci if base else None,
                           new.ci if new else None, tolerance)]
    if paired is not None and rows[0].base is not None and rows[0].new is not None:
        decide_paired(rows[0], ref, paired, tolerance, alpha)
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


def _check_rows(base: CheckResult | None, new: CheckResult | None, tolerance: float,
                paired: dict[str, Any] | None = None, alpha: float = 0.05) -> list[ComparisonRow]:
    cid = (new or base).id  # type: ignore[union-attr]
    paired = paired or {}
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
                                 new.metric(name) if new else None, tolerance,
                                 paired.get(name), alpha))
    return rows


def paired_results(base: CheckResult | None, new: CheckResult | None,
                   base_items: dict[str, list[dict[str, Any]]],
                   new_items: dict[str, list[dict[str, Any]]], seed: int = 0) -> dict[str, Any]:
    """Metric name -> paired result for a check both runs ran and both have items for."""
    if base is None or new is None or base.check != new.check:
        return {}
    if base.id not in base_items or new.id not in new_items:
        return {}
    from audit.paired import compare_paired
    from audit.registry import get_check
    from audit.runtime import stable_seed

    try:
        declared = get_check(new.check).item_metrics
    except KeyError:
        return {}
    out = {}
    for name, metric in declared.items():
        rng = np.random.default_rng(stable_seed(seed, new.id, name))
        result = compare_paired(metric, base_items[base.id], new_items[new.id], rng)
        if result is not None:
            out[name] = result
    return out


def compare_runs(base: RunResult, new: RunResult, tolerance: float = 0.0,
                 base_items: dict[str, list[dict[str, Any]]] | None = None,
                 new_items: dict[str, list[dict[str, Any]]] | None = None,
                 alpha: float = 0.05) -> Comparison:
    """Compare every check and metric of two runs (on paired items where both have them)."""
    comparison = Comparison(base.run_id, new.run_id, tolerance, alpha=alpha)
    ids = [c.id for c in base.checks] + [c.id for c in new.checks if base.check(c.id) is None]
    rows = []
    for cid in ids:
        paired = paired_results(base.check(cid), new.check(cid), base_items or {}, new_items or {})
        if paired:
            comparison.paired_checks.append(cid)
        rows += _check_rows(base.check(cid), new.check(cid), tolerance, paired, alpha)
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
