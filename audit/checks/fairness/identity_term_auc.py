"""identity_term_auc: subgroup, BPSN and BNSP AUCs per identity term (Dixon et al.; Borkan et al.)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.checks.fairness import identity as I
from audit.checks.fairness import metrics as fm
from audit.errors import usage
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import ConfidenceInterval, Figure, Finding, GroupValue, Metric

NAME = "identity_term_auc"
ITEM_TEXT_CHARS = 300
SUBMETRICS = {
    "subgroup_auc": "AUC within texts that mention the identity",
    "bpsn_auc": "AUC of background positives vs subgroup negatives (low: texts mentioning the "
                "identity score too high when they are negative)",
    "bnsp_auc": "AUC of background negatives vs subgroup positives (low: texts mentioning the "
                "identity score too low when they are positive)",
}


class IdentityAucParams(BaseModel):
    """Parameters of ``identity_term_auc``."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = Field(None, description="labelled CSV/Parquet (text + label); default: "
                             "the shipped templated synthetic set")
    text_column: str = "text"
    label_column: str = "label"
    templates: str = Field("stress", description="shipped template task when `data` is not set")
    templates_file: str | None = None
    lexicon: str | None = None
    axes: list[str] | None = None
    positive_label: str | int = Field(1, description="model class whose probability is scored; "
                                      "data labels equal to it (or to its index) are positives")
    min_subgroup_size: int = Field(10, ge=1)
    power: float = Field(-5.0, description="generalized-mean power (Borkan et al. use -5)")
    n_boot: int = Field(1000, ge=0, le=100_000)
    ci_level: float = Field(0.95, gt=0.5, lt=1.0)


def _arrays(items: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([bool(it["label"]) for it in items], dtype=bool),
            np.array([it["score"] for it in items], dtype=float))


def _overall_from_items(items: list[dict[str, Any]]) -> float | None:
    if not items:
        return None
    y, score = _arrays(items)
    return _num(float(fm.weighted_auc(y, score)[0]))


def _worst_from_items(name: str) -> ItemMetric:
    """The worst AUC ``name`` over the subgroups the headline counts (``counted_groups``: at
    least min_subgroup_size rows), rebuilt from the row items."""
    def aggregate(items: list[dict[str, Any]]) -> float | None:
        if not items:
            return None
        y, score = _arrays(items)
        values = []
        for group in sorted({g for it in items for g in it["counted_groups"]}):
            member = np.array([group in it["groups"] for it in items])
            mask = submetric_masks(y, member)[name]
            values.append(float(fm.weighted_auc(y[mask], score[mask])[0]))
        finite = [v for v in values if np.isfinite(v)]
        return min(finite) if finite else None
    return ItemMetric(aggregate=aggregate)


ITEM_METRICS = {"overall_auc": ItemMetric(aggregate=_overall_from_items),
                **{name: _worst_from_items(name) for name in SUBMETRICS}}


@check(NAME, area="fairness", params=IdentityAucParams, requires=[{"predict_proba"}],
       item_metrics=ITEM_METRICS)
def identity_term_auc(ctx: Any, params: IdentityAucParams) -> CheckOutput:
    """Identity-term AUCs: does a classifier rank texts worse when they mention a given identity?

    Purpose: unintended bias in text classifiers shows up as identity terms pulling scores up or
    down regardless of content (e.g. "gay" making any sentence look toxic); these threshold-free
    metrics find the terms and the direction of the shift.
    Method: each identity group of the shipped lexicon defines a subgroup: the texts that mention
    it (real data: whole-word match, ambiguous words excluded; templated set: the group filled in).
    Per subgroup: subgroup AUC (within the subgroup), BPSN AUC (subgroup negatives vs background
    positives) and BNSP AUC (subgroup positives vs background negatives), as defined by Borkan et
    al. (2019); the metric value is the worst subgroup (named), by_group has every subgroup of at
    least min_subgroup_size with a 95% percentile-bootstrap CI from shared resampled-row weight
    matrices. `bias_score` is the Jigsaw combination 0.25 * overall AUC + 0.25 * sum of the
    power-(-5) generalized means of the three submetrics. The default data is a templated
    synthetic set shipped with audit (stress / not-stressed sentences x every identity group, in
    the style of Dixon et al. 2018).
    Citation: Dixon, Li, Sorensen, Thain, Vasserman (2018), "Measuring and Mitigating Unintended
    Bias in Text Classification", AIES; Borkan, Dixon, Sorensen, Thain, Vasserman (2019), "Nuanced
    Metrics for Measuring Unintended Bias with Real Data for Text Classification", WWW Companion.
    Limitations: templates are synthetic and few, so they test the model's reaction to the term,
    not its behaviour on real text; subgroup membership by keyword misses paraphrases and
    misfires on other senses; AUCs ignore the decision threshold and calibration; small subgroups
    give wide intervals.
    """
    rows = _rows(ctx, params)
    proba = np.asarray(ctx.model.predict_proba([r["text"] for r in rows]), dtype=float)
    from audit.checks.fairness.counterfactual_fairness import _class_index

    k = _class_index(ctx.model, params.positive_label, proba.shape[1])
    names = [str(x) for x in (getattr(ctx.model, "labels", None) or [])]
    positive = {str(k)} | ({names[k]} if k < len(names) else set())
    y = np.array([str(r["label"]).strip() in positive if params.data else r["label"] == 1
                  for r in rows], dtype=bool)
    members = _membership(rows)
    if y.all() or not y.any():
        raise usage(NAME, "label_column", "the data has only one class",
                    "give labelled data with positives and negatives")
    out = _report(ctx, params, y, proba[:, k], members)
    out.items = row_items(rows, y, proba[:, k], members, params.min_subgroup_size,
                          params.data is None)
    return out


def _row_id(row: dict[str, Any], i: int, templated: bool) -> str:
    """``t<template>|<axis>|<group>`` for the templated set, ``row<i>`` for a data file."""
    return f"t{row['template']}|{row['axis']}|{row['group']}" if templated else f"row{i}"


def row_items(rows: list[dict[str, Any]], y: np.ndarray, score: np.ndarray,
              members: dict[str, np.ndarray], min_size: int,
              templated: bool) -> list[dict[str, Any]]:
    """One record per text: id, label (1 = positive), score, subgroups mentioned, and those of
    them with at least ``min_size`` rows (``counted_groups``, the ones the worst-subgroup
    metrics range over); the text shortened (the runner redacts it)."""
    big = {g for g, m in members.items() if m.sum() >= min_size}
    out = []
    for i, row in enumerate(rows):
        text = row["text"]
        out.append({"id": _row_id(row, i, templated), "label": int(y[i]), "score": float(score[i]),
                    "groups": list(row["groups"]),
                    "counted_groups": [g for g in row["groups"] if g in big],
                    "text": text if len(text) <= ITEM_TEXT_CHARS
                    else text[:ITEM_TEXT_CHARS] + " [...]"})
    return out


def _rows(ctx: Any, params: IdentityAucParams) -> list[dict[str, Any]]:
    """Labelled rows with their identity groups: the templated set, or ``data`` with matches."""
    lexicon = I.load_lexicon(str(ctx.resolve_path(params.lexicon)) if params.lexicon else None,
                             params.axes)
    if params.data is None:
        task = I.load_templates(params.templates, params.templates_file)
        return [dict(r, groups=[f"{r['axis']}:{r['group']}"])
                for r in I.template_rows(task, lexicon)]
    from audit.checks.fairness.data import read_labelled, require_columns, resolve_data

    frame = read_labelled(resolve_data(ctx, params.data), "labelled data")
    require_columns(frame, [params.text_column, params.label_column], str(params.data),
                    "text_column/label_column")
    rows = []
    for text, label in zip(frame[params.text_column].astype(str), frame[params.label_column]):
        groups = [f"{a.name}:{g}" for a in lexicon.values() for g in I.mentioned_groups(text, a)]
        rows.append({"text": text, "label": label, "groups": groups})
    return rows


def _membership(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Boolean row mask of every subgroup that occurs."""
    names = sorted({g for r in rows for g in r["groups"]})
    return {n: np.array([n in r["groups"] for r in rows]) for n in names}


def submetric_masks(y: np.ndarray, member: np.ndarray) -> dict[str, np.ndarray]:
    """Rows entering each submetric's AUC (Borkan et al. 2019, section 3)."""
    return {"subgroup_auc": member,
            "bpsn_auc": (member & ~y) | (~member & y),
            "bnsp_auc": (member & y) | (~member & ~y)}


def generalized_mean(values: np.ndarray, power: float) -> float:
    """Power mean (1/N sum v^p)^(1/p) of the defined values (NaN when none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0 or (power < 0 and (v <= 0).any()):
        return float("nan") if v.size == 0 else 0.0
    return float(np.mean(v ** power) ** (1.0 / power))


def _aucs(y: np.ndarray, score: np.ndarray, members: dict[str, np.ndarray],
          weights: np.ndarray | None) -> dict[str, dict[str, np.ndarray]]:
    """submetric -> subgroup -> AUC per replicate ``[B]`` (B = 1 without weights)."""
    out: dict[str, dict[str, np.ndarray]] = {m: {} for m in SUBMETRICS}
    for group, member in members.items():
        for name, mask in submetric_masks(y, member).items():
            w = None if weights is None else weights[:, mask]
            out[name][group] = fm.weighted_auc(y[mask], score[mask], w)
    return out


def _bootstrap(ctx: Any, params: IdentityAucParams, y: np.ndarray, score: np.ndarray,
               members: dict[str, np.ndarray]) -> tuple[dict, np.ndarray]:
    """Replicates of every subgroup AUC and of the overall AUC from shared row weights."""
    codes = np.zeros(y.size, dtype=np.int64)
    blocks = list(fm.resample_weights(ctx.sub_rng("bootstrap"), params.n_boot, codes))
    per_block = [_aucs(y, score, members, w) for w in blocks]
    reps = {m: {g: np.concatenate([b[m][g] for b in per_block]) for g in members}
            for m in SUBMETRICS}
    overall = np.concatenate([fm.weighted_auc(y, score, w) for w in blocks])
    return reps, overall


def _ci(reps: np.ndarray | None, params: IdentityAucParams) -> ConfidenceInterval | None:
    if reps is None:
        return None
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return ConfidenceInterval(low=None, high=None, level=params.ci_level)
    alpha = (1 - params.ci_level) / 2
    low, high = np.quantile(reps, [alpha, 1 - alpha])
    return ConfidenceInterval(low=float(low), high=float(high), level=params.ci_level)


def _report(ctx: Any, params: IdentityAucParams, y: np.ndarray, score: np.ndarray,
            members: dict[str, np.ndarray]) -> CheckOutput:
    """Overall AUC, three submetrics by subgroup, bias score, findings and a heatmap."""
    point = _aucs(y, score, members, None)
    reps, overall_reps = _bootstrap(ctx, params, y, score, members) if params.n_boot else ({}, None)
    big = [g for g, m in members.items() if m.sum() >= params.min_subgroup_size]
    overall = float(fm.weighted_auc(y, score)[0])
    out = CheckOutput(metrics=[Metric(name="overall_auc", value=overall, higher_is_better=True,
                                      ci=_ci(overall_reps, params),
                                      description="ROC AUC on all texts")])
    means = []
    for name, desc in SUBMETRICS.items():
        values = {g: float(point[name][g][0]) for g in members}
        out.metrics.append(_submetric(name, desc, values, reps.get(name, {}), members, big,
                                      params))
        means.append(generalized_mean(np.array([values[g] for g in big]), params.power))
    out.metrics.append(Metric(name="bias_score", higher_is_better=True,
                              value=_num(0.25 * overall + 0.25 * sum(means)),
                              description=f"0.25 x overall AUC + 0.25 x sum of the "
                                          f"power-{params.power:g} means of the three submetrics "
                                          "(Jigsaw unintended-bias score)"))
    out.findings = _findings(out.metrics, overall)
    out.figures = [_heatmap(point, big)]
    return out


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _submetric(name: str, desc: str, values: dict[str, float], reps: dict[str, np.ndarray],
               members: dict[str, np.ndarray], big: list[str],
               params: IdentityAucParams) -> Metric:
    """Worst subgroup as the value; every subgroup (flagged when small) in by_group."""
    by_group = {g: GroupValue(value=_num(v), ci=_ci(reps.get(g), params), n=int(members[g].sum()),
                              flags=[] if g in big else ["small"]) for g, v in values.items()}
    defined = {g: values[g] for g in big if np.isfinite(values[g])}
    worst = min(defined, key=defined.get) if defined else None
    if worst:
        by_group[worst].flags.append("worst")
    text = f"{desc}; value = worst subgroup" + (f" ({worst})" if worst else "")
    return Metric(name=name, value=defined.get(worst) if worst else None, higher_is_better=True,
                  ci=by_group[worst].ci if worst else None, by_group=by_group, description=text)


def _findings(metrics: list[Metric], overall: float) -> list[Finding]:
    """Subgroups whose BPSN/BNSP AUC falls more than 0.05 below the overall AUC."""
    found = []
    for m in metrics:
        if m.name not in ("bpsn_auc", "bnsp_auc") or not m.by_group:
            continue
        low = sorted((gv.value, g) for g, gv in m.by_group.items()
                     if gv.value is not None and "small" not in gv.flags
                     and gv.value < overall - 0.05)
        if low:
            way = "negatives mentioning it score too high" if m.name == "bpsn_auc" \
                else "positives mentioning it score too low"
            found.append(Finding(severity="warning", message=f"{m.name} more than 0.05 below the "
                                 f"overall AUC {overall:.3f} for {len(low)} subgroup(s) ({way}): "
                                 + ", ".join(f"{g} {v:.3f}" for v, g in low[:8])))
    return found or [Finding(message="no subgroup's BPSN or BNSP AUC is more than 0.05 below the "
                                     f"overall AUC ({overall:.3f})")]


def _heatmap(point: dict[str, dict[str, np.ndarray]], groups: list[str]) -> Figure:
    """Subgroups x submetrics heatmap."""
    return Figure(kind="heatmap", title="Identity-term AUCs", data={
        "row_labels": groups, "col_labels": list(SUBMETRICS),
        "values": [[_num(float(point[m][g][0])) for m in SUBMETRICS] for g in groups],
        "vmin": 0.5, "vmax": 1.0})
