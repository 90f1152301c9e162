"""Attention maps, attention rollout and head entropy for probe sentences."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from audit.checks.explain import common, rollout
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import Figure, Finding, Metric


class AttentionParams(common.TextInputParams):
    """Parameters of the ``attention`` check."""

    n: int = Field(12, ge=1, le=2000)
    residual: float = Field(0.5, ge=0.0, le=1.0)
    focused_entropy: float = Field(0.3, gt=0.0, lt=1.0)
    identity_terms: list[str] | None = None
    max_tokens_shown: int = Field(24, ge=2, le=128)
    max_sentences_shown: int = Field(3, ge=0, le=50)


def _focused_fraction(items: list[dict[str, Any]]) -> float | None:
    """Share of heads whose entropy, averaged over the texts, is below the items' threshold."""
    if not items:
        return None
    head_mean = np.mean([np.asarray(it["head_entropy"], float) for it in items], axis=0)
    return float((head_mean < items[0]["focused_entropy"]).mean())


ITEM_METRICS = {
    "max_row_sum_error": ItemMetric(aggregate=lambda items: max(
        (float(it["row_sum_error"]) for it in items), default=None)),
    "mean_head_entropy": ItemMetric(lambda it: it["mean_head_entropy"]),
    "focused_head_fraction": ItemMetric(aggregate=_focused_fraction),
    "first_token_attention": ItemMetric(lambda it: it["first_token_attention"]),
    "identity_rollout_ratio": ItemMetric(lambda it: it["identity_ratio"]),
    "n_texts": ItemMetric(aggregate=lambda items: float(len(items))),
}


@check("attention", area="explain", params=AttentionParams, requires=["attentions"],
       item_metrics=ITEM_METRICS)
def attention(ctx: Any, params: AttentionParams) -> CheckOutput:
    """Per-layer, per-head attention of probe sentences, summarised by attention rollout and
    head entropy.

    Purpose: show which tokens the model's attention routes information from (for example
    whether identity terms draw attention out of proportion), and whether heads are diffuse or
    focused, as a first look inside the model.
    Method: for each sentence the adapter returns attention weights [layers, heads, seq, seq]
    (eager attention). Rows must sum to 1 (checked, ``max_row_sum_error``). Attention rollout
    (Abnar & Zuidema 2020) averages heads, adds the residual connection as 0.5*A + 0.5*I,
    renormalises rows and multiplies the layers; the [CLS] row (encoders) or last-token row
    (causal LMs) gives each token's relevance. Head entropy is the mean row entropy normalised
    by log(number of visible keys); a head below ``focused_entropy`` is "focused".
    ``identity_rollout_ratio`` is the identity tokens' share of relevance divided by their share
    of tokens (1 = proportional), over sentences that contain identity terms.
    Citation: Abnar & Zuidema (2020), Quantifying Attention Flow in Transformers, ACL;
    Clark et al. (2019), What Does BERT Look At?, BlackboxNLP; Jain & Wallace (2019),
    Attention is not Explanation, NAACL.
    Limitations: attention weights are not explanations of the output (Jain & Wallace 2019);
    rollout assumes linear mixing of token identities and ignores value vectors and MLPs; check
    faithfulness with ``attribution_faithfulness`` before trusting it. Identity terms are matched
    as whole words; relevance of the query token itself is excluded from the identity ratio.
    """
    texts = common.resolve_texts(ctx, params.texts, params.data, params.text_column, params.n,
                                 "attention")
    texts = common.fit_texts(ctx, ctx.model, texts, params.max_tokens)
    terms = params.identity_terms or common.identity_terms_default()
    per_text = [_analyse(ctx.model, t, params.residual) for t in ctx.progress(texts, desc="attention")]
    return CheckOutput(metrics=_metrics(per_text, terms, params),
                       findings=_findings(per_text, terms),
                       evidence=[_evidence(ctx, t, r) for t, r in zip(texts, per_text)],
                       figures=_figures(per_text, params),
                       items=attention_items(ctx, texts, per_text, terms, params.focused_entropy))


def attention_items(ctx: Any, texts: list[str], per_text: list[dict[str, Any]],
                    terms: list[str], focused: float) -> list[dict[str, Any]]:
    """One record per text (``text<i>``, its position in the input): its per-head normalised
    entropy [layers][heads] and their mean, the largest row-sum error, the attention paid to the
    first token, the identity-term rollout ratio (None: no identity term or no alignment), the
    focused-head threshold and the start of the text (redacted, then cut)."""
    out = []
    for i, (text, r) in enumerate(zip(texts, per_text)):
        ratio = (common.identity_ratio([r["segments"]], [r["scores"]], terms)[0]
                 if r["segments"] is not None else None)
        out.append({"id": f"text{i}", "text": common.show_text(ctx, text, 200),
                    "n_tokens": len(r["tokens"]),
                    "head_entropy": np.asarray(r["entropy"], float).tolist(),
                    "mean_head_entropy": float(np.mean(r["entropy"])),
                    "row_sum_error": float(r["row_error"]),
                    "first_token_attention": float(r["first_token"]),
                    "identity_ratio": ratio, "focused_entropy": focused})
    return out


def _analyse(model: Any, text: str, residual: float) -> dict[str, Any]:
    """Attention statistics of one sentence."""
    amap = model.attentions(text)
    tokens, raw = amap.tokens, amap.values
    att = rollout.validate_attentions(raw, "attention")
    causal = rollout.is_causal(att)
    rolled = rollout.attention_rollout(att, residual)
    _, ent_norm = rollout.head_entropy(att)
    relevance = rollout.query_row(rolled, causal)
    segs, keep = _segments_for(text, amap)
    query = len(tokens) - 1 if causal else 0
    scores = relevance.copy()
    scores[query] = 0.0  # the query token's own share is residual flow, not attention to others
    return {"tokens": list(tokens), "att": att, "rollout": rolled, "entropy": ent_norm,
            "causal": causal, "relevance": relevance, "row_error": rollout.row_sum_error(att),
            "first_token": float(att[:, :, 1:, 0].mean()) if att.shape[-1] > 1 else 1.0,
            "segments": segs, "scores": scores[keep] if segs is not None else None}


def _segments_for(text: str, amap: Any) -> tuple[list[str] | None, np.ndarray]:
    """Text segments aligned with the non-special attention tokens, from the offsets the
    adapter returns with the attention map (no whitespace assumed)."""
    n = len(amap.tokens)
    if len(amap.offsets) != n or len(amap.special) != n:
        return None, np.zeros(n, dtype=bool)
    keep = ~np.array(amap.special, dtype=bool)
    starts = [a for (a, _), k in zip(amap.offsets, keep) if k]
    if not starts:
        return None, np.zeros(n, dtype=bool)
    bounds = [0] + starts[1:] + [len(text)]
    return [text[a:b] for a, b in zip(bounds[:-1], bounds[1:])], keep


def _metrics(per_text: list[dict[str, Any]], terms: list[str], params: AttentionParams) -> list[Metric]:
    ent = np.stack([r["entropy"] for r in per_text])  # [texts, layers, heads]
    head_mean = ent.mean(axis=0)
    aligned = [r for r in per_text if r["segments"] is not None]
    ratio, n_id = common.identity_ratio([r["segments"] for r in aligned],
                                        [r["scores"] for r in aligned], terms)
    return [
        Metric(name="max_row_sum_error", value=max(r["row_error"] for r in per_text),
               higher_is_better=False, description="largest |row sum - 1| of any attention row"),
        Metric(name="mean_head_entropy", value=float(head_mean.mean()),
               description="mean normalised row entropy over heads (0 focused, 1 uniform)"),
        Metric(name="focused_head_fraction", value=float((head_mean < params.focused_entropy).mean()),
               description=f"share of heads with normalised entropy < {params.focused_entropy}"),
        Metric(name="first_token_attention", value=float(np.mean([r["first_token"] for r in per_text])),
               description="mean attention paid to the first token (attention sink)"),
        Metric(name="identity_rollout_ratio", value=ratio, higher_is_better=False,
               description=f"identity tokens' share of rollout relevance / their token share "
                           f"({n_id} sentences with identity terms)"),
        Metric(name="n_texts", value=float(len(per_text))),
    ]


def _findings(per_text: list[dict[str, Any]], terms: list[str]) -> list[Finding]:
    out = [Finding(message=f"Attention of {len(per_text)} sentences; rollout relevance is read from "
                           f"the {'last' if per_text[0]['causal'] else 'first ([CLS])'} token.")]
    if max(r["row_error"] for r in per_text) > 1e-3:
        out.append(Finding(severity="warning", message="Some attention rows do not sum to 1: "
                           "the weights are not softmax outputs; rollout is unreliable."))
    sink = [float(r["relevance"][0]) for r in per_text if r["causal"] and len(r["relevance"]) > 2]
    if sink and np.mean(sink) > 0.9:
        out.append(Finding(severity="warning", message=f"Rollout puts {np.mean(sink):.0%} of the "
                           "last token's relevance on the first token (an attention sink): per-token "
                           "rollout relevance carries little information for this model."))
    if all(r["segments"] is None for r in per_text):
        out.append(Finding(severity="warning", message="Attention tokens could not be aligned "
                           "with the text (the adapter gave no token offsets); no identity-term ratio."))
    return out


def _evidence(ctx: Any, text: str, r: dict[str, Any]) -> dict[str, Any]:
    top = np.argsort(-r["relevance"])[:5]
    return {"text": common.show_text(ctx, text), "n_tokens": len(r["tokens"]),
            "top_relevance": [[r["tokens"][i], round(float(r["relevance"][i]), 4)] for i in top]}


def _figures(per_text: list[dict[str, Any]], params: AttentionParams) -> list[Figure]:
    ent = np.stack([r["entropy"] for r in per_text]).mean(axis=0)
    figs = [Figure(kind="heatmap", title="Head entropy (normalised; 0 focused, 1 uniform)",
                   data={"row_labels": [f"L{i}" for i in range(ent.shape[0])],
                         "col_labels": [f"H{j}" for j in range(ent.shape[1])],
                         "values": common.rounded(ent, 3), "vmin": 0.0, "vmax": 1.0},
                   caption="Mean over sentences, per layer (rows) and head (columns).")]
    for i, r in enumerate(per_text[:params.max_sentences_shown]):
        figs += _sentence_figures(i, r, params.max_tokens_shown)
    return figs


def _sentence_figures(i: int, r: dict[str, Any], cap: int) -> list[Figure]:
    """Rollout and last-layer head-mean heatmaps (first ``cap`` tokens) and the relevance row."""
    toks = [str(t) for t in r["tokens"][:cap]]
    cut = " (first %d tokens)" % cap if len(r["tokens"]) > cap else ""
    last = r["att"][-1].mean(axis=0)
    grid = {"row_labels": toks, "col_labels": toks, "vmin": 0.0, "vmax": None}
    return [
        Figure(kind="heatmap", title=f"Sentence {i + 1}: attention rollout{cut}",
               data=dict(grid, values=common.rounded(r["rollout"][:cap, :cap], 3)),
               caption="Row i: share of each input token in position i after all layers."),
        Figure(kind="heatmap", title=f"Sentence {i + 1}: last layer, mean over heads{cut}",
               data=dict(grid, values=common.rounded(last[:cap, :cap], 3))),
        Figure(kind="token_attributions", title=f"Sentence {i + 1}: rollout relevance",
               data={"tokens": [str(t) for t in r["tokens"]],
                     "scores": common.rounded(r["relevance"], 4),
                     "label": "last token" if r["causal"] else "[CLS]"}),
    ]
