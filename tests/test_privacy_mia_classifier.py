"""membership_inference on a classifier: the loss attack (log p(true label)), checked against
scikit-learn's roc_auc_score on scores computed independently from the adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audit.checks.privacy.membership_inference import MembershipParams, membership_inference
from audit.context import CheckContext
from audit.errors import UsageError
from tests.mock_models import keyword_classifier

MEMBERS = [("i am so stressed about work", 1), ("calm day at home", 0), ("stressed and angry", 1),
           ("a happy calm walk", 0), ("money stress again", 1), ("relaxed family dinner", 0)]
NONMEMBERS = [("work is fine today", 1), ("angry about the car", 0), ("calm and happy", 1),
              ("stressed about money", 0), ("a quiet city", 1), ("sad news at home", 0)]


def _write(path: Path, rows: list[tuple[str, int]]) -> str:
    path.write_text("text,label\n" + "\n".join(f'"{t}",{y}' for t, y in rows) + "\n")
    return str(path)


def _ctx(model) -> CheckContext:
    return CheckContext(model=model, seed=0, rng=np.random.default_rng(0), quiet=True, check_id="mia")


def test_classifier_loss_attack_auc_equals_sklearn(tmp_path: Path) -> None:
    """AUC of log p(true label), members vs non-members, equals sklearn.metrics.roc_auc_score."""
    from sklearn.metrics import roc_auc_score

    model = keyword_classifier({"stressed": 2.0, "stress": 1.5, "calm": -2.0})
    params = MembershipParams(members=_write(tmp_path / "m.csv", MEMBERS),
                              nonmembers=_write(tmp_path / "n.csv", NONMEMBERS), n_boot=200)
    out = membership_inference(_ctx(model), params)
    rows = MEMBERS + NONMEMBERS
    probs = model.predict_proba([t for t, _ in rows])
    scores = np.log(probs[np.arange(len(rows)), [y for _, y in rows]])
    expected = roc_auc_score([1] * len(MEMBERS) + [0] * len(NONMEMBERS), scores)
    auc = next(m for m in out.metrics if m.name == "auc")
    assert auc.value == pytest.approx(expected, abs=1e-12)
    assert expected > 0.5  # the keyword model fits the members' labels better


def test_classifier_rejects_lm_only_attacks_and_unknown_labels(tmp_path: Path) -> None:
    """zlib/min_k need token log-probs; a label outside the model's classes is a usage error."""
    model = keyword_classifier({})
    members, nonmembers = _write(tmp_path / "m.csv", MEMBERS), _write(tmp_path / "n.csv", NONMEMBERS)
    with pytest.raises(UsageError, match="attacks"):
        membership_inference(_ctx(model), MembershipParams(members=members, nonmembers=nonmembers,
                                                           attacks=["zlib"]))
    bad = _write(tmp_path / "b.csv", [("text", 7), ("more text", 0)])
    with pytest.raises(UsageError, match="not a class"):
        membership_inference(_ctx(model), MembershipParams(members=bad, nonmembers=nonmembers))
