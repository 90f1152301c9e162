"""group_fairness: per-group and between-group classification metrics with bootstrap CIs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from audit.checks.fairness import data as D
from audit.checks.fairness.groups import FairnessTable, GroupData, compute_table
from audit.errors import usage
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import ConfidenceInterval, Figure, Finding, GroupValue, Metric

NAME = "group_fairness"

# per-group metric -> (higher_is_better, description)
PER_GROUP: dict[str, tuple[bool | None, str]] = {
    "count": (None, "rows in the group"),
    "selection_rate": (None, "share of rows predicted positive (no better direction by itself; "
                             "see demographic_parity_*)"),
    "accuracy": (True, "share of correct predictions"),
    "tpr": (True, "true positive rate (recall): positives predicted positive"),
    "fpr": (False, "false positive rate: negatives predicted positive"),
    "fnr": (False, "false negative rate: positives predicted negative"),
    "precision": (True, "precision (positive predictive value)"),
    "auc": (True, "ROC AUC of the scores"),
    "ece": (False, "expected calibration error of the scores (equal-width bins)"),
}
BETWEEN: dict[str, tuple[bool, str, str | None]] = {
    "demographic_parity_difference": (False, "max - min selection rate over groups", "selection_rate"),
    "demographic_parity_ratio": (True, "min / max selection rate over groups", "selection_rate"),
    "equalized_odds_difference": (False, "larger of the TPR gap and the FPR gap", None),
    "equal_opportunity_difference": (False, "max - min TPR over groups", "tpr"),
    "predictive_parity_difference": (False, "max - min precision over groups", "precision"),
    "four_fifths_violation": (False, "1 when the selection-rate ratio is below 0.8 (the "
                                     "four-fifths rule), else 0", "selection_rate"),
}


class GroupFairnessParams(BaseModel):
    """Parameters of ``group_fairness``."""

    model_config = ConfigDict(extra="forbid")

    sensitive: list[str] = Field(..., min_length=1, description="sensitive column(s); several "
                                 "columns give intersectional groups")
    data: str | None = Field(None, description="labelled CSV/Parquet for classifier/tabular "
                             "models (predictions models use their own table)")
    text_column: str = "text"
    label_column: str | None = Field(None, description="label column of `data` (default: the "
                                     "tabular model's label, else 'label')")
    y_true: str = "y_true"
    y_pred: str | None = Field("y_pred", description="prediction column; null: score >= threshold")
    score: str | None = Field("score", description="score column (optional unless set)")
    positive_label: str | int | None = None
    threshold: float = 0.5
    score_is_probability: bool = True
    multiclass: Literal["error", "one_vs_rest"] = "error"
    min_group_size: int = Field(30, ge=1)
    small_groups_in_gaps: bool = Field(True, description="include groups under min_group_size in "
                                       "between-group metrics (as fairlearn does)")
    n_boot: int = Field(1000, ge=0, le=200_000)
    ci_level: float = Field(0.95, gt=0.5, lt=1.0)
    bootstrap: Literal["rows", "stratified"] = "rows"
    n_bins: int = Field(10, ge=2, le=100)
    limit: int | None = Field(None, ge=1, description="use only the first N rows of `data`")

    @field_validator("sensitive", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


@dataclass
class Task:
    """One binary audit: a suffix for metric names ('' or '[class]') and its data."""

    suffix: str
    data: GroupData


def _rows(items: list[dict[str, Any]], task: str = "") -> list[dict[str, Any]]:
    """The items (rows) of one binary task ('' unless one-vs-rest)."""
    return [it for it in items if it.get("task", "") == task]


def table_from_items(items: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray],
                                                           dict[str, float]] | None:
    """Per-group metrics [G] (confusion rates, AUC when scored) and the between-group metrics,
    rebuilt from one task's row items alone (None without rows). ECE is left out: it depends
    on the ``n_bins`` parameter, which the items do not carry."""
    from audit.checks.fairness import groups as G
    from audit.checks.fairness import metrics as fm

    if not items:
        return None
    codes = np.array([it["group_id"] for it in items], dtype=np.int64)
    n_groups = int(codes.max()) + 1
    y = np.array([it["y_true"] for it in items], dtype=bool)
    p = np.array([it["y_pred"] for it in items], dtype=bool)
    groups = fm.rates(fm.confusion_counts(y, p, codes, n_groups))
    if all(it.get("score") is not None for it in items):
        s = np.array([it["score"] for it in items], dtype=float)
        groups["auc"] = np.array([fm.weighted_auc(y[codes == g], s[codes == g])[0]
                                  for g in range(n_groups)])
    mask = np.zeros(n_groups, dtype=bool)
    mask[codes[np.array([bool(it["in_gaps"]) for it in items])]] = True
    return groups, {k: float(v) for k, v in G.between(groups, mask).items()}


def _between_from_items(name: str) -> ItemMetric:
    def aggregate(items: list[dict[str, Any]]) -> float | None:
        table = table_from_items(_rows(items))
        value = None if table is None else table[1].get(name)
        return value if value is not None and np.isfinite(value) else None
    return ItemMetric(aggregate=aggregate)


def _overall_auc(items: list[dict[str, Any]]) -> float | None:
    from audit.checks.fairness.metrics import weighted_auc

    rows = _rows(items)
    if not rows or any(it.get("score") is None for it in rows):
        return None
    v = float(weighted_auc([it["y_true"] for it in rows], [it["score"] for it in rows])[0])
    return v if np.isfinite(v) else None


def _precision(rows: list[dict[str, Any]]) -> float | None:
    """Share of positive predictions that are right (an aggregate: which rows count depends on
    the predictions, so two runs' rows do not pair)."""
    hits = [it["y_true"] for it in rows if it["y_pred"] == 1]
    return sum(hits) / len(hits) if hits else None


def _rate(outcome: str, given: tuple[str, int] | None = None) -> ItemMetric:
    """A confusion rate as a binary mean over the rows of the main task: ``outcome`` is
    ``y_pred`` (positive prediction), ``correct`` or ``missed`` (negative prediction), counted
    over the rows where ``given`` (column, value) holds."""
    def value(it: dict[str, Any]) -> float | None:
        if it.get("task", "") != "" or (given and it[given[0]] != given[1]):
            return None
        if outcome == "correct":
            return float(it["y_true"] == it["y_pred"])
        return float(it["y_pred"] == (0 if outcome == "missed" else 1))
    return ItemMetric(value, kind="binary")


ITEM_METRICS: dict[str, ItemMetric] = {
    **{name: _between_from_items(name) for name in
       (*BETWEEN, "accuracy_difference", "fpr_difference", "fnr_difference", "auc_difference")},
    "count": ItemMetric(aggregate=lambda items: float(len(_rows(items))) if _rows(items) else None),
    "selection_rate": _rate("y_pred"),
    "accuracy": _rate("correct"),
    "tpr": _rate("y_pred", ("y_true", 1)),
    "fpr": _rate("y_pred", ("y_true", 0)),
    "fnr": _rate("missed", ("y_true", 1)),
    "precision": ItemMetric(aggregate=lambda items: _precision(_rows(items))),
    "auc": ItemMetric(aggregate=_overall_auc),
}


@check(NAME, area="fairness", params=GroupFairnessParams,
       requires=[{"predictions"}, {"predict_proba"}, {"tabular"}], item_metrics=ITEM_METRICS)
def group_fairness(ctx: Any, params: GroupFairnessParams) -> CheckOutput:
    """Group fairness: how a classifier's errors and decisions differ across (intersectional) groups.

    Purpose: show, with honest uncertainty, whether any group gets fewer positive decisions, more
    false positives or false negatives, less precise or less calibrated scores than another, in the
    vocabulary of fairlearn, so a release gate or a CI regression test can bound the gaps.
    Method: rows come from a predictions table (y_true, y_pred, optional score), a tabular model's
    predictions, or a text classifier's `predict_proba` on a labelled data set. Groups are every
    combination of the sensitive columns that occurs (missing values form the group "(missing)").
    Per group: count, selection rate, accuracy, TPR, FPR, FNR, precision, AUC and ECE (10
    equal-width bins) when scores exist. Between groups (fairlearn's definitions): demographic
    parity difference (max-min selection rate) and ratio (min/max), equalized odds difference
    (larger of the TPR and FPR gaps), equal opportunity difference (TPR gap), predictive parity
    difference (precision gap), the four-fifths rule flag (ratio < 0.8), and max-min of every
    other per-group metric; the worst group is named. 95% percentile-bootstrap CIs for every
    number: confusion-count metrics draw all replicates at once as a multinomial over the
    group-by-cell count table (the law of the counts under row resampling, as in fairlearn's
    MetricFrame(n_boot)); AUC and ECE use shared matrices of resampled row indices. Seeded from the
    run seed. Multiclass labels: one-vs-rest per class with `multiclass: one_vs_rest`.
    Citation: Hardt, Price, Srebro (2016), "Equality of Opportunity in Supervised Learning";
    Bird et al. (2020), "Fairlearn: A toolkit for assessing and improving fairness in AI"; EEOC
    Uniform Guidelines (1978) for the four-fifths rule; Efron & Tibshirani (1993) for the bootstrap;
    Guo et al. (2017) for ECE; Buolamwini & Gebru (2018) on intersectional evaluation.
    Limitations: group metrics are only as good as the sensitive labels and the data's
    representativeness; small groups (flagged under min_group_size) have wide intervals and their
    gaps are mostly noise (a small group whose interval collapses to one point, e.g. TPR 0 of 3
    positives, is flagged degenerate_ci); the criteria conflict (calibration and equalized odds
    cannot both hold when base rates differ, Kleinberg et al. 2016), so no single number
    certifies fairness; the percentile bootstrap is approximate for ratios, for max-min gaps
    (biased upward) and for groups with very few positives.
    """
    frame, where = _source_frame(ctx, params)
    out = CheckOutput()
    for task in _tasks(ctx, frame, params, where):
        table = compute_table(task.data, ctx.sub_rng(f"bootstrap{task.suffix}"), params.n_boot,
                              params.ci_level, params.bootstrap, params.n_bins,
                              _gap_mask(task.data, params))
        _report(out, task, table, params)
        out.items += row_items(task, _gap_mask(task.data, params))
    return out


def row_items(task: Task, mask: np.ndarray | None) -> list[dict[str, Any]]:
    """One record per row of a task: id (row index in the table, plus the class for
    one-vs-rest), group and group_id, y_true and y_pred (0/1), the score when there is one, and
    in_gaps (whether the row's group enters the between-group metrics)."""
    d = task.data
    in_gaps = np.ones(d.n_groups, dtype=bool) if mask is None else mask
    out = []
    for i, g in enumerate(d.codes.tolist()):
        rec = {"id": f"row{i}{task.suffix}", "group": d.group_names[g], "group_id": g,
               "y_true": int(d.y_true[i]), "y_pred": int(d.y_pred[i]), "in_gaps": bool(in_gaps[g])}
        if d.score is not None:
            rec["score"] = float(d.score[i])
        if task.suffix:
            rec["task"] = task.suffix
        out.append(rec)
    return out


def _source_frame(ctx: Any, params: GroupFairnessParams) -> tuple[Any, str]:
    """The table to audit: the adapter's frame, or ``params.data`` (the labelled data set)."""
    caps = getattr(ctx.model, "capabilities", frozenset())
    if params.data is None:
        if "predictions" in caps:
            return ctx.model.frame, f"{NAME} (model {getattr(ctx.model, 'alias', 'default')})"
        raise usage(NAME, "data", "a classifier needs a labelled data set",
                    "set data: path/to/labelled.csv (text, label and sensitive columns)")
    frame = D.read_labelled(D.resolve_data(ctx, params.data), "labelled data")
    if params.limit:
        frame = frame.iloc[:params.limit].reset_index(drop=True)
    return frame, str(params.data)


def _tasks(ctx: Any, frame: Any, params: GroupFairnessParams, where: str) -> list[Task]:
    """Binary tasks (one, or one per class) from the frame and, when needed, model scores."""
    D.require_columns(frame, params.sensitive, where, "sensitive")
    codes, names = D.group_codes(frame, params.sensitive)
    caps = getattr(ctx.model, "capabilities", frozenset())
    if params.data is not None and "predict_proba" in caps:
        labels, proba, classes = _classifier_scores(ctx, frame, params, where)
        return _proba_tasks(labels, proba, classes, codes, names, params, where)
    if params.data is not None and "tabular" in caps:
        label = params.label_column or ctx.model.label_column
        D.require_columns(frame, [label], where, "label_column")
        proba = np.asarray(ctx.model.predict_proba_frame(frame), dtype=float)
        classes = [str(c) for c in getattr(ctx.model.pipeline, "classes_", range(proba.shape[1]))]
        return _proba_tasks(frame[label].to_numpy(), proba, classes, codes, names, params, where)
    return _prediction_tasks(frame, codes, names, params, where)


def _classifier_scores(ctx: Any, frame: Any, params: GroupFairnessParams,
                       where: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Labels, ``predict_proba`` of the text column, and the model's class names."""
    label = params.label_column or "label"
    D.require_columns(frame, [params.text_column, label], where, "text_column/label_column")
    texts = frame[params.text_column].astype(str).tolist()
    proba = np.asarray(ctx.model.predict_proba(texts), dtype=float)
    classes = [str(c) for c in (getattr(ctx.model, "labels", None) or range(proba.shape[1]))]
    return frame[label].to_numpy(), proba, classes


def _class_index(value: Any, classes: list[str], where: str) -> int:
    """Index of a class given by name or by position."""
    if str(value) in classes:
        return classes.index(str(value))
    if isinstance(value, (int, np.integer)) or str(value).isdigit():
        if 0 <= int(value) < len(classes):
            return int(value)
    raise usage(where, "positive_label", f"{value!r} is not one of the model's classes {classes}",
                "name a class or give its index")


def _label_hits(labels: np.ndarray, k: int, classes: list[str]) -> np.ndarray:
    """Rows whose label is class ``k`` (labels given as class names or class indices)."""
    as_text = np.array([str(v).strip() for v in labels])
    return (as_text == classes[k]) | (as_text == str(k))


def _proba_tasks(labels: np.ndarray, proba: np.ndarray, classes: list[str], codes: np.ndarray,
                 names: list[str], params: GroupFairnessParams, where: str) -> list[Task]:
    """Tasks from class probabilities: the positive class, or one-vs-rest for every class."""
    if len(labels) and np.any(np.array([str(v) == "nan" for v in labels])):
        raise usage(where, "label_column", "some rows have no label", "drop rows without a label")
    binary = proba.shape[1] == 2 or params.positive_label is not None
    if not binary and params.multiclass != "one_vs_rest":
        raise usage(where, "label_column", f"the model has {proba.shape[1]} classes: not binary",
                    "set multiclass: one_vs_rest (per-class metrics) or positive_label: <class>")
    if binary:
        k = _class_index(1 if params.positive_label is None else params.positive_label, classes,
                         where)
        return [Task("", GroupData(names, codes, _label_hits(labels, k, classes),
                                   proba[:, k] >= params.threshold, proba[:, k], True))]
    top = proba.argmax(axis=1)
    return [Task(f"[{c}]", GroupData(names, codes, _label_hits(labels, k, classes), top == k,
                                     proba[:, k], True)) for k, c in enumerate(classes)]


def _prediction_tasks(frame: Any, codes: np.ndarray, names: list[str],
                      params: GroupFairnessParams, where: str) -> list[Task]:
    """Tasks from a predictions table (y_true, y_pred and/or score columns)."""
    D.require_columns(frame, [params.y_true], where, "y_true")
    score = _score_column(frame, params, where)
    if params.y_pred is None or (params.y_pred not in frame.columns and score is not None
                                 and "y_pred" not in params.model_fields_set):
        if score is None:
            raise usage(where, "y_pred", "no prediction column and no score to threshold",
                        "set y_pred to the prediction column, or score to a score column")
        y_pred_raw = None
    else:
        D.require_columns(frame, [params.y_pred], where, "y_pred")
        y_pred_raw = frame[params.y_pred].to_numpy()
    y_true_raw = frame[params.y_true].to_numpy()
    if params.multiclass == "one_vs_rest" and not D.is_binary01(y_true_raw) \
            and params.positive_label is None:
        return _one_vs_rest(y_true_raw, y_pred_raw, codes, names, where)
    y_true = D.binarise(y_true_raw, params.positive_label, where, params.y_true)
    y_pred = score >= params.threshold if y_pred_raw is None else \
        D.binarise(y_pred_raw, params.positive_label, where, str(params.y_pred))
    return [Task("", GroupData(names, codes, y_true, y_pred, score, params.score_is_probability))]


def _score_column(frame: Any, params: GroupFairnessParams, where: str) -> np.ndarray | None:
    """The score column as floats, None when absent and not asked for explicitly."""
    if params.score is None:
        return None
    if params.score not in frame.columns:
        if "score" in params.model_fields_set:
            D.require_columns(frame, [params.score], where, "score")
        return None
    return D.check_scores(frame[params.score].to_numpy(), where, params.score,
                          params.score_is_probability)


def _one_vs_rest(y_true: np.ndarray, y_pred: np.ndarray | None, codes: np.ndarray,
                 names: list[str], where: str) -> list[Task]:
    """One task per class of a multiclass predictions table (no scores: they are per class)."""
    if y_pred is None:
        raise usage(where, "y_pred", "one-vs-rest needs predicted classes",
                    "set y_pred to the predicted-class column")
    t = np.array([str(v) for v in y_true])
    p = np.array([str(v) for v in y_pred])
    return [Task(f"[{c}]", GroupData(names, codes, t == c, p == c))
            for c in sorted(set(t) | set(p))]


def _gap_mask(data: GroupData, params: GroupFairnessParams) -> np.ndarray | None:
    """Groups that enter between-group metrics (all, or those of at least min_group_size)."""
    if params.small_groups_in_gaps:
        return None
    sizes = np.bincount(data.codes, minlength=data.n_groups)
    return sizes >= params.min_group_size


def _num(value: Any) -> float | None:
    """A float, or None when undefined (NaN)."""
    v = float(value)
    return v if np.isfinite(v) else None


def _ci(pair: np.ndarray | None, params: GroupFairnessParams) -> ConfidenceInterval | None:
    """A ConfidenceInterval from a (low, high) pair, None without a bootstrap."""
    if pair is None:
        return None
    return ConfidenceInterval(low=_num(pair[0]), high=_num(pair[1]), level=params.ci_level,
                              method=f"bootstrap-percentile ({params.bootstrap}, "
                                     f"B={params.n_boot})")


def _worst(values: np.ndarray, higher_is_better: bool | None, mask: np.ndarray) -> int | None:
    """Index of the worst defined group (None without a direction or a defined value)."""
    ok = np.isfinite(values) & mask
    if higher_is_better is None or not ok.any():
        return None
    masked = np.where(ok, values, np.inf if higher_is_better else -np.inf)
    return int(np.argmin(masked) if higher_is_better else np.argmax(masked))


def _group_values(name: str, task: Task, table: FairnessTable, params: GroupFairnessParams,
                  sizes: np.ndarray, worst: int | None) -> dict[str, GroupValue]:
    """``by_group`` of one per-group metric: value, CI, n and flags per group."""
    values, cis = table.by_group[name], table.by_group_ci.get(name)
    out = {}
    for g, group in enumerate(task.data.group_names):
        flags = ["small"] if sizes[g] < params.min_group_size else []
        flags += ["undefined"] if not np.isfinite(values[g]) else []
        flags += ["worst"] if g == worst else []
        ci = None if cis is None or name == "count" else _ci(cis[g], params)
        if ci is not None and ci.low is not None and ci.low == ci.high and sizes[g] < \
                params.min_group_size:
            flags.append("degenerate_ci")  # e.g. TPR 0 of 3 positives: [0, 0] is not certainty
        out[group] = GroupValue(value=_num(values[g]), ci=ci, n=int(sizes[g]), flags=flags)
    return out


def _per_group_metric(name: str, task: Task, table: FairnessTable, params: GroupFairnessParams,
                      sizes: np.ndarray, mask: np.ndarray) -> Metric:
    """One per-group metric: overall value and CI, per-group values, worst group named."""
    hib, desc = PER_GROUP[name]
    worst = _worst(table.by_group[name], hib, mask)
    if worst is not None:
        gap = float(np.nanmax(np.where(mask, table.by_group[name], np.nan))
                    - np.nanmin(np.where(mask, table.by_group[name], np.nan)))
        desc += (f"; worst group: {task.data.group_names[worst]} "
                 f"({table.by_group[name][worst]:.4g}); max - min {gap:.4g}")
    ci = None if name == "count" else _ci(table.overall_ci.get(name), params)
    return Metric(name=name + task.suffix, value=_num(table.overall[name]), higher_is_better=hib,
                  ci=ci, description=desc + " (value = all rows)",
                  by_group=_group_values(name, task, table, params, sizes, worst))


def _extremes(values: np.ndarray, names: list[str], mask: np.ndarray) -> str:
    """'lowest A (x), highest B (y)' over the defined groups in ``mask``."""
    ok = np.isfinite(values) & mask
    if not ok.any():
        return "no group defined"
    lo = int(np.argmin(np.where(ok, values, np.inf)))
    hi = int(np.argmax(np.where(ok, values, -np.inf)))
    return f"lowest {names[lo]} ({values[lo]:.4g}), highest {names[hi]} ({values[hi]:.4g})"


def _between_metric(name: str, task: Task, table: FairnessTable, params: GroupFairnessParams,
                    mask: np.ndarray) -> Metric:
    """One between-group metric with its CI; the description names the extreme groups."""
    hib, desc, base = BETWEEN.get(name, (False, "", None))
    if name not in BETWEEN:
        base = name[: -len("_difference")]
        desc = f"max - min {PER_GROUP[base][1]} over groups"
    if base is not None:
        desc += f"; {_extremes(table.by_group[base], task.data.group_names, mask)}"
    ci = _ci(table.between_ci.get(name), params) if table.between_ci else None
    return Metric(name=name + task.suffix, value=_num(table.between[name]), higher_is_better=hib,
                  ci=ci, description=desc)


def _report(out: CheckOutput, task: Task, table: FairnessTable,
            params: GroupFairnessParams) -> None:
    """Append the task's metrics, findings and figures to ``out``."""
    sizes = np.bincount(task.data.codes, minlength=task.data.n_groups)
    mask = np.ones(task.data.n_groups, dtype=bool) if params.small_groups_in_gaps \
        else sizes >= params.min_group_size
    out.metrics += [_between_metric(n, task, table, params, mask) for n in table.between]
    out.metrics += [_per_group_metric(n, task, table, params, sizes, mask) for n in table.by_group]
    out.findings += _findings(task, table, params, sizes, mask)
    out.figures += _figures(task, table)


def _findings(task: Task, table: FairnessTable, params: GroupFairnessParams, sizes: np.ndarray,
              mask: np.ndarray) -> list[Finding]:
    """Sentences for the reader: small groups, undefined ratios, the four-fifths rule, gaps."""
    names, found = task.data.group_names, []
    small = [f"{names[g]} (n={sizes[g]})" for g in range(len(names)) if sizes[g] < params.min_group_size]
    if small:
        found.append(Finding(severity="warning", message=f"{len(small)} group(s) under "
                             f"min_group_size={params.min_group_size}, their intervals are wide: "
                             + ", ".join(small[:10])))
    if task.data.y_pred.all():
        found.append(Finding(severity="warning", message=f"every prediction{task.suffix} is "
                             "positive: rates that divide by predicted negatives (negative "
                             "predictive value, false omission rate) are undefined"))
    elif not task.data.y_pred.any():
        found.append(Finding(severity="warning", message=f"every prediction{task.suffix} is "
                             "negative: precision (which divides by predicted positives) is "
                             "undefined, and so is predictive parity"))
    defined = int((mask & (sizes > 0)).sum())
    if defined < 2:
        only = ", ".join(names[g] for g in range(len(names)) if mask[g] and sizes[g] > 0) or "none"
        found.append(Finding(severity="critical", message=f"Only {defined} group{task.suffix} "
                             f"to compare ({only}): every between-group metric is undefined "
                             "(null), and gates on them fail."))
    found += _ratio_findings(task, table, mask)
    eo = table.between["equalized_odds_difference"]
    if np.isfinite(eo):
        ci = table.between_ci.get("equalized_odds_difference")
        span = f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci is not None else ""
        found.append(Finding(message=f"Equalized odds difference{task.suffix} {eo:.3f}{span}; "
                             f"TPR: {_extremes(table.by_group['tpr'], names, mask)}; FPR: "
                             f"{_extremes(table.by_group['fpr'], names, mask)}"))
    return found


def _ratio_findings(task: Task, table: FairnessTable, mask: np.ndarray) -> list[Finding]:
    """Demographic-parity ratio: undefined, or a four-fifths-rule violation, named."""
    ratio = table.between["demographic_parity_ratio"]
    rates = _extremes(table.by_group["selection_rate"], task.data.group_names, mask)
    if not np.isfinite(ratio):
        return [Finding(severity="warning", message=f"demographic_parity_ratio{task.suffix} is "
                        "undefined: no group has a positive prediction (reported as null)")]
    if ratio < 0.8:
        return [Finding(severity="warning", message=f"Four-fifths rule violated{task.suffix}: "
                        f"selection-rate ratio {ratio:.3f} < 0.8 ({rates})")]
    return [Finding(message=f"Selection-rate ratio{task.suffix} {ratio:.3f} >= 0.8 ({rates})")]


def _figures(task: Task, table: FairnessTable) -> list[Figure]:
    """Bars of selection rate and TPR by group (with CIs) and the full per-group table."""
    names = task.data.group_names
    figs = []
    for name, label in (("selection_rate", "selection rate"), ("tpr", "true positive rate")):
        ci = table.by_group_ci.get(name)
        figs.append(Figure(kind="bars", title=f"{label.capitalize()} by group{task.suffix}", data={
            "labels": names, "values": [_num(v) for v in table.by_group[name]],
            "ci_low": [_num(c[0]) for c in ci] if ci is not None else None,
            "ci_high": [_num(c[1]) for c in ci] if ci is not None else None,
            "xlabel": "group", "ylabel": label, "reference": _num(table.overall[name])}))
    cols = list(table.by_group)
    rows = [[g] + [_num(table.by_group[c][i]) for c in cols] for i, g in enumerate(names)]
    figs.append(Figure(kind="table", title=f"Per-group metrics{task.suffix}",
                       data={"columns": ["group"] + cols, "rows": rows}))
    return figs
