#!/usr/bin/env python
"""Benchmark: template probes (gender x occupations) on SmolLM2, KV-cache reuse vs plain rows.

template_bias scores log P(target | prompt) for every (template, target, group term) cell
through the adapter's ``continuation_log_prob``. Prompts repeat across targets, so the adapter
can run each distinct prompt once and score its continuations from the prompt's KV cache
("kv"), or score every prompt + continuation row in plain right-padded batches ("baseline", the
vocabulary projection only from each batch's first continuation position; "full_head": at every
position, as before that restriction).
The adapter uses the (batched) KV path for prompts shared by several rows and at least
``HFAdapter.kv_min_prefix_tokens`` tokens long; this script forces each path and prints wall times, the ratio baseline/kv, the largest |difference| of the
per-cell scores and the mean_target_gap each way (they must agree to float precision).

    OMP_NUM_THREADS=2 .venv/bin/python scripts/bench_template.py [--threads 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_dtype import target_gap, template_items  # noqa: E402


def with_kv(adapter):
    """The adapter with KV reuse for every shared prompt, however short."""
    adapter.kv_min_prefix_tokens = 1
    return adapter


def without_kv(adapter):
    """The same adapter with KV reuse switched off: every row scored on its own."""
    original = adapter._continuation_split

    def split(prompts, continuations):
        rows, offsets, parts, _shared = original(prompts, continuations)
        return rows, offsets, parts, []

    adapter._continuation_split = split
    return adapter


def full_head(adapter):
    """Plain rows with the vocabulary projection at every position (the path before the LM
    head was restricted to the positions a continuation reads)."""
    adapter = without_kv(adapter)
    original = adapter._row_log_probs

    def rows_all_positions(rows, progress, score_from=None):
        return original(rows, progress, score_from=None)

    adapter._row_log_probs = rows_all_positions
    return adapter


def timed(adapter, prompts, conts, repeats):
    best, scores = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        scores = adapter.continuation_log_prob(prompts, conts)
        best = min(best, time.perf_counter() - start)
    return best, scores


def main(argv: list[str] | None = None) -> int:
    import torch

    from audit.assets import resolve_model
    from audit.models.hf import load_hf

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    prompts, conts, cells, groups, n_targets = template_items()
    path = str(resolve_model("default-lm"))
    kv_s, kv = timed(with_kv(load_hf(path)), prompts, conts, args.repeats)
    base_s, base = timed(without_kv(load_hf(path)), prompts, conts, args.repeats)
    full_s, full = timed(full_head(load_hf(path)), prompts, conts, args.repeats)
    out = {"cells": len(prompts), "distinct_prompts": len(set(prompts)), "threads": args.threads,
           "full_head_s": round(full_s, 2), "baseline_s": round(base_s, 2),
           "kv_reuse_s": round(kv_s, 2),
           "speedup_head_restriction": round(full_s / base_s, 2),
           "speedup": round(base_s / kv_s, 2), "max_abs_diff": float(np.abs(kv - base).max()),
           "max_abs_diff_full_head": float(np.abs(full - base).max()),
           "mean_target_gap_full_head": target_gap(full, cells, len(groups), n_targets),
           "mean_target_gap_kv": target_gap(kv, cells, len(groups), n_targets),
           "mean_target_gap_baseline": target_gap(base, cells, len(groups), n_targets)}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
