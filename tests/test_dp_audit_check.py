"""dp_audit on scripted models: scoring through capabilities, the verdict, items, commitments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audit.context import CheckContext
from audit.dp.canaries import CanarySet, write_canaries
from audit.dp.ledger import LEDGER_SCHEMA, write_ledger
from audit.errors import CapabilityError
from audit.models.mock import MockAdapter
from tests.dp_helpers import gaussian_rdp_epsilon
from tests.test_dp_audit_bound import brute_force_eps


def _canaries(m: int, kind: str = "causal_lm", seed: int = 0) -> CanarySet:
    rng = np.random.default_rng(seed)
    texts = [f"w{i} " + " ".join(f"t{x}" for x in rng.integers(0, 999, 5)) for i in range(m)]
    labels = [int(x) for x in rng.integers(0, 2, m)] if kind == "classifier" else None
    return CanarySet(kind=kind, texts=texts, labels=labels, included=rng.random(m) < 0.5,
                     tokens=6)


def _setup(tmp_path: Path, canaries: CanarySet, dp: bool = True) -> Path:
    """A model folder with its canary file and ledger; the secret beside it (the default)."""
    folder = tmp_path / "model"
    folder.mkdir()
    entry = write_canaries(canaries, folder, tmp_path / "model.audit-secret.json")
    eps = gaussian_rdp_epsilon(8.0, 20, 1e-5) if dp else None  # about 2.45
    write_ledger({"schema": LEDGER_SCHEMA, "dp": dp, "epsilon": eps, "delta": 1e-5,
                  "audit_canaries": entry}, folder)
    return folder


def _run(folder: Path, model: MockAdapter, **params):
    from audit.checks.privacy.dp_audit import DPAuditParams, dp_audit

    ctx = CheckContext(model=model, seed=0, rng=np.random.default_rng(0), base_dir=folder,
                       quiet=True, check_id="dp-audit")
    out = dp_audit(ctx, DPAuditParams(**params))
    return {m.name: m.value for m in out.metrics}, out


def _lm(folder: Path, scores_by_text: dict[str, float]) -> MockAdapter:
    def handler(call):
        assert call.method == "sequence_log_prob"
        return np.array([scores_by_text[t] for t in call.args["texts"]], float)
    return MockAdapter(handler, capabilities={"sequence_log_prob"}, source=str(folder))


def test_leaky_lm_is_a_violation_and_items_rederive_the_bound(tmp_path):
    """A model whose log-probability gives away inclusion (+3 nats, noise 1) against a ledger
    claiming epsilon 2.45: eps_LB exceeds it, the gap metric is positive and a critical finding
    says the implementation leaks more than it claims. From the items alone (guess, correct) and
    the candidate count, the test recomputes r, v and eps_LB with its own brute-force p-value."""
    can = _canaries(600)
    folder = _setup(tmp_path, can)
    rng = np.random.default_rng(1)
    scores = {t: -30.0 + 3.0 * inc + rng.normal(0, 1) for t, inc in zip(can.texts, can.included)}
    model = _lm(folder, scores)
    metrics, out = _run(folder, model)
    assert [c.args["texts"] for c in model.calls] == [can.texts]  # every canary, in order
    assert metrics["epsilon_lb"] > metrics["epsilon_ledger"] + 0.5
    assert metrics["epsilon_lb_minus_ledger"] == pytest.approx(
        metrics["epsilon_lb"] - metrics["epsilon_ledger"])
    assert any(f.severity == "critical" and "leaks more than it claims" in f.message
               for f in out.findings)
    assert metrics["canary_auc"] > 0.9
    items = out.items
    assert len(items) == 600 and len({i["id"] for i in items}) == 600
    r = sum(i["guess"] != 0 for i in items)
    v = sum(i["correct"] is True for i in items)
    assert (r, v) == (metrics["guesses"], metrics["correct_guesses"])
    k = len(next(f for f in out.figures if f.title.startswith("Every")).data["rows"])
    assert metrics["epsilon_lb"] == pytest.approx(
        brute_force_eps(600, r, v, 1e-5, 0.05 / k), abs=2e-4)
    truth = dict(zip([f"canary-{j:05d}" for j in range(600)], can.included))
    assert all(i["correct"] == ((i["guess"] == 1) == truth[i["id"]]) for i in items
               if i["guess"])
    hist = next(f for f in out.figures if f.kind == "line")
    assert [s["name"] for s in hist.data["series"]] == ["included", "excluded"]
    assert sum(hist.data["series"][0]["y"]) == int(can.included.sum())


def test_scores_without_signal_find_no_violation(tmp_path):
    """Scores independent of inclusion: eps_LB stays below the ledger's epsilon (gap < 0), the
    finding is informational and says the bound does not certify the implementation."""
    can = _canaries(400, seed=2)
    folder = _setup(tmp_path, can)
    rng = np.random.default_rng(5)
    metrics, out = _run(folder, _lm(folder, {t: rng.normal() for t in can.texts}))
    assert metrics["epsilon_lb"] < 1.0 and metrics["epsilon_lb_minus_ledger"] < 0
    assert [f.severity for f in out.findings] == ["info"]
    assert "does not certify" in out.findings[0].message


def test_classifier_canaries_score_the_label_probability(tmp_path):
    """Classifier canaries: the score is log p(canary's label) from predict_proba; a model that
    puts 0.99 on the labels of included canaries and 0.5 elsewhere is caught."""
    can = _canaries(300, kind="classifier", seed=3)
    folder = _setup(tmp_path, can)
    truth = dict(zip(can.texts, zip(can.included, can.labels)))

    def handler(call):
        rows = []
        for text in call.args["texts"]:
            inc, label = truth[text]
            p = 0.99 if inc else 0.5
            rows.append([p, 1 - p] if label == 0 else [1 - p, p])
        return np.array(rows)

    model = MockAdapter(handler, kind="classifier", capabilities={"predict_proba"},
                        source=str(folder))
    metrics, out = _run(folder, model)
    item = out.items[0]
    inc0 = can.included[0]
    assert item["score"] == pytest.approx(np.log(0.99 if inc0 else 0.5), rel=1e-6)
    assert metrics["epsilon_lb"] > 2.45 and metrics["guess_accuracy"] == 1.0


def test_classifier_canaries_need_predict_proba(tmp_path):
    """A causal-LM adapter cannot score classifier canaries: CapabilityError (recorded as
    skipped with the reason), never a silent zero."""
    can = _canaries(50, kind="classifier")
    folder = _setup(tmp_path, can)
    with pytest.raises(CapabilityError, match="predict_proba"):
        _run(folder, _lm(folder, {t: 0.0 for t in can.texts}))


def _expect_cannot_audit(metrics, out, words):
    assert metrics["epsilon_lb"] is None and metrics["epsilon_lb_minus_ledger"] is None
    assert out.findings[0].severity == "critical" and words in out.findings[0].message


def test_tampered_or_missing_secret_and_canaries_cannot_be_audited(tmp_path):
    """Fail closed: a secret with one bit flipped, a canary file edited after training, a
    missing secret, a ledger without canary commitments, or no canaries at all: eps_LB is
    undefined with a critical finding; the model is never scored against a secret that may be
    wrong."""
    can = _canaries(100)
    folder = _setup(tmp_path, can)
    model = _lm(folder, {t: 0.0 for t in can.texts})
    secret_path = tmp_path / "model.audit-secret.json"
    original = secret_path.read_text()
    data = json.loads(original)
    data["included"][0] = 1 - data["included"][0]
    secret_path.write_text(json.dumps(data, sort_keys=True) + "\n")
    _expect_cannot_audit(*_run(folder, model), "secret differs")
    assert model.calls == []
    secret_path.write_text(original)
    path = folder / "audit_canaries.json"
    path.write_text(path.read_text().replace(can.texts[0], "something else"))
    _expect_cannot_audit(*_run(folder, model), "another canary file")
    secret_path.unlink()
    _expect_cannot_audit(*_run(folder, model), "secret")
    path.unlink()
    _expect_cannot_audit(*_run(folder, model), "no audit canaries")

    other = tmp_path / "other"
    other.mkdir()
    folder2 = _setup(other, can)
    write_ledger({"schema": LEDGER_SCHEMA, "dp": True, "epsilon": 1.0, "delta": 1e-5}, folder2)
    _expect_cannot_audit(*_run(folder2, _lm(folder2, {t: 0.0 for t in can.texts})),
                         "records no audit canaries")


def test_non_private_run_has_no_claim_to_compare(tmp_path):
    """A --no-dp ledger: eps_LB is measured, the ledger epsilon and the gap are undefined (so a
    gate on the gap fails closed) and a warning says there is no claim to test."""
    can = _canaries(300, seed=4)
    folder = _setup(tmp_path, can, dp=False)
    scores = {t: 5.0 * inc for t, inc in zip(can.texts, can.included)}
    metrics, out = _run(folder, _lm(folder, scores))
    assert metrics["epsilon_lb"] > 3 and metrics["epsilon_ledger"] is None
    assert metrics["epsilon_lb_minus_ledger"] is None
    assert out.findings[0].severity == "warning" and "No DP claim" in out.findings[0].message


def test_explicit_candidates_and_confidence(tmp_path):
    """One explicit (k+, k-) candidate is tested at the full significance; a higher confidence
    gives a smaller bound (both compared with the test's brute-force bound)."""
    can = _canaries(300, seed=6)
    folder = _setup(tmp_path, can)
    scores = {t: 5.0 * inc for t, inc in zip(can.texts, can.included)}
    m95, _ = _run(folder, _lm(folder, scores), candidates=[(50, 50)])
    m99, _ = _run(folder, _lm(folder, scores), candidates=[(50, 50)], confidence=0.99)
    assert (m95["guesses"], m95["correct_guesses"]) == (100, 100)
    assert m95["epsilon_lb"] == pytest.approx(brute_force_eps(300, 100, 100, 1e-5, 0.05),
                                              abs=2e-4)
    assert m99["epsilon_lb"] == pytest.approx(brute_force_eps(300, 100, 100, 1e-5, 0.01),
                                              abs=2e-4)
    assert m99["epsilon_lb"] < m95["epsilon_lb"]


def _dp_checks(eps_ledger, eps_lb):
    from audit.results import CheckResult, Metric

    guarantee = CheckResult(id="dp-guarantee", check="dp_guarantee", area="privacy", metrics=[
        Metric(name="epsilon", value=eps_ledger, higher_is_better=False),
        Metric(name="delta", value=1e-5, higher_is_better=False)])
    audit = CheckResult(id="dp-audit", check="dp_audit", area="privacy",
                        params={"confidence": 0.95}, metrics=[
        Metric(name="epsilon_lb", value=eps_lb, higher_is_better=False),
        Metric(name="epsilon_ledger", value=eps_ledger, higher_is_better=False),
        Metric(name="canaries", value=1000.0, higher_is_better=True),
        Metric(name="guesses", value=600.0, higher_is_better=True),
        Metric(name="correct_guesses", value=597.0, higher_is_better=False)])
    return [guarantee, audit]


def _training_procedure(card: str) -> str:
    return card.split("### Training Procedure\n", 1)[1].split("\n## ", 1)[0]


def test_model_card_states_both_epsilons():
    """The card's Training Procedure states the ledger's epsilon and the audit's lower bound with
    its counts, and says VIOLATED when the bound exceeds the claim; without DP checks it keeps
    "More information needed"."""
    from audit.report import render_model_card
    from tests.report_fixtures import rich_run

    run = rich_run()
    run.checks = [c for c in run.checks if not c.check.startswith("dp_")]
    plain = _training_procedure(render_model_card(run))
    run.checks += _dp_checks(1.0, 0.2)
    text = _training_procedure(render_model_card(run))
    assert "epsilon = 1 at delta = 1.00e-05" in text
    assert "epsilon lower bound 0.2 (95% one-run audit, 597 of 600 guesses correct on 1,000 " \
        "canaries) vs ledger epsilon 1: no violation found" in text
    run.checks = run.checks[:-2] + _dp_checks(1.0, 4.5)
    assert "epsilon lower bound 4.5" in (t := _training_procedure(render_model_card(run)))
    assert "VIOLATED" in t
    assert "More information needed" in plain and "epsilon" not in plain
