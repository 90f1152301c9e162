"""dp_guarantee: the differential-privacy guarantee recorded in the audited model's ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from audit.registry import CheckOutput, check
from audit.results import Figure, Finding, Metric

NAME = "dp_guarantee"
LEDGER_ROWS = ("dp", "epsilon", "delta", "delta_rule", "accountant", "target_epsilon",
               "noise_multiplier", "max_grad_norm", "sample_rate", "sampling", "steps", "epochs",
               "logical_batch_size", "expected_batch_size", "physical_batch_size",
               "grad_sample_mode", "seed", "data_order_sha256")


class DPGuaranteeParams(BaseModel):
    """Parameters of ``dp_guarantee``."""

    model_config = ConfigDict(extra="forbid")

    ledger: str | None = Field(None, description="privacy_ledger.json or the folder holding it "
                               "(default: the audited model's folder)")
    verify: bool = Field(True, description="recompute epsilon from the ledger with Opacus")
    tolerance: float = Field(1e-6, gt=0, description="allowed |recomputed - recorded| epsilon")


@check(NAME, area="privacy", params=DPGuaranteeParams)
def dp_guarantee(ctx: Any, params: DPGuaranteeParams) -> CheckOutput:
    """DP guarantee: the (epsilon, delta) a model was trained under, read from its privacy ledger.

    Purpose: a model trained with DP-SGD carries a formal bound on what any attacker can learn
    about one training example; this check puts that bound in the audit so a gate such as
    `{metric: epsilon, max: 8}` can require it, and flags models that carry none.
    Method: reads `privacy_ledger.json` (written by `audit train-dp`) from the audited model's
    folder or the `ledger` parameter. Reports epsilon (lower is better; undefined, so any epsilon
    gate fails, when the model was trained without DP or has no ledger), delta, delta x n, the
    noise multiplier, and the utility numbers recorded beside the ledger. With `verify`, the
    ledger's accountant history must agree with the noise multiplier, sample rate and steps it
    displays, and the sample rate with its sample size (q = 1/ceil(N/B), epochs x ceil(N/B)
    steps); epsilon is then recomputed from that history with a fresh Opacus accountant and must
    match to `tolerance`. Any mismatch makes epsilon undefined (so an epsilon gate fails) with a
    critical finding.
    Citation: Abadi et al. 2016, "Deep Learning with Differential Privacy" (DP-SGD); Mironov
    2017, "Renyi Differential Privacy"; Gopi et al. 2021, "Numerical Composition of Differential
    Privacy" (PRV accountant); Yousefpour et al. 2021, "Opacus".
    Limitations: the ledger is a claim written by the training run; the check verifies its
    arithmetic, not that the weights came from that run (compare the dataset hash and seed, or
    re-train). The guarantee is per example under Poisson sampling: duplicated examples (or one
    user's many examples) get weaker protection. delta >= 1/n allows leaking whole examples.
    """
    path = _ledger_path(ctx, params)
    if path is None:
        return _no_guarantee("no privacy_ledger.json found for this model", None)
    from audit.dp.ledger import read_ledger

    ledger = read_ledger(path)
    if not ledger.get("dp") or ledger.get("epsilon") is None:
        return _no_guarantee("the ledger records a non-private (--no-dp) training run", ledger,
                             path)
    metrics, findings = _guarantee_metrics(ledger, params)
    utility = _utility(path.parent)
    metrics += [Metric(name=k, value=float(v), higher_is_better=k != "eval_loss",
                       description="recorded by train-dp on its held-out set")
                for k, v in utility.items() if k in ("eval_accuracy", "eval_loss")]
    return CheckOutput(metrics=metrics, findings=findings,
                       figures=_figures(ledger, utility, path),
                       evidence=[{"ledger": str(path)}])


def _ledger_path(ctx: Any, params: DPGuaranteeParams) -> Path | None:
    from audit.dp.ledger import find_ledger
    from audit.errors import usage

    if params.ledger:
        target = ctx.resolve_path(params.ledger)
        if not target.exists():
            raise usage(NAME, "ledger", f"{params.ledger} not found",
                        "pass a privacy_ledger.json or the model folder holding it")
        return find_ledger(target)
    source = getattr(ctx.model, "source", None)
    return find_ledger(source) if source and Path(source).exists() else None


def _no_guarantee(reason: str, ledger: dict[str, Any] | None,
                  path: Path | None = None) -> CheckOutput:
    metrics = [Metric(name="epsilon", value=None, higher_is_better=False,
                      description="no DP guarantee: epsilon is unbounded"),
               Metric(name="dp_guaranteed", value=0.0, higher_is_better=True)]
    findings = [Finding(severity="critical", message=f"No DP guarantee: {reason}. Any "
                        "training example may be recoverable; train with `audit train-dp`.")]
    figures = _figures(ledger, _utility(path.parent) if path else {}, path) if ledger else []
    return CheckOutput(metrics=metrics, findings=findings, figures=figures,
                       evidence=[{"ledger": str(path) if path else None}])


def _guarantee_metrics(ledger: dict[str, Any], params: DPGuaranteeParams,
                       ) -> tuple[list[Metric], list[Finding]]:
    eps, delta = float(ledger["epsilon"]), float(ledger["delta"])
    n = int((ledger.get("dataset") or {}).get("size") or 0)
    checks_m, checks_f, broken = _verify(ledger, eps, delta, params.tolerance) \
        if params.verify else ([], [Finding(severity="warning", message=(
            "verify is off: the ledger's epsilon is reported as written, unchecked."))], False)
    metrics = [Metric(name="epsilon", value=None if broken else eps, higher_is_better=False,
                      description=f"({ledger.get('accountant')} accountant) at delta={delta:g}"
                      + ("; undefined: the ledger is inconsistent" if broken else "")),
               Metric(name="delta", value=delta, higher_is_better=False),
               Metric(name="dp_guaranteed", value=0.0 if broken else 1.0, higher_is_better=True),
               Metric(name="noise_multiplier", value=_float(ledger.get("noise_multiplier")),
                      higher_is_better=True)]
    findings = [] if broken else [Finding(severity="info", message=(
        f"Trained with DP-SGD: ({eps:.3g}, {delta:.2g})-DP by the {ledger.get('accountant')} "
        f"accountant; noise multiplier {ledger['noise_multiplier']:.4g}, clip norm "
        f"{ledger['max_grad_norm']}, sample rate {ledger['sample_rate']:.4g}, "
        f"{ledger['steps']} steps."))]
    if n:
        metrics.append(Metric(name="delta_times_n", value=delta * n, higher_is_better=False,
                              description="must be well below 1"))
        if delta * n >= 1:
            findings.append(Finding(severity="warning", message=(
                f"delta = {delta:g} >= 1/n (n = {n}): the guarantee permits leaking a whole "
                "training example with non-negligible probability.")))
    return metrics + checks_m, findings + checks_f


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _verify(ledger: dict[str, Any], eps: float, delta: float, tolerance: float,
            ) -> tuple[list[Metric], list[Finding], bool]:
    """Cross-check the history against the displayed numbers, then recompute epsilon from it;
    returns (metrics, findings, broken). Any mismatch makes epsilon undefined."""
    from audit.dp.ledger import consistency_problems, epsilon_from_history

    problems = consistency_problems(ledger)
    if ledger.get("accountant") not in ("rdp", "prv"):
        problems.append(f"unknown accountant {ledger.get('accountant')!r}")
    if problems:
        return [Metric(name="epsilon_recomputation_error", value=None, higher_is_better=False,
                       description="not computed: the ledger is inconsistent")], [Finding(
            severity="critical", message=(
                "The ledger is inconsistent, so its epsilon is undefined: " + "; ".join(problems)
                + "."))], True
    history = [tuple(h) for h in ledger["accountant_history"]]
    recomputed = epsilon_from_history(history, delta, ledger["accountant"])
    error = abs(recomputed - eps)
    metric = Metric(name="epsilon_recomputation_error", value=error, higher_is_better=False,
                    description="|epsilon recomputed from the ledger's history - recorded|")
    if error > tolerance:
        return [metric], [Finding(severity="critical", message=(
            f"The recorded epsilon {eps:.6g} does not match {recomputed:.6g} recomputed from "
            "the ledger's own history: the ledger is inconsistent, so its epsilon is "
            "undefined."))], True
    return [metric], [Finding(severity="info", message=(
        f"Epsilon re-derived from the ledger's history with a fresh Opacus accountant: "
        f"{recomputed:.6g} (matches to {tolerance:g}); the history agrees with the displayed "
        "noise multiplier, sample rate, steps and sample size."))], False


def _utility(folder: Path) -> dict[str, Any]:
    path = folder / "train_metrics.json"
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("metrics", {}))
    except (json.JSONDecodeError, AttributeError):
        return {}


def _figures(ledger: dict[str, Any], utility: dict[str, Any], path: Path | None) -> list[Figure]:
    rows = [[key, _cell(ledger.get(key))] for key in LEDGER_ROWS if key in ledger]
    dataset = ledger.get("dataset") or {}
    rows += [[f"dataset.{k}", _cell(dataset[k])] for k in ("size", "sampling_population",
                                                           "sha256") if k in dataset]
    if ledger.get("audit_canaries"):
        rows.append(["audit_canaries.count", _cell(ledger["audit_canaries"].get("count"))])
    rows += [[f"versions.{k}", v] for k, v in (ledger.get("versions") or {}).items()]
    figures = [Figure(kind="table", title="Privacy ledger", data={"columns": ["field", "value"],
                                                                   "rows": rows},
                      caption=str(path) if path else None)]
    if utility:
        figures.append(Figure(kind="table", title="Training and held-out utility",
                              data={"columns": ["metric", "value"],
                                    "rows": [[k, _cell(v)] for k, v in utility.items()]}))
    return figures


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value if isinstance(value, (int, str, bool)) or value is None else str(value)
