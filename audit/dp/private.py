"""The DP-SGD loop: Opacus PrivacyEngine + BatchMemoryManager over Poisson batches."""

from __future__ import annotations

import time
from typing import Any, Callable

from audit.dp.config import TrainConfig
from audit.dp.steps import epoch_metrics, make_optimizer, resolve_device


def _make_private(cfg: TrainConfig, model: Any, loader: Any, delta: float, mode: str,
                  device: str, task: str) -> tuple[Any, Any, Any, Any]:
    """Wrap model/optimizer with Opacus; returns (engine, module, optimizer, criterion)."""
    import torch
    from opacus import PrivacyEngine

    from audit.dp.model import make_criterion

    engine = PrivacyEngine(accountant=cfg.accountant)
    noise = torch.Generator(device=device).manual_seed(cfg.seed + 2)
    kwargs = dict(module=model, optimizer=make_optimizer(model, cfg), data_loader=loader,
                  criterion=make_criterion(task), max_grad_norm=cfg.max_grad_norm,
                  poisson_sampling=False, grad_sample_mode=mode, noise_generator=noise)
    if cfg.noise_multiplier is not None:
        out = engine.make_private(noise_multiplier=cfg.noise_multiplier, **kwargs)
    else:
        out = engine.make_private_with_epsilon(target_epsilon=cfg.target_epsilon,
                                               target_delta=delta, epochs=cfg.epochs, **kwargs)
    if mode == "ghost":
        module, optimizer, criterion, _ = out
    else:
        module, optimizer, _ = out
        criterion = kwargs["criterion"]
    return engine, module, optimizer, criterion


def train_private(cfg: TrainConfig, prep: Any, loader: Any, delta: float,
                  say: Callable[[str], None], hooks: dict[str, Any]) -> dict[str, Any]:
    """Train ``prep.model`` with DP-SGD; returns the loop-state fields of a private run."""
    from audit.dp.modules import (choose_grad_sample_mode, fix_for_opacus,
                                  swap_conv1d_to_linear, swap_linear_to_conv1d)

    device = resolve_device(cfg.device)
    model = fix_for_opacus(prep.model)
    swapped = swap_conv1d_to_linear(model)
    if swapped:
        say(f"swapped {len(swapped)} GPT-2 Conv1D layers for nn.Linear during training")
    mode = choose_grad_sample_mode(model, cfg.grad_sample_mode, say)
    model.to(device).train()
    engine, module, optimizer, criterion = _make_private(cfg, model, loader, delta, mode, device,
                                                       prep.task)
    if "optimizer" in hooks:
        hooks["optimizer"](optimizer)
    if "module" in hooks:
        hooks["module"](module)
    start = time.perf_counter()
    losses, counts, samples = _epochs(cfg, model.config, module, optimizer, criterion, loader,
                                      device)
    seconds = time.perf_counter() - start
    module.to_standard_module() if hasattr(module, "to_standard_module") else None
    swap_linear_to_conv1d(model, swapped)
    prep.model = model.to("cpu").eval()
    history = [[float(s), float(q), int(k)] for s, q, k in engine.accountant.history]
    return {"epsilon": float(engine.get_epsilon(delta)), "noise_multiplier":
            float(optimizer.noise_multiplier), "steps": int(sum(h[2] for h in history)),
            "mode": mode, "history": history,
            "metrics": epoch_metrics(losses, counts, samples, seconds)}


def _epochs(cfg: TrainConfig, config: Any, module: Any, optimizer: Any, criterion: Any,
            loader: Any, device: str) -> tuple[list[float], list[int], int]:
    """Run all epochs; returns the last epoch's physical-batch losses, sizes and sample count."""
    from opacus.utils.batch_memory_manager import BatchMemoryManager

    from audit.dp.model import forward_logits

    samples = 0
    for _ in range(cfg.epochs):
        losses, counts = [], []
        with BatchMemoryManager(data_loader=loader, max_physical_batch_size=cfg.physical_batch_size,
                                optimizer=optimizer) as batches:
            for batch in batches:
                optimizer.zero_grad(set_to_none=True)
                if len(batch) == 0 or len(batch[0]) == 0:
                    _empty_step(optimizer)
                    continue
                ids, mask, target = (t.to(device) for t in batch)
                loss = criterion(forward_logits(module, config, ids, mask), target)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.item()))
                counts.append(len(ids))
                samples += len(ids)
    return losses, counts, samples


def _empty_step(optimizer: Any) -> None:
    """An optimizer step for an empty Poisson batch: zero clipped sum, noise still added.

    Skipping the step would leave the accountant's count of noisy steps unchanged while the
    sampler did draw a batch; taking it keeps the mechanism exactly the one accounted for.
    """
    import torch

    ghost = type(optimizer).__name__.endswith("FastGradientClipping")
    for p in optimizer.params:
        if ghost:
            p.grad = torch.zeros_like(p)
        else:
            p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
    optimizer.step()
