"""The non-private baseline loop: the same Poisson batches, physical split and scaling as DP-SGD,
without clipping or noise."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from audit.dp.config import TrainConfig
from audit.dp.steps import epoch_metrics, make_optimizer, resolve_device


def train_plain(cfg: TrainConfig, prep: Any, loader: Any, rate: float,
                hooks: dict[str, Any]) -> dict[str, Any]:
    """Train ``prep.model`` without DP; returns the loop-state fields of a baseline run."""
    from audit.dp.model import make_criterion

    device = resolve_device(cfg.device)
    model = prep.model.to(device).train()
    optimizer = make_optimizer(model, cfg)
    if "optimizer" in hooks:
        hooks["optimizer"](optimizer)
    criterion = make_criterion(prep.task)
    criterion.reduction = "none"
    expected = int(len(prep.train_set) * rate)
    start = time.perf_counter()
    samples, steps = 0, 0
    for _ in range(cfg.epochs):
        losses, counts = [], []
        for ids, mask, target in loader:
            optimizer.zero_grad(set_to_none=True)
            for chunk in _physical(len(ids), cfg.physical_batch_size):
                loss = _backward(model, criterion, ids[chunk], mask[chunk], target[chunk],
                                 expected, device)
                losses.append(loss)
                counts.append(len(chunk))
            optimizer.step()
            samples, steps = samples + len(ids), steps + 1
    seconds = time.perf_counter() - start
    prep.model = model.to("cpu").eval()
    return {"epsilon": None, "noise_multiplier": None, "steps": steps, "mode": None,
            "history": [], "metrics": epoch_metrics(losses, counts, samples, seconds)}


def _physical(size: int, max_size: int) -> list[np.ndarray]:
    """Split range(size) as Opacus' BatchSplittingSampler does (np.array_split)."""
    if size == 0:
        return []
    return np.array_split(np.arange(size), math.ceil(size / max_size))


def _backward(model: Any, criterion: Any, ids: Any, mask: Any, target: Any, expected: int,
              device: str) -> float:
    """Backward of (sum of per-example losses) / expected batch size; returns the mean loss."""
    from audit.dp.model import forward_logits

    ids, mask, target = ids.to(device), mask.to(device), target.to(device)
    per = criterion(forward_logits(model, model.config, ids, mask), target)
    (per.sum() / max(expected, 1)).backward()
    return float(per.mean().item())
