"""canary_exposure: how far a causal LM ranks inserted secrets above the rest of their space."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.checks.privacy.common import secret_hash
from audit.errors import usage
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import Figure, Finding, GroupValue, Metric

NAME = "canary_exposure"


class CanaryExposureParams(BaseModel):
    """Parameters of ``canary_exposure``."""

    model_config = ConfigDict(extra="forbid")

    canaries: str = Field(..., description="canaries.json: format, alphabet, length, canaries")
    method: Literal["auto", "exact", "sampled"] = Field(
        "auto", description="exact = score the whole space; sampled = skew-normal fit")
    max_exact: int = Field(100_000, ge=1, le=20_000_000,
                           description="auto uses the exact rank up to this space size")
    n_references: int = Field(10_000, ge=1000, le=1_000_000,
                              description="random secrets scored by the sampled method")


class CanarySpec(BaseModel):
    """The canaries file: a format with ``{secret}``, the secret alphabet and length."""

    model_config = ConfigDict(extra="ignore")

    format: str
    alphabet: str | list[str]
    length: int = Field(..., ge=1, le=32)
    separator: str = ""
    canaries: list[dict[str, Any]]

    def space_size(self) -> int:
        """Number of possible secrets: |alphabet| ** length."""
        return len(self.alphabet) ** self.length

    def text(self, secret: str) -> str:
        """The canary sentence for ``secret``."""
        return self.format.replace("{secret}", secret)


# --------------------------------------------------------------------------- pure computations
def exact_rank(canary_score: float, space_scores: np.ndarray) -> int:
    """Rank of the canary in the whole space by log-probability (1 = most likely); ties count
    in the canary's favour (rank = 1 + number of strictly more likely secrets)."""
    return 1 + int(np.sum(np.asarray(space_scores) > canary_score))


def exposure_from_rank(rank: float, space_size: int) -> float:
    """Exposure (Carlini et al. 2019): log2 |R| - log2 rank, in bits."""
    return math.log2(space_size) - math.log2(rank)


def fit_skewnorm(reference_scores: np.ndarray) -> tuple[float, float, float]:
    """Skew-normal parameters (a, loc, scale) of the log-perplexities -score of the references."""
    from scipy.stats import skewnorm

    x = -np.asarray(reference_scores, dtype=float)
    a, loc, scale = skewnorm.fit(x)
    return float(a), float(loc), float(scale)


def skewnorm_exposure(canary_score: float, params: tuple[float, float, float],
                      space_size: int) -> float:
    """Exposure ~= -log2 P(log-perplexity <= the canary's) under the fitted skew-normal,
    clipped to [0, log2 |R|] (the smallest possible rank is 1)."""
    from scipy.stats import skewnorm

    a, loc, scale = params
    log_cdf = float(skewnorm.logcdf(-canary_score, a, loc=loc, scale=scale))
    return float(min(max(-log_cdf / math.log(2), 0.0), math.log2(space_size)))


def empirical_exposure(canary_score: float, reference_scores: np.ndarray) -> float:
    """Exposure from the canary's rank among n sampled references: log2 (n+1) - log2 rank."""
    return math.log2(len(reference_scores) + 1) - math.log2(exact_rank(canary_score, reference_scores))


# --------------------------------------------------------------------------- inputs
def load_spec(ctx: Any, path: str) -> CanarySpec:
    """Read and validate a canaries file (one-line usage errors, never showing a secret)."""
    p = ctx.resolve_path(path)
    if not p.is_file():
        raise usage(NAME, "canaries", f"{path} not found", "pass the canaries.json of your model "
                    "(scripts/train_canary_lm.py writes one)")
    try:
        spec = CanarySpec.model_validate(json.loads(p.read_text(encoding="utf-8")))
    except Exception as exc:
        raise usage(NAME, "canaries", f"{path} is not a canaries file ({type(exc).__name__})",
                    "give format, alphabet, length and canaries [{id, secret, repeats}]") from None
    if spec.format.count("{secret}") != 1:
        raise usage(NAME, "canaries.format", "must contain {secret} exactly once",
                    'e.g. "my pin code is {secret}"')
    for i, can in enumerate(spec.canaries):
        if not _valid_secret(str(can.get("secret", "")), spec):
            raise usage(NAME, f"canaries[{i}].secret", "missing or not in the secret space",
                        f"use {spec.length} symbols of the alphabet")
    if not spec.canaries:
        raise usage(NAME, "canaries", "the file lists no canaries", "add at least one")
    return spec


def _valid_secret(secret: str, spec: CanarySpec) -> bool:
    if isinstance(spec.alphabet, str):
        return len(secret) == spec.length and all(c in spec.alphabet for c in secret)
    parts = secret.split(spec.separator) if spec.separator else None
    return parts is not None and len(parts) == spec.length and all(p in spec.alphabet for p in parts)


def all_secrets(spec: CanarySpec) -> list[str]:
    """Every secret of the space, in lexicographic order of the alphabet."""
    return [spec.separator.join(t) for t in itertools.product(list(spec.alphabet),
                                                              repeat=spec.length)]


def sample_secrets(spec: CanarySpec, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` secrets drawn uniformly (with replacement) from the space."""
    symbols = np.array(list(spec.alphabet), dtype=object)
    draws = rng.integers(0, len(symbols), size=(n, spec.length))
    return [spec.separator.join(symbols[row]) for row in draws]


# --------------------------------------------------------------------------- items
def _max_exposure(items: list[dict[str, Any]]) -> float | None:
    return max(float(it["exposure"]) for it in items) if items else None


def _space_bits(items: list[dict[str, Any]]) -> float | None:
    return float(items[0]["space_bits"]) if items else None


ITEM_METRICS = {
    "max_exposure": ItemMetric(aggregate=_max_exposure),
    "mean_exposure": ItemMetric(lambda it: float(it["exposure"])),
    "max_possible_exposure": ItemMetric(aggregate=_space_bits),
}


def canary_items(rows: list[dict[str, Any]], space_bits: float) -> list[dict[str, Any]]:
    """One record per canary: the evidence row (hashed secret, never the secret) plus log2 |R|.
    The id is the canary's own id, or ``canary#<i>`` (its position in the file) when that is
    missing or not unique."""
    from collections import Counter

    counts = Counter(r["id"] for r in rows)
    out = []
    for i, row in enumerate(rows):
        key = row["id"] if row["id"] and counts[row["id"]] == 1 else f"canary#{i}"
        out.append(dict(row, id=key, space_bits=space_bits))
    return out


# --------------------------------------------------------------------------- the check
@check(NAME, area="privacy", params=CanaryExposureParams, requires=[{"sequence_log_prob"}],
       item_metrics=ITEM_METRICS)
def canary_exposure(ctx: Any, params: CanaryExposureParams) -> CheckOutput:
    """Canary exposure: how much more likely the model finds inserted secrets than random ones.

    Purpose: measure unintended memorization of rare secrets in training data. A canary is a
    sentence with a random secret ("my pin code is 281937") inserted into the training data,
    possibly several times; a model that memorised it ranks the true secret far above the other
    secrets of the same space.
    Method: every canary sentence and the candidates of its secret space R are scored by total
    log-probability under the model (batched teacher-forced passes: one forward pass per shared
    parent sequence, exact). Exposure = log2 |R| - log2 rank, where rank is 1 + the number of
    candidates more likely than the canary. Exact method: the whole space is scored (used when
    |R| <= max_exact). Sampled method: n_references secrets are drawn uniformly, a skew-normal is
    fitted to their log-perplexities and exposure = -log2 CDF(canary's log-perplexity), clipped
    to log2 |R|; the empirical exposure among the references is kept in the evidence. Metrics:
    `max_exposure`, `mean_exposure` with one group per insertion count (repeats=0 canaries were
    never inserted: a baseline whose expected exposure is about 1.44 bits), and the maximum
    possible exposure log2 |R|. Secrets appear only as SHA-256 prefixes.
    Citation: Carlini, Liu, Erlingsson, Kos, Song (2019), "The Secret Sharer: Evaluating and
    Testing Unintended Memorization in Neural Networks", USENIX Security.
    Limitations: it needs canaries that were inserted into the training data before training (or
    secrets known to be in it); exposure bounds only the extraction of that format; the
    skew-normal tail is an extrapolation (checked to within 1 bit on a 10^5 space in the tests);
    a hash of a secret from a small space can be reversed by enumeration, so treat results of a
    real audit as confidential.
    """
    spec = load_spec(ctx, params.canaries)
    size = spec.space_size()
    method = params.method
    if method == "auto":
        method = "exact" if size <= params.max_exact else "sampled"
    if method == "exact" and size > 20_000_000:
        raise usage(NAME, "method", f"exact over {size:,} secrets is too slow",
                    "use method: sampled")
    canary_scores = _score(ctx, [spec.text(c["secret"]) for c in spec.canaries], "canaries")
    if method == "exact":
        rows, info = _exact_rows(ctx, spec, canary_scores, params)
    else:
        rows, info = _sampled_rows(ctx, spec, canary_scores, params)
    return _output(spec, rows, info)


def _score(ctx: Any, texts: list[str], what: str) -> np.ndarray:
    """Total log-probability of each text through the adapter's ``sequence_log_prob`` (the
    transformers adapter shares one forward pass among candidates that differ only in their
    last token, so a whole secret space costs about one pass per 10 candidates)."""
    bar = ctx.progress(total=len(texts), desc=f"scoring {what}")
    scores = np.asarray(ctx.model.sequence_log_prob(texts, progress=bar.update), dtype=float)
    bar.close()
    return scores


def _exact_rows(ctx: Any, spec: CanarySpec, canary_scores: np.ndarray,
                params: CanaryExposureParams) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    space = all_secrets(spec)
    scores = _score(ctx, [spec.text(s) for s in space], "whole space")
    index = {s: i for i, s in enumerate(space)} if len(space) <= 2_000_000 else None
    rows = []
    for can, score in zip(spec.canaries, canary_scores):
        own = scores[index[can["secret"]]] if index is not None else score
        rank = exact_rank(own, scores)
        rows.append(_row(can, exposure_from_rank(rank, len(space)), method="exact", rank=rank))
    return rows, {"method": "exact", "n_scored": len(space)}


def _sampled_rows(ctx: Any, spec: CanarySpec, canary_scores: np.ndarray,
                  params: CanaryExposureParams) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    refs = sample_secrets(spec, params.n_references, ctx.sub_rng("references"))
    ref_scores = _score(ctx, [spec.text(s) for s in refs], "references")
    fit = fit_skewnorm(ref_scores)
    rows = []
    for can, score in zip(spec.canaries, canary_scores):
        rows.append(_row(can, skewnorm_exposure(score, fit, spec.space_size()),
                         method="sampled-skewnorm",
                         empirical_exposure=round(empirical_exposure(score, ref_scores), 4)))
    return rows, {"method": "sampled-skewnorm", "n_scored": len(refs),
                  "skewnorm": {"a": fit[0], "loc": fit[1], "scale": fit[2]}}


def _row(can: dict[str, Any], exposure: float, **extra: Any) -> dict[str, Any]:
    """Evidence row for one canary: id, repeats, hashed secret, exposure (never the secret)."""
    return {"id": str(can.get("id", "")), "repeats": can.get("repeats"),
            "secret_sha256": secret_hash(str(can["secret"])), "exposure": round(exposure, 4),
            **extra}


def _output(spec: CanarySpec, rows: list[dict[str, Any]], info: dict[str, Any]) -> CheckOutput:
    max_bits = math.log2(spec.space_size())
    groups: dict[str, list[float]] = {}
    for row in rows:
        key = "unknown" if row["repeats"] is None else str(row["repeats"])
        groups.setdefault(key, []).append(row["exposure"])
    keys = sorted(groups, key=lambda k: (k == "unknown", int(k) if k.isdigit() else 0))
    by_group = {f"repeats={k}": GroupValue(value=float(np.mean(groups[k])), n=len(groups[k]))
                for k in keys}
    exposures = np.array([r["exposure"] for r in rows])
    metrics = [
        Metric(name="max_exposure", value=float(exposures.max()), higher_is_better=False,
               unit="bits", description=f"largest canary exposure ({info['method']})"),
        Metric(name="mean_exposure", value=float(exposures.mean()), higher_is_better=False,
               unit="bits", by_group=by_group, description="mean exposure, by insertion count"),
        Metric(name="max_possible_exposure", value=max_bits, unit="bits",
               description="log2 of the secret-space size"),
    ]
    figure = Figure(kind="bars", title="Canary exposure by number of insertions",
                    data={"labels": list(by_group), "values": [g.value for g in by_group.values()],
                          "ci_low": None, "ci_high": None, "xlabel": "insertions",
                          "ylabel": "mean exposure (bits)", "reference": max_bits},
                    caption="Dashed line: maximum possible exposure, log2 |R|.")
    return CheckOutput(metrics=metrics, findings=_findings(by_group, max_bits, exposures),
                       evidence=[dict(r, **{"scored": info["n_scored"]}) for r in rows],
                       figures=[figure], items=canary_items(rows, max_bits))


def _findings(by_group: dict[str, GroupValue], max_bits: float,
              exposures: np.ndarray) -> list[Finding]:
    parts = ", ".join(f"{k}: {g.value:.1f}" for k, g in by_group.items())
    out = [Finding(message=f"Mean exposure by group (bits, of at most {max_bits:.1f}): {parts}.")]
    worst = float(exposures.max())
    if worst >= max_bits - 1:
        out.append(Finding(severity="critical", message=f"A canary is ranked at or near the top of "
                           f"its space (exposure {worst:.1f} of {max_bits:.1f} bits): the model "
                           "can be made to reveal it by enumeration or greedy search."))
    elif worst >= max_bits / 2:
        out.append(Finding(severity="warning", message=f"Max exposure {worst:.1f} bits: the space "
                           f"an attacker must search shrinks by a factor of {2 ** worst:,.0f}."))
    return out
