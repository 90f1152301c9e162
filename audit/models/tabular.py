"""Tabular adapter: a scikit-learn model trained in-process from a CSV (no pickle loading).

Spec: ``{adapter: sklearn, path: train.csv, options: {label: income, eval_path: test.csv,
estimator: logistic_regression|gradient_boosting|random_forest, drop: [...], positive: ">50K"}}``.
Categorical columns are one-hot encoded, numeric ones standardised. A saved model file is loaded
only with ``--allow-pickle`` (``options.model_file``), since joblib/pickle can run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import usage
from audit.io import read_table, sha256_file
from audit.results import ModelInfo

ESTIMATORS = ("logistic_regression", "gradient_boosting", "random_forest")


def _estimator(name: str, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if name == "logistic_regression":
        return LogisticRegression(max_iter=2000)
    if name == "gradient_boosting":
        return HistGradientBoostingClassifier(random_state=seed)
    if name == "random_forest":
        return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)
    raise usage("model options", "estimator", f"unknown estimator {name!r}", f"use one of {ESTIMATORS}")


def _pipeline(frame: Any, features: list[str], estimator: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    numeric = [c for c in features if is_numeric_dtype(frame[c]) and not is_bool_dtype(frame[c])]
    categorical = [c for c in features if c not in numeric]
    categories = make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                               OneHotEncoder(handle_unknown="ignore"))
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    pre = ColumnTransformer([("num", numbers, numeric), ("cat", categories, categorical)])
    return Pipeline([("pre", pre), ("model", estimator)])


class TabularAdapter:
    """A scikit-learn classifier over a DataFrame; capabilities ``tabular`` and ``predictions``."""

    adapter_name = "sklearn"
    kind = "tabular"
    capabilities = frozenset({"tabular", "predictions"})

    def __init__(self, pipeline: Any, frame: Any, features: list[str], label: str,
                 alias: str, source: str, details: dict[str, Any]):
        self.pipeline, self.feature_columns, self.label_column = pipeline, features, label
        self.alias, self.source, self.details, self.device = alias, source, details, "cpu"
        self.frame = self._with_predictions(frame)

    def _with_predictions(self, frame: Any) -> Any:
        frame = frame.copy()
        scores = self.predict_proba_frame(frame)[:, 1]
        frame["score"] = scores
        frame["y_pred"] = (scores >= 0.5).astype(int)
        frame["y_true"] = frame[self.label_column].astype(int)
        return frame

    @classmethod
    def train(cls, path: str, *, alias: str, base_dir: Path, allow_pickle: bool, label: str,
              eval_path: str | None = None, estimator: str = "logistic_regression",
              drop: list[str] | None = None, positive: Any = 1, seed: int = 0) -> "TabularAdapter":
        """Train the estimator on ``path`` and evaluate on ``eval_path`` (or ``path``)."""
        from pandas.api.types import is_numeric_dtype

        train = _binarise(read_table(path, "train data"), label, positive, path)
        frame = _binarise(read_table(eval_path, "eval data"), label, positive, eval_path) if eval_path else train
        features = [c for c in train.columns if c != label and c not in (drop or [])]
        for table in (train, frame):
            for column in features:
                if not is_numeric_dtype(table[column]):
                    table[column] = table[column].astype(object).where(table[column].notna(), None)
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise usage(str(eval_path), "columns", f"missing {missing}", "use the same columns as the train file")
        pipe = _pipeline(train, features, _estimator(estimator, seed))
        pipe.fit(train[features], train[label].astype(int))
        digest = sha256_file(path)
        details = {"estimator": estimator, "features": features, "train_rows": int(len(train)),
                   "train_sha256": digest, "eval_rows": int(len(frame))}
        return cls(pipe, frame, features, label, alias, str(Path(path).resolve()), details)

    def predict_proba_frame(self, frame: Any) -> np.ndarray:
        """Class probabilities for the rows of ``frame`` (raw feature columns)."""
        return self.pipeline.predict_proba(frame[self.feature_columns])

    def info(self) -> ModelInfo:
        """Training file, estimator and sizes."""
        return ModelInfo(alias=self.alias, source=self.source, adapter="sklearn", kind="tabular",
                         files={Path(self.source).name: self.details["train_sha256"]},
                         details=self.details)

    def close(self) -> None:
        """Nothing to free."""


def _binarise(frame: Any, label: str, positive: Any, path: Any) -> Any:
    if label not in frame.columns:
        raise usage(str(path), f"column {label!r}", "label column not found",
                    f"set options.label to one of {list(frame.columns)[:8]}...")
    frame = frame.copy()
    values = frame[label]
    if set(values.dropna().unique()) <= {0, 1}:
        frame[label] = values.astype(int)
    else:
        frame[label] = (values.astype(str).str.strip().str.rstrip(".") == str(positive)).astype(int)
    return frame
