"""Shared helpers of the fairness tests: the Adult demo predictions (built once) and a check runner."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np


@lru_cache(maxsize=1)
def adult_frame() -> Any:
    """Adult test-split predictions of the demo's logistic regression (trained once per session)."""
    from audit.demos.adult import adult_predictions

    return adult_predictions(seed=0)


def make_ctx(model: Any, seed: int = 0, check_id: str = "fair", base_dir: Any = None) -> Any:
    """A CheckContext around ``model`` (as the runner builds it)."""
    from pathlib import Path

    from audit.context import CheckContext, stable_seed

    return CheckContext(model=model, seed=seed, check_id=check_id, quiet=True,
                        rng=np.random.default_rng(stable_seed(seed, check_id)),
                        base_dir=Path(base_dir) if base_dir else Path.cwd())


def run_group_fairness(frame: Any, seed: int = 0, **params: Any) -> Any:
    """Run ``group_fairness`` on a predictions DataFrame; returns its CheckOutput."""
    from audit.checks.fairness.group_fairness import GroupFairnessParams, group_fairness
    from audit.models.predictions import PredictionsAdapter

    ctx = make_ctx(PredictionsAdapter(frame), seed)
    return group_fairness(ctx, GroupFairnessParams(**params))


def metric(out: Any, name: str) -> Any:
    """The metric called ``name`` in a CheckOutput (KeyError if absent)."""
    for m in out.metrics:
        if m.name == name:
            return m
    raise KeyError(name)
