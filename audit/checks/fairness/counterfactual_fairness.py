"""counterfactual_fairness: does swapping an identity term change a text classifier's decision?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.checks.fairness import identity as I
from audit.errors import usage
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import ConfidenceInterval, Figure, Finding, GroupValue, Metric

NAME = "counterfactual_fairness"
ITEM_TEXT_CHARS = 300


class CounterfactualParams(BaseModel):
    """Parameters of ``counterfactual_fairness``."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = Field(None, description="CSV/Parquet/JSONL of real inputs (text column)")
    text_column: str = "text"
    max_texts: int = Field(200, ge=1, description="real inputs used (first N with a mention)")
    templates: str | None = Field("stress", description="shipped template task (stress, "
                                  "toxicity) or null for real inputs only")
    templates_file: str | None = None
    lexicon: str | None = Field(None, description="identity lexicon JSON (default: shipped)")
    axes: list[str] | None = None
    positive_label: str | int = Field(1, description="class whose probability is the score")
    threshold: float = Field(0.5, gt=0, lt=1)
    max_variants_per_text: int = Field(8, ge=1)
    n_boot: int = Field(1000, ge=0, le=100_000)
    ci_level: float = Field(0.95, gt=0.5, lt=1.0)
    evidence_rows: int = Field(10, ge=0, le=200)


@dataclass
class Pairs:
    """Original/counterfactual text pairs with their axis, swap, source and cluster (unit)."""

    original: list[str]
    counterfactual: list[str]
    axis: list[str]
    swap: list[str]
    source: list[str]
    cluster: list[str]


def _flipped_in(source: str | None) -> ItemMetric:
    """Flip rate over the pairs of one source (all pairs when None), a binary mean."""
    return ItemMetric(lambda it: None if source and it["source"] != source
                      else float(it["flipped"]), kind="binary")


ITEM_METRICS = {
    "flip_rate": _flipped_in(None),
    "mean_abs_score_change": ItemMetric(lambda it: it["abs_change"]),
    "max_abs_score_change": ItemMetric(aggregate=lambda items: max(
        (it["abs_change"] for it in items), default=None)),
    "flip_rate_inputs": _flipped_in("input"),
    "flip_rate_templates": _flipped_in("template"),
}


@check(NAME, area="fairness", params=CounterfactualParams, requires=[{"predict_proba"}],
       item_metrics=ITEM_METRICS)
def counterfactual_fairness(ctx: Any, params: CounterfactualParams) -> CheckOutput:
    """Counterfactual identity swaps: how often a decision flips when only an identity term changes.

    Purpose: a text classifier should not change its decision (or its score much) when a text
    mentions a different gender, race, religion, sexual orientation, disability, age or
    nationality and nothing else changes; flips are direct evidence of identity-term sensitivity.
    Method: counterfactual pairs come from (a) real inputs: every identity term of the shipped
    lexicon found in a text is swapped, one pass per target group (gender: all female and male
    forms swapped at once, as in counterfactual data augmentation), ambiguous words such as "old"
    or "white" are not swapped in real text; and (b) templates: every shipped template filled with
    each pair of groups of an axis. The model scores both texts; a flip is a change of the
    thresholded positive-class decision. Per axis (by_group): flip rate, mean and max absolute
    change of the positive-class probability, with 95% percentile-bootstrap CIs that resample the
    sampling units (input texts or templates), since pairs from one text are not independent.
    Worst pairs are kept as evidence (PII-redacted).
    Citation: Garg et al. (2019), "Counterfactual Fairness in Text Classification through
    Robustness", AIES; Kusner et al. (2017), "Counterfactual Fairness"; Lu et al. (2018),
    "Gender Bias in Neural Natural Language Processing" (counterfactual data augmentation); Dixon
    et al. (2018) for identity-term templates.
    Limitations: word-list swaps are English-only and can produce ungrammatical or implausible
    text (e.g. "her" is always swapped to "his", names are not swapped); a flip shows sensitivity
    to a term, not that either decision is wrong; real-input results depend on which identity
    terms the data happens to contain; counterfactual invariance is one notion of fairness among
    several and can conflict with group metrics.
    """
    lexicon = I.load_lexicon(_path(ctx, params.lexicon), params.axes)
    pairs = _pairs(ctx, params, lexicon)
    if not pairs.original:
        raise usage(NAME, "data/templates", "no counterfactual pair could be built",
                    "give real inputs that mention identity terms, or set templates: stress")
    before, after = _score_pairs(ctx, pairs, params)
    return _report(ctx, pairs, before, after, params)


def _path(ctx: Any, value: str | None) -> str | None:
    return str(ctx.resolve_path(value)) if value else None


def _pairs(ctx: Any, params: CounterfactualParams, lexicon: dict[str, I.Axis]) -> Pairs:
    """Pairs from real inputs (``data``) and from the templates, in a fixed order."""
    pairs = Pairs([], [], [], [], [], [])
    if params.data:
        _input_pairs(ctx, params, lexicon, pairs)
    if params.templates:
        _template_pairs(params, lexicon, pairs)
    return pairs


def _add(pairs: Pairs, original: str, new: str, axis: str, swap: str, source: str,
         cluster: str) -> None:
    for seq, v in zip((pairs.original, pairs.counterfactual, pairs.axis, pairs.swap,
                       pairs.source, pairs.cluster), (original, new, axis, swap, source, cluster)):
        seq.append(v)


def _input_pairs(ctx: Any, params: CounterfactualParams, lexicon: dict[str, I.Axis],
                 pairs: Pairs) -> None:
    """Swap identity terms in up to ``max_texts`` real inputs that mention any."""
    from audit.checks.fairness.data import read_labelled, require_columns, resolve_data

    frame = read_labelled(resolve_data(ctx, params.data), "inputs")
    require_columns(frame, [params.text_column], str(params.data), "text_column")
    rng = ctx.sub_rng("variants")
    used = 0
    for i, text in enumerate(frame[params.text_column].astype(str)):
        variants = [(a, v) for a in lexicon.values() for v in I.counterfactual_variants(text, a)]
        if not variants:
            continue
        if len(variants) > params.max_variants_per_text:
            keep = np.sort(rng.choice(len(variants), params.max_variants_per_text, replace=False))
            variants = [variants[k] for k in keep]
        for axis, (src, dst, new) in variants:
            _add(pairs, text, new, axis.name, f"{src}->{dst}", "input", f"input:{i}")
        used += 1
        if used >= params.max_texts:
            break


def _template_pairs(params: CounterfactualParams, lexicon: dict[str, I.Axis],
                    pairs: Pairs) -> None:
    """Every template filled with each unordered pair of groups of each axis."""
    task = I.load_templates(params.templates or "", params.templates_file)
    for t_idx, template in enumerate(task["positive"] + task["negative"]):
        for axis in lexicon.values():
            groups = list(axis.groups)
            for a_i, a in enumerate(groups):
                for b in groups[a_i + 1:]:
                    _add(pairs, I.fill(template, axis.adjective(a)),
                         I.fill(template, axis.adjective(b)), axis.name, f"{a}->{b}",
                         "template", f"template:{t_idx}")


def _score_pairs(ctx: Any, pairs: Pairs, params: CounterfactualParams
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Positive-class probability of every distinct text, scored once each."""
    texts = list(dict.fromkeys(pairs.original + pairs.counterfactual))
    proba = np.asarray(ctx.model.predict_proba(texts), dtype=float)
    k = _class_index(ctx.model, params.positive_label, proba.shape[1])
    score = dict(zip(texts, proba[:, k]))
    return (np.array([score[t] for t in pairs.original]),
            np.array([score[t] for t in pairs.counterfactual]))


def _class_index(model: Any, label: str | int, n_classes: int) -> int:
    """Index of the positive class, by name (the model's labels) or by position."""
    labels = [str(x) for x in (getattr(model, "labels", None) or [])]
    if str(label) in labels:
        return labels.index(str(label))
    if str(label).isdigit() and int(label) < n_classes:
        return int(label)
    raise usage(NAME, "positive_label", f"{label!r} is not a class of the model {labels}",
                "name a class or give its index")


def cluster_bootstrap(values: np.ndarray, clusters: np.ndarray, rng: np.random.Generator,
                      n_boot: int, level: float, statistic: str = "mean") -> tuple[float, float]:
    """Percentile CI of the mean (or max) of ``values``, resampling whole clusters.

    Mean: each replicate draws cluster counts; mean = (w @ sums) / (w @ sizes), vectorised.
    """
    ids, inverse = np.unique(clusters, return_inverse=True)
    draws = rng.integers(0, ids.size, size=(n_boot, ids.size))
    draws += (np.arange(n_boot) * ids.size)[:, None]
    weights = np.bincount(draws.ravel(), minlength=n_boot * ids.size).reshape(n_boot, ids.size)
    weights = weights.astype(float)
    if statistic == "max":
        per = np.full(ids.size, -np.inf)
        np.maximum.at(per, inverse, values)
        reps = np.where(weights > 0, per, -np.inf).max(axis=1)
    else:
        sums = np.bincount(inverse, weights=values, minlength=ids.size)
        sizes = np.bincount(inverse, minlength=ids.size).astype(float)
        reps = (weights @ sums) / (weights @ sizes)
    alpha = (1 - level) / 2
    low, high = np.quantile(reps, [alpha, 1 - alpha])
    return float(low), float(high)


def _stat_metric(name: str, desc: str, values: np.ndarray, pairs: Pairs, stat: str,
                 ctx: Any, params: CounterfactualParams) -> Metric:
    """One metric over all pairs with a by-axis breakdown and cluster-bootstrap CIs."""
    axes, clusters = np.array(pairs.axis), np.array(pairs.cluster)

    def summarise(mask: np.ndarray, label: str) -> tuple[float, ConfidenceInterval | None]:
        v = values[mask]
        point = float(v.max() if stat == "max" else v.mean())
        if params.n_boot == 0:
            return point, None
        low, high = cluster_bootstrap(v, clusters[mask], ctx.sub_rng(f"{name}:{label}"),
                                      params.n_boot, params.ci_level, stat)
        return point, ConfidenceInterval(low=low, high=high, level=params.ci_level,
                                         method="cluster-bootstrap-percentile")

    value, ci = summarise(np.ones(len(values), dtype=bool), "all")
    by_group = {}
    for axis in dict.fromkeys(pairs.axis):
        v, c = summarise(axes == axis, axis)
        by_group[axis] = GroupValue(value=v, ci=c, n=int((axes == axis).sum()))
    return Metric(name=name, value=value, ci=ci, higher_is_better=False, by_group=by_group,
                  description=desc)


def _report(ctx: Any, pairs: Pairs, before: np.ndarray, after: np.ndarray,
            params: CounterfactualParams) -> CheckOutput:
    """Metrics per axis and per source, findings, a bar figure and the worst pairs."""
    flips = ((before >= params.threshold) != (after >= params.threshold)).astype(float)
    delta = np.abs(after - before)
    out = CheckOutput(metrics=[
        _stat_metric("flip_rate", "share of counterfactual pairs whose decision flips", flips,
                     pairs, "mean", ctx, params),
        _stat_metric("mean_abs_score_change", "mean |change| of the positive-class probability",
                     delta, pairs, "mean", ctx, params),
        _stat_metric("max_abs_score_change", "largest |change| of the positive-class "
                     "probability", delta, pairs, "max", ctx, params)])
    source = np.array(pairs.source)
    for src in ("input", "template"):
        if (source == src).any():
            out.metrics.append(Metric(name=f"flip_rate_{src}s", higher_is_better=False,
                                      value=float(flips[source == src].mean()),
                                      description=f"flip rate on {src} pairs only "
                                                  f"({int((source == src).sum())} pairs)"))
    out.findings = _findings(out.metrics[0])
    out.figures = [_figure(out.metrics[0])]
    out.evidence = _evidence(ctx, pairs, before, after, delta, params)
    out.items = pair_items(pairs, before, after, flips, delta)
    return out


def _short(text: str) -> str:
    return text if len(text) <= ITEM_TEXT_CHARS else text[:ITEM_TEXT_CHARS] + " [...]"


def pair_items(pairs: Pairs, before: np.ndarray, after: np.ndarray, flips: np.ndarray,
               delta: np.ndarray) -> list[dict[str, Any]]:
    """One record per counterfactual pair: id (sampling unit, axis and swap: ``input:12|gender|
    she+he->swapped``, ``template:3|religion|christian->muslim``), source, axis, swap, both
    texts (shortened; the runner redacts them), both positive-class scores, the flip and the
    absolute score change."""
    out, seen = [], {}
    for i in range(len(pairs.original)):
        key = f"{pairs.cluster[i]}|{pairs.axis[i]}|{pairs.swap[i]}"
        seen[key] = seen.get(key, 0) + 1
        out.append({"id": key if seen[key] == 1 else f"{key}#{seen[key]}",
                    "source": pairs.source[i], "unit": pairs.cluster[i], "axis": pairs.axis[i],
                    "swap": pairs.swap[i], "original": _short(pairs.original[i]),
                    "counterfactual": _short(pairs.counterfactual[i]),
                    "score_original": float(before[i]), "score_counterfactual": float(after[i]),
                    "flipped": bool(flips[i]), "abs_change": float(delta[i])})
    return out


def _findings(flip: Metric) -> list[Finding]:
    """One sentence per axis with flips, worst first."""
    rows = sorted(flip.by_group.items(), key=lambda kv: -(kv[1].value or 0))
    found = [Finding(severity="warning" if (gv.value or 0) > 0.05 else "info",
                     message=f"{axis}: {gv.value:.1%} of {gv.n} swaps flip the decision")
             for axis, gv in rows if gv.value]
    if not found:
        found.append(Finding(message="no identity swap changed the model's decision"))
    return found


def _figure(flip: Metric) -> Figure:
    """Flip rate per axis with CIs."""
    items = list(flip.by_group.items())
    return Figure(kind="bars", title="Counterfactual flip rate by identity axis", data={
        "labels": [a for a, _ in items], "values": [v.value for _, v in items],
        "ci_low": [v.ci.low if v.ci else None for _, v in items],
        "ci_high": [v.ci.high if v.ci else None for _, v in items],
        "xlabel": "identity axis", "ylabel": "flip rate", "reference": None})


def _evidence(ctx: Any, pairs: Pairs, before: np.ndarray, after: np.ndarray, delta: np.ndarray,
              params: CounterfactualParams) -> list[dict[str, Any]]:
    """The pairs with the largest score change (PII-redacted unless show_pii)."""
    from audit.pii import redact

    clean = (lambda t: t) if ctx.show_pii else redact
    order = np.argsort(-delta, kind="stable")[:params.evidence_rows]
    return [{"axis": pairs.axis[i], "swap": pairs.swap[i], "source": pairs.source[i],
             "original": clean(pairs.original[i]), "counterfactual": clean(pairs.counterfactual[i]),
             "score_original": round(float(before[i]), 4),
             "score_counterfactual": round(float(after[i]), 4),
             "abs_change": round(float(delta[i]), 4),
             "flipped": bool((before[i] >= params.threshold) != (after[i] >= params.threshold))}
            for i in order]
