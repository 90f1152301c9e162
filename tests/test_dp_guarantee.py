"""dp_guarantee: reads the ledger, reports epsilon for gates, flags missing or broken guarantees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from audit.dp.ledger import LEDGER_SCHEMA, write_ledger
from tests.dp_helpers import gaussian_rdp_epsilon


def _ledger(sigma: float = 8.0, steps: int = 20, delta: float = 1e-4, dp: bool = True,
            n: int = 1000) -> dict:
    """A consistent full-batch ledger (sample rate 1: batch >= n, one step per epoch) whose
    epsilon comes from the hand-written Gaussian RDP formula, not from Opacus, so a check that
    re-derives it with Opacus is compared against an independent value (about 2.13 here)."""
    eps = gaussian_rdp_epsilon(sigma, steps, delta) if dp else None
    return {"schema": LEDGER_SCHEMA, "dp": dp, "epsilon": eps, "delta": delta,
            "accountant": "rdp" if dp else None,
            "accountant_history": [[sigma, 1.0, steps]] if dp else [],
            "noise_multiplier": sigma if dp else None, "max_grad_norm": 1.0, "sample_rate": 1.0,
            "steps": steps, "epochs": steps, "logical_batch_size": n, "expected_batch_size": n,
            "dataset": {"size": n, "sha256": "ab" * 32}, "seed": 0, "versions": {"opacus": "1.6"}}


def _run_check(folder: Path, **params):
    from audit.checks.privacy.dp_guarantee import DPGuaranteeParams, dp_guarantee

    ctx = SimpleNamespace(model=SimpleNamespace(source=str(folder)), resolve_path=Path)
    out = dp_guarantee(ctx, DPGuaranteeParams(**params))
    return {m.name: m for m in out.metrics}, out


def test_reports_ledger_epsilon_and_verifies_it(tmp_path):
    """Epsilon comes from the ledger (lower is better) and the check's re-derivation from the
    history matches the hand-computed full-batch Gaussian epsilon written into the fixture
    (rewritten: the fixture's epsilon used to come from the very Opacus call the check makes, so
    a wrong recomputation agreed with itself); the ledger shows as a table with the utility."""
    led = _ledger()
    assert 2.0 < led["epsilon"] < 2.3
    write_ledger(led, tmp_path)
    (tmp_path / "train_metrics.json").write_text(json.dumps({"metrics": {"eval_accuracy": 0.7}}))
    metrics, out = _run_check(tmp_path)
    assert metrics["epsilon"].value == pytest.approx(led["epsilon"])
    assert metrics["epsilon"].higher_is_better is False
    assert metrics["epsilon_recomputation_error"].value < 1e-9
    assert metrics["dp_guaranteed"].value == 1.0 and metrics["eval_accuracy"].value == 0.7
    assert metrics["delta_times_n"].value == pytest.approx(0.1)
    other = _ledger(sigma=6.0)  # a different history: the recomputation must notice
    other["epsilon"] = led["epsilon"]
    write_ledger(other, tmp_path)
    metrics, _ = _run_check(tmp_path)
    assert metrics["epsilon"].value is None
    assert metrics["epsilon_recomputation_error"].value > 0.5
    write_ledger(led, tmp_path)
    metrics, out = _run_check(tmp_path)
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
    """An epsilon that its own history does not reproduce is undefined (so an epsilon gate
    fails) with a critical finding; delta >= 1/n warns."""
    led = _ledger(delta=0.01, n=1000)
    led["epsilon"] = led["epsilon"] / 2
    write_ledger(led, tmp_path)
    metrics, out = _run_check(tmp_path)
    severities = {f.severity for f in out.findings}
    assert metrics["epsilon_recomputation_error"].value > 0.1
    assert metrics["epsilon"].value is None and metrics["dp_guaranteed"].value == 0.0
    assert {"critical", "warning"} <= severities


@pytest.mark.parametrize("field,value,words", [
    ("noise_multiplier", 16.0, "noise multiplier"),   # displays more noise than was accounted
    ("sample_rate", 0.5, "sample rate"),              # displays a smaller sample rate
    ("steps", 10, "steps"),                           # displays fewer steps
    ("logical_batch_size", 100, "ceil(1000/100)"),    # q no longer matches the sample size
    ("expected_batch_size", 10, "expected batch"),
    ("epochs", 5, "epochs"),
    ("accountant_history", [], "no accountant history"),
])
def test_history_that_disagrees_with_the_display_makes_epsilon_undefined(field, value, words,
                                                                        tmp_path):
    """Issue 11: every displayed number the accountant history (or the sample size) contradicts
    makes epsilon undefined with a critical finding naming the mismatch, even though the
    recorded epsilon still re-derives from the history."""
    led = _ledger()
    led[field] = value
    write_ledger(led, tmp_path)
    metrics, out = _run_check(tmp_path)
    assert metrics["epsilon"].value is None and metrics["dp_guaranteed"].value == 0.0
    critical = [f.message for f in out.findings if f.severity == "critical"]
    assert critical and words in critical[0]


def test_dataset_size_mismatch_and_sampling_population(tmp_path):
    """The sample rate must follow the sample size: a ledger whose dataset size implies another
    rate is inconsistent; with audit canaries the rate follows dataset.sampling_population."""
    from audit.dp.ledger import consistency_problems

    led = _ledger(n=1000)
    led["dataset"]["size"] = 3000  # q = 1 would need a batch of >= 3000
    assert any("ceil(3000/1000)" in p for p in consistency_problems(led))
    sub = dict(_ledger(), sample_rate=0.25, accountant_history=[[8.0, 0.25, 80]], steps=80,
               logical_batch_size=250, expected_batch_size=240, epochs=20)
    sub["dataset"] = {"size": 960, "sampling_population": 1000}
    assert consistency_problems(sub) == []
    sub["dataset"] = {"size": 960}  # without the population, 960/250 -> 4 batches still
    assert consistency_problems(sub) == []
    sub["dataset"] = {"size": 1100}
    assert consistency_problems(sub)


def test_ledger_param_and_missing_path(tmp_path):
    """`ledger:` may name the file; a path that does not exist is a usage error."""
    from audit.errors import UsageError

    other = tmp_path / "elsewhere"
    other.mkdir()
    path = write_ledger(_ledger(), other)
    metrics, _ = _run_check(tmp_path, ledger=str(path))
    assert metrics["epsilon"].value == pytest.approx(_ledger()["epsilon"])
    with pytest.raises(UsageError, match="not found"):
        _run_check(tmp_path, ledger=str(tmp_path / "nope.json"))


@pytest.mark.parametrize("max_eps,with_ledger,code", [(3, True, 0), (2, True, 1), (8, False, 1)])
def test_epsilon_gate_through_audit_run(max_eps, with_ledger, code, tiny_classifier_dir,
                                        tmp_path):
    """End to end: `audit run` with gate {metric: epsilon, max: E} passes when the ledger's
    epsilon (about 2.13 here) is below E and fails when it is above E or when there is no ledger."""
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
