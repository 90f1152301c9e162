#!/usr/bin/env python
"""Benchmark: bfloat16 against float32 on the scoring paths the checks use, same run.

For SmolLM2-135M-Instruct (the offline default LM) loaded twice, in float32 and bfloat16:
- CrowS-Pairs (all pairs of the CSV, sentence log-likelihood): time per dtype, max and mean
  |delta log-prob| per sentence, the stereotype-preference metric in each dtype, and the number
  of pairs whose outcome (which sentence wins, after rounding to 3 decimals as the check does)
  flips;
- template probes (gender x occupations, continuation log-probs): time, max |delta|, and the
  mean_target_gap each way;
- masked copies on BERT-base (random weights) if --masked: max |delta| per copy.
The answer a user needs: how much faster bf16 is here and whether drift can flip a result.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/bench_dtype.py --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "crows_pairs" / "crows_pairs_anonymized.csv"


def crows(path: Path, n: int | None) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [(r["sent_more"], r["sent_less"]) for r in csv.DictReader(fh)]
    return rows[:n] if n else rows


def template_items() -> tuple[list[str], list[str], list[tuple[int, int, int]], list[str], int]:
    """(prompts, continuations, cell index) of the gender x occupations probe set."""
    from audit.checks.bias import probes as P

    probes = P.validate_template_probes(P.read_data_file(P.shipped_or_path(
        "gender_occupations", Path, "bench"), "bench"), "bench")
    prompts, conts, cells = [], [], []
    for i, template in enumerate(probes.templates):
        for j, target in enumerate(probes.targets):
            for g, terms in enumerate(probes.groups.values()):
                for term in terms:
                    text, _, tspan = P.fill_spans(template, term, target)
                    before = text[:tspan[0]].rstrip()
                    prompts.append(before)
                    conts.append(text[len(before):tspan[1]])
                    cells.append((i, j, g))
    return prompts, conts, cells, list(probes.groups), len(probes.targets)


def target_gap(scores: np.ndarray, cells: list[tuple[int, int, int]], n_groups: int,
               n_targets: int) -> float:
    """mean over targets of (max - min over groups of the mean association)."""
    total = np.zeros((n_targets, n_groups))
    count = np.zeros((n_targets, n_groups))
    for (i, j, g), v in zip(cells, scores):
        total[j, g] += v
        count[j, g] += 1
    per = total / count
    return float((per.max(axis=1) - per.min(axis=1)).mean())


def run(args: argparse.Namespace) -> dict:
    import torch

    from audit.assets import resolve_model
    from audit.models.hf import load_hf

    torch.set_num_threads(args.threads)
    pairs = crows(Path(args.data), args.pairs)
    flat = [t for p in pairs for t in p]
    prompts, conts, cells, groups, n_targets = template_items()
    out: dict = {"pairs": len(pairs), "template_cells": len(prompts)}
    scores: dict[str, dict[str, np.ndarray]] = {}
    for dtype in ("float32", "bfloat16"):
        model = load_hf(str(resolve_model("default-lm")), dtype=dtype, batch_size=16)
        model.sequence_log_prob(flat[:32])  # warm-up
        t0 = time.perf_counter()
        s = model.sequence_log_prob(flat)
        t1 = time.perf_counter()
        c = model.continuation_log_prob(prompts, conts)
        t2 = time.perf_counter()
        scores[dtype] = {"crows": s.reshape(-1, 2), "templates": c}
        out[f"crows_s_{dtype}"] = round(t1 - t0, 2)
        out[f"templates_s_{dtype}"] = round(t2 - t1, 2)
    a, b = scores["float32"], scores["bfloat16"]
    win = {d: np.round(scores[d]["crows"], 3) for d in scores}
    wins = {d: win[d][:, 0] > win[d][:, 1] for d in scores}
    out.update({
        "crows_max_abs_delta": float(np.abs(a["crows"] - b["crows"]).max()),
        "crows_mean_abs_delta": float(np.abs(a["crows"] - b["crows"]).mean()),
        "crows_pct_float32": float(100 * wins["float32"].mean()),
        "crows_pct_bfloat16": float(100 * wins["bfloat16"].mean()),
        "crows_flipped_pairs": int((wins["float32"] != wins["bfloat16"]).sum()),
        "templates_max_abs_delta": float(np.abs(a["templates"] - b["templates"]).max()),
        "template_gap_float32": target_gap(a["templates"], cells, len(groups), n_targets),
        "template_gap_bfloat16": target_gap(b["templates"], cells, len(groups), n_targets),
    })
    out["crows_speedup"] = round(out["crows_s_float32"] / out["crows_s_bfloat16"], 2)
    out["templates_speedup"] = round(out["templates_s_float32"] / out["templates_s_bfloat16"], 2)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--pairs", type=int, default=0, help="first N pairs only (0: all)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if not Path(args.data).is_file():
        print(f"bench_dtype: CrowS-Pairs CSV not found at {args.data}", file=sys.stderr)
        return 4
    res = run(args)
    print(json.dumps(res, indent=1))
    print(f"CrowS {res['pairs']} pairs: fp32 {res['crows_s_float32']} s, bf16 "
          f"{res['crows_s_bfloat16']} s ({res['crows_speedup']}x); max |dlogp| "
          f"{res['crows_max_abs_delta']:.3f}; metric {res['crows_pct_float32']:.2f}% -> "
          f"{res['crows_pct_bfloat16']:.2f}%, {res['crows_flipped_pairs']} pairs flipped")
    print(f"Templates {res['template_cells']} cells: {res['templates_speedup']}x; max |d| "
          f"{res['templates_max_abs_delta']:.3f}; mean_target_gap {res['template_gap_float32']:.4f}"
          f" -> {res['template_gap_bfloat16']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
