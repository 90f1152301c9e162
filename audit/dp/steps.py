"""Helpers shared by the private and the non-private training loops (a leaf module).

``loop.py`` orchestrates and imports ``plain.py`` / ``private.py``; both of those take these
helpers from here, so no module of ``audit.dp`` imports one that imports it back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.dp.config import TrainConfig


def resolve_device(name: str) -> str:
    """``cuda`` when asked for (or ``auto`` and available), else ``cpu``."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def make_optimizer(model: Any, cfg: TrainConfig) -> Any:
    """AdamW or plain SGD over the trainable parameters."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    return torch.optim.AdamW(params, lr=cfg.lr)


def epoch_metrics(losses: list[float], counts: list[int], samples: int, seconds: float,
                  ) -> dict[str, Any]:
    """Train loss of the last epoch (example-weighted) and throughput."""
    total = float(np.sum(counts)) if counts else 0.0
    loss = float(np.dot(losses, counts) / total) if total else None
    return {"train_loss_last_epoch": None if loss is None else round(loss, 6),
            "train_samples": int(samples),
            "train_samples_per_s": round(samples / seconds, 3) if seconds > 0 else None}
