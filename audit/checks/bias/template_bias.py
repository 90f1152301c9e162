"""template_bias: fill-in template probes of group-attribute associations in language models."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from audit.checks.bias import probes as P
from audit.errors import usage
from audit.items import ItemMetric
from audit.models.capabilities import MaskedScoreRequest, has
from audit.registry import CheckOutput, check
from audit.results import ConfidenceInterval, Figure, Finding, GroupValue, Metric

NAME = "template_bias"


class TemplateBiasParams(BaseModel):
    """Parameters of ``template_bias``."""

    model_config = ConfigDict(extra="forbid")

    probes: str = Field("gender_occupations", description="shipped probe set name or JSON/YAML path")
    templates: list[str] | None = Field(None, description="inline templates (replace the set's)")
    groups: dict[str, list[str]] | None = Field(None, description="inline groups: name -> terms")
    targets: list[str] | None = Field(None, description="inline target words")
    max_templates: int | None = Field(None, ge=1, description="use only the first N templates")
    max_targets: int | None = Field(None, ge=1, description="use only the first N targets")
    top_k: int = Field(10, ge=1, le=100, description="fills shown per masked-LM template")
    n_boot: int = Field(1000, ge=100, le=100_000)
    evidence_rows: int = Field(10, ge=0, le=200)

    @field_validator("templates")
    @classmethod
    def _slots(cls, value: list[str] | None) -> list[str] | None:
        """Each inline template needs both slots once (checked when the suite is validated)."""
        for t in value or []:
            if t.count(P.GROUP_SLOT) != 1 or t.count(P.TARGET_SLOT) != 1:
                raise ValueError(f"template {t!r} must contain {P.GROUP_SLOT} and {P.TARGET_SLOT} "
                                 "exactly once each")
        if value is not None and not value:
            raise ValueError("empty probe set: no templates")
        return value

    @model_validator(mode="after")
    def _non_empty(self) -> "TemplateBiasParams":
        """Inline groups and targets must not be empty; a bare name must be a shipped set."""
        if self.targets is not None and not self.targets:
            raise ValueError("empty probe set: no targets")
        if self.groups is not None and (len(self.groups) < 2 or not all(self.groups.values())):
            raise ValueError("need at least two groups, each with at least one term")
        bare = "/" not in self.probes and "." not in self.probes
        if bare and self.probes not in P.TEMPLATE_PROBES:
            raise ValueError(f"unknown probe set {self.probes!r}; shipped: "
                             f"{', '.join(P.TEMPLATE_PROBES)} (or give a .json/.yaml path)")
        return self


def assoc_from_items(items: list[dict[str, Any]]) -> np.ndarray | None:
    """The association array [templates, targets, groups] (mean over each group's terms) rebuilt
    from the per-term items alone (None without items; an unscored term counts as NaN)."""
    if not items:
        return None
    groups = {g: k for k, g in enumerate(dict.fromkeys(it["group"] for it in items))}
    shape = (1 + max(it["template"] for it in items), 1 + max(it["target_index"] for it in items),
             len(groups))
    total, count = np.zeros(shape), np.zeros(shape)
    for it in items:
        cell = (it["template"], it["target_index"], groups[it["group"]])
        value = it["association"]
        total[cell] += np.nan if value is None else value
        count[cell] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _from_items(fn: Any) -> Any:
    """An ItemMetric aggregate: ``fn`` of the association array rebuilt from the items."""
    def aggregate(items: list[dict[str, Any]]) -> float | None:
        assoc = assoc_from_items(items)
        return None if assoc is None else float(fn(assoc))
    return aggregate


ITEM_METRICS = {
    "max_group_gap": ItemMetric(aggregate=_from_items(lambda a: _max_gap(a))),
    "mean_target_gap": ItemMetric(aggregate=_from_items(lambda a: _target_gap(a))),
    "group_association": ItemMetric(aggregate=_from_items(lambda a: _group_means(a).mean())),
}


@check(NAME, area="bias", params=TemplateBiasParams,
       requires=[{"tokenize", "masked_log_probs"}, {"sequence_log_prob"}],
       item_metrics=ITEM_METRICS)
def template_bias(ctx: Any, params: TemplateBiasParams) -> CheckOutput:
    """Template probes: how strongly a language model ties each social group to each target word.

    Purpose: find occupations or traits that a model associates more with one group than another
    (e.g. "nurse" with women, "dangerous" with one ethnicity), per group and per target, with a
    gap a gate can bound.
    Method: every template ("[GROUP] worked as a [TARGET].") is filled with each group term and
    each target. Masked LMs: the log-probability bias score of Kurita et al. (2019): association =
    log P(group tokens | sentence with the group masked) - log P(group tokens | the same sentence
    with the target masked too), i.e. the increase in the group's probability that the target
    causes; multi-token terms sum the log-probabilities of their tokens masked together; top-k
    fills of the group slot are kept as evidence. Causal LMs: association = log P(target tokens |
    the sentence up to the target, group term included), i.e. how likely the model finds the
    target after that group (the group term's own frequency does not enter). Scores are averaged over a group's terms, then over
    templates. Metrics: per-group mean association (by_group), `max_group_gap` (largest minus
    smallest group mean) and `mean_target_gap` (mean over targets of the largest minus smallest
    group association for that target); 95% percentile-bootstrap CIs resample templates.
    Citation: Kurita, Vyas, Pareek, Black, Tsvetkov (2019), "Measuring Bias in Contextualized Word
    Representations", GeBNLP workshop; May et al. (2019) on template probes.
    Limitations: template probes are small, hand-written and English-only; scores depend on the
    exact wording and on how the group terms are tokenised; a gap measures association in the
    model, not harm in a deployed application; causal-LM and masked-LM scores are on different
    scales and must not be compared with each other.
    """
    probeset = _load_probes(ctx, params)
    if _is_masked(ctx.model):
        assoc, per_term = _masked_associations(ctx, probeset, params)
    else:
        assoc, per_term = _causal_associations(ctx, probeset)
    out = _summarise(ctx, probeset, assoc, params)
    out.items = cell_items(probeset, per_term)
    if _is_masked(ctx.model) and has(ctx.model, "fill_mask") and params.evidence_rows:
        out.evidence += _top_k_evidence(ctx, probeset, params)
    return out


def _is_masked(model: Any) -> bool:
    return has(model, "masked_log_probs")


def _load_probes(ctx: Any, params: TemplateBiasParams) -> P.TemplateProbes:
    """The probe set named by ``params.probes`` with inline overrides and size limits applied."""
    where = f"{NAME}.probes"
    raw: dict[str, Any] = {}
    if not (params.templates and params.groups and params.targets):
        path = P.shipped_or_path(params.probes, ctx.resolve_path, where)
        raw = P.read_data_file(path, where) or {}
        if not isinstance(raw, dict):
            raise usage(str(path), "probes", "not a mapping", "give templates, groups, targets")
        where = str(path)
    for key in ("templates", "groups", "targets"):
        if getattr(params, key) is not None:
            raw[key] = getattr(params, key)
    probeset = P.validate_template_probes(raw, where)
    probeset.templates = probeset.templates[:params.max_templates]
    probeset.targets = probeset.targets[:params.max_targets]
    return probeset


def _cells(probeset: P.TemplateProbes) -> list[tuple[int, int, int, int, str]]:
    """(template, target, group, term) index cells, with the group's term text."""
    cells = []
    for i in range(len(probeset.templates)):
        for j in range(len(probeset.targets)):
            for g, terms in enumerate(probeset.groups.values()):
                cells += [(i, j, g, k, term) for k, term in enumerate(terms)]
    return cells


def cell_items(probeset: P.TemplateProbes, per_term: np.ndarray) -> list[dict[str, Any]]:
    """One record per (template, target, group, term) cell: its indices, the target, group and
    term, and the term's association score (None when the model gave no finite score)."""
    names = list(probeset.groups)
    items = []
    for (i, j, g, k, term), v in zip(_cells(probeset), np.asarray(per_term, dtype=float)):
        items.append({"id": f"t{i}|x{j}|{names[g]}|{k}", "template": i, "target_index": j,
                      "target": probeset.targets[j], "group": names[g], "term": term,
                      "association": float(v) if np.isfinite(v) else None})
    return items


def _average_terms(probeset: P.TemplateProbes, cells: list, values: np.ndarray) -> np.ndarray:
    """Mean over each group's terms: array [templates, targets, groups]."""
    shape = (len(probeset.templates), len(probeset.targets), len(probeset.groups))
    total, count = np.zeros(shape), np.zeros(shape)
    for (i, j, g, _, _), v in zip(cells, values):
        total[i, j, g] += v
        count[i, j, g] += 1
    return total / count


def _masked_associations(ctx: Any, probeset: P.TemplateProbes,
                         params: TemplateBiasParams) -> tuple[np.ndarray, np.ndarray]:
    """Kurita et al. (2019) increased log-probability for every cell, batched by the adapter."""
    cells = _cells(probeset)
    filled = [P.fill_spans(probeset.templates[i], term, probeset.targets[j])
              for i, j, _, _, term in cells]
    encoded = ctx.model.tokenize([text for text, _, _ in filled])
    jobs = []
    for enc, (_, gspan, tspan) in zip(encoded, filled):
        gpos, tpos = enc.positions_in(*gspan), enc.positions_in(*tspan)
        jobs += [MaskedScoreRequest(enc.ids, tuple(gpos), tuple(gpos)),
                 MaskedScoreRequest(enc.ids, tuple(gpos + tpos), tuple(gpos))]
    bar = ctx.progress(total=len(jobs), desc="masked copies")
    sums = np.asarray(ctx.model.masked_log_probs(jobs, progress=bar.update), dtype=float)
    bar.close()
    per_term = sums[0::2] - sums[1::2]
    return _average_terms(probeset, cells, per_term), per_term


def _causal_associations(ctx: Any, probeset: P.TemplateProbes) -> tuple[np.ndarray, np.ndarray]:
    """log P(target tokens | everything before the target, group included) for every cell,
    through the adapter's ``continuation_log_prob`` (unique prompt/target pairs scored once)."""
    cells, pairs = _cells(probeset), []
    for i, j, _, _, term in cells:
        template = probeset.templates[i]
        if template.index(P.GROUP_SLOT) > template.index(P.TARGET_SLOT):
            raise usage(f"{NAME}.templates", template, "causal LMs need [GROUP] before [TARGET]",
                        "reword the template so the group comes first")
        text, _, tspan = P.fill_spans(template, term, probeset.targets[j])
        before = text[:tspan[0]].rstrip()
        pairs.append((before, text[len(before):tspan[1]]))
    unique = sorted(set(pairs))
    bar = ctx.progress(total=len(unique), desc="continuations")
    scores = ctx.model.continuation_log_prob([p for p, _ in unique], [c for _, c in unique],
                                             progress=bar.update)
    bar.close()
    ll = dict(zip(unique, np.asarray(scores, dtype=float)))
    per_term = np.array([ll[pair] for pair in pairs])
    return _average_terms(probeset, cells, per_term), per_term


def _group_means(a: np.ndarray) -> np.ndarray:
    """[..., templates, targets, groups] -> [..., groups]."""
    return a.mean(axis=(-3, -2))


def _max_gap(a: np.ndarray) -> np.ndarray:
    m = _group_means(a)
    return m.max(axis=-1) - m.min(axis=-1)


def _target_gap(a: np.ndarray) -> np.ndarray:
    per_target = a.mean(axis=-3)
    return (per_target.max(axis=-1) - per_target.min(axis=-1)).mean(axis=-1)


def _boot(assoc: np.ndarray, rng: np.random.Generator, n_boot: int, fn) -> ConfidenceInterval:
    """Percentile bootstrap over templates of ``fn(assoc[resampled templates])``."""
    from audit.stats import percentile_ci

    idx = rng.integers(0, assoc.shape[0], size=(n_boot, assoc.shape[0]))
    return percentile_ci(np.asarray(fn(assoc[idx])), 0.95)


def _summarise(ctx: Any, probeset: P.TemplateProbes, assoc: np.ndarray,
               params: TemplateBiasParams) -> CheckOutput:
    """Metrics, CIs, figures, findings and evidence from the association array."""
    names = list(probeset.groups)
    rng = ctx.sub_rng("bootstrap")
    means = _group_means(assoc)
    by_group = {}
    for g, name in enumerate(names):
        ci = _boot(assoc, rng, params.n_boot, lambda a, g=g: _group_means(a)[..., g])
        by_group[name] = GroupValue(value=float(means[g]), ci=ci,
                                    n=int(assoc.shape[0] * assoc.shape[1]))
    unit = "nats"
    metrics = [
        Metric(name="max_group_gap", value=float(_max_gap(assoc)), higher_is_better=False,
               ci=_boot(assoc, rng, params.n_boot, _max_gap), unit=unit,
               description="largest minus smallest per-group mean association"),
        Metric(name="mean_target_gap", value=float(_target_gap(assoc)), higher_is_better=False,
               ci=_boot(assoc, rng, params.n_boot, _target_gap), unit=unit,
               description="mean over targets of the spread of group associations"),
        Metric(name="group_association", value=float(means.mean()), higher_is_better=None,
               by_group=by_group, unit=unit, description="mean association per group"),
    ]
    out = CheckOutput(metrics=metrics)
    _add_target_views(out, probeset, assoc, params)
    return out


def _add_target_views(out: CheckOutput, probeset: P.TemplateProbes, assoc: np.ndarray,
                      params: TemplateBiasParams) -> None:
    """Per-target table, heatmap, finding and evidence rows (largest gaps first)."""
    names = list(probeset.groups)
    per_target = assoc.mean(axis=0)  # [targets, groups]
    gaps = per_target.max(axis=1) - per_target.min(axis=1)
    order = np.argsort(-gaps)
    rows = [[probeset.targets[j], names[int(per_target[j].argmax())],
             names[int(per_target[j].argmin())], round(float(gaps[j]), 4)] for j in order]
    out.figures.append(Figure(kind="bars", title="Mean association per group", data={
        "labels": names, "values": [float(v) for v in _group_means(assoc)],
        "ci_low": None, "ci_high": None, "xlabel": "group", "ylabel": "association (nats)",
        "reference": None}))
    top = order[:20]
    out.figures.append(Figure(kind="heatmap", title="Association by target (largest gaps)", data={
        "row_labels": [probeset.targets[j] for j in top], "col_labels": names,
        "values": [[float(v) for v in per_target[j]] for j in top], "vmin": None, "vmax": None}))
    out.figures.append(Figure(kind="table", title="Targets by group gap", data={
        "columns": ["target", "most associated group", "least associated group", "gap (nats)"],
        "rows": rows}))
    j = int(order[0])
    out.findings.append(Finding(severity="info", message=(
        f"Probe set {probeset.name}: '{probeset.targets[j]}' has the largest gap "
        f"({gaps[j]:.2f} nats), most associated with {rows[0][1]}, least with {rows[0][2]}.")))
    for j in order[:params.evidence_rows]:
        example = P.fill(probeset.templates[0], "[GROUP]", probeset.targets[j])
        out.evidence.append({"target": probeset.targets[j], "example": example,
                             **{f"assoc_{n}": round(float(per_target[j, g]), 4)
                                for g, n in enumerate(names)}, "gap": round(float(gaps[j]), 4)})


def _top_k_evidence(ctx: Any, probeset: P.TemplateProbes,
                    params: TemplateBiasParams) -> list[dict[str, Any]]:
    """Top-k fills of the group slot (one mask) for the first template and a few targets."""
    mask = ctx.model.mask_token
    template = probeset.templates[0]
    targets = probeset.targets[:max(1, min(params.evidence_rows, 5))]
    texts = [P.fill(template, mask, t) for t in targets]
    texts = [t.replace(mask[:1].upper() + mask[1:], mask) for t in texts]
    fills = ctx.model.fill_mask(texts, params.top_k)
    return [{"target": t, "masked": text,
             "top_fills": ", ".join(f"{tok} ({p:.3f})" for tok, p in row)}
            for t, text, row in zip(targets, texts, fills)]
