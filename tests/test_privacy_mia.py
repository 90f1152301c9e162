"""membership_inference: AUC, ROC, TPR at low FPR, attack scores, and the check end to end.

Independent references: sklearn.metrics.roc_auc_score and roc_curve; hand-computed Min-K% and
zlib scores; a hand-worked 4-vs-4 example for TPR at a fixed FPR.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from audit.checks.privacy import membership_inference as mi
from audit.context import CheckContext
from tests.mock_models import shifted_lm


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_sklearn(seed: int) -> None:
    """AUC (Mann-Whitney with ties) equals sklearn.metrics.roc_auc_score, ties included."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    m = np.round(rng.normal(0.3, 1, 120), 1)  # rounding creates ties
    n = np.round(rng.normal(0.0, 1, 95), 1)
    y = np.r_[np.ones(len(m)), np.zeros(len(n))]
    assert mi.auc_score(m, n) == pytest.approx(roc_auc_score(y, np.r_[m, n]), abs=1e-12)


def test_roc_points_equal_sklearn_roc_curve() -> None:
    """Our ROC points equal sklearn.metrics.roc_curve(drop_intermediate=False)."""
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(5)
    m, n = np.round(rng.normal(1, 1, 50), 1), np.round(rng.normal(0, 1, 60), 1)
    fpr, tpr = mi.roc_points(m, n)
    s_fpr, s_tpr, _ = roc_curve(np.r_[np.ones(50), np.zeros(60)], np.r_[m, n],
                                drop_intermediate=False)
    np.testing.assert_allclose(fpr, s_fpr)
    np.testing.assert_allclose(tpr, s_tpr)


def test_tpr_at_fpr_hand_example() -> None:
    """Members 9, 8, 3, 1; non-members 7, 2, 0, -1. FPR 0: threshold 8 catches 2 of 4 members;
    FPR 0.25: threshold 3 admits the non-member 7 and catches 3 of 4; FPR 0.5: threshold 1
    admits 7 and 2 and catches all 4."""
    m, n = np.array([9.0, 8, 3, 1]), np.array([7.0, 2, 0, -1])
    assert mi.tpr_at_fpr(m, n, 0.0) == 0.5
    assert mi.tpr_at_fpr(m, n, 0.25) == 0.75
    assert mi.tpr_at_fpr(m, n, 0.5) == 1.0


def test_attack_scores_hand_computed() -> None:
    """loss = mean log-prob; min_k (k=40%) = mean of the 2 lowest of 5; zlib = sum / compressed
    bytes; reference = target mean - reference mean."""
    lp = [np.array([-1.0, -5.0, -2.0, -0.5, -4.0])]
    text = ["hello hello hello"]
    assert mi.attack_scores(lp, text, "loss", 0.4)[0] == pytest.approx(-2.5)
    assert mi.attack_scores(lp, text, "min_k", 0.4)[0] == pytest.approx(-4.5)
    assert mi.attack_scores(lp, text, "zlib", 0.4)[0] == pytest.approx(
        -12.5 / len(zlib.compress(b"hello hello hello")))
    ref = [np.array([-2.0, -2.0, -2.0, -2.0, -2.0])]
    assert mi.attack_scores(lp, text, "reference", 0.4, ref)[0] == pytest.approx(-0.5)


def _files(tmp_path: Path, n: int = 40) -> tuple[Path, Path]:
    words = "alpha beta gamma delta epsilon zeta eta theta".split()
    rng = np.random.default_rng(0)
    mem = [f"member {' '.join(rng.choice(words, 6))} {i}" for i in range(n)]
    non = [f"outsider {' '.join(rng.choice(words, 6))} {i}" for i in range(n)]
    (tmp_path / "m.txt").write_text("\n".join(mem))
    (tmp_path / "n.txt").write_text("\n".join(non))
    return tmp_path / "m.txt", tmp_path / "n.txt"


def _ctx(model, tmp_path: Path, models=None) -> CheckContext:
    return CheckContext(model=model, seed=0, rng=np.random.default_rng(0), base_dir=tmp_path,
                        quiet=True, check_id="mia", models=models or {})


def test_check_detects_a_leaky_model_and_not_a_fair_one(tmp_path: Path) -> None:
    """A model scoring members +8 nats/token higher (more than the whole [-8, -0.1] range of the
    hashed log-probs, so members and non-members cannot overlap) gives AUC exactly 1; an unbiased one gives AUC ~0.5
    (inside its bootstrap CI); ROC figure and by-attack groups are present."""
    m, n = _files(tmp_path)
    params = mi.MembershipParams(members=str(m), nonmembers=str(n), n_boot=200)
    leaky = mi.membership_inference(_ctx(shifted_lm(8.0), tmp_path), params)
    auc = next(x for x in leaky.metrics if x.name == "auc")
    assert auc.value == 1.0 and set(auc.by_group) == {"loss", "zlib", "min_k"}
    assert leaky.figures[0].kind == "roc" and len(leaky.figures[0].data["curves"]) == 3
    fair = mi.membership_inference(_ctx(shifted_lm(0.0), tmp_path),
                                   mi.MembershipParams(members=str(m), nonmembers=str(n),
                                                       attacks=["loss"], n_boot=200))
    fauc = fair.metrics[0]
    assert fauc.ci.low <= 0.5 <= fauc.ci.high or abs(fauc.value - 0.5) < 0.2


def test_reference_attack_cancels_shared_difficulty(tmp_path: Path) -> None:
    """With a reference model that has the same +10 nats leak as the target, the reference attack's
    AUC is 0.5 (the calibration removes everything) while the loss attack's is 1."""
    m, n = _files(tmp_path)
    target, ref = shifted_lm(10.0), shifted_lm(10.0, alias="ref")
    out = mi.membership_inference(_ctx(target, tmp_path, {"ref": ref}),
                                  mi.MembershipParams(members=str(m), nonmembers=str(n),
                                                      attacks=["loss"], reference_model="ref",
                                                      n_boot=200))
    groups = out.metrics[0].by_group
    assert groups["loss"].value == 1.0 and groups["reference"].value == 0.5


def test_bad_inputs_are_usage_errors(tmp_path: Path) -> None:
    """Missing file, unknown reference alias, and 'reference' without a model: one-line errors."""
    from audit.errors import UsageError

    m, n = _files(tmp_path)
    ctx = _ctx(shifted_lm(0.0), tmp_path)
    for params in [mi.MembershipParams(members="nope.txt", nonmembers=str(n)),
                   mi.MembershipParams(members=str(m), nonmembers=str(n), reference_model="x"),
                   mi.MembershipParams(members=str(m), nonmembers=str(n), attacks=["reference"])]:
        with pytest.raises(UsageError):
            mi.membership_inference(ctx, params)
