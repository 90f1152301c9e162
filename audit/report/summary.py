"""The executive summary at the top of ``report.html``: what the audit found, most severe first.

Order (a rank is the position in the list):

1. **Failed gates**, those whose metric could not be computed first (fail-closed: the risk is
   unknown), then by how far the value lies beyond the threshold relative to the larger of the
   two magnitudes, ``|value - threshold| / max(|threshold|, |value|)`` (scale-free).
2. **Critical findings**, in the order of the checks.
3. **Checks that errored** (what they measure is unknown).
4. **Disparities**, at most one per check (its clearest), at most :data:`MAX_DISPARITIES`,
   leaving out metrics already listed as a failed gate:

   - a metric whose name contains ``gap``, ``difference`` or ``disparity`` (any area), compared
     with its value of no disparity (its ``ideal`` when set, else 0), with its own interval;
   - in bias and fairness checks, a by-group metric that has a direction (``higher_is_better``
     or ``ideal``) not itself named as a disparity: the spread between its highest and lowest
     group, each with its interval.
     (Elsewhere by-group values are breakdowns by category, e.g. PII type, not groups of people;
     metrics without a direction, e.g. counts, are descriptive.)

   Disparities in different units (log-probabilities, percentages, rates) cannot be compared by
   size, so they are ordered by size relative to uncertainty: the distance from no disparity in
   standard errors, the standard error taken from the interval's half-width (for a spread,
   ``sqrt(se_high**2 + se_low**2)``). Those whose interval excludes no disparity (for a spread:
   the two groups' intervals do not overlap) come first, then those whose interval includes it,
   then those without an interval. Zero and non-finite values are not disparities.

Sentences are translated templates with ``{placeholders}``; :func:`sentence` splits them into
parts so that check ids, metric and group names and finding texts reach the page as separate,
autoescaped (and redacted) values, never inside translated markup.
"""

from __future__ import annotations

import math
import string
from statistics import NormalDist
from typing import Any

from audit.report.fmt import fmt_ci, fmt_num
from audit.report.i18n import N_, _
from audit.report.redact import redact_value
from audit.results import CheckResult, ConfidenceInterval, GateResult, Metric, RunResult

MAX_GATES = 10
MAX_CRITICAL = 10
MAX_ERRORS = 5
MAX_DISPARITIES = 5
DISPARITY_WORDS = ("gap", "difference", "disparity")
GROUP_AREAS = ("bias", "fairness")

Part = tuple[str, str]  # (kind, text): "t" text, "v" value, "id" identifier, "link" check link


def sentence(template: str, fallback: str, values: dict[str, Part]) -> list[Part]:
    """``template`` (translated) split at its ``{fields}`` into text and value parts; a
    translation whose fields do not match falls back to the English ``fallback``."""
    try:
        return _split(template, values)
    except (KeyError, ValueError, IndexError):
        return _split(fallback, values)


def _split(template: str, values: dict[str, Part]) -> list[Part]:
    parts: list[Part] = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        if literal:
            parts.append(("t", literal))
        if field is not None:
            parts.append(values[field])
    return parts


def _say(msgid: str, **values: Part) -> list[Part]:
    """A sentence in the current language (English when its translation is malformed)."""
    return sentence(_(msgid), msgid, values)


def executive_summary(run: RunResult, show_pii: bool = False) -> dict[str, Any]:
    """The ranked entries (each ``{kind, badge, badge_class, parts, anchor}``) and notes."""
    anchors = {id(c): f"check-{i + 1}" for i, c in enumerate(run.checks)}
    gates = failed_gate_entries(run, anchors)
    critical = critical_entries(run.checks, anchors, show_pii)
    errors = error_entries(run.checks, anchors)
    disparities = disparity_entries(run.checks, anchors)
    notes = []
    for n, limit, msg in [(len(gates), MAX_GATES, N_("{n} more failed gates: see the "
                                                      "scorecard.")),
                          (len(critical), MAX_CRITICAL, N_("{n} more critical findings: see the "
                                                           "checks' findings.")),
                          (len(errors), MAX_ERRORS, N_("{n} more checks errored: see the checks "
                                                       "at a glance."))]:
        if n > limit:
            notes.append(_(msg).format(n=n - limit))
    entries = gates[:MAX_GATES] + critical[:MAX_CRITICAL] + errors[:MAX_ERRORS] + disparities
    return {"entries": entries, "notes": notes,
            "empty": "" if entries else _("Nothing to rank: no gate failed, no finding is "
                                          "critical, no check errored and no disparity metric "
                                          "was reported.")}


def _entry(kind: str, badge: str, cls: str, parts: list[Part], anchor: str) -> dict[str, Any]:
    return {"kind": kind, "badge": badge, "badge_class": cls, "parts": parts, "anchor": anchor}


def _check_link(check: CheckResult) -> Part:
    return ("link", check.id)


def _with_ci(value: str, ci: ConfidenceInterval | None, unit: str | None = None,
             nested: bool = False) -> str:
    """``value (95% CI [low, high])`` (``value, 95% CI [low, high]`` when ``nested`` inside
    parentheses already), or just ``value`` when there is no interval. Numbers only."""
    if ci is None or ci.low is None or ci.high is None:
        return value
    level, interval = f"{fmt_num(round(ci.level * 100, 2))}%", fmt_ci(ci, unit)
    msg = _("{value}, {level} CI {interval}") if nested else _("{value} ({level} CI {interval})")
    return msg.format(value=value, level=level, interval=interval)


def failed_gate_entries(run: RunResult, anchors: dict[int, str]) -> list[dict[str, Any]]:
    """Failed gates, uncomputable ones first, then by relative excess over the threshold."""
    failed = [(c, g) for c in run.checks for g in c.gates if not g.passed]
    failed.sort(key=lambda cg: -_excess(cg[1]))
    return [_gate_entry(c, g, anchors[id(c)]) for c, g in failed]


def _excess(gate: GateResult) -> float:
    """How far a failed gate's value lies beyond its threshold, scale-free (inf when unknown)."""
    v = gate.value
    if v is None or not math.isfinite(v):
        return math.inf
    return abs(v - gate.threshold) / max(abs(gate.threshold), abs(v), 1e-12)


def _gate_entry(check: CheckResult, gate: GateResult, anchor: str) -> dict[str, Any]:
    metric = check.metric(gate.metric)
    unit = metric.unit if metric else None
    name = gate.metric + (f" [{gate.group}]" if gate.group else "")
    common = {"metric": ("id", name), "check": _check_link(check)}
    if gate.value is None:
        parts = _say(N_("{metric} in {check} could not be computed, so its gate fails "
                        "(fail-closed)."), **common)
    else:
        gv = (metric.by_group or {}).get(gate.group) if metric and gate.group else None
        ci = gv.ci if gv is not None else (metric.ci if metric and not gate.group else None)
        value = ("v", _with_ci(fmt_num(gate.value, unit), ci, unit))
        threshold = ("v", fmt_num(gate.threshold))
        msg = (N_("{metric} in {check} is {value}, above the maximum of {threshold}.")
               if gate.op == "max" else
               N_("{metric} in {check} is {value}, below the minimum of {threshold}."))
        parts = _say(msg, value=value, threshold=threshold, **common)
    return _entry("gate", _("gate failed"), "fail", parts, anchor)


def critical_entries(checks: list[CheckResult], anchors: dict[int, str],
                     show_pii: bool) -> list[dict[str, Any]]:
    """Critical findings in check order, their text redacted unless ``show_pii``."""
    return [_entry("critical", _("critical"), "critical",
                   _say(N_("Critical finding in {check}: {message}"), check=_check_link(c),
                        message=("t", str(redact_value(f.message, show_pii)))),
                   anchors[id(c)])
            for c in checks for f in c.findings if f.severity == "critical"]


def error_entries(checks: list[CheckResult], anchors: dict[int, str]) -> list[dict[str, Any]]:
    """Checks that errored: what they measure is unknown."""
    return [_entry("error", _("error"), "error",
                   _say(N_("{check} did not finish (error), so what it measures is unknown."),
                        check=_check_link(c)), anchors[id(c)])
            for c in checks if c.status == "error"]


# ---- disparities -------------------------------------------------------------------------


def is_disparity_name(name: str) -> bool:
    """A metric named as a disparity: its name contains gap, difference or disparity."""
    low = name.lower()
    return any(word in low for word in DISPARITY_WORDS)


def _se(ci: ConfidenceInterval | None) -> float | None:
    """Standard error implied by an interval's half-width (normal approximation)."""
    if ci is None or ci.low is None or ci.high is None or not 0 < ci.level < 1:
        return None
    if not (math.isfinite(ci.low) and math.isfinite(ci.high)):
        return None
    return (ci.high - ci.low) / 2 / NormalDist().inv_cdf(0.5 + ci.level / 2)


def _z(size: float, se: float | None) -> float:
    """Size in standard errors (inf for a zero-width interval; 0 when there is no interval)."""
    if se is None:
        return 0.0
    return math.inf if se <= 0 else size / se


def named_disparity(check: CheckResult, metric: Metric) -> dict[str, Any] | None:
    """A gap/difference/disparity metric as a candidate, or None when it is not one."""
    v = metric.value
    if not is_disparity_name(metric.name) or v is None or not math.isfinite(v):
        return None
    ref = metric.ideal if metric.ideal is not None else 0.0
    if v == ref:
        return None
    ci, se = metric.ci, _se(metric.ci)
    clear = se is not None and (ci.low > ref or ci.high < ref)  # type: ignore[union-attr,operator]
    tier = 0 if clear else (1 if se is not None else 2)
    value = ("v", _with_ci(fmt_num(v, metric.unit), ci, metric.unit))
    msg = [N_("{metric} in {check} is {value}: the interval excludes {ref}, the value of no "
              "disparity."),
           N_("{metric} in {check} is {value}: the interval includes {ref}, the value of no "
              "disparity, so the data do not settle it."),
           N_("{metric} in {check} is {value} (no confidence interval; {ref} means no "
              "disparity).")][tier]
    parts = _say(msg, metric=("id", metric.name), check=_check_link(check), value=value,
                 ref=("v", fmt_num(ref)))
    return {"tier": tier, "z": _z(abs(v - ref), se), "parts": parts, "clear": clear}


def group_spread(check: CheckResult, metric: Metric) -> dict[str, Any] | None:
    """The spread between the highest and lowest group of a directed by-group metric in a bias
    or fairness check, as a candidate; None when it does not qualify."""
    from audit.report.view import area_of

    if area_of(check) not in GROUP_AREAS or not metric.by_group or is_disparity_name(metric.name):
        return None  # a named disparity is reported as itself; its groups are its parts
    if metric.higher_is_better is None and metric.ideal is None:
        return None
    groups = [(g, gv) for g, gv in metric.by_group.items()
              if gv.value is not None and math.isfinite(gv.value)]
    if len(groups) < 2:
        return None
    (hi_name, hi), (lo_name, lo) = max(groups, key=lambda x: x[1].value), \
        min(groups, key=lambda x: x[1].value)
    diff = hi.value - lo.value  # type: ignore[operator]
    if diff == 0:
        return None
    se_hi, se_lo = _se(hi.ci), _se(lo.ci)
    se = math.hypot(se_hi, se_lo) if se_hi is not None and se_lo is not None else None
    clear = se is not None and lo.ci.high < hi.ci.low  # type: ignore[union-attr,operator]
    tier = 0 if clear else (1 if se is not None else 2)
    msg = [N_("{metric} in {check} is highest for {high} ({high_value}) and lowest for {low} "
              "({low_value}), a difference of {diff}; the two intervals do not overlap."),
           N_("{metric} in {check} is highest for {high} ({high_value}) and lowest for {low} "
              "({low_value}), a difference of {diff}; the two intervals overlap, so the data "
              "do not settle it."),
           N_("{metric} in {check} is highest for {high} ({high_value}) and lowest for {low} "
              "({low_value}), a difference of {diff} (no confidence intervals).")][tier]
    u = metric.unit
    parts = _say(msg, metric=("id", metric.name), check=_check_link(check),
                 high=("id", hi_name), low=("id", lo_name),
                 high_value=("v", _with_ci(fmt_num(hi.value, u), hi.ci, u, nested=True)),
                 low_value=("v", _with_ci(fmt_num(lo.value, u), lo.ci, u, nested=True)),
                 diff=("v", fmt_num(diff, u)))
    return {"tier": tier, "z": _z(diff, se), "parts": parts, "clear": clear}


def _rank_key(cand: dict[str, Any]) -> tuple[int, float]:
    return cand["tier"], -cand["z"]


def disparity_entries(checks: list[CheckResult],
                      anchors: dict[int, str]) -> list[dict[str, Any]]:
    """The clearest disparity of each check, best first, at most MAX_DISPARITIES."""
    best = []
    for order, c in enumerate(checks):
        if c.status in ("error", "skipped"):
            continue
        gated = {g.metric for g in c.gates if not g.passed and g.group is None}
        cands = [x for m in c.metrics if m.name not in gated  # already listed as a failed gate
                 for x in (named_disparity(c, m), group_spread(c, m)) if x]
        if cands:
            top = min(cands, key=_rank_key)
            best.append((_rank_key(top), order, top, c))
    best.sort(key=lambda t: (t[0], t[1]))
    return [_entry("disparity", _("disparity"), "warning" if top["clear"] else "info",
                   top["parts"], anchors[id(c)]) for _key, _order, top, c in best[:MAX_DISPARITIES]]
