"""Held-out evaluation after training: accuracy and loss (classifier), loss and perplexity (LM)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audit.dp.config import TrainConfig


def per_example_losses(model: Any, dataset: Any, task: str, batch_size: int,
                       device: str = "cpu") -> tuple[np.ndarray, np.ndarray | None]:
    """Per-example losses (and argmax predictions for a classifier) of ``dataset``."""
    import torch

    from audit.dp.model import forward_logits, per_sample_loss

    model.to(device).eval()
    losses, preds = [], []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            ids, mask, target = (t.to(device) for t in dataset[start:start + batch_size])
            logits = forward_logits(model, model.config, ids, mask)
            losses.append(per_sample_loss(task, logits, target).float().cpu().numpy())
            if task != "causal_lm":
                preds.append(logits.argmax(dim=-1).cpu().numpy())
    loss = np.concatenate(losses) if losses else np.zeros(0)
    return loss, (np.concatenate(preds) if preds else None)


def evaluate(model: Any, dataset: Any, task: str, cfg: TrainConfig) -> dict[str, Any]:
    """Metrics on the held-out set (empty dict when there is none)."""
    if dataset is None or len(dataset) == 0:
        return {}
    from audit.dp.steps import resolve_device

    loss, preds = per_example_losses(model, dataset, task, max(cfg.physical_batch_size, 32),
                                     resolve_device(cfg.device))
    model.to("cpu")
    out: dict[str, Any] = {"eval_examples": int(len(loss)),
                           "eval_loss": round(float(loss.mean()), 6)}
    if task == "causal_lm":
        out["eval_perplexity"] = round(math.exp(min(float(loss.mean()), 50.0)), 4)
    else:
        labels = dataset.tensors[2].numpy()
        out["eval_accuracy"] = round(float((preds == labels).mean()), 6)
    return out
