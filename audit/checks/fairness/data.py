"""Loading and validating the tables fairness checks read: labelled data sets and predictions.

Every problem is a one-line ``UsageError`` naming the file, the column and the fix.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from audit.errors import usage

MISSING_GROUP = "(missing)"
JOIN = " × "


def resolve_data(ctx: Any, value: str) -> str:
    """A data path from params: ``asset:NAME`` (an offline data asset) or a path for ctx."""
    return str(ctx.resolve_path(value))


def read_labelled(path: str, what: str = "data") -> Any:
    """Read a CSV/Parquet/JSONL table (one-line error when missing, unreadable or empty)."""
    from audit.io import read_table

    return read_table(path, what)


def require_columns(frame: Any, columns: Sequence[str], where: str, param: str) -> None:
    """Fail with one line when any of ``columns`` is not in ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, list(frame.columns)[:12]))
        raise usage(where, param, f"column {missing[0]!r} not found (columns: {have})",
                    f"set `{param}` to an existing column")


def _as_labels(series: Any) -> Any:
    """String labels of a sensitive column; NaN becomes the explicit group ``(missing)``."""
    import pandas as pd

    values = series
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if len(finite) and bool(np.all(np.mod(finite, 1) == 0)):
            values = values.astype("Int64")
    out = values.astype("string").fillna(MISSING_GROUP)
    return out.str.strip().replace("", MISSING_GROUP)


def group_codes(frame: Any, columns: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Intersectional group of every row: codes ``[n]`` and sorted names ``"a × b"``.

    Every combination that occurs becomes a group; missing values form the group ``(missing)``.
    """
    import pandas as pd

    parts = [_as_labels(frame[c]) for c in columns]
    keys = parts[0] if len(parts) == 1 else pd.Series(
        [JOIN.join(t) for t in zip(*parts)], index=frame.index, dtype="string")
    codes, names = pd.factorize(keys, sort=True)
    return np.asarray(codes, dtype=np.int64), [str(n) for n in names]


def is_binary01(values: Any) -> bool:
    """True when the values are booleans or a subset of {0, 1}."""
    uniq = set(np.unique(np.asarray(values)).tolist())
    return uniq <= {0, 1, True, False} and not any(isinstance(u, str) for u in uniq)


def binarise(values: Any, positive: Any, where: str, field: str) -> np.ndarray:
    """Boolean "is positive" of a label/prediction column.

    0/1 and booleans need no option; other labels need ``positive_label`` (two values) or
    ``multiclass: one_vs_rest`` (more); missing labels are an error.
    """
    import pandas as pd

    series = pd.Series(values)
    if series.isna().any():
        raise usage(where, field, f"{int(series.isna().sum())} rows have no value",
                    "drop or fill rows without a label/prediction")
    if positive is not None:
        return (series.astype(str).str.strip() == str(positive)).to_numpy()
    if is_binary01(series.to_numpy()):
        return series.to_numpy().astype(bool)
    uniq = sorted(map(str, series.unique()))
    if len(uniq) <= 2:
        raise usage(where, field, f"labels {uniq} are not 0/1",
                    f"set positive_label (e.g. positive_label: {uniq[-1]!r})")
    raise usage(where, field, f"{len(uniq)} distinct labels ({', '.join(uniq[:6])}...): not binary",
                "set multiclass: one_vs_rest (per-class metrics) or positive_label: <class>")


def check_scores(score: Any, where: str, field: str, is_probability: bool) -> np.ndarray:
    """Scores as floats; NaN is an error, and so is a value outside [0, 1] for probabilities."""
    import pandas as pd

    s = pd.to_numeric(pd.Series(score), errors="coerce").to_numpy(dtype=float)
    if np.isnan(s).any():
        raise usage(where, field, f"{int(np.isnan(s).sum())} scores are missing or not numbers",
                    "give every row a numeric score, or set score: null")
    outside = (s < 0) | (s > 1)
    if is_probability and outside.any():
        raise usage(where, field,
                    f"{int(outside.sum())} scores outside [0, 1] (e.g. {s[outside][0]:g})",
                    "pass probabilities, or set score_is_probability: false "
                    "(AUC still uses the scores; ECE is skipped)")
    return s
