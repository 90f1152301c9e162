"""membership_inference: can an attacker tell training texts from unseen ones by the model's scores?"""

from __future__ import annotations

import zlib
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.checks.privacy.common import read_texts
from audit.errors import usage
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import ConfidenceInterval, Figure, Finding, GroupValue, Metric
from audit.stats import percentile_ci

NAME = "membership_inference"
Attack = Literal["loss", "zlib", "min_k", "reference"]
FPR_LEVELS = {"tpr_at_1pct_fpr": 0.01, "tpr_at_0_1pct_fpr": 0.001}


class MembershipParams(BaseModel):
    """Parameters of ``membership_inference``."""

    model_config = ConfigDict(extra="forbid")

    members: str = Field(..., description="texts used in training (.txt lines, .jsonl, .json; "
                         "for a classifier a CSV/JSONL with text and label columns)")
    nonmembers: str = Field(..., description="texts from the same distribution, not trained on")
    attacks: list[Attack] | None = Field(None, min_length=1, description="default: loss, zlib, "
                                         "min_k for a causal LM; loss for a classifier")
    label_field: str = Field("label", description="label column (classifiers only)")
    reference_model: str | None = Field(None, description="alias of a reference LM (models:)")
    min_k_fraction: float = Field(0.2, gt=0, le=1, description="k of Min-K% Prob, as a fraction")
    max_examples: int | None = Field(None, ge=10, description="use at most N texts of each file")
    n_boot: int = Field(1000, ge=100, le=100_000)
    field: str = Field("text", description="field holding the text in .jsonl/.json files")


# --------------------------------------------------------------------------- pure computations
def auc_score(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """ROC AUC = P(member score > non-member score) + 0.5 P(tie) (Mann-Whitney U / (n1 n0))."""
    from scipy.stats import rankdata

    m, n = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    ranks = rankdata(np.concatenate([m, n]))
    u = ranks[:len(m)].sum() - len(m) * (len(m) + 1) / 2
    return float(u / (len(m) * len(n)))


def roc_points(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every distinct threshold, from (0, 0) to (1, 1); higher score = member."""
    scores = np.concatenate([member_scores, nonmember_scores])
    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]
    tps = np.cumsum(labels)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    tpr = np.r_[0.0, tps / max(len(member_scores), 1)]
    fpr = np.r_[0.0, fps / max(len(nonmember_scores), 1)]
    return fpr, tpr


def tpr_at_fpr(member_scores: np.ndarray, nonmember_scores: np.ndarray, max_fpr: float) -> float:
    """Largest TPR among thresholds whose FPR is at most ``max_fpr``."""
    fpr, tpr = roc_points(np.asarray(member_scores, float), np.asarray(nonmember_scores, float))
    return float(tpr[fpr <= max_fpr + 1e-12].max())


def attack_scores(lps: list[np.ndarray], texts: list[str], attack: str, k_frac: float,
                  ref_lps: list[np.ndarray] | None = None) -> np.ndarray:
    """Membership score per text (higher = more likely a member) from token log-probs.

    loss: mean token log-prob (Yeom et al. 2018); zlib: total log-prob / zlib-compressed bytes
    (Carlini et al. 2021); min_k: mean of the k% lowest token log-probs (Shi et al. 2023);
    reference: mean log-prob under the target minus under the reference model (Carlini et al.
    2021; Mireshghallah et al. 2022).
    """
    if attack not in ("loss", "zlib", "min_k", "reference") or (
            attack == "reference" and ref_lps is None):
        raise ValueError(f"unknown attack {attack!r}")
    refs = ref_lps if ref_lps is not None else [None] * len(lps)
    return np.array([_one_score(lp, t, attack, k_frac, r) for lp, t, r in zip(lps, texts, refs)])


def _one_score(lp: np.ndarray, text: str, attack: str, k_frac: float,
               ref: np.ndarray | None) -> float:
    """One text's membership score; NaN (undefined) when the text has no scored token."""
    if lp.size == 0 or (attack == "reference" and (ref is None or ref.size == 0)):
        return float("nan")
    if attack == "loss":
        return float(lp.mean())
    if attack == "zlib":
        return float(lp.sum() / len(zlib.compress(text.encode("utf-8"))))
    if attack == "min_k":
        return float(np.sort(lp)[:max(1, int(len(lp) * k_frac))].mean())
    return float(lp.mean() - ref.mean())  # type: ignore[union-attr]


def bootstrap_metrics(m: np.ndarray, n: np.ndarray, rng: np.random.Generator,
                      n_boot: int) -> dict[str, ConfidenceInterval]:
    """Stratified percentile-bootstrap CIs (members and non-members resampled separately)."""
    reps: dict[str, list[float]] = {"auc": [], **{k: [] for k in FPR_LEVELS}}
    for _ in range(n_boot):
        bm = m[rng.integers(0, len(m), len(m))]
        bn = n[rng.integers(0, len(n), len(n))]
        reps["auc"].append(auc_score(bm, bn))
        for key, level in FPR_LEVELS.items():
            reps[key].append(tpr_at_fpr(bm, bn, level))
    return {k: percentile_ci(np.array(v)) for k, v in reps.items()}


# --------------------------------------------------------------------------- items
ITEM_TEXT_CHARS = 200
"""Characters of each text kept in its item."""


def mia_items(members: list[str], nonmembers: list[str], scores: dict[str, np.ndarray],
              labels: list[int] | None = None, show_pii: bool = False) -> list[dict[str, Any]]:
    """One record per text: ``member<i>`` / ``nonmember<i>`` (its position in its file), the
    membership, each attack's score (None when undefined: the text was excluded), the attacks
    in the check's order (ties in AUC are broken by it) and the start of the text (PII-redacted
    unless ``show_pii``, then cut)."""
    from audit.pii import redact

    attacks = list(scores)
    out = []
    for i, text in enumerate(members + nonmembers):
        member = i < len(members)
        item = {"id": f"member{i}" if member else f"nonmember{i - len(members)}",
                "member": member, "attacks": attacks,
                "scores": {a: _finite(scores[a][i]) for a in attacks},
                "text": (text if show_pii else redact(text))[:ITEM_TEXT_CHARS]}
        if labels is not None:
            item["label"] = int(labels[i])
        out.append(item)
    return out


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def attack_table(items: list[dict[str, Any]]) -> dict[str, dict[str, float]] | None:
    """Each attack's AUC and TPRs at low FPR over the texts every attack could score (the
    check's exclusion rule), from items alone; None when a side is empty."""
    if not items:
        return None
    attacks = items[0]["attacks"]
    kept = [it for it in items if all(it["scores"].get(a) is not None for a in attacks)]
    table = {}
    for a in attacks:
        m = np.array([it["scores"][a] for it in kept if it["member"]], float)
        n = np.array([it["scores"][a] for it in kept if not it["member"]], float)
        if not (m.size and n.size):
            return None
        table[a] = {"auc": auc_score(m, n),
                    **{k: tpr_at_fpr(m, n, v) for k, v in FPR_LEVELS.items()}}
    return table


def _strongest(key: str) -> Any:
    """The metric ``key`` of the attack with the highest AUC (the check's order breaks ties)."""
    def aggregate(items: list[dict[str, Any]]) -> float | None:
        table = attack_table(items)
        if table is None:
            return None
        return table[max(table, key=lambda a: table[a]["auc"])][key]
    return aggregate


ITEM_METRICS = {key: ItemMetric(aggregate=_strongest(key)) for key in ("auc", *FPR_LEVELS)}


# --------------------------------------------------------------------------- the check
@check(NAME, area="privacy", params=MembershipParams,
       requires=[{"sequence_log_prob"}, {"predict_proba"}], item_metrics=ITEM_METRICS)
def membership_inference(ctx: Any, params: MembershipParams) -> CheckOutput:
    """Membership inference: how well the model's likelihoods separate training texts from others.

    Purpose: estimate how much an attacker with query access learns about whether a given text
    was in the training data, the basic privacy leak that differential privacy bounds.
    Method: every member and non-member text is scored with the model's token log-probabilities.
    Attacks (higher score = "member"): `loss` (mean token log-probability; Yeom et al. 2018),
    `zlib` (total log-probability divided by the zlib-compressed length; Carlini et al. 2021),
    `min_k` (mean of the k% least likely tokens, Min-K% Prob; Shi et al. 2023) and, when a
    reference model alias is given, `reference` (target minus reference mean log-probability;
    Carlini et al. 2021). For a classifier (members/non-members as labelled CSV/JSONL) the `loss`
    attack scores each text by the log-probability of its true label (Yeom et al. 2018). For
    each attack: ROC AUC (Mann-Whitney), TPR at 1% and 0.1% FPR (Carlini
    et al. 2022's low-FPR regime), each with a 95% stratified percentile-bootstrap CI. Metrics
    `auc`, `tpr_at_1pct_fpr` and `tpr_at_0_1pct_fpr` report the strongest attack, with every
    attack in by_group; ROC curves are in the figure.
    Citation: Shi et al. (2023), "Detecting Pretraining Data from Large Language Models" (Min-K%
    Prob), ICLR 2024; Carlini et al. (2021), "Extracting Training Data from Large Language Models",
    USENIX Security; Carlini et al. (2022), "Membership Inference Attacks From First Principles",
    IEEE S&P; Yeom et al. (2018), CSF.
    Limitations: AUC near 0.5 shows these attacks fail, not that no attack succeeds; members and
    non-members must come from the same distribution, or the AUC measures the distribution shift
    instead (Duan et al. 2024); TPR at 0.1% FPR needs well over 1,000 non-members to be more than
    0 or 1/n; the maximum over attacks is optimistically biased for small samples.
    """
    if "sequence_log_prob" not in ctx.model.capabilities:
        return _classifier_attack(ctx, params)
    members = read_texts(ctx, params.members, f"{NAME}.members", params.field, 2)
    nonmembers = read_texts(ctx, params.nonmembers, f"{NAME}.nonmembers", params.field, 2)
    if params.max_examples:
        members, nonmembers = members[:params.max_examples], nonmembers[:params.max_examples]
    attacks = _attack_list(ctx, params)
    texts = members + nonmembers
    lps = _token_lps(ctx.model, texts)
    ref = _token_lps(ctx.models[params.reference_model], texts) if "reference" in attacks else None
    scores = {a: attack_scores(lps, texts, a, params.min_k_fraction, ref) for a in attacks}
    out = _evaluate_scored(ctx, params, scores, len(members), len(nonmembers))
    out.items = mia_items(members, nonmembers, scores, show_pii=bool(ctx.show_pii))
    return out


def _evaluate_scored(ctx: Any, params: MembershipParams, scores: dict[str, np.ndarray],
                     n_members: int, n_nonmembers: int) -> CheckOutput:
    """Drop texts without a defined score (no scored token: an empty or one-token text would
    otherwise look like a perfect member) with a finding, then evaluate."""
    ok = np.logical_and.reduce([np.isfinite(s) for s in scores.values()])
    is_member = np.arange(len(ok)) < n_members
    kept_m, kept_n = int((ok & is_member).sum()), int((ok & ~is_member).sum())
    if kept_m < 2 or kept_n < 2:
        raise usage(NAME, "members/nonmembers", f"only {kept_m} members and {kept_n} non-members "
                    "have a scored token", "give longer texts (two or more tokens each)")
    out = _evaluate(ctx, params, {a: s[ok] for a, s in scores.items()}, kept_m, kept_n)
    dropped = len(ok) - int(ok.sum())
    if dropped:
        out.findings.append(Finding(severity="warning", message=(
            f"{dropped} texts ({n_members - kept_m} members, {n_nonmembers - kept_n} non-members) "
            "had no scored token and were excluded: their membership score is undefined.")))
    return out


def _evaluate(ctx: Any, params: MembershipParams, scores: dict[str, np.ndarray], n_members: int,
              n_nonmembers: int) -> CheckOutput:
    """AUC, TPR at low FPR, bootstrap CIs and ROC points of each attack's scores."""
    results = {}
    for attack, s in scores.items():
        m, n = s[:n_members], s[n_members:]
        cis = bootstrap_metrics(m, n, ctx.sub_rng(f"boot-{attack}"), params.n_boot)
        results[attack] = {"auc": auc_score(m, n), "cis": cis, "roc": roc_points(m, n),
                           **{k: tpr_at_fpr(m, n, lvl) for k, lvl in FPR_LEVELS.items()}}
    return _output(results, n_members, n_nonmembers)


def _classifier_attack(ctx: Any, params: MembershipParams) -> CheckOutput:
    """Loss attack on a classifier: score = log p(true label | text)."""
    if params.attacks and set(params.attacks) != {"loss"}:
        raise usage(NAME, "attacks", f"{sorted(set(params.attacks) - {'loss'})} need a language "
                    "model's token log-probabilities", "use attacks: [loss] for a classifier")
    sets = [_labelled(ctx, getattr(params, part), part, params) for part in ("members", "nonmembers")]
    texts = sets[0][0] + sets[1][0]
    labels = np.array(sets[0][1] + sets[1][1])
    probs = np.asarray(ctx.model.predict_proba(texts), dtype=float)
    true = probs[np.arange(len(texts)), labels]
    scores = {"loss": np.log(np.clip(true, 1e-12, 1.0))}
    out = _evaluate(ctx, params, scores, len(sets[0][0]), len(sets[1][0]))
    out.items = mia_items(sets[0][0], sets[1][0], scores, labels=labels.tolist(),
                          show_pii=bool(ctx.show_pii))
    return out


def _labelled(ctx: Any, path: str, part: str, params: MembershipParams) -> tuple[list[str], list[int]]:
    """Texts and label ids (ints, or names from the model's labels) of a labelled file."""
    from audit.io import read_table

    where = f"{NAME}.{part}"
    frame = read_table(ctx.resolve_path(path), where)
    missing = [c for c in (params.field, params.label_field) if c not in frame.columns]
    if missing:
        raise usage(where, path, f"no column {missing}", "set `field:` and `label_field:`")
    frame = frame.head(params.max_examples) if params.max_examples else frame
    names = list(getattr(ctx.model, "labels", []))
    ids = []
    for raw in frame[params.label_field].tolist():
        if str(raw) in names:
            ids.append(names.index(str(raw)))
        elif str(raw).lstrip("-").isdigit() and 0 <= int(raw) < max(len(names), 2):
            ids.append(int(raw))
        else:
            raise usage(where, params.label_field, f"label {raw!r} is not a class of the model",
                        f"use class ids 0..{len(names) - 1} or names {names}")
    return [str(t) for t in frame[params.field].tolist()], ids


def _attack_list(ctx: Any, params: MembershipParams) -> list[str]:
    attacks = list(dict.fromkeys(params.attacks or ["loss", "zlib", "min_k"]))
    if params.reference_model:
        if params.reference_model not in ctx.models:
            raise usage(NAME, "reference_model", f"no model alias {params.reference_model!r}",
                        f"use one of {', '.join(sorted(ctx.models)) or 'the suite models: aliases'}")
        if "reference" not in attacks:
            attacks.append("reference")
    elif "reference" in attacks:
        raise usage(NAME, "attacks", "the reference attack needs reference_model",
                    "name a reference model alias, or drop 'reference'")
    return attacks


def _token_lps(adapter: Any, texts: list[str]) -> list[np.ndarray]:
    return [np.asarray(lp, dtype=float) for lp in adapter.token_log_probs(texts)]


def _output(results: dict[str, dict[str, Any]], n_m: int, n_n: int) -> CheckOutput:
    best = max(results, key=lambda a: results[a]["auc"])
    metrics = []
    for key, label in [("auc", "ROC AUC"), ("tpr_at_1pct_fpr", "TPR at 1% FPR"),
                       ("tpr_at_0_1pct_fpr", "TPR at 0.1% FPR")]:
        groups = {a: GroupValue(value=r[key], ci=r["cis"][key], n=n_m + n_n)
                  for a, r in results.items()}
        metrics.append(Metric(name=key, value=results[best][key], ci=results[best]["cis"][key],
                              higher_is_better=False, by_group=groups,
                              description=f"{label} of the strongest attack ({best})"))
    curves = [{"name": a, "fpr": _thin(r["roc"][0]), "tpr": _thin(r["roc"][1]), "auc": r["auc"]}
              for a, r in results.items()]
    auc = results[best]["auc"]
    findings = [Finding(message=f"{n_m} members vs {n_n} non-members; strongest attack {best}: "
                        f"AUC {auc:.3f}, TPR at 1% FPR {results[best]['tpr_at_1pct_fpr']:.3f}.")]
    if auc >= 0.6:
        findings.append(Finding(severity="critical" if auc >= 0.75 else "warning",
                                message=f"Membership is detectable (AUC {auc:.2f}): the model "
                                "scores its training texts measurably higher than unseen ones."))
    if n_n < 1000:
        findings.append(Finding(message=f"TPR at 0.1% FPR is coarse with {n_n} non-members "
                                "(FPR moves in steps of 1/n)."))
    fig = Figure(kind="roc", title="Membership inference ROC", data={"curves": curves},
                 caption="Dashed diagonal: a random guess (AUC 0.5).")
    return CheckOutput(metrics=metrics, findings=findings, figures=[fig])


def _thin(values: np.ndarray, max_points: int = 201) -> list[float]:
    """At most ``max_points`` evenly spaced points of a curve (keeping both ends)."""
    idx = np.unique(np.linspace(0, len(values) - 1, min(len(values), max_points)).round().astype(int))
    return [round(float(v), 5) for v in np.asarray(values)[idx]]
