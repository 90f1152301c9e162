"""``model_card.md``: a Hugging Face style model card filled from an audit run.

Layout follows the Hugging Face model card template (YAML metadata with a ``model-index`` of
results; Model Details, Uses, Bias, Risks, and Limitations, Evaluation, Environmental Impact,
Technical Specifications) with the sections of Mitchell et al. 2019, "Model Cards for Model
Reporting", that an audit can fill (Factors, Metrics, Quantitative Analyses, Ethical
Considerations, Caveats and Recommendations). What an audit cannot know (who trained the model, on
what) is marked "More information needed" rather than guessed. Untrusted text is Markdown-escaped
by the template environment; the YAML block is written by ``yaml.safe_dump``.
"""

from __future__ import annotations

import math
from typing import Any

from audit.report.fmt import DASH, direction, fmt_ci, fmt_num
from audit.report.i18n import _, unit, use
from audit.report.redact import redact_value
from audit.report.templating import MdSafe, md_env
from audit.report.view import AREAS, area_of, data_rows, group_matrix, summary_of, verdict
from audit.results import CheckResult, RunResult

TASKS = {"causal_lm": "text-generation", "masked_lm": "fill-mask",
         "classifier": "text-classification", "encoder": "feature-extraction"}
NEEDED = "More information needed"


def render_model_card(run: RunResult, lang: str = "en") -> str:
    """The model card Markdown of ``run`` (PII always redacted: a card is for publishing), its
    headings and fixed text in ``lang``; the YAML metadata stays machine-readable English."""
    with use(lang):
        return md_env(lang).get_template("model_card.md.j2").render(card=card_view(run))


def card_view(run: RunResult) -> dict[str, Any]:
    """Everything the model card template shows."""
    checks = run.checks
    return {
        "metadata": MdSafe(metadata_yaml(run)),
        "title": _model_title(run), "run_id": run.run_id, "created_at": run.created_at,
        "suite": run.suite.name, "suite_description": run.suite.description,
        "models": [{"alias": m.alias, "source": m.source, "adapter": m.adapter, "kind": m.kind,
                    "files": sorted(m.files.items())} for m in run.models.values()],
        "verdict": verdict(run)["text"], "summary": summary_of(run), "synthetic": run.synthetic,
        "risks": risk_items(checks), "failed_gates": failed_gates(run), "lang": lang_note(),
        "coverage_gaps": [(c.id, c.status, redact_value(c.skip_reason or c.error or "", False))
                          for c in checks if c.status in ("skipped", "error")],
        "data": data_rows(run, {c.id: "" for c in checks}),
        "factors": factors(checks), "metrics_used": metrics_used(checks),
        "results": [result_block(c) for c in checks if c.metrics],
        "examination": [redact_value(f.message, False) for c in checks
                        if area_of(c) == "explain" for f in c.findings],
        "limitations": limitations(checks),
        "citations": sorted({c.method.citation for c in checks if c.method and c.method.citation}),
        "compute": compute_view(run),
        "privacy": privacy_lines(checks),
    }


def lang_note() -> str:
    """A note on what stays in English when the card is rendered in another language."""
    from audit.report.i18n import current

    return "" if current() == "en" else _(
        "Headings, labels and verdicts are translated; method cards, findings, metric "
        "descriptions and evidence come from results.json and stay in English.")


def _model_title(run: RunResult) -> str:
    """The audited model's name: the default alias's source, else the first model's."""
    model = run.models.get("default") or next(iter(run.models.values()), None)
    return model.source if model else run.suite.name


def metadata_yaml(run: RunResult) -> str:
    """The YAML front matter: tags, ``co2_eq_emissions`` when the audit measured its energy, and
    a ``model-index`` with each check's numeric metrics."""
    import yaml

    areas = sorted({area_of(c) for c in run.checks})
    meta: dict[str, Any] = {"tags": ["audit", "responsible-ai"] + areas}
    if any(m.adapter == "hf" for m in run.models.values()):
        meta["library_name"] = "transformers"
    co2 = co2_metadata(run)
    if co2:
        meta["co2_eq_emissions"] = co2
    results = [r for r in (_index_entry(run, c) for c in run.checks) if r]
    if results:
        meta["model-index"] = [{"name": _model_title(run), "results": results}]
    return yaml.safe_dump(redact_value(meta, False), sort_keys=False, allow_unicode=True,
                          width=1000)


TRAINING_TYPE = "audit (evaluation only: this audit's own compute, not the model's training)"


def co2_metadata(run: RunResult) -> dict[str, Any] | None:
    """The Hugging Face ``co2_eq_emissions`` metadata of the audit's own measured compute
    (codecarbon), or None when energy was not measured. Keys as in the Hub's model card spec:
    ``emissions`` in grams CO2e (only when a grid country gave a CO2e), ``source``,
    ``training_type`` (this audit, which the Hub's "pre-training or fine-tuning" does not cover),
    ``geographical_location`` (when a country is known) and ``hardware_used``."""
    env = run.environment
    if env is None or env.energy_kwh is None:
        return None
    out: dict[str, Any] = {}
    if env.co2e_kg is not None:
        out["emissions"] = float(f"{env.co2e_kg * 1000:.6g}")
    out["source"] = "codecarbon"
    out["training_type"] = TRAINING_TYPE
    if env.country_iso_code:
        out["geographical_location"] = _country_name(env.country_iso_code)
    hardware = "; ".join(f"{kind}: {name}" for kind, name in
                         [("CPU", env.cpu_model), ("GPU", env.gpu_model)] if name)
    if hardware:
        out["hardware_used"] = hardware
    return out


def _country_name(iso3: str) -> str:
    """``France (FRA)`` from codecarbon's bundled energy-mix table, else the code itself."""
    import json
    from importlib.resources import files

    try:
        table = json.loads(files("codecarbon").joinpath(
            "data/private_infra/global_energy_mix.json").read_text(encoding="utf-8"))
        name = table.get(iso3.upper(), {}).get("country_name")
    except (ModuleNotFoundError, FileNotFoundError, ValueError, AttributeError):
        name = None
    return f"{name} ({iso3.upper()})" if name else iso3.upper()


def _index_entry(run: RunResult, check: CheckResult) -> dict[str, Any] | None:
    """One ``model-index`` result: the check as the dataset, its finite metrics."""
    metrics = [{"type": m.name, "name": m.name, "value": float(f"{float(m.value):.6g}"), "verified": False}
               for m in check.metrics
               if isinstance(m.value, (int, float)) and math.isfinite(m.value)]
    if not metrics:
        return None
    model = run.models.get(check.model or "default")
    task = TASKS.get(model.kind, "other") if model else "other"
    return {"task": {"type": task, "name": f"responsible-AI audit: {area_of(check)}"},
            "dataset": {"type": check.check, "name": check.id}, "metrics": metrics}


def risk_items(checks: list[CheckResult]) -> list[dict[str, Any]]:
    """Warning and critical findings, grouped by area in the report's order."""
    titles = {k: t for k, t, _ in AREAS}
    out = []
    for key in [k for k, _, _ in AREAS] + sorted({area_of(c) for c in checks} - set(titles)):
        items = [(c.id, f.severity, redact_value(f.message, False)) for c in checks
                 if area_of(c) == key for f in c.findings if f.severity != "info"]
        if items:
            out.append({"area": _(titles[key]) if key in titles else key.title(),
                        "entries": items})
    return out


def failed_gates(run: RunResult) -> list[dict[str, str]]:
    """Gates that failed, as sentences' parts."""
    return [{"check_id": g.check_id, "metric": g.metric + (f" [{g.group}]" if g.group else ""),
             "value": fmt_num(g.value), "threshold": ("\u2264 " if g.op == "max" else "\u2265 ")
             + fmt_num(g.threshold)} for c in run.checks for g in c.gates if not g.passed]


def factors(checks: list[CheckResult]) -> list[tuple[str, str]]:
    """Groups each check compared (Mitchell et al.'s 'relevant factors')."""
    out = []
    for c in checks:
        groups = sorted({g for m in c.metrics for g in (m.by_group or {})})
        if groups:
            out.append((c.id, ", ".join(str(redact_value(g, False)) for g in groups[:40])))
    return out


def metrics_used(checks: list[CheckResult]) -> list[tuple[str, str, str, str]]:
    """Distinct metrics: name, direction, how uncertainty was estimated, description."""
    seen: dict[str, tuple[str, str, str, str]] = {}
    for c in checks:
        for m in c.metrics:
            ci = f"{fmt_num(m.ci.level * 100)}% {m.ci.method}" if m.ci else DASH
            seen.setdefault(m.name, (m.name, direction(m), ci, m.description or ""))
    return list(seen.values())


def result_block(check: CheckResult) -> dict[str, Any]:
    """A check's metrics and by-group values for the Results section."""
    gates = {(g.metric, g.group): g for g in check.gates}
    rows = [(m.name, fmt_num(m.value, m.unit), fmt_ci(m.ci, m.unit), _gate(gates.get((m.name, None))))
            for m in check.metrics]
    matrix = group_matrix(check.metrics, gates)
    return {"id": check.id, "check": check.check, "status": check.status, "rows": rows,
            "groups": _md_matrix(matrix) if matrix else None,
            "summary": check.method.summary if check.method else ""}


def _md_matrix(matrix: dict[str, Any]) -> dict[str, Any]:
    """The report's group matrix as Markdown cells: ``value (CI)`` per metric and group."""
    rows = [[r["group"], r["n"]] + [(f"{c['value']} {c['ci']}".strip() if c else DASH)
                                   for c in r["cells"]] for r in matrix["rows"]]
    return {"header": ["Group", "n"] + matrix["metrics"], "rows": rows,
            "omitted": matrix["omitted"]}


def limitations(checks: list[CheckResult]) -> list[tuple[str, str]]:
    """Each distinct limitations text once, with the ids of the checks it applies to."""
    by_text: dict[str, list[str]] = {}
    for c in checks:
        if c.method and c.method.limitations:
            by_text.setdefault(c.method.limitations, []).append(c.id)
    return [(", ".join(ids), text) for text, ids in by_text.items()]


def _gate(g: Any) -> str:
    """A gate's outcome in a table cell."""
    if g is None:
        return DASH
    op = "\u2264" if g.op == "max" else "\u2265"
    return f"{_('pass') if g.passed else _('FAIL')} ({op} {fmt_num(g.threshold)})"


def privacy_lines(checks: list[CheckResult]) -> list[str]:
    """The differential-privacy statements a card can make: the ledger's epsilon (dp_guarantee)
    and the one-run audit's lower bound next to it (dp_audit), each only where that check ran."""
    out = []
    for c in checks:
        if c.check == "dp_guarantee" and c.status not in ("skipped", "error"):
            eps, delta = c.metric("epsilon"), c.metric("delta")
            out.append(f"Differential privacy ({c.id}): " + (
                f"DP-SGD with epsilon = {fmt_num(eps.value)} at delta = "
                f"{fmt_num(delta.value if delta else None)} (privacy ledger, verified)"
                if eps and eps.value is not None else
                "no DP guarantee (epsilon undefined: no ledger, non-private, or inconsistent)"))
        if c.check == "dp_audit" and c.status not in ("skipped", "error"):
            lb, led = c.metric("epsilon_lb"), c.metric("epsilon_ledger")
            if not lb or lb.value is None:
                out.append(f"Empirical privacy audit ({c.id}): not possible (see findings)")
                continue
            m, r, v = (c.metric(n) for n in ("canaries", "guesses", "correct_guesses"))
            conf = float(c.params.get("confidence") or 0.95)
            claim = fmt_num(led.value) if led and led.value is not None else "none (no DP claim)"
            verdict = ("VIOLATED: the model leaks more than the ledger claims"
                       if led and led.value is not None and lb.value > led.value else
                       "no violation found")
            out.append(f"Empirical privacy audit ({c.id}): epsilon lower bound {fmt_num(lb.value)} "
                       f"({conf:.0%} one-run audit, {fmt_num(v.value if v else None)} of "
                       f"{fmt_num(r.value if r else None)} guesses correct on "
                       f"{fmt_num(m.value if m else None)} canaries) vs ledger epsilon {claim}: "
                       f"{verdict}")
    return out


def compute_view(run: RunResult) -> dict[str, Any]:
    """What is known about the compute the audit itself used."""
    p = run.provenance
    keys = ("torch", "transformers", "numpy", "scikit-learn", "opacus", "shap", "captum")
    return {"device": p.device, "platform": p.platform, "python": p.python,
            "audit_version": p.audit_version,
            "seconds": f"{sum(c.duration_s for c in run.checks):.1f} {unit('s')}",
            "packages": [(k, p.packages[k]) for k in keys if k in p.packages],
            "command": p.command or DASH, "seed": str(run.seed),
            "suite_sha256": run.suite.sha256 or DASH, "git_commit": p.git_commit or DASH,
            "energy": _energy_line(run)}


def _energy_line(run: RunResult) -> str:
    """One sentence on the audit's own measured energy and emissions (codecarbon)."""
    env = run.environment
    if env is None or env.energy_kwh is None:
        return (env.note if env is not None and env.note else "") or _("not measured")
    text = f"{env.energy_kwh * 1000:.3g} Wh"
    if env.co2e_kg is not None:
        text += f", {env.co2e_kg * 1000:.3g} g CO2e ({env.country_iso_code})"
    return text + " (" + _("codecarbon, this audit's own compute") + ")"
