"""A rich RunResult for report tests: every figure kind, every status, gates, groups, evidence.

``rich_run(payload)`` puts ``payload`` (e.g. an XSS string) into every free-text field a results
file can carry: check ids, metric and group names, params, file names, findings, evidence, figure
labels, errors, provenance. ``PII`` lists raw identifiers planted in evidence and outputs.
"""

from __future__ import annotations

import math
from typing import Any

from audit.results import (CheckResult, ConfidenceInterval, Figure, Finding, GateResult,
                           GateSummary, GroupValue, MethodCard, Metric, ModelInfo, Provenance,
                           RunResult, SuiteInfo)

PII = ["jane.doe@example.com", "555-867-5309", "123-45-6789"]
HOSTILE = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>',
           "javascript:alert(3)", "{{ 7*7 }}{% raw %}", "</style><b>x</b>"]


def _ci(lo: float, hi: float, method: str = "bootstrap-percentile") -> ConfidenceInterval:
    return ConfidenceInterval(low=lo, high=hi, level=0.95, method=method)


def _card(name: str, p: str) -> MethodCard:
    return MethodCard(summary=f"{name} summary.{p}", purpose=f"Why {name} matters.{p}",
                      method=f"How {name} is computed.{p}", citation=f"Author et al. 2020.{p}",
                      limitations=f"What {name} misses.{p}")


def _bias(p: str) -> CheckResult:
    groups = {f"women{p}": GroupValue(value=0.31, ci=_ci(0.22, 0.40), n=120),
              "men": GroupValue(value=-0.12, ci=_ci(-0.2, -0.05), n=118, flags=["small-n"])}
    return CheckResult(
        id=f"gender-occupations{p}", check="template_bias", area="bias", model="default",
        params={"probes": f"gender_occupations{p}", "top_k": 10, "data": f"probes{p}.csv"},
        status="failed", duration_s=3.21, method=_card("template_bias", p),
        metrics=[Metric(name=f"max_group_gap{p}", value=0.43, higher_is_better=False,
                        ci=_ci(0.3, 0.55), by_group=groups, description=f"gap{p}"),
                 Metric(name="p_value", value=3.2e-6, higher_is_better=None)],
        findings=[Finding(severity="critical", message=f"Strong gap {PII[0]}{p}")],
        figures=[Figure(kind="bars", title=f"Association by group{p}",
                        data={"labels": [f"women{p}", "men"], "values": [0.31, -0.12],
                              "ci_low": [0.22, -0.2], "ci_high": [0.40, -0.05],
                              "xlabel": "group", "ylabel": f"score{p}", "reference": 0.0},
                        caption=f"caption{p}")],
        evidence=[{"template": f"[GROUP] worked as a [MASK].{p}", "output": f"call {PII[1]}{p}",
                   "score": 0.123456789}] * 30,
        gates=[GateResult(check_id=f"gender-occupations{p}", metric=f"max_group_gap{p}",
                          op="max", threshold=0.15, value=0.43, passed=False,
                          message=f"failed{p}"),
               GateResult(check_id=f"gender-occupations{p}", metric=f"max_group_gap{p}",
                          op="max", threshold=0.5, value=0.31, passed=True, group=f"women{p}")])


def _fairness(p: str) -> CheckResult:
    return CheckResult(
        id="adult-fairness", check="group_fairness", area="fairness", status="passed",
        duration_s=1.5, method=_card("group_fairness", p), params={"data": "adult.csv"},
        metrics=[Metric(name="demographic_parity_difference", value=0.08, higher_is_better=False,
                        ci=_ci(0.05, 0.11)),
                 Metric(name="tpr", value=0.81, higher_is_better=True, by_group={
                     "Female": GroupValue(value=0.78, ci=_ci(0.7, 0.85), n=900),
                     "Male": GroupValue(value=0.83, ci=_ci(0.8, 0.86), n=2100)})],
        figures=[Figure(kind="table", title="Group metrics", data={
            "columns": ["group", "tpr", f"fpr{p}"], "rows": [["Female", 0.78, 0.05],
                                                             [f"Male{p}", 0.83, None]]})],
        gates=[GateResult(check_id="adult-fairness", metric="demographic_parity_difference",
                          op="max", threshold=0.1, value=0.08, passed=True)])


def _privacy(p: str) -> list[CheckResult]:
    fpr = [i / 500 for i in range(501)]
    mia = CheckResult(
        id="mia", check="membership_inference", area="privacy", status="passed", duration_s=8.0,
        method=_card("membership_inference", p),
        metrics=[Metric(name="auc", value=0.56, higher_is_better=False, ideal=0.5,
                        ci=_ci(0.52, 0.6)),
                 Metric(name="tpr_at_1pct_fpr", value=0.021, higher_is_better=False, unit="%")],
        figures=[Figure(kind="roc", title="Membership inference ROC", data={"curves": [
            {"name": f"loss attack{p}", "fpr": fpr, "tpr": [min(1, x ** 0.8) for x in fpr],
             "auc": 0.56},
            {"name": "zlib attack", "fpr": fpr, "tpr": [min(1, x ** 0.9) for x in fpr],
             "auc": 0.53}]})])
    exposure = CheckResult(
        id="canaries", check="canary_exposure", area="privacy", status="passed", duration_s=4.0,
        method=_card("canary_exposure", p),
        metrics=[Metric(name="max_exposure", value=12.3, higher_is_better=False)],
        figures=[Figure(kind="line", title="Exposure by repeat count", data={
            "x": [1, 2, 4, 8, 16, 32], "series": [{"name": f"mean exposure{p}",
                                                  "y": [1.2, 2.0, 3.1, 6.5, 9.8, 12.3]},
                                                 {"name": "max", "y": [2, 3, 5, 8, 12, math.nan]}],
            "xlabel": "repeats", "ylabel": "exposure (bits)", "log_x": True})],
        evidence=[{"canary": f"my SSN is {PII[2]}", "rank": 1}])
    dp = CheckResult(
        id="dp", check="dp_guarantee", area="privacy", status="passed", duration_s=30.0,
        method=_card("dp_guarantee", p),
        metrics=[Metric(name="epsilon", value=2.9, higher_is_better=False),
                 Metric(name="delta", value=1e-5, higher_is_better=False)],
        figures=[Figure(kind="table", title="DP ledger", data={
            "columns": ["epoch", "noise_multiplier", "epsilon", "delta"],
            "rows": [[1, 1.1, 1.2, 1e-5], [2, 1.1, 2.1, 1e-5], [3, 1.1, 2.9, 1e-5]]}),
                 Figure(kind="table", title="Privacy / utility", data={
            "columns": ["model", "epsilon", "accuracy"],
            "rows": [["non-private", None, 0.91], ["DP-SGD", 2.9, 0.86]]})])
    return [mia, exposure, dp]


def _explain(p: str) -> list[CheckResult]:
    toks = ["[CLS]", "i", "feel", "so", "stressed", "today", "jane", ".", "doe", "@",
            "example", ".", "com", p, "[SEP]"]
    attn = CheckResult(
        id="attention", check="attention", area="explain", status="passed", duration_s=0.8,
        method=_card("attention", p),
        metrics=[Metric(name="attention_entropy", value=1.7, higher_is_better=None)],
        figures=[Figure(kind="heatmap", title="Attention, last layer mean", data={
            "row_labels": toks, "col_labels": toks, "vmin": 0.0, "vmax": None,
            "values": [[1 / (1 + abs(i - j)) for j in range(len(toks))]
                       for i in range(len(toks))]})])
    ig = CheckResult(
        id="ig", check="integrated_gradients", area="explain", status="passed", duration_s=2.0,
        method=_card("integrated_gradients", p),
        metrics=[Metric(name="completeness_error", value=0.004, higher_is_better=False)],
        figures=[Figure(kind="token_attributions", title="IG attributions", data={
            "tokens": toks, "label": f"stress{p}",
            "scores": [0, 0.1, 0.4, 0.2, 0.9, -0.3, 0.05, 0, 0, 0, 0, 0, 0, -0.6, 0]})])
    skipped = CheckResult(id="shap", check="shap_text", area="explain", status="skipped",
                          skip_reason=f"needs predict_proba{p}")
    errored = CheckResult(id="faith", check="attribution_faithfulness", area="explain",
                          status="error", error=f"RuntimeError: boom {PII[0]}{p}")
    return [attn, ig, skipped, errored]


def rich_run(payload: str = "") -> RunResult:
    """A RunResult with every figure kind and status; ``payload`` appended to free text."""
    p = payload
    checks = [_bias(p), _fairness(p), *_privacy(p), *_explain(p)]
    return RunResult(
        run_id=f"run-1{p}", created_at="2026-11-23T04:00:00Z", seed=1234,
        suite=SuiteInfo(name=f"release{p}", path=f"suites/release{p}.yaml", sha256="ab" * 32,
                        description=f"Pre-release audit{p}"),
        models={"default": ModelInfo(alias="default", source=f"default-lm{p}", adapter="hf",
                                     kind="causal_lm", files={f"model{p}.safetensors": "cd" * 32},
                                     details={"params": 134515008, "note": f"n{p}"})},
        provenance=Provenance(audit_version="0.1.0", python="3.11.7", platform=f"Linux{p}",
                              packages={"torch": "2.13.0", "transformers": "5.23.0"},
                              device="cpu", git_commit="0123abc",
                              command=f"audit run suites/release.yaml --seed 1234{p}"),
        checks=checks,
        summary=_summary(checks))


def _summary(checks: list) -> GateSummary:
    """The fixture's stored summary, counted the way the runner counts (audit.gate.summarise)."""
    from audit.gate import summarise

    return summarise(checks)


def script_module(name: str) -> Any:
    """``scripts/<name>.py`` loaded as a module (the browser and accessibility checkers)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def browser_checker_or_skip() -> Any:
    """scripts/browser_check.py, or a pytest skip naming what is missing (selenium, or
    chromium + chromedriver)."""
    import pytest

    pytest.importorskip("selenium", reason="selenium not installed (pip install selenium)")
    module = script_module("browser_check")
    if module.find_browser() is None:
        pytest.skip("chromium/chromedriver not found (apt-get install -y chromium chromium-driver)")
    return module
