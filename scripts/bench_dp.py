"""Benchmark: DP-SGD step time vs non-private for the MiniLM classifier, in the same run.

    python scripts/bench_dp.py [--device cpu|cuda] [--batch 32] [--seq-len 64] [--steps 5]

Times one optimizer step (forward + backward + step) of all-MiniLM-L6-v2 with a 2-class head on
random token batches of size `--batch` x `--seq-len`: non-private (plain AdamW), then Opacus with
`grad_sample_mode` hooks and ghost (clipping + noise, batch = one logical = one physical batch).
Prints the median step time of each and the DP/non-private ratios (target <= 2.0x for the best
mode). Warm-up steps are excluded; modes alternate within each round, so load drift on a shared
machine hits all modes alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(mode: str, batch: int, device: str, seed: int, model_dir: Any = None,
          ) -> tuple[Any, Any, Any]:
    """(step function, model, optimizer) for ``mode`` in {none, hooks, ghost}."""
    import torch
    from opacus import GradSampleModule  # noqa: F401  (import cost outside the timings)
    from opacus.optimizers import DPOptimizer  # noqa: F401
    from transformers import AutoModelForSequenceClassification

    from audit.demos.dreaddit import minilm_dir
    from audit.dp.model import forward_logits, make_criterion

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir or minilm_dir(),
                                                               num_labels=2)
    model.to(device).train()
    config = model.config
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    crit = make_criterion("classifier")
    if mode == "none":
        module = model
    else:
        module, opt, crit = _privatize(model, opt, crit, mode, batch, device)

    def step(ids: Any, mask: Any, y: Any) -> None:
        opt.zero_grad(set_to_none=True)
        loss = crit(forward_logits(module, config, ids, mask), y)
        loss.backward()
        opt.step()

    return step, model, opt


def _privatize(model: Any, opt: Any, crit: Any, mode: str, batch: int, device: str) -> Any:
    import torch
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    data = TensorDataset(torch.zeros(batch * 4, 1))
    engine = PrivacyEngine(accountant="rdp")
    out = engine.make_private(module=model, optimizer=opt, criterion=crit,
                              data_loader=DataLoader(data, batch_size=batch),
                              noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=False,
                              grad_sample_mode=mode)
    if mode == "ghost":
        module, dp_opt, dp_crit, _ = out
        return module, dp_opt, dp_crit
    module, dp_opt, _ = out
    return module, dp_opt, crit


def bench(device: str, batch: int, seq_len: int, steps: int, warmup: int,
          modes: list[str], model_dir: Any = None) -> dict[str, Any]:
    """Median step seconds of each mode, measured round-robin."""
    import torch

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (batch, seq_len), generator=gen).to(device)
    mask = torch.ones_like(ids)
    y = torch.randint(0, 2, (batch,), generator=gen).to(device)
    steppers = {m: build(m, batch, device, 0, model_dir)[0] for m in modes}
    times: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(warmup + steps):
        for m in modes:
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            steppers[m](ids, mask, y)
            if device == "cuda":
                torch.cuda.synchronize()
            if r >= warmup:
                times[m].append(time.perf_counter() - t)
    med = {m: statistics.median(v) for m, v in times.items()}
    return {"device": device, "batch": batch, "seq_len": seq_len, "steps": steps,
            "threads": torch.get_num_threads(), "median_step_s": med,
            "samples_per_s": {m: batch / s for m, s in med.items()},
            "ratio_vs_nonprivate": {m: med[m] / med["none"] for m in modes if m != "none"},
            "all_step_s": times}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the ratios."""
    import warnings

    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=["none", "hooks", "ghost"])
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--model", type=Path, help="MiniLM folder (default: the installed wheel's)")
    args = ap.parse_args(argv)
    modes = ["none"] + [m for m in args.modes if m != "none"]
    res = bench(args.device, args.batch, args.seq_len, args.steps, args.warmup, modes, args.model)
    for m in modes:
        ratio = "" if m == "none" else f"  ratio {res['ratio_vs_nonprivate'][m]:.2f}x"
        print(f"{args.device} {m:>5}: {res['median_step_s'][m]:.3f} s/step "
              f"({res['samples_per_s'][m]:.1f} samples/s){ratio}")
    best = min(res["ratio_vs_nonprivate"].items(), key=lambda kv: kv[1])
    print(f"best DP mode: {best[0]} at {best[1]:.2f}x non-private (target <= 2.0x: "
          f"{'met' if best[1] <= 2.0 else 'NOT met'})")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
