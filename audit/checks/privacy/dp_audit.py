"""dp_audit: a one-run empirical lower bound on epsilon, set against the ledger's claimed epsilon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.errors import CapabilityError, usage
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import Figure, Finding, Metric

NAME = "dp_audit"


class DPAuditParams(BaseModel):
    """Parameters of ``dp_audit``."""

    model_config = ConfigDict(extra="forbid")

    canaries: str | None = Field(None, description="audit_canaries.json written by `audit "
                                 "train-dp --audit-canaries M` (default: in the model's folder)")
    secret: str | None = Field(None, description="the inclusion secret of that run (default: "
                               "<model folder>.audit-secret.json beside the folder)")
    ledger: str | None = Field(None, description="privacy_ledger.json or its folder (default: "
                               "the model's folder)")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="confidence of the lower bound")
    delta: float | None = Field(None, gt=0, lt=1, description="delta of the claim tested "
                                "(default: the ledger's delta)")
    candidates: list[tuple[int, int]] | None = Field(
        None, min_length=1, description="(k+, k-) guess counts to try, Bonferroni-corrected "
        "(default: k = 1, 2, 5, 10, 20, 30, 50 % of the canaries, as (k, 0) and (k, k))")
    bins: int = Field(20, ge=5, le=100, description="bins of the score histogram figure")


def _count(flag: Any) -> Any:
    def aggregate(items: list[dict[str, Any]]) -> float | None:
        return float(sum(bool(flag(it)) for it in items)) if items else None
    return aggregate


# From the canary items alone: m, r, v and v / r of the best (k+, k-) candidate. eps_LB (and
# the gap to the ledger) also needs delta, the confidence and the number of candidates, and
# canary_auc needs the inclusion bits, which stay in the secret file: neither is declared.
ITEM_METRICS = {
    "canaries": ItemMetric(aggregate=_count(lambda it: True)),
    "guesses": ItemMetric(aggregate=_count(lambda it: it["guess"] != 0)),
    "correct_guesses": ItemMetric(aggregate=_count(lambda it: it["correct"] is True)),
    "guess_accuracy": ItemMetric(lambda it: None if it["guess"] == 0 else float(it["correct"]),
                                 kind="binary"),
}


@check(NAME, area="privacy", params=DPAuditParams,
       requires=[{"predict_proba"}, {"sequence_log_prob"}], item_metrics=ITEM_METRICS)
def dp_audit(ctx: Any, params: DPAuditParams) -> CheckOutput:
    """One-run DP audit: a 95 % lower bound on epsilon from canaries, next to the ledger's epsilon.

    Purpose: the ledger's epsilon comes from an accountant, i.e. from what the training code
    claims to do; a mis-hooked layer, an unclipped parameter or noise that is never added leaves
    it unchanged. This check asks the trained model itself: if it leaks more than the claimed
    epsilon allows, the DP implementation is broken. Gate `{metric: epsilon_lb_minus_ledger,
    max: 0}` fails on such a violation (and, failing closed, when either epsilon is undefined).
    Method: `audit train-dp --audit-canaries M` drew M random-token canaries (random labels for a
    classifier), included each independently with probability 1/2, and kept the inclusion bits in
    a secret file outside the model folder. The check scores every canary through the model's
    capabilities only (black box): a classifier's log-probability of the canary's label
    (`predict_proba`), a causal LM's log-probability of the canary text (`sequence_log_prob`);
    higher means "more likely trained on". For each candidate (k+, k-) it guesses "in" for the k+
    highest and "out" for the k- lowest scores, counts the r guesses and v correct ones, and
    computes the largest epsilon whose p-value P[Binomial(r, q) >= v] + 2 m delta alpha (q =
    e^eps/(1+e^eps), alpha = max_i P[v-i <= Binomial(r, q) < v]/i; Steinke et al. 2023, main
    theorem, Section 3) is below (1 - confidence)/K, Bonferroni over the K candidates; eps_LB is
    the largest over candidates. delta is the ledger's. The secret is checked against the
    SHA-256 commitments in the ledger before any guess is counted.
    Citation: Steinke, Nasr & Jagielski 2023, "Privacy Auditing with One (1) Training Run"
    (NeurIPS 2023, arXiv:2305.08846); Jagielski, Ullman & Oprea 2020, "Auditing Differentially
    Private Machine Learning: How Private is Private SGD?"; Nasr et al. 2021, "Adversary
    Instantiation: Lower Bounds for Differentially Private Machine Learning".
    Limitations: eps_LB is a lower bound that holds with 95 % confidence, not an estimate of the
    true epsilon: a correct DP-SGD run usually gives eps_LB far below its epsilon, and so does a
    broken one whose leak this black-box attack on the final model cannot see (white-box
    gradient canaries are much stronger; the bound is loose by design). eps_LB <= epsilon
    therefore does not certify the implementation; eps_LB > epsilon refutes it (with 5 % risk of
    a false alarm, counting the Bonferroni correction). A non-private run has no claim to refute;
    its eps_LB shows how strong the audit is. Only canary-level leakage is tested: examples that
    differ from canaries (duplicates, long texts) may leak differently. The number of included
    canaries is visible in the ledger's dataset size; only which ones is secret.
    """
    folder = _model_folder(ctx)
    canaries_path = _path(ctx, params.canaries, folder, _canary_file_name())
    if canaries_path is None or not canaries_path.exists():
        return _cannot_audit("the model has no audit canaries (train it with `audit train-dp "
                             "--audit-canaries 1000`)")
    from audit.dp.canaries import default_secret_path, read_canaries, read_secret
    from audit.dp.ledger import find_ledger, read_ledger

    public, canaries_sha = read_canaries(canaries_path)
    secret_path = (ctx.resolve_path(params.secret) if params.secret
                   else default_secret_path(canaries_path.parent))
    if not secret_path.exists():
        return _cannot_audit(f"the inclusion secret {secret_path} is missing (pass `secret:`)")
    secret, secret_sha = read_secret(secret_path, len(public["canaries"]))
    ledger_file = find_ledger(ctx.resolve_path(params.ledger)) if params.ledger else (
        find_ledger(folder) if folder else None)
    ledger = read_ledger(ledger_file) if ledger_file else None
    problem = commitment_problem(ledger, canaries_sha, secret, secret_sha)
    if problem:
        return _cannot_audit(problem)
    delta = _delta(params, ledger)
    scores = score_canaries(ctx, public)
    return _audit(params, ledger, public, np.asarray(secret["included"], bool), scores, delta)


def _canary_file_name() -> str:
    from audit.dp.canaries import CANARIES_FILE

    return CANARIES_FILE


def _model_folder(ctx: Any) -> Path | None:
    source = getattr(ctx.model, "source", None)
    return Path(source) if source and Path(source).is_dir() else None


def _path(ctx: Any, given: str | None, folder: Path | None, name: str) -> Path | None:
    if given:
        target = ctx.resolve_path(given)
        if not target.exists():
            raise usage(NAME, "canaries", f"{given} not found",
                        "pass the audit_canaries.json written by `audit train-dp`")
        return target / name if target.is_dir() else target
    return folder / name if folder else None


def commitment_problem(ledger: dict[str, Any] | None, canaries_sha: str, secret: dict[str, Any],
                       secret_sha: str) -> str | None:
    """Why the canaries/secret pair cannot be trusted against this ledger, or None."""
    if secret.get("canaries_sha256") != canaries_sha:
        return "the secret was written for another canary file (SHA-256 mismatch)"
    entry = (ledger or {}).get("audit_canaries")
    if ledger is None:
        return None
    if not isinstance(entry, dict):
        return "the privacy ledger records no audit canaries for this training run"
    if entry.get("canaries_sha256") != canaries_sha:
        return "the canary file differs from the one the ledger committed to (SHA-256 mismatch)"
    if entry.get("secret_sha256") != secret_sha:
        return "the secret differs from the one the ledger committed to (SHA-256 mismatch)"
    return None


def _delta(params: DPAuditParams, ledger: dict[str, Any] | None) -> float:
    if params.delta is not None:
        return float(params.delta)
    if ledger and ledger.get("delta") is not None:
        return float(ledger["delta"])
    raise usage(NAME, "delta", "no privacy ledger to take delta from",
                "pass `ledger:` (privacy_ledger.json of the run) or `delta:`")


def score_canaries(ctx: Any, public: dict[str, Any]) -> np.ndarray:
    """Membership score of every canary through the adapter (higher = more likely trained on):
    log p(label | text) for a classifier, log p(text) for a causal LM."""
    from audit.models.capabilities import has

    rows = public["canaries"]
    texts = [str(r["text"]) for r in rows]
    bar = ctx.progress(total=len(texts), desc="scoring canaries")
    try:
        if public.get("kind") == "classifier":
            if not has(ctx.model, "predict_proba"):
                raise CapabilityError("classifier canaries need predict_proba")
            probs = np.asarray(ctx.model.predict_proba(texts, progress=bar.update), float)
            labels = np.asarray([int(r["label"]) for r in rows])
            if probs.ndim != 2 or probs.shape[0] != len(texts) or labels.max() >= probs.shape[1]:
                raise usage(NAME, "canaries", f"labels up to {labels.max()} but the model "
                            f"gives {probs.shape[-1]} classes", "audit the model trained with "
                            "these canaries")
            return np.log(np.clip(probs[np.arange(len(texts)), labels], 1e-300, 1.0))
        if not has(ctx.model, "sequence_log_prob"):
            raise CapabilityError("causal-LM canaries need sequence_log_prob")
        return np.asarray(ctx.model.sequence_log_prob(texts, progress=bar.update), float)
    finally:
        bar.close()


def _audit(params: DPAuditParams, ledger: dict[str, Any] | None, public: dict[str, Any],
           included: np.ndarray, scores: np.ndarray, delta: float) -> CheckOutput:
    from audit.dp.one_run import audit_scores

    if not np.isfinite(scores).any():
        return _cannot_audit("no canary could be scored (every score is NaN or infinite)")
    outcome = audit_scores(scores, included, delta, params.confidence, params.candidates)
    eps_ledger = _ledger_epsilon(ledger)
    metrics = _metrics(outcome, eps_ledger, scores, included)
    findings = _findings(outcome, eps_ledger, ledger, scores)
    ids = [str(r["id"]) for r in public["canaries"]]
    items = [{"id": ids[j], "score": _num(scores[j]), "guess": int(outcome.guesses[j]),
              "correct": None if outcome.guesses[j] == 0 else
              bool((outcome.guesses[j] == 1) == included[j])} for j in range(len(ids))]
    figures = [_histogram(scores, included, params.bins), _summary_table(outcome, eps_ledger),
               _candidate_table(outcome)]
    return CheckOutput(metrics=metrics, findings=findings, figures=figures, items=items,
                       evidence=[{"canaries": len(ids), "kind": public.get("kind"),
                                  "delta": delta, "confidence": params.confidence}])


def _ledger_epsilon(ledger: dict[str, Any] | None) -> float | None:
    if not ledger or not ledger.get("dp") or ledger.get("epsilon") is None:
        return None
    return float(ledger["epsilon"])


def _metrics(outcome: Any, eps_ledger: float | None, scores: np.ndarray,
             included: np.ndarray) -> list[Metric]:
    from audit.checks.privacy.membership_inference import auc_score

    best = outcome.best
    lb = float(outcome.epsilon_lb)
    conf = f"{outcome.confidence:.0%}"
    finite = np.isfinite(scores)
    both = finite & included, finite & ~included
    auc = auc_score(scores[both[0]], scores[both[1]]) if both[0].any() and both[1].any() else None
    return [
        Metric(name="epsilon_lb", value=lb, higher_is_better=False,
               description=f"{conf} lower bound on epsilon (one-run audit, Bonferroni over "
               f"{len(outcome.candidates)} (k+, k-) candidates) at delta={outcome.delta:g}"),
        Metric(name="epsilon_ledger", value=eps_ledger, higher_is_better=False,
               description="epsilon claimed by the privacy ledger (undefined: no DP claim)"),
        Metric(name="epsilon_lb_minus_ledger",
               value=None if eps_ledger is None else lb - eps_ledger, higher_is_better=False,
               description="> 0: the model leaks more than the ledger claims"),
        Metric(name="canaries", value=float(outcome.m), higher_is_better=True,
               description="m: canaries, each included with probability 1/2"),
        Metric(name="guesses", value=float(best.r), higher_is_better=True,
               description=f"r: guesses of the best candidate (k+={best.k_plus}, "
               f"k-={best.k_minus})"),
        Metric(name="correct_guesses", value=float(best.v), higher_is_better=False,
               description="v: correct guesses of the best candidate"),
        Metric(name="guess_accuracy", value=best.v / best.r if best.r else None,
               higher_is_better=False, ideal=0.5, description="v / r"),
        Metric(name="canary_auc", value=auc, higher_is_better=False, ideal=0.5,
               description="AUC of the canary score, included vs excluded (0.5 = no leak)"),
    ]


def _findings(outcome: Any, eps_ledger: float | None, ledger: dict[str, Any] | None,
              scores: np.ndarray) -> list[Finding]:
    lb, best = outcome.epsilon_lb, outcome.best
    conf = f"{outcome.confidence:.0%}"
    counts = (f"{best.v} of {best.r} guesses correct on {outcome.m} canaries "
              f"(k+={best.k_plus}, k-={best.k_minus})")
    out = []
    if eps_ledger is None:
        claim = "no privacy ledger" if ledger is None else "a non-private training run"
        out.append(Finding(severity="warning", message=(
            f"No DP claim to test ({claim}). The model is not ({lb:.3g}, {outcome.delta:g})-DP "
            f"with {conf} confidence: {counts}.")))
    elif lb > eps_ledger:
        out.append(Finding(severity="critical", message=(
            f"The DP implementation leaks more than it claims: with {conf} confidence the model "
            f"is not ({lb:.3g}, {outcome.delta:g})-DP, yet the ledger claims epsilon "
            f"{eps_ledger:.3g}. {counts}. Clipping, noise or accounting is broken; do not "
            "rely on the ledger's guarantee.")))
    else:
        out.append(Finding(severity="info", message=(
            f"No violation found: eps_LB {lb:.3g} <= ledger epsilon {eps_ledger:.3g} ({counts}). "
            "A black-box lower bound; it does not certify the implementation.")))
    bad = int((~np.isfinite(scores)).sum())
    if bad:
        out.append(Finding(severity="warning", message=(
            f"{bad} canaries could not be scored (non-finite score); they were never guessed.")))
    return out


def _histogram(scores: np.ndarray, included: np.ndarray, bins: int) -> Figure:
    finite = np.isfinite(scores)
    edges = np.histogram_bin_edges(scores[finite], bins=bins)
    inc, _ = np.histogram(scores[finite & included], bins=edges)
    exc, _ = np.histogram(scores[finite & ~included], bins=edges)
    centers = [float(f"{(a + b) / 2:.6g}") for a, b in zip(edges[:-1], edges[1:])]
    return Figure(kind="line", title="Canary scores: included vs excluded",
                  data={"x": centers, "series": [{"name": "included", "y": inc.tolist()},
                                                 {"name": "excluded", "y": exc.tolist()}],
                        "xlabel": "score (log-probability; higher = more likely trained on)",
                        "ylabel": "canaries", "log_x": False},
                  caption="Two overlapping curves mean the model does not reveal which canaries "
                  "it was trained on.")


def _summary_table(outcome: Any, eps_ledger: float | None) -> Figure:
    best = outcome.best
    rows = [["epsilon (ledger)", "undefined" if eps_ledger is None else _num(eps_ledger)],
            [f"eps_LB ({outcome.confidence:.0%} lower bound)", _num(outcome.epsilon_lb)],
            ["delta", outcome.delta], ["canaries m", outcome.m], ["guesses r", best.r],
            ["correct v", best.v], ["accuracy v/r", _num(best.v / best.r) if best.r else None],
            ["k+ / k-", f"{best.k_plus} / {best.k_minus}"],
            ["significance per candidate", _num(outcome.significance_per_candidate)]]
    return Figure(kind="table", title="Ledger epsilon vs one-run lower bound",
                  data={"columns": ["quantity", "value"], "rows": rows})


def _candidate_table(outcome: Any) -> Figure:
    rows = [[c.k_plus, c.k_minus, c.r, c.v, _num(c.v / c.r) if c.r else None,
             _num(c.epsilon_lb)] for c in outcome.candidates]
    return Figure(kind="table", title="Every (k+, k-) candidate (Bonferroni-corrected)",
                  data={"columns": ["k+", "k-", "r", "v", "v/r", "eps_LB"], "rows": rows})


def _num(value: float) -> float | None:
    return float(f"{float(value):.6g}") if np.isfinite(value) else None


def _cannot_audit(reason: str) -> CheckOutput:
    metrics = [Metric(name=n, value=None, higher_is_better=False) for n in
               ("epsilon_lb", "epsilon_ledger", "epsilon_lb_minus_ledger")]
    return CheckOutput(metrics=metrics, findings=[Finding(severity="critical", message=(
        f"The DP claim cannot be audited: {reason}."))])
