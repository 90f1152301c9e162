"""SHAP (Partition explainer, Text masker) token attributions for text classifiers."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from pydantic import Field

from audit.checks.explain import common
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import Figure, Finding, Metric


class ShapTextParams(common.TextInputParams):
    """Parameters of the ``shap_text`` check."""

    n: int = Field(8, ge=1, le=5000)
    max_evals: int = Field(500, ge=4, le=100_000)
    node_batch: int = Field(5, ge=1, le=1000)
    model_batch: int = Field(64, ge=1, le=4096)
    target: str | int | None = None
    identity_terms: list[str] | None = None
    max_sentences_shown: int = Field(4, ge=0, le=50)
    top_tokens_shown: int = Field(15, ge=1, le=100)


ITEM_METRICS = {
    "max_additivity_error": ItemMetric(aggregate=lambda items: max(
        (float(it["additivity_error"]) for it in items), default=None)),
    "mean_additivity_error": ItemMetric(lambda it: it["additivity_error"]),
    "identity_attribution_ratio": ItemMetric(lambda it: it["identity_ratio"]),
    "n_texts": ItemMetric(aggregate=lambda items: float(len(items))),
}


@check("shap_text", area="explain", params=ShapTextParams, requires=["predict_proba"],
       item_metrics=ITEM_METRICS)
def shap_text(ctx: Any, params: ShapTextParams) -> CheckOutput:
    """Token attributions of a text classifier by SHAP's Partition explainer (Owen values over
    the Text masker's token hierarchy), with their additivity error.

    Purpose: say which tokens push each text toward its predicted label (for example whether
    identity terms move a stress or toxicity score), with a model-agnostic method.
    Method: shap's Text masker replaces tokens by the mask token (or "...") and its partition
    tree groups neighbouring tokens; the Partition explainer spends ``max_evals`` model calls per
    text on the hierarchy (Owen values, exact Shapley values for additive models). The texts are
    explained in lockstep so the model sees a few large, de-duplicated, length-sorted batches
    (``model_batch`` texts per forward pass); per text the recursion is shap's own (same
    ``node_batch`` and budget). Additivity error = |base value + sum of attributions - p(x)|
    for the explained class, with p(x) from a separate call on the unmasked text.
    Citation: Lundberg & Lee (2017), A Unified Approach to Interpreting Model Predictions,
    NeurIPS; shap's PartitionExplainer (Owen values; Lundberg et al., shap 0.51).
    Limitations: masking with [MASK] or "..." creates inputs unlike training text; with a
    binding budget the hierarchy is only partly expanded (coarser attributions); cost is about
    ``max_evals`` forward passes per text; identity terms are matched as whole words.
    """
    model = ctx.model
    texts = common.resolve_texts(ctx, params.texts, params.data, params.text_column, params.n,
                                 "shap_text")
    texts = common.fit_texts(ctx, model, texts, params.max_tokens)
    rows = explain(model, texts, params.max_evals, params.node_batch, params.model_batch,
                   ctx.seed, ctx.progress(desc="shap"))
    probs = batched_predict(model, params.model_batch)(texts)
    classes = common.target_index(model, params.target, probs)
    per_text = [_summarise(model, r, probs[i], int(classes[i])) for i, r in enumerate(rows)]
    terms = params.identity_terms or common.identity_terms_default()
    return CheckOutput(metrics=_metrics(per_text, terms, params.max_evals),
                       findings=_findings(per_text, params),
                       evidence=[_evidence(ctx, t, r) for t, r in zip(texts, per_text)],
                       figures=_figures(ctx, per_text, params),
                       items=shap_items(ctx, texts, per_text, terms))


def shap_items(ctx: Any, texts: list[str], per_text: list[dict[str, Any]],
               terms: list[str]) -> list[dict[str, Any]]:
    """One record per text (``text<i>``, its position in the input): the explained class, its
    probability and base value, the additivity error, the identity-term ratio (None: no
    identity term), the tokens (PII tokens masked as in the figures) with their attributions
    and the start of the text (redacted, then cut)."""
    return [{"id": f"text{i}", "text": common.show_text(ctx, text, 200), "label": r["label"],
             "class": r["class"],
             "p": r["p"], "base": r["base"], "additivity_error": r["additivity"],
             "identity_ratio": common.identity_ratio([r["segments"]], [r["scores"]], terms)[0],
             "tokens": common.label_tokens(r["segments"], ctx),
             "scores": np.asarray(r["scores"], float).tolist()}
            for i, (text, r) in enumerate(zip(texts, per_text))]


def batched_predict(model: Any, model_batch: int) -> Callable[[list[str]], np.ndarray]:
    """``predict_proba`` as a plain function of a list of texts (the adapter batches them;
    ``model_batch`` only sizes the pools of texts handed to it)."""

    def predict(texts: list[str]) -> np.ndarray:
        return np.asarray(model.predict_proba(list(texts)))

    return predict


def make_masker_factory(model: Any) -> Callable[[], Any]:
    """shap Text masker over the adapter's tokenisation (``tokenize``), or over words when the
    adapter has none."""
    import shap

    from audit.models.capabilities import has
    from audit.textseg import WordTokenizer

    if has(model, "tokenize"):
        return lambda: shap.maskers.Text(common.ShapTokenizer(model))
    return lambda: shap.maskers.Text(WordTokenizer())  # \W+ words, each CJK character its own


def explain(model: Any, texts: list[str], max_evals: int, node_batch: int, model_batch: int,
            seed: int, bar: Any = None) -> list[dict[str, Any]]:
    """Partition-SHAP rows for ``texts`` (see ``owen.explain_texts``), tie-break seeds from ``seed``."""
    from audit.checks.explain.owen import explain_texts
    from audit.context import stable_seed

    seeds = [stable_seed(seed, "shap", i) for i in range(len(texts))]
    rows = explain_texts(texts, batched_predict(model, model_batch), make_masker_factory(model),
                         max_evals=max_evals, batch_size=node_batch, seeds=seeds,
                         chunk=max(model_batch, 256), progress=bar.update if bar is not None else None)
    if bar is not None:
        bar.close()
    for text, row in zip(texts, rows):
        row["scores_all"] = row["values"]
        row["keep"] = _non_special(model, text, len(row["segments"]))
    return rows


def _non_special(model: Any, text: str, m: int) -> np.ndarray:
    """Positions of shap's tokens that are not special tokens ([CLS], [SEP], BOS ...)."""
    special = common.special_flags(text, model)
    if len(special) != m:
        return np.ones(m, dtype=bool)
    return ~np.array(special, dtype=bool)


def token_scores(model: Any, row: dict[str, Any], cls: int) -> tuple[list[str], np.ndarray]:
    """Segments and attributions of the non-special tokens for class ``cls``."""
    keep = row["keep"]
    segs = [s for s, k in zip(row["segments"], keep) if k]
    return segs, np.asarray(row["values"])[keep, cls]


def _summarise(model: Any, row: dict[str, Any], p: np.ndarray, cls: int) -> dict[str, Any]:
    segs, scores = token_scores(model, row, cls)
    additivity = abs(float(row["base"][cls] + row["values"][:, cls].sum() - p[cls]))
    return {"segments": segs, "scores": scores, "class": cls, "p": float(p[cls]),
            "label": common.label_name(model, cls), "base": float(row["base"][cls]),
            "additivity": additivity}


def _metrics(per_text: list[dict[str, Any]], terms: list[str], max_evals: int) -> list[Metric]:
    add = np.array([r["additivity"] for r in per_text])
    ratio, n_id = common.identity_ratio([r["segments"] for r in per_text],
                                        [r["scores"] for r in per_text], terms)
    return [
        Metric(name="max_additivity_error", value=float(add.max()), higher_is_better=False,
               description="largest |base + sum(attributions) - p(x)| of the explained class"),
        Metric(name="mean_additivity_error", value=float(add.mean()), higher_is_better=False),
        Metric(name="identity_attribution_ratio", value=ratio, higher_is_better=False,
               description=f"identity tokens' share of |SHAP| / their token share "
                           f"({n_id} texts with identity terms)"),
        Metric(name="n_texts", value=float(len(per_text))),
        Metric(name="max_evals", value=float(max_evals), description="model calls per text (budget)"),
    ]


def _findings(per_text: list[dict[str, Any]], params: ShapTextParams) -> list[Finding]:
    worst = max(r["additivity"] for r in per_text)
    out = [Finding(message=f"Partition SHAP of {len(per_text)} texts with {params.max_evals} "
                           f"evaluations each; worst additivity error {worst:.2e}.")]
    if worst > 1e-3:
        out.append(Finding(severity="warning", message="Attributions do not add up to the model "
                           "output: the model is not deterministic or the masker changed the text."))
    return out


def _evidence(ctx: Any, text: str, r: dict[str, Any]) -> dict[str, Any]:
    top = np.argsort(-np.abs(r["scores"]))[:5]
    labels = common.label_tokens(r["segments"], ctx)
    return {"text": common.show_text(ctx, text), "explained_class": r["label"],
            "probability": round(r["p"], 6), "base_value": round(r["base"], 6),
            "additivity_error": float(f"{r['additivity']:.3e}"),
            "top_tokens": [[labels[i], round(float(r["scores"][i]), 5)] for i in top]}


def _figures(ctx: Any, per_text: list[dict[str, Any]], params: ShapTextParams) -> list[Figure]:
    figs = [Figure(kind="token_attributions", title=f"Text {i + 1}: SHAP toward {r['label']}",
                   data={"tokens": common.label_tokens(r["segments"], ctx),
                         "scores": common.rounded(r["scores"], 5),
                         "label": f"{r['label']} (p={r['p']:.3f}, base={r['base']:.3f})"})
            for i, r in enumerate(per_text[:params.max_sentences_shown])]
    labels, values = _top_tokens(ctx, per_text, params.top_tokens_shown)
    if labels:
        figs.append(Figure(kind="bars", title="Tokens with the largest mean |SHAP|",
                           data={"labels": labels, "values": values, "ci_low": None, "ci_high": None,
                                 "xlabel": "token (lower case)", "ylabel": "mean |SHAP|",
                                 "reference": None},
                           caption="Mean over occurrences in the explained texts."))
    return figs


def _top_tokens(ctx: Any, per_text: list[dict[str, Any]], k: int) -> tuple[list[str], list[float]]:
    acc: dict[str, list[float]] = {}
    for r in per_text:
        for label, s in zip(common.label_tokens(r["segments"], ctx), r["scores"]):
            key = label.lower() if not label.startswith("[") else label
            if key != "␣":
                acc.setdefault(key, []).append(abs(float(s)))
    ranked = sorted(acc.items(), key=lambda kv: -np.mean(kv[1]))[:k]
    return [t for t, _ in ranked], [round(float(np.mean(v)), 5) for _, v in ranked]
