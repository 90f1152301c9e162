"""SHAP attributions for tabular (scikit-learn) models, summarised by sensitive group."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from audit.errors import usage
from audit.items import ItemMetric
from audit.registry import CheckOutput, check
from audit.results import Figure, Finding, GroupValue, Metric


class ShapTabularParams(BaseModel):
    """Parameters of the ``shap_tabular`` check."""

    model_config = ConfigDict(extra="forbid")
    sensitive: list[str] = Field(min_length=1)
    proxies: list[str] | None = None
    proxy_threshold: float = Field(0.3, gt=0.0, le=1.0)
    explainer: Literal["auto", "linear", "tree", "permutation"] = "auto"
    n: int = Field(500, ge=1, le=100_000)
    background: int = Field(100, ge=1, le=10_000)
    max_evals: int | None = Field(None, ge=10)
    top_features_shown: int = Field(15, ge=1, le=200)


def _mass_share(key: str) -> Any:
    """Share of the total |SHAP| mass on the features summed in ``key`` (None: no mass)."""
    def aggregate(items: list[dict[str, Any]]) -> float | None:
        total = sum(float(it["abs_total"]) for it in items)
        if not total > 0:
            return None
        return sum(float(it[key]) for it in items) / total
    return aggregate


def _group_gap(key: str) -> Any:
    """Max minus min over groups of the mean of ``key``; None with fewer than two groups."""
    def aggregate(items: list[dict[str, Any]]) -> float | None:
        groups: dict[str, list[float]] = {}
        for it in items:
            groups.setdefault(str(it["group"]), []).append(float(it[key]))
        means = [float(np.mean(v)) for v in groups.values()]
        return max(means) - min(means) if len(means) > 1 else None
    return aggregate


ITEM_METRICS = {
    "sensitive_attribution_share": ItemMetric(aggregate=_mass_share("abs_sensitive")),
    "proxy_attribution_share": ItemMetric(aggregate=_mass_share("abs_proxy")),
    "sensitive_attribution_gap": ItemMetric(aggregate=_group_gap("sensitive_shap")),
    "sensitive_and_proxy_attribution_gap": ItemMetric(aggregate=_group_gap("sensitive_proxy_shap")),
    "max_additivity_error": ItemMetric(aggregate=lambda items: max(
        (float(it["additivity_error"]) for it in items), default=None)),
    "n_rows": ItemMetric(aggregate=lambda items: float(len(items))),
}


@check("shap_tabular", area="explain", params=ShapTabularParams, requires=["tabular"],
       item_metrics=ITEM_METRICS)
def shap_tabular(ctx: Any, params: ShapTabularParams) -> CheckOutput:
    """SHAP attributions of a tabular model, and how much a sensitive attribute or its proxies
    move the predictions of each group.

    Purpose: answer "does sex (or a feature standing in for it) drive this model's decisions?"
    with per-feature attributions, grouped by the sensitive attribute.
    Method: rows are sampled from the adapter's frame (``n``) and a background (``background``).
    ``auto`` picks shap's LinearExplainer for a linear final estimator (exact interventional
    SHAP in log-odds), TreeExplainer for tree ensembles (path-dependent, model margin), else the
    model-agnostic PermutationExplainer on the probability with an independent masker. One-hot
    columns are summed back to their source feature. Proxies are the listed ``proxies`` plus
    features whose association with a sensitive column (Cramér's V; correlation ratio for
    numeric features) reaches ``proxy_threshold``. Reported: each feature's share of mean
    |SHAP|, the sensitive and proxy shares, the mean SHAP of the sensitive feature (and of
    sensitive + proxies) per group and the gap between groups, and the additivity error.
    Citation: Lundberg & Lee (2017), NeurIPS; Lundberg et al. (2020), From local explanations
    to global understanding with explainable AI for trees, Nature Machine Intelligence;
    Cramér (1946) for the association measure.
    Limitations: attributions explain the model, not the world: a small sensitive share does
    not prove fairness (proxies can carry the signal, which is why they are reported);
    interventional and path-dependent SHAP differ when features are correlated; the output
    space (log-odds or probability) depends on the explainer and is named in the findings.
    """
    model = ctx.model
    frame = model.frame
    features = list(model.feature_columns)
    _check_columns(frame, features, params)
    rng = ctx.sub_rng("rows")
    picked = _sample(rng, len(frame), params.n)
    rows = frame.iloc[picked]
    bg = frame.iloc[_sample(rng, len(frame), params.background)]
    kind = _choose(model, params.explainer)
    phi, base, fx, space = _explain(model, kind, rows[features], bg[features], ctx.seed,
                                    params.max_evals)
    proxies, assoc = _proxies(frame, features, params)
    out = CheckOutput(metrics=_metrics(phi, base, fx, rows, features, params.sensitive, proxies),
                      findings=_findings(kind, space, params.sensitive, proxies, phi, features),
                      figures=_figures(phi, rows, features, params, assoc),
                      items=tabular_items(picked, phi, base, fx, rows, features,
                                          params.sensitive, proxies))
    n_groups = rows[params.sensitive[0]].astype(str).nunique()
    if n_groups < 2:
        out.findings.append(Finding(severity="warning", message=(
            f"The explained rows hold {n_groups} group of {params.sensitive[0]}: the attribution "
            "gaps between groups are undefined (null).")))
    return out


def _sample(rng: np.random.Generator, n_rows: int, k: int) -> np.ndarray:
    """Sorted indices of ``min(k, n_rows)`` rows drawn without replacement."""
    return np.sort(rng.choice(n_rows, size=min(k, n_rows), replace=False))


def _check_columns(frame: Any, features: list[str], params: ShapTabularParams) -> None:
    for col in params.sensitive + (params.proxies or []):
        if col not in frame.columns:
            raise usage("shap_tabular", "sensitive/proxies", f"no column {col!r} in the data",
                        f"use one of {list(frame.columns)[:12]}")
    for col in params.sensitive:
        if col not in features:
            raise usage("shap_tabular", "sensitive", f"{col!r} is not a model feature",
                        "name a feature column (attribution needs the model to see it)")


def _final(model: Any) -> Any:
    pipe = getattr(model, "pipeline", None)
    return pipe.steps[-1][1] if hasattr(pipe, "steps") else pipe


def _choose(model: Any, wanted: str) -> str:
    """``linear`` / ``tree`` when the final estimator suits the explainer, else ``permutation``."""
    est = _final(model)
    name = type(est).__module__ if est is not None else ""
    fits = {"linear": "linear_model" in name, "tree": "ensemble" in name or "tree" in name}
    if wanted == "auto":
        return next((k for k, ok in fits.items() if ok), "permutation")
    if wanted != "permutation" and not fits[wanted]:
        raise usage("shap_tabular", "explainer", f"{wanted} does not fit {type(est).__name__}",
                    "use auto or permutation")
    return wanted


def column_groups(pipe: Any, features: list[str]) -> list[str] | None:
    """Source feature of each column the pipeline's ColumnTransformer outputs (None if unknown)."""
    from sklearn.compose import ColumnTransformer

    ct = next((s for _, s in pipe.steps[:-1] if isinstance(s, ColumnTransformer)), None)
    if ct is None:
        return None
    owners: list[str] = []
    for name, trans, cols in ct.transformers_:
        if trans == "drop" or (name == "remainder" and trans != "passthrough"):
            continue
        cols = [features[c] if isinstance(c, (int, np.integer)) else c for c in np.atleast_1d(cols)]
        if hasattr(trans, "steps"):  # a Pipeline (e.g. imputer + encoder): its last step shapes it
            trans = trans.steps[-1][1]
        widths = ([len(c) for c in trans.categories_] if hasattr(trans, "categories_")
                  else [1] * len(cols))
        for col, w in zip(cols, widths):
            owners += [col] * w
    return owners


def _explain(model: Any, kind: str, X: Any, bg: Any, seed: int,
             max_evals: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(phi [rows, features], base [rows], model output in the explained space, space name)."""
    if kind != "permutation":
        owners = column_groups(model.pipeline, list(X.columns))
        if owners is not None:
            return _explain_transformed(model, kind, X, bg, owners)
    return _explain_permutation(model, X, bg, seed, max_evals)


def _dense(a: Any) -> np.ndarray:
    return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype=float)


def _explain_transformed(model: Any, kind: str, X: Any, bg: Any,
                         owners: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    import shap

    pre, est = model.pipeline[:-1], _final(model)
    Z, Zb = _dense(pre.transform(X)), _dense(pre.transform(bg))
    if len(owners) != Z.shape[1]:
        raise RuntimeError(f"column map has {len(owners)} columns, the transform {Z.shape[1]}")
    if kind == "linear":
        sv = shap.LinearExplainer(est, shap.maskers.Independent(Zb, max_samples=len(Zb)))(Z)
        fx, space = np.ravel(est.decision_function(Z)), "log-odds"
    else:
        sv = shap.TreeExplainer(est)(Z, check_additivity=False)
        margin = hasattr(est, "decision_function") and not hasattr(est, "estimators_")
        fx = np.ravel(est.decision_function(Z)) if margin else est.predict_proba(Z)[:, 1]
        space = "log-odds" if margin else "probability"
    values, base = np.asarray(sv.values), np.asarray(sv.base_values)
    if values.ndim == 3:
        values, base = values[..., 1], base[..., 1]
    cols = list(X.columns)
    phi = np.stack([values[:, [j for j, o in enumerate(owners) if o == c]].sum(axis=1)
                    for c in cols], axis=1)
    return phi, np.broadcast_to(base, (len(X),)).astype(float), fx, space


def _explain_permutation(model: Any, X: Any, bg: Any, seed: int,
                         max_evals: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """PermutationExplainer on P(positive) over integer-coded features (shap's masker needs
    numbers); categories are decoded back before the model sees them."""
    import pandas as pd
    import shap

    cols = list(X.columns)
    cats = {c: sorted(pd.concat([X[c], bg[c]]).astype(str).unique()) for c in cols
            if not pd.api.types.is_numeric_dtype(X[c])}

    def encode(df: Any) -> np.ndarray:
        """Category codes (index in ``cats``) and raw numbers, as a float matrix."""
        return np.column_stack([
            df[c].astype(str).map({v: i for i, v in enumerate(cats[c])}).to_numpy(float)
            if c in cats else df[c].to_numpy(float) for c in cols])

    def f(A: np.ndarray) -> np.ndarray:
        """P(positive) of coded rows."""
        df = pd.DataFrame({c: ([cats[c][int(v)] for v in A[:, j]] if c in cats else A[:, j])
                           for j, c in enumerate(cols)})
        return model.predict_proba_frame(df)[:, 1]

    masker = shap.maskers.Independent(encode(bg), max_samples=len(bg))
    sv = shap.PermutationExplainer(f, masker, seed=seed)(
        encode(X), max_evals=max_evals or 2 * len(cols) + 1, silent=True)
    base = np.asarray(sv.base_values, dtype=float)
    return np.asarray(sv.values), base, f(encode(X)), "probability"


def association(x: Any, s: Any) -> float:
    """Cramér's V between ``x`` and categorical ``s`` (correlation ratio eta if ``x`` is numeric
    with more than 10 distinct values)."""
    import pandas as pd

    x, s = pd.Series(x).reset_index(drop=True), pd.Series(s).astype(str).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(x) and x.nunique() > 10:
        means = x.groupby(s).mean()
        between = float((x.groupby(s).size() * (means - x.mean()) ** 2).sum())
        total = float(((x - x.mean()) ** 2).sum())
        return float(np.sqrt(between / total)) if total > 0 else 0.0
    table = pd.crosstab(x.astype(str), s).to_numpy(float)
    n = table.sum()
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    k = min(table.shape) - 1
    return float(np.sqrt(chi2 / (n * k))) if k > 0 else 0.0


def _proxies(frame: Any, features: list[str],
             params: ShapTabularParams) -> tuple[list[str], dict[str, float]]:
    """Listed proxies plus features associated with a sensitive column above the threshold."""
    assoc = {f: max(association(frame[f], frame[s]) for s in params.sensitive)
             for f in features if f not in params.sensitive}
    found = [f for f, v in assoc.items() if v >= params.proxy_threshold]
    return list(dict.fromkeys((params.proxies or []) + found)), assoc


def _share(phi: np.ndarray, features: list[str], chosen: list[str]) -> float | None:
    """Share of the mean |SHAP| mass on ``chosen`` (0 for an empty choice); None when the model
    puts no attribution mass anywhere (a share of nothing is undefined)."""
    mean_abs = np.abs(phi).mean(axis=0)
    if not mean_abs.sum() > 0:
        return None
    idx = [features.index(c) for c in chosen if c in features]
    return float(mean_abs[idx].sum() / mean_abs.sum())


def _by_group(values: np.ndarray, groups: Any) -> dict[str, GroupValue]:
    out = {}
    for g in sorted(groups.astype(str).unique()):
        mask = (groups.astype(str) == g).to_numpy()
        out[g] = GroupValue(value=float(values[mask].mean()), n=int(mask.sum()))
    return out


def _gap(by: dict[str, GroupValue]) -> float | None:
    """Max minus min over the groups; None (undefined, not 0) with fewer than two groups."""
    vals = [v.value for v in by.values() if v.value is not None]
    return float(max(vals) - min(vals)) if len(vals) > 1 else None


def tabular_items(picked: np.ndarray, phi: np.ndarray, base: np.ndarray, fx: np.ndarray,
                  rows: Any, features: list[str], sensitive: list[str],
                  proxies: list[str]) -> list[dict[str, Any]]:
    """One record per explained row (``row<i>``, its position in the data): its group (first
    sensitive column), SHAP value of every feature, base value, model output, additivity error,
    and the sums the headline metrics need (|SHAP| over all, sensitive and proxy features;
    signed SHAP of the sensitive features, alone and with the proxies)."""
    s_idx = [features.index(c) for c in sensitive]
    p_idx = [features.index(c) for c in proxies if c in features]
    groups = rows[sensitive[0]].astype(str).tolist()
    out = []
    for k, i in enumerate(picked):
        row = np.asarray(phi[k], float)
        out.append({"id": f"row{int(i)}", "group": groups[k],
                    "shap": dict(zip(features, row.tolist())), "base": float(base[k]),
                    "output": float(fx[k]),
                    "additivity_error": abs(float(base[k] + row.sum() - fx[k])),
                    "abs_total": float(np.abs(row).sum()),
                    "abs_sensitive": float(np.abs(row[s_idx]).sum()),
                    "abs_proxy": float(np.abs(row[p_idx]).sum()),
                    "sensitive_shap": float(row[s_idx].sum()),
                    "sensitive_proxy_shap": float(row[s_idx + p_idx].sum())})
    return out


def _metrics(phi: np.ndarray, base: np.ndarray, fx: np.ndarray, rows: Any, features: list[str],
             sensitive: list[str], proxies: list[str]) -> list[Metric]:
    s_idx = [features.index(c) for c in sensitive]
    p_idx = [features.index(c) for c in proxies if c in features]
    groups = rows[sensitive[0]]
    by_s = _by_group(phi[:, s_idx].sum(axis=1), groups)
    by_sp = _by_group(phi[:, s_idx + p_idx].sum(axis=1), groups)
    add = np.abs(base + phi.sum(axis=1) - fx)
    return [
        Metric(name="sensitive_attribution_share", value=_share(phi, features, sensitive),
               higher_is_better=False,
               description=f"share of mean |SHAP| on {', '.join(sensitive)}"),
        Metric(name="proxy_attribution_share", value=_share(phi, features, proxies),
               higher_is_better=False,
               description=f"share of mean |SHAP| on proxies: {', '.join(proxies) or 'none found'}"),
        Metric(name="sensitive_attribution_gap", value=_gap(by_s), higher_is_better=False,
               by_group=by_s, description=f"max - min over {sensitive[0]} groups of the mean "
                                          "SHAP of the sensitive feature"),
        Metric(name="sensitive_and_proxy_attribution_gap", value=_gap(by_sp), higher_is_better=False,
               by_group=by_sp, description="the same for the sensitive feature plus its proxies"),
        Metric(name="max_additivity_error", value=float(add.max()), higher_is_better=False),
        Metric(name="n_rows", value=float(len(rows))),
    ]


def _findings(kind: str, space: str, sensitive: list[str], proxies: list[str], phi: np.ndarray,
              features: list[str]) -> list[Finding]:
    rank = np.argsort(-np.abs(phi).mean(axis=0))
    top = [features[i] for i in rank[:3]]
    out = [Finding(message=f"{kind} SHAP in {space} space; top features: {', '.join(top)}.")]
    if not np.abs(phi).sum() > 0:
        out.append(Finding(severity="warning", message="Every attribution is zero (a constant "
                           "model on these rows): attribution shares are undefined (null)."))
    hit = [f for f in top if f in sensitive + proxies]
    if hit:
        out.append(Finding(severity="warning", message="Sensitive attribute or proxy among the "
                           f"three most influential features: {', '.join(hit)}."))
    return out


def _figures(phi: np.ndarray, rows: Any, features: list[str], params: ShapTabularParams,
             assoc: dict[str, float]) -> list[Figure]:
    mean_abs = np.abs(phi).mean(axis=0)
    order = np.argsort(-mean_abs)[:params.top_features_shown]
    groups = rows[params.sensitive[0]].astype(str)
    names = sorted(groups.unique())
    table = [[features[i]]
             + [round(float(phi[(groups == g).to_numpy(), i].mean()), 4) for g in names]
             + [round(assoc.get(features[i], 1.0), 3)] for i in order]
    return [
        Figure(kind="bars", title="Mean |SHAP| by feature",
               data={"labels": [features[i] for i in order],
                     "values": [round(float(mean_abs[i]), 5) for i in order],
                     "ci_low": None, "ci_high": None, "xlabel": "feature", "ylabel": "mean |SHAP|",
                     "reference": None}),
        Figure(kind="table", title=f"Mean SHAP by {params.sensitive[0]} group",
               data={"columns": ["feature"] + names
                     + [f"association with {', '.join(params.sensitive)}"], "rows": table},
               caption="Association: Cramér's V (correlation ratio for numeric features); "
                       "1.0 for the sensitive column."),
    ]
