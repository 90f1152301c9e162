"""The training loops: DP-SGD through Opacus, and the non-private baseline with the same batches.

Batches: Poisson sampling with rate q = 1/ceil(n/B) for a logical batch size B (Opacus'
convention: ceil(n/B) steps per epoch, expected batch size int(n q)). Each logical batch is split
into physical batches of at most ``physical_batch_size`` (Opacus' BatchMemoryManager in the
private run; the same ``np.array_split`` in the baseline). In both runs the summed per-example
gradient is divided by the expected batch size; the private run clips each example's gradient
to ``max_grad_norm`` and adds Gaussian noise of std ``noise_multiplier * max_grad_norm`` first.

The Poisson sampler is built here (Opacus' ``UniformWithReplacementSampler`` with a seeded
generator, recording each batch) and handed to ``make_private(poisson_sampling=False)``, so
Opacus does not re-wrap it: the batches the accountant assumes are exactly the ones drawn, and
the baseline can draw the very same ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from audit.dp.config import TrainConfig
from audit.dp.plain import train_plain
from audit.dp.private import train_private


@dataclass
class LoopState:
    """What the ledger and metrics need from a finished loop."""

    epsilon: float | None
    delta: float
    noise_multiplier: float | None
    sample_rate: float
    steps: int
    expected_batch_size: int
    mode: str | None
    history: list[list[float]]
    data_order_sha256: str
    trainable_parameters: int
    metrics: dict[str, Any] = field(default_factory=dict)


def _poisson_sampler_class() -> type:
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    class RecordingPoissonSampler(UniformWithReplacementSampler):
        """Opacus' Poisson sampler that also records every batch it draws."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.record: list[list[int]] = []

        def __iter__(self):  # type: ignore[no-untyped-def]
            for indices in super().__iter__():
                self.record.append(list(indices))
                yield indices

    return RecordingPoissonSampler


def make_loader(dataset: Any, batch_size: int, seed: int, population: int | None = None,
                ) -> tuple[Any, Any, float]:
    """A DataLoader of Poisson batches (seeded) and its sampler; returns (loader, sampler, q).

    The rate is 1/ceil(N/B) with N = ``population`` (default: the dataset's size); with audit
    canaries N counts every canary, so the rate does not depend on which were included.
    """
    import torch
    from opacus.data_loader import wrap_collate_with_empty
    from torch.utils.data import DataLoader
    from torch.utils.data._utils.collate import default_collate

    n = len(dataset)
    steps = max(1, math.ceil((population or n) / batch_size))
    rate = 1.0 / steps
    sampler = _poisson_sampler_class()(num_samples=n, sample_rate=rate, steps=steps,
                                       generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(dataset, batch_sampler=sampler,
                        collate_fn=wrap_collate_with_empty(collate_fn=default_collate),
                        generator=torch.Generator().manual_seed(seed + 1))
    return loader, sampler, rate


def freeze_embeddings(model: Any) -> None:
    """Stop training the input (word) embeddings (and anything tied to them)."""
    for p in model.get_input_embeddings().parameters():
        p.requires_grad_(False)


def restrict_trainable(model: Any, prefixes: list[str]) -> None:
    """Train only parameters whose name starts with one of ``prefixes``; usage error if none."""
    from audit.errors import usage

    kept = 0
    for name, param in model.named_parameters():
        keep = any(name.startswith(p) for p in prefixes)
        param.requires_grad_(keep)
        kept += int(keep)
    if not kept:
        tops = sorted({n.split(".")[0] + "." + n.split(".")[1] if "." in n else n
                       for n, _ in model.named_parameters()})
        raise usage("train-dp", "--train-only", f"no parameter starts with {', '.join(prefixes)}",
                    f"use prefixes of parameter names, e.g. {', '.join(tops[:4])}")


def run_loop(cfg: TrainConfig, prep: Any, say: Callable[[str], None],
             hooks: dict[str, Any]) -> LoopState:
    """Train ``prep.model`` in place (private or not) and return the loop's state."""
    from audit.dp.ledger import default_delta

    if cfg.train_only:
        restrict_trainable(prep.model, cfg.train_only)
    if cfg.freeze_embeddings:
        freeze_embeddings(prep.model)
    n = len(prep.train_set)
    population = getattr(prep, "population", 0) or n
    delta = cfg.delta if cfg.delta is not None else default_delta(population)
    if cfg.delta is not None and cfg.delta >= 1.0 / n:
        say(f"warning: delta {cfg.delta:g} >= 1/n = {1.0 / n:g}: the guarantee allows "
            "leaking a whole example")
    loader, sampler, rate = make_loader(prep.train_set, cfg.batch_size, cfg.seed, population)
    trainable = sum(p.numel() for p in prep.model.parameters() if p.requires_grad)
    if cfg.no_dp:
        result = train_plain(cfg, prep, loader, rate, hooks)
    else:
        result = train_private(cfg, prep, loader, delta, say, hooks)
    rows = getattr(prep, "row_ids", None) or [int(r) for r in prep.train_rows]
    order = [[rows[i] for i in batch] for batch in sampler.record]
    from audit.dp.ledger import sha256_json

    return LoopState(delta=delta, sample_rate=rate, expected_batch_size=int(n * rate),
                     data_order_sha256=sha256_json(order), trainable_parameters=trainable,
                     **result)
