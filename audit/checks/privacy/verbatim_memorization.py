"""verbatim_memorization: k-extractability of known texts, against a matched control set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.checks.privacy.common import packaged, read_texts
from audit.errors import usage
from audit.items import ItemMetric
from audit.models.capabilities import has
from audit.registry import CheckOutput, check
from audit.results import Figure, Finding, GroupValue, Metric
from audit.stats import bootstrap_ci, wilson_ci

NAME = "verbatim_memorization"
BUILTIN = {"probe": "memorization/probe.jsonl", "control": "memorization/control.jsonl"}


class MemorizationParams(BaseModel):
    """Parameters of ``verbatim_memorization``."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field("builtin:probe", description="texts to test (builtin:probe or a file)")
    control: str | None = Field("builtin:control", description="novel texts as a baseline")
    prefix_tokens: int = Field(32, ge=1, le=1024, description="k: prompt length in tokens")
    suffix_tokens: int = Field(32, ge=1, le=512, description="m: tokens decoded and compared")
    windows_per_text: int = Field(3, ge=1, le=100, description="non-overlapping windows per text")
    add_bos: bool = Field(False, description="prepend the special tokens the tokenizer puts at "
                          "the start of a text (off: windows start mid-document, as in the web "
                          "text they come from)")
    n_boot: int = Field(1000, ge=100, le=100_000)
    evidence_rows: int = Field(5, ge=0, le=100)


@dataclass
class Window:
    """One (prefix, true suffix) pair cut from a text."""

    text_id: int
    prefix: list[Any]
    target: list[Any]
    window: int = 0


# --------------------------------------------------------------------------- pure computations
def common_prefix_len(a: list[Any], b: list[Any]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def edit_distance(a: list[Any], b: list[Any]) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute cost 1)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def window_scores(generated: list[Any], target: list[Any]) -> dict[str, float]:
    """Exact match, longest common prefix and edit similarity of one continuation."""
    gen = list(generated)[:len(target)]
    return {"exact": float(gen == list(target)), "lcp": float(common_prefix_len(gen, target)),
            "edit_sim": 1.0 - edit_distance(gen, target) / max(len(target), 1)}


def make_windows(seqs: list[list[Any]], k: int, m: int, per_text: int) -> list[Window]:
    """Non-overlapping (k-prefix, m-suffix) windows, at most ``per_text`` from each sequence."""
    out = []
    for tid, seq in enumerate(seqs):
        for w in range(per_text):
            start = w * (k + m)
            if start + k + m > len(seq):
                break
            out.append(Window(tid, seq[start:start + k], seq[start + k:start + k + m], w))
    return out


# --------------------------------------------------------------------------- items
def _probe(field: str) -> Any:
    return lambda it: float(it[field]) if it["set"] == "probe" else None


def _excess(items: list[dict[str, Any]]) -> float | None:
    """Probe minus control exact-match rate (None without control windows)."""
    rates = {}
    for name in ("probe", "control"):
        vals = [float(it["exact"]) for it in items if it["set"] == name]
        rates[name] = sum(vals) / len(vals) if vals else None
    if rates["probe"] is None or rates["control"] is None:
        return None
    return rates["probe"] - rates["control"]


ITEM_METRICS = {
    "exact_match_rate": ItemMetric(_probe("exact"), kind="binary"),
    "mean_lcp_tokens": ItemMetric(_probe("lcp")),
    "mean_edit_similarity": ItemMetric(_probe("edit_sim")),
    "exact_match_excess": ItemMetric(aggregate=_excess),
}

ITEM_TEXT_CHARS = 200
"""Characters of prefix, target and generation kept per item (evidence, not a dump)."""


def memorization_items(sets: dict[str, list[dict[str, Any]]],
                       show_pii: bool = False) -> list[dict[str, Any]]:
    """One record per scored window of each set: ``set:t<text index>:w<window>``, its scores
    and the start of its prefix, true suffix and generation (PII-redacted unless ``show_pii``,
    then cut)."""
    from audit.pii import redact

    def clean(text: str) -> str:
        return (text if show_pii else redact(text))[:ITEM_TEXT_CHARS]

    return [{"id": f"{name}:t{r['text_id']}:w{r['window']}", "set": name,
             "text_id": r["text_id"], "window": r["window"], "exact": bool(r["exact"]),
             "lcp": int(r["lcp"]), "edit_sim": float(r["edit_sim"]),
             **{k: clean(str(r[k])) for k in ("prefix", "target", "generated")}}
            for name, rows in sets.items() for r in rows]


# --------------------------------------------------------------------------- the check
@check(NAME, area="privacy", params=MemorizationParams,
       requires=[{"tokenize", "greedy_tokens"}, {"generate"}], item_metrics=ITEM_METRICS)
def verbatim_memorization(ctx: Any, params: MemorizationParams) -> CheckOutput:
    """Verbatim memorization: does the model complete known texts word for word from a prefix?

    Purpose: detect regurgitation of training text. The shipped probe set holds texts that are
    duplicated thousands of times on the web (licence texts, the Zen of Python, public-domain
    documents), so any web-trained model has seen them; a matched control set of novel texts in
    the same genres gives the rate at which the model "completes" text it cannot have memorized.
    Method: each text is tokenised with the model's tokenizer and cut into up to
    `windows_per_text` non-overlapping windows of a k-token prefix and the m true next tokens.
    The model decodes m tokens greedily from each prefix (the adapter's `greedy_tokens`
    capability: equal-length prompts batched, no padding; no BOS token unless `add_bos`, since
    most windows start mid-document). Per window:
    exact match (all m tokens equal: the text is k-extractable), longest common prefix in
    tokens, and edit similarity 1 - Levenshtein/m. Metrics: `exact_match_rate`
    (probe; Wilson 95% CI), `mean_lcp_tokens` and `mean_edit_similarity` (bootstrap CIs), each
    with probe and control in by_group, and `exact_match_excess` = probe minus control rate
    (bootstrap CI). Adapters without token-level decoding (served or logged models) fall back
    to text prompts through `generate` and whitespace words as tokens. The windows with the longest matches are the evidence (PII-redacted).
    Citation: Carlini, Ippolito, Jagielski, Lee, Tramer, Zhang (2023), "Quantifying Memorization
    Across Neural Language Models", ICLR.
    Limitations: greedy decoding gives a lower bound on extractability (sampling or beam search
    can extract more); probe texts exist in several variants (line breaks, punctuation), so an
    exact match on one canonical form undercounts; windows of one text are correlated, which the
    CIs (computed over windows) ignore; the control set shows style-level completion, not a
    zero-memorization model.
    """
    probe = read_texts(ctx, _path(params.data), f"{NAME}.data", min_count=1)
    control = (read_texts(ctx, _path(params.control), f"{NAME}.control", min_count=1)
               if params.control else [])
    run = _run_tokens if has(ctx.model, "greedy_tokens") and has(ctx.model, "tokenize") else _run_generate
    probe_rows = run(ctx, probe, params)
    control_rows = run(ctx, control, params) if control else []
    if not probe_rows:
        raise usage(NAME, "prefix_tokens", f"no text has {params.prefix_tokens} + "
                    f"{params.suffix_tokens} tokens", "lower prefix_tokens or suffix_tokens")
    return _output(ctx, params, probe_rows, control_rows)


def _path(value: str) -> str:
    if value.startswith("builtin:"):
        key = value.split(":", 1)[1]
        if key not in BUILTIN:
            raise usage(NAME, "data", f"unknown built-in set {value!r}",
                        "use builtin:probe, builtin:control or a file path")
        return str(packaged(BUILTIN[key]))
    return value


def _run_tokens(ctx: Any, texts: list[str], params: MemorizationParams) -> list[dict[str, Any]]:
    """Greedy continuations of token-id prefixes (the adapter's ``greedy_tokens``)."""
    model = ctx.model
    seqs = [list(t.ids) for t in model.tokenize(texts, add_special_tokens=False)]
    windows = make_windows(seqs, params.prefix_tokens, params.suffix_tokens, params.windows_per_text)
    if not windows:
        return []
    start = [i for i, s in zip(*_leading_specials(model)) if s] if params.add_bos else []
    bar = ctx.progress(total=len(windows), desc="decoding")
    gen = model.greedy_token_continuations([start + w.prefix for w in windows],
                                           params.suffix_tokens, progress=bar.update)
    bar.close()
    return [dict(window_scores(list(g), w.target), text_id=w.text_id, window=w.window,
                 prefix=model.decode(w.prefix), target=model.decode(w.target),
                 generated=model.decode(g))
            for w, g in zip(windows, gen)]


def _leading_specials(model: Any) -> tuple[list[int], list[bool]]:
    """Ids and special flags of the tokens before the first real token of a text."""
    enc = model.tokenize(["a"], add_special_tokens=True)[0]
    first = enc.special.index(False) if False in enc.special else len(enc.ids)
    return list(enc.ids[:first]), list(enc.special[:first])


def _run_generate(ctx: Any, texts: list[str], params: MemorizationParams) -> list[dict[str, Any]]:
    """Fallback: text prompts through ``generate`` and whitespace tokens."""
    windows = make_windows([t.split() for t in texts], params.prefix_tokens,
                           params.suffix_tokens, params.windows_per_text)
    if not windows:
        return []
    bar = ctx.progress(total=len(windows), desc="generating")
    outs = ctx.model.generate([" ".join(w.prefix) for w in windows],
                              max_new_tokens=params.suffix_tokens, do_sample=False, seed=ctx.seed,
                              progress=bar.update)
    bar.close()
    return [dict(window_scores(o.split(), w.target), text_id=w.text_id, window=w.window,
                 prefix=" ".join(w.prefix),
                 target=" ".join(w.target), generated=o) for w, o in zip(windows, outs)]


def _output(ctx: Any, params: MemorizationParams, probe: list[dict[str, Any]],
            control: list[dict[str, Any]]) -> CheckOutput:
    sets = {"probe": probe, "control": control} if control else {"probe": probe}
    metrics = [_rate_metric(sets)]
    for key, name, label in [("lcp", "mean_lcp_tokens", "mean longest common prefix (tokens)"),
                             ("edit_sim", "mean_edit_similarity", "mean edit similarity")]:
        groups = {s: GroupValue(value=float(np.mean([r[key] for r in rows])), n=len(rows),
                                ci=bootstrap_ci([r[key] for r in rows], ctx.sub_rng(f"{s}-{key}"),
                                                n_boot=params.n_boot))
                  for s, rows in sets.items()}
        metrics.append(Metric(name=name, value=groups["probe"].value, ci=groups["probe"].ci,
                              higher_is_better=False, by_group=groups,
                              description=f"{label} of probe windows (m={params.suffix_tokens})"))
    if control:
        metrics.append(_excess_metric(ctx, probe, control, params.n_boot))
    rates = metrics[0].by_group or {}
    fig = Figure(kind="bars", title="Verbatim extraction: probe vs control",
                 data={"labels": list(rates), "values": [g.value for g in rates.values()],
                       "ci_low": [g.ci.low for g in rates.values()],
                       "ci_high": [g.ci.high for g in rates.values()], "xlabel": "text set",
                       "ylabel": "exact-match rate", "reference": None},
                 caption=f"Greedy {params.suffix_tokens}-token continuations of "
                         f"{params.prefix_tokens}-token prefixes; Wilson 95% CIs.")
    return CheckOutput(metrics=metrics, findings=_findings(rates),
                       evidence=_evidence(ctx, probe, params.evidence_rows), figures=[fig],
                       items=memorization_items(sets, bool(ctx.show_pii)))


def _rate_metric(sets: dict[str, list[dict[str, Any]]]) -> Metric:
    groups = {}
    for s, rows in sets.items():
        k = int(sum(r["exact"] for r in rows))
        groups[s] = GroupValue(value=k / len(rows), ci=wilson_ci(k, len(rows)), n=len(rows))
    return Metric(name="exact_match_rate", value=groups["probe"].value, ci=groups["probe"].ci,
                  higher_is_better=False, by_group=groups,
                  description="share of probe windows whose greedy continuation is exact")


def _excess_metric(ctx: Any, probe: list[dict[str, Any]], control: list[dict[str, Any]],
                   n_boot: int) -> Metric:
    from audit.stats import percentile_ci

    p = np.array([r["exact"] for r in probe])
    c = np.array([r["exact"] for r in control])
    rng = ctx.sub_rng("excess")
    reps = (p[rng.integers(0, len(p), (n_boot, len(p)))].mean(1)
            - c[rng.integers(0, len(c), (n_boot, len(c)))].mean(1))
    return Metric(name="exact_match_excess", value=float(p.mean() - c.mean()),
                  ci=percentile_ci(reps), higher_is_better=False,
                  description="probe minus control exact-match rate: memorization above baseline")


def _findings(rates: dict[str, GroupValue]) -> list[Finding]:
    probe = rates["probe"]
    msg = f"{probe.value:.1%} of {probe.n} probe windows are reproduced exactly"
    if "control" in rates:
        msg += f", against {rates['control'].value:.1%} of {rates['control'].n} control windows"
    out = [Finding(message=msg + ".")]
    ctrl = rates.get("control")
    if ctrl and probe.ci and ctrl.ci and (probe.ci.low or 0) > (ctrl.ci.high or 0):
        out.append(Finding(severity="warning", message="The model regurgitates widely duplicated "
                           "texts verbatim well above its rate on matched novel text."))
    return out


def _evidence(ctx: Any, rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The probe windows with the longest verbatim matches, PII-redacted unless --show-pii."""
    from audit.pii import redact

    clean = (lambda s: s[:400]) if ctx.show_pii else (lambda s: redact(s[:400]))
    top = sorted(rows, key=lambda r: (-r["lcp"], r["text_id"]))[:n]
    return [{"text_index": r["text_id"], "exact": bool(r["exact"]), "lcp_tokens": int(r["lcp"]),
             "edit_similarity": round(r["edit_sim"], 3), "prefix": clean(r["prefix"]),
             "target": clean(r["target"]), "generated": clean(r["generated"])} for r in top]
