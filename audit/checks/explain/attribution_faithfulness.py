"""Comprehensiveness and sufficiency (ERASER AOPC) of SHAP, IG and attention-rollout
attributions against a random baseline."""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
from pydantic import Field, field_validator

from audit.checks.explain import common, faithfulness
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import Figure, Finding, Metric

Method = Literal["shap", "ig", "attention_rollout", "random"]


class FaithfulnessParams(common.TextInputParams):
    """Parameters of the ``attribution_faithfulness`` check."""

    n: int = Field(20, ge=1, le=5000)
    methods: list[Method] | None = None
    fractions: list[float] = Field(default_factory=lambda: list(faithfulness.DEFAULT_FRACTIONS))
    max_evals: int = Field(300, ge=4, le=100_000)
    n_steps: int = Field(32, ge=2, le=2000)
    n_random: int = Field(5, ge=1, le=100)
    model_batch: int = Field(64, ge=1, le=4096)
    n_boot: int = Field(1000, ge=100, le=100_000)

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if not v or any(not 0.0 < f <= 1.0 for f in v):
            raise ValueError("fractions must be a non-empty list of numbers in (0, 1]")
        return v


METHODS: tuple[str, ...] = get_args(Method)


def _per_text(key: str, method: str) -> Any:
    return lambda it: it[key].get(method)


def _minus_random(method: str) -> Any:
    def value(it: dict[str, Any]) -> float | None:
        comp = it["comprehensiveness"]
        return None if method not in comp else comp[method] - comp["random"]
    return value


def _item_metrics() -> dict[str, ItemMetric]:
    out = {}
    for m in METHODS:
        out[f"{m}_comprehensiveness"] = ItemMetric(_per_text("comprehensiveness", m))
        out[f"{m}_sufficiency"] = ItemMetric(_per_text("sufficiency", m))
        if m != "random":
            out[f"{m}_comprehensiveness_minus_random"] = ItemMetric(_minus_random(m))
    out["n_texts"] = ItemMetric(aggregate=lambda items: float(len(items)))
    return out


ITEM_METRICS = _item_metrics()


@check("attribution_faithfulness", area="explain", params=FaithfulnessParams,
       requires=["predict_proba"], item_metrics=ITEM_METRICS)
def attribution_faithfulness(ctx: Any, params: FaithfulnessParams) -> CheckOutput:
    """Which attribution method reflects this classifier: comprehensiveness and sufficiency
    of each method's top-k% tokens, compared with random attributions.

    Purpose: attributions from SHAP, Integrated Gradients and attention disagree; only a
    faithfulness test says which one tracks what the model actually uses. Gate on, e.g.,
    ``shap_comprehensiveness_minus_random >= 0.1``.
    Method: for each text the predicted class c is explained by each method (SHAP Partition,
    IG on embeddings, attention rollout from [CLS], and ``n_random`` random rankings averaged).
    Tokens are ranked by attribution; for k in ``fractions`` the top ceil(k*n) tokens are
    deleted (comprehensiveness = p_c(x) - p_c(x without them)) or kept alone (sufficiency =
    p_c(x) - p_c(only them)); both are averaged over k (AOPC) and over texts, with percentile
    bootstrap CIs over texts. Higher comprehensiveness and lower sufficiency are better.
    Citation: DeYoung et al. (2020), ERASER: A Benchmark to Evaluate Rationalized NLP Models,
    ACL; Samek et al. (2017), Evaluating the visualization of what a deep neural network has
    learned (AOPC); Lundberg & Lee (2017); Sundararajan et al. (2017); Abnar & Zuidema (2020).
    Limitations: deleting tokens yields out-of-distribution inputs, which may reward methods
    that find tokens whose removal breaks the text rather than those the model relies on
    (Hooker et al. 2019); signed attributions are ranked toward the predicted class; methods
    the adapter cannot support (IG without the differentiable capability, rollout without
    attentions) are skipped.
    """
    model = ctx.model
    texts = common.resolve_texts(ctx, params.texts, params.data, params.text_column, params.n,
                                 "attribution_faithfulness")
    texts = common.fit_texts(ctx, model, texts, params.max_tokens)
    methods = _methods(ctx, model, params.methods)
    from audit.checks.explain.shap_text import batched_predict

    predict = batched_predict(model, params.model_batch)
    probs = predict(texts)
    classes = probs.argmax(axis=1)
    segs = [common.segments(t, model) for t in texts]
    scores = {m: _attributions(ctx, model, m, texts, segs, classes, params) for m in methods}
    table = _evaluate(predict, segs, scores, probs, classes, params)
    return CheckOutput(metrics=_metrics(ctx, table, params), findings=_findings(table, methods),
                       figures=_figures(table, params),
                       evidence=_evidence(ctx, texts, segs, scores, classes, model),
                       items=faithfulness_items(ctx, texts, classes, probs, table, model))


def faithfulness_items(ctx: Any, texts: list[str], classes: np.ndarray, probs: np.ndarray,
                       table: dict[str, dict[str, np.ndarray]], model: Any) -> list[dict[str, Any]]:
    """One record per text (``text<i>``, its position in the input): the predicted class and
    its probability, each method's comprehensiveness and sufficiency (AOPC; random: the mean
    over its draws) and the start of the text (redacted, then cut)."""
    out = []
    for i, text in enumerate(texts):
        c = int(classes[i])
        out.append({"id": f"text{i}", "text": common.show_text(ctx, text, 200),
                    "class": common.label_name(model, c), "p": float(probs[i, c]),
                    "comprehensiveness": {m: float(r["comp"][i]) for m, r in table.items()},
                    "sufficiency": {m: float(r["suff"][i]) for m, r in table.items()}})
    return out


def _methods(ctx: Any, model: Any, wanted: list[str] | None) -> list[str]:
    """Requested methods, or every one the adapter supports; unsupported ones are warned about."""
    caps = getattr(model, "capabilities", frozenset())
    is_classifier = getattr(model, "kind", "") == "classifier"
    able = {"shap": True, "random": True, "ig": "differentiable" in caps and is_classifier,
            "attention_rollout": "attentions" in caps}
    chosen = list(dict.fromkeys(wanted or ["shap", "ig", "attention_rollout", "random"]))
    for m in chosen:
        if not able[m] and wanted:
            ctx.warn(f"method {m} skipped: the model adapter does not support it")
    out = [m for m in chosen if able[m]]
    return out if "random" in out else out + ["random"]


def _attributions(ctx: Any, model: Any, method: str, texts: list[str], segs: list[list[str]],
                  classes: np.ndarray, params: FaithfulnessParams) -> list[Any]:
    """Per-text scores aligned with ``segs`` (for random: ``n_random`` draws per text)."""
    if method == "random":
        rng = ctx.sub_rng("random")
        return [[faithfulness.random_scores(len(s), rng) for _ in range(params.n_random)]
                for s in segs]
    if method == "shap":
        from audit.checks.explain.shap_text import explain, token_scores

        rows = explain(model, texts, params.max_evals, 5, params.model_batch, ctx.seed,
                       ctx.progress(desc="faithfulness: shap"))
        return [_aligned(token_scores(model, r, int(c)), s, method)
                for r, c, s in zip(rows, classes, segs)]
    if method == "ig":
        from audit.checks.explain.integrated_gradients import explain_text

        bar = ctx.progress(texts, desc="faithfulness: ig")
        return [_aligned((s, explain_text(model, t, params.n_steps, target=int(c))["scores"]), s, method)
                for t, c, s in zip(bar, classes, segs)]
    return [_rollout_scores(model, t, s) for t, s in zip(texts, segs)]


def _aligned(pair: tuple[list[str], np.ndarray], segs: list[str], method: str) -> np.ndarray:
    got_segs, scores = pair
    if len(scores) != len(segs):
        raise RuntimeError(f"{method}: {len(scores)} attributions for {len(segs)} tokens "
                           "(tokenizer and masker disagree)")
    return np.asarray(scores, dtype=float)


def _rollout_scores(model: Any, text: str, segs: list[str]) -> np.ndarray:
    """Rollout relevance of each non-special token, read from [CLS] (or the last token)."""
    from audit.checks.explain import rollout

    amap = model.attentions(text)
    att = rollout.validate_attentions(amap.values, "attribution_faithfulness")
    causal = rollout.is_causal(att)
    relevance = rollout.query_row(rollout.attention_rollout(att), causal)
    keep = ~np.array(amap.special, dtype=bool)
    return _aligned((segs, relevance[keep]), segs, "attention_rollout")


def _evaluate(predict: Any, segs: list[list[str]], scores: dict[str, Any], probs: np.ndarray,
              classes: np.ndarray, params: FaithfulnessParams) -> dict[str, dict[str, np.ndarray]]:
    """Per method and text: comprehensiveness, sufficiency and per-bin drops (one model pass)."""
    from audit.checks.explain.owen import evaluate

    jobs = []  # (method, text index, draw, list of (comp_text, suff_text))
    for method, per_text in scores.items():
        for i, item in enumerate(per_text):
            draws = item if method == "random" else [item]
            for d, sc in enumerate(draws):
                pairs = faithfulness.perturbations(segs[i], sc, params.fractions)
                jobs.append((method, i, d, pairs))
    strings = [t for *_, pairs in jobs for pair in pairs for t in pair]
    out = evaluate(predict, strings, chunk=max(256, params.model_batch))
    return _collect(jobs, out, probs, classes, len(params.fractions))


def _collect(jobs: list[Any], out: np.ndarray, probs: np.ndarray, classes: np.ndarray,
             n_bins: int) -> dict[str, dict[str, np.ndarray]]:
    acc: dict[str, dict[str, list]] = {}
    pos = 0
    for method, i, _, pairs in jobs:
        block = out[pos:pos + 2 * len(pairs), classes[i]].reshape(len(pairs), 2)
        pos += 2 * len(pairs)
        full = probs[i, classes[i]]
        rec = acc.setdefault(method, {"comp": {}, "suff": {}, "curve": {}})
        rec["comp"].setdefault(i, []).append(faithfulness.aopc(full, block[:, 0]))
        rec["suff"].setdefault(i, []).append(faithfulness.aopc(full, block[:, 1]))
        rec["curve"].setdefault(i, []).append(full - block[:, 0])
    return {m: {"comp": np.array([np.mean(v) for _, v in sorted(r["comp"].items())]),
                "suff": np.array([np.mean(v) for _, v in sorted(r["suff"].items())]),
                "curve": np.array([np.mean(v, axis=0) for _, v in sorted(r["curve"].items())])}
            for m, r in acc.items()}


def _metrics(ctx: Any, table: dict[str, dict[str, np.ndarray]],
             params: FaithfulnessParams) -> list[Metric]:
    from audit.stats import bootstrap_ci

    rng = ctx.sub_rng("bootstrap")
    out = []
    rand = table["random"]
    for method, rec in table.items():
        for key, name, hib in (("comp", "comprehensiveness", True), ("suff", "sufficiency", False)):
            ci = bootstrap_ci(rec[key], rng, n_boot=params.n_boot)
            out.append(Metric(name=f"{method}_{name}", value=float(rec[key].mean()),
                              higher_is_better=hib, ci=ci))
        if method != "random":
            diff = rec["comp"] - rand["comp"]
            out.append(Metric(name=f"{method}_comprehensiveness_minus_random",
                              value=float(diff.mean()), higher_is_better=True,
                              ci=bootstrap_ci(diff, rng, n_boot=params.n_boot),
                              description="paired over texts"))
    out.append(Metric(name="n_texts", value=float(len(rand["comp"]))))
    return out


def _findings(table: dict[str, dict[str, np.ndarray]], methods: list[str]) -> list[Finding]:
    ranked = sorted(table, key=lambda m: -table[m]["comp"].mean())
    best = ranked[0]
    msg = (f"Most comprehensive attributions: {best} ({table[best]['comp'].mean():.3f} vs random "
           f"{table['random']['comp'].mean():.3f}). Order: {', '.join(ranked)}.")
    out = [Finding(message=msg)]
    for m in methods:
        if m != "random" and table[m]["comp"].mean() <= table["random"]["comp"].mean():
            out.append(Finding(severity="warning", message=f"{m} attributions are no more "
                               "comprehensive than random ones for this model: do not trust them."))
    return out


def _figures(table: dict[str, dict[str, np.ndarray]], params: FaithfulnessParams) -> list[Figure]:
    rows = [[m, round(float(r["comp"].mean()), 4), round(float(r["suff"].mean()), 4)]
            for m, r in table.items()]
    return [
        Figure(kind="table", title="Faithfulness of attribution methods (AOPC)",
               data={"columns": ["method", "comprehensiveness ↑", "sufficiency ↓"],
                     "rows": rows}),
        Figure(kind="line",
               title="Drop of the predicted-class probability after deleting the top-k% tokens",
               data={"x": [100 * f for f in params.fractions], "xlabel": "top-k% tokens deleted",
                     "ylabel": "p(x) - p(x without them)", "log_x": False,
                     "series": [{"name": m, "y": common.rounded(r["curve"].mean(axis=0), 4)}
                                for m, r in table.items()]}),
    ]


def _evidence(ctx: Any, texts: list[str], segs: list[list[str]], scores: dict[str, Any],
              classes: np.ndarray, model: Any) -> list[dict[str, Any]]:
    out = []
    for i, text in enumerate(texts[:10]):
        labels = common.label_tokens(segs[i], ctx)
        top = {m: [labels[j] for j in faithfulness.ranking(s[i])[:5]]
               for m, s in scores.items() if m != "random"}
        out.append({"text": common.show_text(ctx, text), "top_tokens": top,
                    "class": common.label_name(model, int(classes[i]))})
    return out
