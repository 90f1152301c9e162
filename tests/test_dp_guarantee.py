"""dp_guarantee: reads the ledger, reports epsilon for gates, flags missing or broken guarantees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from audit.dp.ledger import LEDGER_SCHEMA, recompute_epsilon, write_ledger


def _ledger(sigma: float = 1.0, q: float = 0.1, steps: int = 50, delta: float = 1e-4,
            dp: bool = True, n: int = 1000) -> dict:
    eps = recompute_epsilon(sigma, q, steps, delta, "rdp") if dp else None
    return {"schema": LEDGER_SCHEMA, "dp": dp, "epsilon": eps, "delta": delta,
            "accountant": "rdp" if dp else None,
            "accountant_history": [[sigma, q, steps]] if dp else [],
            "noise_multiplier": sigma if dp else None, "max_grad_norm": 1.0, "sample_rate": q,
            "steps": steps, "epochs": 5, "dataset": {"size": n, "sha256": "ab" * 32},
            "seed": 0, "versions": {"opacus": "1.6"}}


def _run_check(folder: Path, **params):
    from audit.checks.privacy.dp_guarantee import DPGuaranteeParams, dp_guarantee

    ctx = SimpleNamespace(model=SimpleNamespace(source=str(folder)), resolve_path=Path)
    out = dp_guarantee(ctx, DPGuaranteeParams(**params))
    return {m.name: m for m in out.metrics}, out


def test_reports_ledger_epsilon_and_verifies_it(tmp_path):
    """Epsilon comes from the ledger (lower is better) and is re-derived from its history by a
    fresh Opacus accountant (error 0); the ledger shows as a table figure with the utility."""
    led = _ledger()
    write_ledger(led, tmp_path)
    (tmp_path / "train_metrics.json").write_text(json.dumps({"metrics": {"eval_accuracy": 0.7}}))
    metrics, out = _run_check(tmp_path)
    assert metrics["epsilon"].value == pytest.approx(led["epsilon"])
    assert metrics["epsilon"].higher_is_better is False
    assert metrics["epsilon_recomputation_error"].value < 1e-9
    assert metrics["dp_guaranteed"].value == 1.0 and metrics["eval_accuracy"].value == 0.7
    assert metrics["delta_times_n"].value == pytest.approx(0.1)
    assert out.figures[0].kind == "table" and ["epsilon", pytest.approx(led["epsilon"], rel=1e-5)] \
        in out.figures[0].data["rows"]
    assert not [f for f in out.findings if f.severity != "info"]


def test_missing_or_non_private_ledger_is_no_guarantee(tmp_path):
    """No ledger, or a --no-dp ledger: epsilon undefined (so an epsilon gate fails), critical."""
    metrics, out = _run_check(tmp_path)
    assert metrics["epsilon"].value is None and metrics["dp_guaranteed"].value == 0.0
    assert out.findings[0].severity == "critical" and "No DP guarantee" in out.findings[0].message
    write_ledger(_ledger(dp=False), tmp_path)
    metrics, out = _run_check(tmp_path)
    assert metrics["epsilon"].value is None and "non-private" in out.findings[0].message


def test_tampered_ledger_and_large_delta_are_flagged(tmp_path):
    """An epsilon that its own history does not reproduce is critical; delta >= 1/n warns."""
    led = _ledger(delta=0.01, n=1000)
    led["epsilon"] = led["epsilon"] / 2
    write_ledger(led, tmp_path)
    metrics, out = _run_check(tmp_path)
    severities = {f.severity for f in out.findings}
    assert metrics["epsilon_recomputation_error"].value > 0.1
    assert {"critical", "warning"} <= severities


def test_ledger_param_and_missing_path(tmp_path):
    """`ledger:` may name the file; a path that does not exist is a usage error."""
    from audit.errors import UsageError

    other = tmp_path / "elsewhere"
    other.mkdir()
    path = write_ledger(_ledger(), other)
    metrics, _ = _run_check(tmp_path, ledger=str(path))
    assert metrics["epsilon"].value is not None
    with pytest.raises(UsageError, match="not found"):
        _run_check(tmp_path, ledger=str(tmp_path / "nope.json"))


@pytest.mark.parametrize("max_eps,with_ledger,code", [(8, True, 0), (1, True, 1), (8, False, 1)])
def test_epsilon_gate_through_audit_run(max_eps, with_ledger, code, tiny_classifier_dir,
                                        tmp_path):
    """End to end: `audit run` with gate {metric: epsilon, max: E} passes when the ledger's
    epsilon (about 5.0 here) is below E and fails when it is above E or when there is no ledger."""
    from audit.cli import main

    model = tmp_path / "model"
    shutil.copytree(tiny_classifier_dir, model)
    if with_ledger:
        write_ledger(_ledger(), model)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: dp\nchecks:\n  - id: dp\n    check: dp_guarantee\n"
                     f"    gate: [{{metric: epsilon, max: {max_eps}}}]\n")
    assert main(["run", str(suite), "--model", str(model), "--out", str(tmp_path / "o"),
                 "--quiet", "--no-report"]) == code
