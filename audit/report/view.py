"""View models: everything the report template shows, computed from a RunResult.

The templates only display; all choices (formatting, ordering, redaction, truncation, chart
drawing) happen here, so rendering is a pure function of the results.
"""

from __future__ import annotations

from typing import Any

from audit.report import figures
from audit.report.fmt import DASH, ci_note, direction, fmt_ci, fmt_num, fmt_value
from audit.report.i18n import N_, _, unit
from audit.report.redact import redact_value
from audit.report.summary import executive_summary
from audit.results import CheckResult, GateResult, Metric, RunResult

# Titles and intros are message ids (translated where shown, see audit.report.i18n).
AREAS: list[tuple[str, str, str]] = [
    ("bias", N_("Bias"), N_("Associations and preferences in the model that mirror social "
                            "stereotypes.")),
    ("fairness", N_("Fairness"), N_("Differences in the model's decisions and errors between "
                                    "groups.")),
    ("privacy", N_("Privacy"), N_("What the model memorised and may leak, and formal "
                                  "differential-privacy (DP) guarantees.")),
    ("explain", N_("Explainability"), N_("Which inputs the outputs depend on, and how faithful "
                                         "the explanations are.")),
]
LE, GE = "\u2264", "\u2265"
MAX_EVIDENCE_ROWS = 20
MAX_GROUP_ROWS = 100
MAX_EVIDENCE_COLS = 10
MAX_CELL_CHARS = 240
DATA_KEYS = {"data", "path", "dataset", "probes", "file", "train", "test", "canaries",
             "members", "nonmembers", "control", "prompts", "corpus", "texts", "word_lists",
             "weat", "ledger"}


def area_of(check: CheckResult) -> str:
    """The check's area, from the result or else from the registry (a check no longer known,
    e.g. a plugin not installed here, is "other")."""
    if check.area:
        return check.area
    from audit.registry import get_check

    try:
        return get_check(check.check).area
    except KeyError:
        return "other"


def build_report_view(run: RunResult, show_pii: bool = False) -> dict[str, Any]:
    """The complete view model of ``report.html``."""
    anchors: dict[str, str] = {}
    for i, c in enumerate(run.checks):
        anchors.setdefault(c.id, f"check-{i + 1}")
    checks = [check_view(c, f"check-{i + 1}", show_pii) for i, c in enumerate(run.checks)]
    _link_repeated_cards(run.checks, checks)
    return {
        "title": _("Audit report: {suite}").format(suite=run.suite.name),
        "run": run_view(run),
        "verdict": verdict(run),
        "summary": executive_summary(run, show_pii),
        "counts": counts_view(run),
        "gates": [gate_row(g, run, anchors) for c in run.checks for g in c.gates],
        "glance": [glance_row(c, anchors[c.id]) for c in run.checks],
        "models": [model_view(m) for m in run.models.values()],
        "data": data_rows(run, anchors),
        "areas": areas_view(run.checks, checks),
        "repro": repro_view(run),
        "show_pii": show_pii,
        "synthetic": run.synthetic,
        "notices": notices(run),
        "energy": energy_view(run),
        **lang_view(),
    }


def notices(run: RunResult) -> list[str]:
    """Banners about the run itself: reused results, redaction that fell back to regex only."""
    from audit.report.redact import FALLBACKS

    out = []
    reused = [c.id for c in run.checks if c.reused]
    if reused:
        out.append(_("{n} check result(s) reused from an earlier run with identical inputs "
                     "(--resume): {ids}.").format(n=len(reused), ids=", ".join(reused)))
    out += list(FALLBACKS)
    return out


def lang_view() -> dict[str, str]:
    """The page's language attribute and, outside English, a note on what stays in English."""
    from audit.report.i18n import HTML_LANG, current

    note = "" if current() == "en" else _(
        "Headings, labels and verdicts are translated; method cards, findings, metric "
        "descriptions and evidence come from results.json and stay in English.")
    return {"html_lang": HTML_LANG[current()], "lang_note": note}


def _link_repeated_cards(results: list[CheckResult], views: list[dict[str, Any]]) -> None:
    """Show a method card in full once; later checks with the same card link to the first."""
    first: dict[str, dict[str, Any]] = {}
    for result, view in zip(results, views):
        key = result.method.model_dump_json() if result.method else ""
        if key and key in first:
            view["card"], view["purpose"] = [], ""
            view["card_ref"] = {"anchor": first[key]["anchor"], "id": first[key]["id"]}
        elif key:
            first[key] = view


def run_view(run: RunResult) -> dict[str, str]:
    """Run identity: id, date, seed and suite."""
    return {"run_id": run.run_id, "created_at": run.created_at, "seed": str(run.seed),
            "suite": run.suite.name, "suite_description": run.suite.description,
            "suite_path": run.suite.path or DASH, "suite_sha256": run.suite.sha256 or DASH,
            "device": run.provenance.device, "schema": run.schema_version}


def summary_of(run: RunResult) -> Any:
    """The gate summary recounted from the checks (``audit.gate.summarise``), so the verdict
    always agrees with the scorecard even if the stored summary is stale."""
    from audit.gate import summarise

    return summarise(run.checks, run.summary.fail_on)


def verdict(run: RunResult) -> dict[str, str]:
    """One-line outcome and its CSS class, from the recounted summary's exit code."""
    s = summary_of(run)
    texts = {0: ("pass", _("All gates passed")), 1: ("fail", _("At least one gate failed")),
             2: ("error", _("At least one check errored")),
             4: ("error", _("A check could not run on its input (bad data or parameters)"))}
    cls, text = texts.get(s.exit_code, ("error", _("Exit code {code}").format(code=s.exit_code)))
    if s.exit_code == 1 and not s.gates_failed and s.findings_critical:
        text = _("A critical finding failed the run (--fail-on critical)")
    if s.exit_code == 0 and s.gates_passed + s.gates_failed == 0:
        cls, text = "none", _("No gates defined: nothing was passed or failed; read the findings")
    if s.exit_code == 0 and s.findings_critical:
        text += "; " + _("{n} critical finding(s)").format(n=s.findings_critical)
    stale = s != run.summary
    return {"class": cls, "text": text, "exit_code": str(s.exit_code),
            "stale": _("The summary stored in results.json differs from its checks (edited or "
                       "merged file?); the counts here are recounted from the checks.")
            if stale else ""}


def counts_view(run: RunResult) -> list[dict[str, str]]:
    """Counts of checks by status and gates by outcome."""
    s = summary_of(run)
    return [{"label": label, "value": str(value), "class": cls} for label, value, cls in [
        (_("checks passed"), s.checks_passed, "pass"), (_("checks failed"), s.checks_failed, "fail"),
        (_("checks reported (no gate)"), s.checks_reported, "skip"),
        (_("checks errored"), s.checks_error, "error"),
        (_("checks skipped"), s.checks_skipped, "skip"),
        (_("gates passed"), s.gates_passed, "pass"), (_("gates failed"), s.gates_failed, "fail"),
        (_("critical findings"), s.findings_critical, "fail" if s.findings_critical else "pass")]]


def gate_row(gate: GateResult, run: RunResult, anchors: dict[str, str]) -> dict[str, Any]:
    """One scorecard row: check, metric, threshold, value, CI and pass/fail."""
    check = run.check(gate.check_id)
    metric = check.metric(gate.metric) if check else None
    ci, unit = None, metric.unit if metric else None
    if metric is not None:
        gv = (metric.by_group or {}).get(gate.group) if gate.group else None
        ci = gv.ci if gv is not None else (metric.ci if not gate.group else None)
    return {"check_id": gate.check_id, "anchor": anchors.get(gate.check_id, ""),
            "metric": gate.metric, "group": gate.group or "",
            "threshold": f"{LE if gate.op == 'max' else GE} {fmt_num(gate.threshold)}",
            "value": fmt_num(gate.value, unit), "ci": fmt_ci(ci), "ci_note": ci_note(ci),
            "passed": gate.passed, "note": "" if gate.value is not None else gate.message,
            "spans": _ci_spans(ci, gate.threshold)}


def _ci_spans(ci: Any, threshold: float) -> bool:
    """True when the interval contains the threshold: the gate's outcome is not settled."""
    return bool(ci is not None and ci.low is not None and ci.high is not None
                and ci.low <= threshold <= ci.high)


def glance_row(check: CheckResult, anchor: str) -> dict[str, str]:
    """One row of the checks-at-a-glance table."""
    gated = [check.metric(g.metric) for g in check.gates if g.group is None]
    first = next((m for m in gated if m is not None), check.metrics[0] if check.metrics else None)
    headline = f"{first.name} = {fmt_num(first.value, first.unit)}" if first else DASH
    return {"id": check.id, "anchor": anchor, "check": check.check, "area": area_of(check),
            "status": check.status, "headline": headline, "reused": check.reused,
            "critical": sum(f.severity == "critical" for f in check.findings),
            "duration": f"{check.duration_s:.1f} {unit('s')}"}


def model_view(model: Any) -> dict[str, Any]:
    """A model's identity: alias, source, adapter, kind, file hashes and details."""
    return {"alias": model.alias, "source": model.source, "adapter": model.adapter,
            "kind": model.kind, "files": sorted(model.files.items()),
            "details": [(k, fmt_value(v, 200)) for k, v in sorted(model.details.items())]}


def data_rows(run: RunResult, anchors: dict[str, str]) -> list[dict[str, str]]:
    """Data each check read, taken from its parameters (paths, probe sets, datasets)."""
    rows = []
    for c in run.checks:
        for key, value in c.params.items():
            if key in DATA_KEYS or key.endswith(("_path", "_file", "_data", "_dataset")):
                rows.append({"check_id": c.id, "anchor": anchors[c.id], "param": key,
                             "value": fmt_value(value, 300)})
    return rows


def repro_view(run: RunResult) -> dict[str, Any]:
    """What is needed to reproduce the run: command, seed, versions and hashes."""
    p = run.provenance
    command = p.command or f"audit run {run.suite.path or run.suite.name} --seed {run.seed}"
    return {"command": command, "seed": str(run.seed), "audit_version": p.audit_version,
            "python": p.python, "platform": p.platform, "device": p.device,
            "git_commit": p.git_commit or DASH, "suite_sha256": run.suite.sha256 or DASH,
            "packages": sorted(p.packages.items()),
            "model_hashes": [(m.alias, name, digest) for m in run.models.values()
                             for name, digest in sorted(m.files.items())]}


def energy_view(run: RunResult) -> dict[str, Any] | None:
    """The run's measured energy and CO2e (codecarbon), or None when nothing was measured.
    CO2e is shown only when a grid country was given; otherwise the page says why it is absent."""
    env = run.environment
    if env is None:
        return None
    if env.energy_kwh is None:
        return {"rows": [], "note": env.note or _("Energy was not measured."), "method": env.method,
                "per_check": []}
    co2 = (f"{env.co2e_kg * 1000:.3g} g CO2e ({env.country_iso_code})" if env.co2e_kg is not None
           else _("not computed: no grid country given (audit run --country ISO3)"))
    rows = [(_("energy"), f"{env.energy_kwh * 1000:.3g} Wh"),
            (_("duration"), f"{env.duration_s or 0:.1f} {unit('s')}"),
            (_("emissions"), co2), (_("CPU"), env.cpu_model or DASH)]
    if env.gpu_model:
        rows.append((_("GPU"), env.gpu_model))
    per_check = [(c.id, f"{c.environment.energy_kwh * 1000:.3g} Wh") for c in run.checks
                 if c.environment is not None and c.environment.energy_kwh is not None]
    return {"rows": rows, "note": env.note or "", "method": env.method, "per_check": per_check}


def areas_view(results: list[CheckResult], views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checks grouped by area, in the fixed area order, then any other areas."""
    known = [a[0] for a in AREAS]
    extra = sorted({area_of(c) for c in results} - set(known))
    meta = {k: (_(t), _(d)) for k, t, d in AREAS} | {k: (k.title() or _("Other"), "")
                                                      for k in extra}
    out = []
    for n, key in enumerate(known + extra):
        members = [v for c, v in zip(results, views) if area_of(c) == key]
        if members:
            anchor = f"area-{key}" if key in known else f"area-{n + 1}"
            out.append({"key": key, "anchor": anchor, "title": meta[key][0],
                        "intro": meta[key][1], "checks": members})
    return out


def check_view(check: CheckResult, anchor: str, show_pii: bool) -> dict[str, Any]:
    """Everything shown for one check."""
    gates = {(g.metric, g.group): g for g in check.gates}
    card = check.method
    return {
        "id": check.id, "anchor": anchor, "check": check.check, "status": check.status,
        "model": check.model or "", "duration": f"{check.duration_s:.2f} {unit('s')}",
        "purpose": card.purpose if card else "",
        "card": [(_(label), getattr(card, key)) for key, label in
                 [("method", N_("Method")), ("citation", N_("Citation")),
                  ("limitations", N_("Limitations"))] if card and getattr(card, key)],
        "summary": card.summary if card else "",
        "params": [(k, fmt_value(v, 300)) for k, v in sorted(check.params.items())],
        "metrics": [metric_row(m, gates) for m in check.metrics],
        "card_ref": None,
        "has_gates": bool(check.gates),
        "groups": group_matrix(check.metrics, gates),
        "findings": [{"severity": f.severity, "message": redact_value(f.message, show_pii)}
                     for f in check.findings],
        "figures": [figures.figure_view(f, show_pii) for f in check.figures],
        "evidence": evidence_view(check.evidence, show_pii),
        "warnings": [redact_value(w, show_pii) for w in check.warnings],
        "error": redact_value(check.error, show_pii) if check.error else "",
        "skip_reason": check.skip_reason or "",
        "reused": check.reused,
    }


def _gate_text(gate: GateResult | None) -> dict[str, Any] | None:
    """A gate as a badge: threshold text and outcome."""
    if gate is None:
        return None
    op = LE if gate.op == "max" else GE
    return {"text": f"{op} {fmt_num(gate.threshold)}", "passed": gate.passed}


def metric_row(m: Metric, gates: dict[tuple[str, str | None], GateResult]) -> dict[str, Any]:
    """One metric: value, CI, direction, description and its gate if any."""
    return {"name": m.name, "value": fmt_num(m.value, m.unit), "ci": fmt_ci(m.ci, m.unit),
            "ci_note": ci_note(m.ci), "direction": direction(m), "description": m.description or "",
            "gate": _gate_text(gates.get((m.name, None)))}


def group_matrix(metrics: list[Metric],
                 gates: dict[tuple[str, str | None], GateResult]) -> dict[str, Any] | None:
    """All by-group values of a check in one table: a row per group, a column per metric
    (as fairlearn's ``MetricFrame.by_group``), each cell with its CI, flags and group gate."""
    cols = [m for m in metrics if m.by_group]
    if not cols:
        return None
    groups: list[str] = []
    for m in cols:
        groups += [g for g in m.by_group if g not in groups]  # type: ignore[union-attr]
    rows = [{"group": g, "n": _group_n(cols, g),
             "cells": [_group_cell(m, g, gates) for m in cols]} for g in groups[:MAX_GROUP_ROWS]]
    notes = {ci_note(gv.ci) for m in cols for gv in m.by_group.values()} - {""}  # type: ignore[union-attr]
    return {"metrics": [m.name for m in cols], "rows": rows,
            "ci_note": "; ".join(sorted(notes)), "omitted": max(0, len(groups) - MAX_GROUP_ROWS)}


def _group_n(cols: list[Metric], group: str) -> str:
    """The group's size: the first metric that reports one."""
    sizes = [m.by_group[group].n for m in cols if group in m.by_group  # type: ignore[operator]
             and m.by_group[group].n is not None]  # type: ignore[index]
    return fmt_num(sizes[0]) if sizes else DASH


def _group_cell(m: Metric, group: str,
                gates: dict[tuple[str, str | None], GateResult]) -> dict[str, Any] | None:
    """One metric's value for one group, or None when the metric lacks the group."""
    gv = (m.by_group or {}).get(group)
    if gv is None:
        return None
    ci = fmt_ci(gv.ci, m.unit)
    return {"value": fmt_num(gv.value, m.unit), "ci": "" if ci == DASH else ci,
            "flags": ", ".join(gv.flags), "gate": _gate_text(gates.get((m.name, group)))}


def evidence_view(evidence: list[dict[str, Any]], show_pii: bool) -> dict[str, Any]:
    """Evidence rows as a table: redacted, truncated, at most MAX_EVIDENCE_ROWS."""
    columns: list[str] = []
    for row in evidence:
        for key in row if isinstance(row, dict) else []:
            if key not in columns:
                columns.append(key)
    columns = columns[:MAX_EVIDENCE_COLS]
    rows = [[fmt_value(redact_value(r.get(c), show_pii), MAX_CELL_CHARS) if c in r else ""
             for c in columns]
            for r in evidence[:MAX_EVIDENCE_ROWS] if isinstance(r, dict)]
    return {"columns": columns, "rows": rows, "total": len(evidence),
            "omitted": max(0, len(evidence) - MAX_EVIDENCE_ROWS)}
