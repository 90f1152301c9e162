"""Integrated Gradients on the embedding layer (Captum) for classifiers and causal LMs."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Literal

import numpy as np
from pydantic import Field

from audit.checks.explain import common
from audit.errors import usage
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import Figure, Finding, Metric


class IGParams(common.TextInputParams):
    """Parameters of the ``integrated_gradients`` check."""

    n: int = Field(8, ge=1, le=2000)
    n_steps: int = Field(50, ge=2, le=2000)
    method: Literal["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right",
                    "riemann_middle"] = "gausslegendre"
    output: Literal["probability", "logit"] = "probability"
    target: str | int | None = None
    internal_batch_size: int = Field(32, ge=1, le=4096)
    identity_terms: list[str] | None = None
    max_sentences_shown: int = Field(4, ge=0, le=50)


def relative_delta(item: dict[str, Any]) -> float:
    """|convergence delta| / |F(x) - F(baseline)| of one item (the gap floored at 1e-12)."""
    return abs(item["convergence_delta"]) / max(abs(item["f_x"] - item["f_baseline"]), 1e-12)


ITEM_METRICS = {
    "max_abs_convergence_delta": ItemMetric(aggregate=lambda items: max(
        (abs(float(it["convergence_delta"])) for it in items), default=None)),
    "mean_abs_convergence_delta": ItemMetric(lambda it: abs(it["convergence_delta"])),
    "median_relative_convergence_delta": ItemMetric(aggregate=lambda items: float(np.median(
        [relative_delta(it) for it in items])) if items else None),
    "identity_attribution_ratio": ItemMetric(lambda it: it["identity_ratio"]),
    "n_texts": ItemMetric(aggregate=lambda items: float(len(items))),
}


@check("integrated_gradients", area="explain", params=IGParams,
       requires=[{"differentiable", "predict_proba"}, {"differentiable", "sequence_log_prob"}],
       item_metrics=ITEM_METRICS)
def integrated_gradients(ctx: Any, params: IGParams) -> CheckOutput:
    """Token attributions by Integrated Gradients on the input embeddings, with the
    completeness (convergence) error of each explanation.

    Purpose: say which input tokens move a classifier's predicted-class probability, or a causal
    LM's probability of its next token, with an axiomatic method whose numerical error is known.
    Method: Captum ``LayerIntegratedGradients`` on the model's input-embedding layer. The
    baseline keeps special tokens and replaces every other token by the pad token (EOS for LMs
    without one). The output is the probability (or logit) of the target: the predicted class
    (or ``target``) for classifiers, the greedy next token after the text for causal LMs.
    Token attribution = sum over embedding dimensions. Completeness says the attributions sum
    to F(x) - F(baseline); the convergence delta is the difference, reported absolute and
    relative to |F(x) - F(baseline)|. Raise ``n_steps`` when it is large.
    Citation: Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks, ICML;
    Kokhlikyan et al. (2020), Captum: A unified and generic model interpretability library.
    Limitations: attributions depend on the baseline (pad tokens are not "no information");
    position and segment embeddings are not attributed; costs ``n_steps`` forward and backward
    passes per text; identity terms are matched as whole words.
    """
    model = ctx.model
    texts = common.resolve_texts(ctx, params.texts, params.data, params.text_column, params.n,
                                 "integrated_gradients")
    texts = common.fit_texts(ctx, model, texts, params.max_tokens)
    results = [explain_text(model, t, params.n_steps, params.method, params.output, params.target,
                            params.internal_batch_size)
               for t in ctx.progress(texts, desc="integrated gradients")]
    terms = params.identity_terms or common.identity_terms_default()
    return CheckOutput(metrics=_metrics(results, terms), findings=_findings(results, params),
                       evidence=[_evidence(ctx, t, r) for t, r in zip(texts, results)],
                       figures=[_figure(ctx, i, r)
                                for i, r in enumerate(results[:params.max_sentences_shown])],
                       items=ig_items(ctx, texts, results, terms))


def ig_items(ctx: Any, texts: list[str], results: list[dict[str, Any]],
             terms: list[str]) -> list[dict[str, Any]]:
    """One record per text (``text<i>``, its position in the input): the target, F(x),
    F(baseline), the sum of attributions, the convergence delta, the identity-term ratio (None:
    no identity term) and the start of the text (redacted, then cut)."""
    return [{"id": f"text{i}", "text": common.show_text(ctx, text, 200),
             "target": r["target_name"], "f_x": r["f_x"], "f_baseline": r["f_base"],
             "sum_attributions": r["sum"], "convergence_delta": r["delta"],
             "identity_ratio": common.identity_ratio([r["segments"]], [r["scores"]], terms)[0]}
            for i, (text, r) in enumerate(zip(texts, results))]


def _forward(module: Any, causal: bool, output: str) -> Any:
    """F(input_ids, attention_mask) -> per-class (or per-vocabulary) score at the read-out."""
    import torch

    def forward(input_ids: Any, attention_mask: Any) -> Any:
        if causal:  # only the last position's logits are needed
            logits = module(input_ids=input_ids, attention_mask=attention_mask,
                            logits_to_keep=1).logits[:, -1, :]
        else:
            logits = module(input_ids=input_ids, attention_mask=attention_mask).logits
        return torch.softmax(logits, dim=-1) if output == "probability" else logits

    return forward


@contextmanager
def frozen_parameters(module: Any) -> Iterator[None]:
    """Switch off parameter gradients (IG needs only input gradients), then restore them."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _baseline_id(tokenizer: Any) -> int:
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if value is not None:
            return int(value)
    return 0


def explain_text(model: Any, text: str, n_steps: int = 50, method: str = "gausslegendre",
                 output: str = "probability", target: str | int | None = None,
                 internal_batch_size: int = 32) -> dict[str, Any]:
    """IG attributions of one text; returns tokens, segments, scores (non-special tokens),
    the target, F(x), F(baseline), the captum convergence delta and the attributions' sum."""
    import torch
    from captum.attr import LayerIntegratedGradients

    handle = model.differentiable()  # Captum needs the module itself: the only sanctioned use
    module, tok, device = handle.module, handle.tokenizer, handle.device
    causal = handle.kind == "causal_lm"
    enc = tok(text, return_special_tokens_mask=True)
    ids, special = list(enc["input_ids"]), list(enc["special_tokens_mask"])
    input_ids = torch.tensor([ids], device=device)
    mask = torch.ones_like(input_ids)
    base = torch.tensor([[i if s else _baseline_id(tok) for i, s in zip(ids, special)]],
                        device=device)
    forward = _forward(module, causal, output)
    with torch.no_grad():
        f_x, f_b = forward(input_ids, mask)[0], forward(base, mask)[0]
    tgt = _target(model, tok, target, f_x, causal)
    lig = LayerIntegratedGradients(forward, module.get_input_embeddings())
    with frozen_parameters(module):
        attr, delta = lig.attribute(input_ids, baselines=base, additional_forward_args=(mask,),
                                    target=tgt, n_steps=n_steps, method=method,
                                    internal_batch_size=internal_batch_size,
                                    return_convergence_delta=True)
    per_token = attr.sum(dim=-1)[0].detach().double().cpu().numpy()
    keep = ~np.array(special, dtype=bool)
    return {"tokens": tok.convert_ids_to_tokens(ids), "all_scores": per_token,
            "scores": per_token[keep], "segments": common.segments(text, model), "target": tgt,
            "target_name": _target_name(model, tok, tgt, causal), "f_x": float(f_x[tgt]),
            "f_base": float(f_b[tgt]), "delta": float(delta[0]), "sum": float(per_token.sum())}


def _target(model: Any, tok: Any, target: str | int | None, f_x: Any, causal: bool) -> int:
    """Target index: the predicted class / greedy next token, or the requested one."""
    if target is None:
        return int(f_x.argmax())
    if causal:
        ids = tok(str(target), add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise usage("integrated_gradients", "target", f"{target!r} is {len(ids)} tokens",
                        "give a single-token next word, or leave target empty")
        return int(ids[0])
    return int(common.target_index(model, target, f_x.detach().cpu().numpy()[None, :])[0])


def _target_name(model: Any, tok: Any, idx: int, causal: bool) -> str:
    if causal:
        return repr(tok.decode([idx]))
    return common.label_name(model, idx)


def _metrics(results: list[dict[str, Any]], terms: list[str]) -> list[Metric]:
    deltas = np.abs([r["delta"] for r in results])
    gaps = np.abs([r["f_x"] - r["f_base"] for r in results])
    rel = deltas / np.maximum(gaps, 1e-12)
    ratio, n_id = common.identity_ratio([r["segments"] for r in results],
                                        [r["scores"] for r in results], terms)
    return [
        Metric(name="max_abs_convergence_delta", value=float(deltas.max()), higher_is_better=False,
               description="largest |sum of attributions - (F(x) - F(baseline))|"),
        Metric(name="mean_abs_convergence_delta", value=float(deltas.mean()), higher_is_better=False),
        Metric(name="median_relative_convergence_delta", value=float(np.median(rel)),
               higher_is_better=False, description="|delta| / |F(x) - F(baseline)|, median over texts"),
        Metric(name="identity_attribution_ratio", value=ratio, higher_is_better=False,
               description=f"identity tokens' share of |attribution| / their token share "
                           f"({n_id} texts with identity terms)"),
        Metric(name="n_texts", value=float(len(results))),
    ]


def _findings(results: list[dict[str, Any]], params: IGParams) -> list[Finding]:
    worst = max(abs(r["delta"]) / max(abs(r["f_x"] - r["f_base"]), 1e-12) for r in results)
    out = [Finding(message=f"IG with {params.n_steps} steps ({params.method}) on the {params.output} "
                           f"of the target; worst relative completeness error {worst:.1%}.")]
    if worst > 0.05:
        out.append(Finding(severity="warning", message="Completeness error above 5% for some "
                           "texts: raise n_steps before reading these attributions."))
    return out


def _evidence(ctx: Any, text: str, r: dict[str, Any]) -> dict[str, Any]:
    top = np.argsort(-np.abs(r["scores"]))[:5]
    labels = common.label_tokens(r["segments"], ctx)
    return {"text": common.show_text(ctx, text), "target": r["target_name"],
            "f_x": round(r["f_x"], 6), "f_baseline": round(r["f_base"], 6),
            "sum_attributions": round(r["sum"], 6), "convergence_delta": round(r["delta"], 6),
            "top_tokens": [[labels[i], round(float(r["scores"][i]), 5)] for i in top
                           if len(labels) == len(r["scores"])]}


def _figure(ctx: Any, i: int, r: dict[str, Any]) -> Figure:
    aligned = len(r["segments"]) == len(r["scores"])
    tokens = common.label_tokens(r["segments"], ctx) if aligned else [str(t) for t in r["tokens"]]
    return Figure(kind="token_attributions", title=f"Text {i + 1}: Integrated Gradients",
                  data={"tokens": tokens,
                        "scores": common.rounded(r["scores"] if aligned else r["all_scores"], 5),
                        "label": f"{r['target_name']} (F(x)={r['f_x']:.3f})"},
                  caption=f"Convergence delta {r['delta']:.2e}.")
