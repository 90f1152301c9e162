"""View model of the comparison report: two runs side by side, regressions first and highlighted.

Reads the rows of ``audit.compare.Comparison`` (check_id, metric, group, base/new value and CI,
delta, direction, status, reason) and the two RunResults; computes nothing about regressions
itself, so the HTML always agrees with ``audit compare``'s exit code.
"""

from __future__ import annotations

from typing import Any

from audit.report import figures
from audit.report.fmt import DASH, fmt_ci, fmt_num
from audit.report.redact import redact_text
from audit.report.view import GE, LE, area_of, summary_of, verdict
from audit.results import RunResult

ORDER = {"regressed": 0, "missing": 1, "new": 2, "changed": 3, "improved": 4, "unchanged": 5}
STATUS_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def build_compare_view(base: RunResult, new: RunResult, comparison: Any) -> dict[str, Any]:
    """Everything ``compare.html.j2`` shows."""
    rows = sorted(comparison.rows, key=lambda r: ORDER.get(r.status, 9))
    counts: dict[str, int] = {}
    for r in comparison.rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    n_reg = counts.get("regressed", 0)
    return {
        "title": f"Comparison: {base.suite.name}",
        "runs": [run_column("base", base), run_column("new", new)],
        "tolerance": fmt_num(getattr(comparison, "tolerance", 0.0)),
        "verdict": {"class": "fail" if n_reg else "pass",
                    "text": f"{n_reg} regression{'s' if n_reg != 1 else ''}" if n_reg
                    else "No regressions"},
        "counts": [{"status": s, "value": str(counts[s])} for s in ORDER if s in counts],
        "rows": [row_view(r) for r in rows if r.status != "unchanged"],
        "unchanged": [row_view(r) for r in rows if r.status == "unchanged"],
        "checks": check_status_rows(base, new),
        "gates": gate_rows(base, new),
        "figures": figure_pairs(base, new),
        "paired": paired_rows(comparison),
    }


def paired_rows(comparison: Any) -> list[dict[str, Any]]:
    """Metrics decided on paired items: the test, p-value, discordant counts and the first
    discordant item ids (the items whose outcome changed)."""
    out = []
    for r in comparison.rows:
        p = getattr(r, "paired", None)
        if p is None:
            continue
        counts = ", ".join(f"{k}: {v}" for k, v in p.discordant.items()) or DASH
        ci = DASH if p.ci_low is None else f"[{fmt_num(p.ci_low)}, {fmt_num(p.ci_high)}]"
        out.append({"check_id": r.check_id, "metric": r.metric, "status": r.status,
                    "test": p.test, "n": str(p.n_pairs), "p": f"{p.p_value:.3g}",
                    "delta": fmt_num(p.delta), "ci": ci, "discordant": counts,
                    "ids": redact_text(", ".join(p.discordant_ids)) or DASH})
    return out


def run_column(label: str, run: RunResult) -> dict[str, Any]:
    """One side of the header: identity, models, provenance and outcome of a run."""
    p, summary = run.provenance, summary_of(run)
    return {"label": label, "run_id": run.run_id, "created_at": run.created_at,
            "seed": str(run.seed), "suite": run.suite.name, "suite_sha256": run.suite.sha256 or DASH,
            "models": [(m.alias, m.source, ", ".join(f"{n} {h[:12]}" for n, h in sorted(m.files.items())))
                       for m in run.models.values()],
            "audit_version": p.audit_version, "git_commit": p.git_commit or DASH,
            "device": p.device, "verdict": verdict(run)["text"], "verdict_class": verdict(run)["class"],
            "gates": f"{summary.gates_passed} passed, {summary.gates_failed} failed"}


def row_view(r: Any) -> dict[str, Any]:
    """One metric row: values with CIs, delta coloured by direction, status and reason."""
    good = r.status == "improved"
    return {"check_id": r.check_id, "metric": r.metric, "group": r.group or "",
            "base": fmt_num(r.base), "base_ci": fmt_ci(r.base_ci), "new": fmt_num(r.new),
            "new_ci": fmt_ci(r.new_ci),
            "delta": DASH if r.delta is None else ("+" if r.delta > 0 else "") + fmt_num(r.delta),
            "delta_class": "delta-bad" if r.status == "regressed" else ("delta-good" if good else ""),
            "direction": _direction_text(r.direction), "status": r.status,
            "reason": redact_text(getattr(r, "reason", "") or "")}


def _direction_text(direction: str) -> str:
    """compare.py's direction word as a phrase."""
    return {"higher": "higher is better", "lower": "lower is better",
            "none": "descriptive"}.get(direction, direction)


def check_status_rows(base: RunResult, new: RunResult) -> list[dict[str, Any]]:
    """Each check's status in both runs; ``worse`` when the new status ranks lower."""
    ids = [c.id for c in base.checks] + [c.id for c in new.checks if base.check(c.id) is None]
    out = []
    for cid in ids:
        b, n = base.check(cid), new.check(cid)
        bs, ns = (b.status if b else "absent"), (n.status if n else "absent")
        worse = STATUS_RANK.get(ns, 4) > STATUS_RANK.get(bs, 4) if b and n else n is None
        out.append({"id": cid, "area": area_of(n or b), "base": bs, "new": ns,  # type: ignore[arg-type]
                    "worse": worse, "changed": bs != ns})
    return out


def _gate_key(g: Any) -> tuple[str, str, str, str, float]:
    return (g.check_id, g.metric, g.group or "", g.op, g.threshold)


def gate_rows(base: RunResult, new: RunResult) -> list[dict[str, Any]]:
    """Every gate of either run with its value and outcome on each side."""
    b = {_gate_key(g): g for c in base.checks for g in c.gates}
    n = {_gate_key(g): g for c in new.checks for g in c.gates}
    out = []
    for key in list(b) + [k for k in n if k not in b]:
        gb, gn = b.get(key), n.get(key)
        out.append({"check_id": key[0], "metric": key[1], "group": key[2],
                    "threshold": f"{LE if key[3] == 'max' else GE} {fmt_num(key[4])}",
                    "base": _gate_cell(gb), "new": _gate_cell(gn),
                    "newly_failing": bool(gn is not None and not gn.passed
                                          and (gb is None or gb.passed))})
    return out


def _gate_cell(g: Any) -> dict[str, str] | None:
    """A gate outcome as value + pass/fail, or None when that run lacks the gate."""
    if g is None:
        return None
    return {"value": fmt_num(g.value), "result": "pass" if g.passed else "fail"}


def figure_pairs(base: RunResult, new: RunResult) -> list[dict[str, Any]]:
    """Figures with the same check id and title in both runs, drawn side by side."""
    pairs = []
    for nc in new.checks:
        bc = base.check(nc.id)
        if bc is None:
            continue
        titles = {f.title: f for f in bc.figures}
        for fig in nc.figures:
            if fig.title in titles and fig.kind in ("bars", "roc", "line", "heatmap", "table"):
                pairs.append({"check_id": nc.id, "title": fig.title,
                              "base": figures.figure_view(titles[fig.title], False),
                              "new": figures.figure_view(fig, False)})
    return pairs[:40]

