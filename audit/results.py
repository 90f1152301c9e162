"""Result models: Metric, CheckResult and RunResult, and the JSON Schema of results.json.

Everything a report, a gate or a comparison needs is in these models; nothing downstream touches a
model. ``figures`` carry the data for the report's plots, with these kinds and shapes:

- ``bars``: {"labels": [..], "values": [..], "ci_low": [..|None], "ci_high": [..|None],
  "xlabel": str, "ylabel": str, "reference": float|None}
- ``roc``: {"curves": [{"name": str, "fpr": [..], "tpr": [..], "auc": float}]}
- ``line``: {"x": [..], "series": [{"name": str, "y": [..]}], "xlabel": str, "ylabel": str,
  "log_x": bool}
- ``heatmap``: {"row_labels": [..], "col_labels": [..], "values": [[..]], "vmin": float|None,
  "vmax": float|None}
- ``token_attributions``: {"tokens": [..], "scores": [..], "label": str}
- ``table``: {"columns": [..], "rows": [[..]]}
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.1"

Status = Literal["passed", "failed", "reported", "error", "skipped"]
"""passed: every gate passed; failed: a gate failed; reported: the check ran and has no gates
(its numbers are information, not a verdict); error: it raised; skipped: it could not run
(the model lacks a capability, or the check is missing from the results)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfidenceInterval(_Model):
    """A confidence interval: bounds, level and the method that produced it."""

    low: float | None
    high: float | None
    level: float = 0.95
    method: str = "bootstrap-percentile"


class GroupValue(_Model):
    """A metric's value for one group, with its CI and group size."""

    value: float | None
    ci: ConfidenceInterval | None = None
    n: int | None = None
    flags: list[str] = Field(default_factory=list)


class Metric(_Model):
    """One named number a check reports; ``higher_is_better`` drives gates and comparisons."""

    name: str
    value: float | None
    higher_is_better: bool | None = None
    ci: ConfidenceInterval | None = None
    by_group: dict[str, GroupValue] | None = None
    unit: str | None = None
    description: str | None = None
    ideal: float | None = None


class Finding(_Model):
    """A sentence for the reader: what a metric means for this model."""

    severity: Literal["info", "warning", "critical"] = "info"
    message: str


class Figure(_Model):
    """Data for one plot in the report (kinds and shapes in the module docstring)."""

    kind: Literal["bars", "roc", "line", "heatmap", "token_attributions", "table"]
    title: str
    data: dict[str, Any]
    caption: str | None = None


class MethodCard(_Model):
    """Purpose, method, citation and limitations of a check, taken from its docstring."""

    summary: str = ""
    purpose: str = ""
    method: str = ""
    citation: str = ""
    limitations: str = ""


class GateResult(_Model):
    """One gate applied to one metric: ``value <= max`` or ``value >= min``."""

    check_id: str
    metric: str
    op: Literal["max", "min"]
    threshold: float
    value: float | None
    passed: bool
    group: str | None = None
    message: str = ""


class CheckResult(_Model):
    """What one check produced, or why it did not."""

    id: str
    check: str
    area: str = ""
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    status: Status = "passed"
    duration_s: float = 0.0
    metrics: list[Metric] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)
    method: MethodCard | None = None
    gates: list[GateResult] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None
    error_type: Literal["usage", "runtime"] | None = None
    traceback: str | None = None
    skip_reason: str | None = None
    fingerprint: str | None = None
    reused: bool = False
    n_items: int = 0
    items_sha256: str | None = None
    environment: "Environment | None" = None

    def metric(self, name: str) -> Metric | None:
        """Return the metric called ``name``, or None."""
        return next((m for m in self.metrics if m.name == name), None)


class ModelInfo(_Model):
    """Identity of an audited model: where it came from and the hashes of its files."""

    alias: str
    source: str
    adapter: str
    kind: str
    files: dict[str, str] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)


class SuiteInfo(_Model):
    """Which suite ran: name, path and the SHA-256 of its file."""

    name: str
    path: str | None = None
    sha256: str | None = None
    description: str = ""


class Provenance(_Model):
    """Where and how the run happened: versions, platform, device, git commit, command."""

    audit_version: str
    python: str
    platform: str
    packages: dict[str, str] = Field(default_factory=dict)
    device: str = "cpu"
    git_commit: str | None = None
    command: str | None = None


class Environment(_Model):
    """Compute and carbon cost measured by codecarbon's OfflineEmissionsTracker: energy (kWh)
    and duration always; CO2-equivalent only when a country (grid carbon intensity) is known."""

    energy_kwh: float | None = None
    duration_s: float | None = None
    co2e_kg: float | None = None
    country_iso_code: str | None = None
    cpu_model: str | None = None
    gpu_model: str | None = None
    cpu_power_w: float | None = None
    tracker: str = "codecarbon"
    method: str = ""
    note: str | None = None


class GateSummary(_Model):
    """Counts of checks by status and gates by outcome, and the exit code they imply."""

    checks_passed: int = 0
    checks_failed: int = 0
    checks_reported: int = 0
    checks_error: int = 0
    checks_skipped: int = 0
    gates_passed: int = 0
    gates_failed: int = 0
    findings_critical: int = 0
    findings_warning: int = 0
    fail_on: list[str] = Field(default_factory=list)
    exit_code: int = 0


class RunResult(_Model):
    """A whole run: provenance, suite, models, every check's result and the gate summary."""

    schema_version: str = SCHEMA_VERSION
    run_id: str
    created_at: str
    seed: int
    suite: SuiteInfo
    models: dict[str, ModelInfo] = Field(default_factory=dict)
    provenance: Provenance
    checks: list[CheckResult] = Field(default_factory=list)
    summary: GateSummary = Field(default_factory=GateSummary)
    show_pii: bool = False
    synthetic: bool = False
    items_file: str | None = None
    environment: Environment | None = None

    def check(self, check_id: str) -> CheckResult | None:
        """Return the result of the check with this id, or None."""
        return next((c for c in self.checks if c.id == check_id), None)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of results.json (``audit schema`` prints it)."""
    return RunResult.model_json_schema()


def load_run(path: str) -> RunResult:
    """Read and validate a results.json; a bad file raises a one-line UsageError."""
    from audit.errors import usage

    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except FileNotFoundError:
        raise usage(path, "file", "not found", "pass the results.json that `audit run` wrote") from None
    except json.JSONDecodeError as exc:
        raise usage(path, f"line {exc.lineno}", "not valid JSON", "pass a results.json") from None
    try:
        return RunResult.model_validate(raw)
    except Exception as exc:  # pydantic.ValidationError
        first = str(exc).splitlines()
        detail = " ".join(first[1:3]) if len(first) > 2 else str(exc)
        raise usage(path, "schema", f"not a results.json of schema {SCHEMA_VERSION}: {detail}",
                    "re-run `audit run` with this version") from None


CheckResult.model_rebuild()
