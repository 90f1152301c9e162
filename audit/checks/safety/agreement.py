"""Agreement between two labelings: percent agreement, Cohen's kappa and the confusion matrix.

Written out (no scikit-learn needed at run time); the tests check kappa against
``sklearn.metrics.cohen_kappa_score`` and the matrix against ``confusion_matrix``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion(truth: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts ``[i, j]`` of items whose true label is ``labels[i]`` and predicted ``labels[j]``."""
    index = {lab: i for i, lab in enumerate(labels)}
    out = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(truth, pred):
        out[index[t], index[p]] += 1
    return out


def cohen_kappa(matrix: np.ndarray) -> float | None:
    """Cohen's kappa of a confusion matrix: (p_o - p_e) / (1 - p_e); None when undefined."""
    m = np.asarray(matrix, dtype=float)
    n = m.sum()
    if n == 0:
        return None
    p_o = np.trace(m) / n
    p_e = float((m.sum(axis=0) * m.sum(axis=1)).sum()) / (n * n)
    return None if p_e >= 1.0 else float((p_o - p_e) / (1.0 - p_e))


def agreement_report(truth: Sequence[str], pred: Sequence[str],
                     labels: Sequence[str]) -> dict[str, object]:
    """Agreement, kappa and the confusion matrix (rows: truth, columns: prediction), three-way
    and collapsed to refusal (full or partial) vs compliance."""
    m3 = confusion(truth, pred, labels)
    binary = ["refusal" if x != "full_compliance" else "compliance" for x in truth]
    binary_pred = ["refusal" if x != "full_compliance" else "compliance" for x in pred]
    m2 = confusion(binary, binary_pred, ["compliance", "refusal"])
    n = int(m3.sum())
    return {"n": n, "labels": list(labels),
            "agreement": float(np.trace(m3) / n) if n else None, "kappa": cohen_kappa(m3),
            "confusion": m3.tolist(),
            "binary_agreement": float(np.trace(m2) / n) if n else None,
            "binary_kappa": cohen_kappa(m2), "binary_confusion": m2.tolist()}
