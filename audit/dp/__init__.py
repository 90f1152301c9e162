"""DP-SGD training with Opacus and the privacy ledger (`audit train-dp`).

Light on import: the heavy libraries (torch, transformers, opacus) load inside the functions.
"""

from __future__ import annotations

from audit.dp.config import TrainConfig

__all__ = ["TrainConfig", "train"]


def train(cfg: TrainConfig, **kwargs):  # type: ignore[no-untyped-def]
    """Run `audit train-dp` as configured (see :func:`audit.dp.train.train`)."""
    from audit.dp.train import train as _train

    return _train(cfg, **kwargs)
