#!/usr/bin/env python
"""Benchmark: causal sequence scoring with the LM head run by hand in chunks of real positions
(the adapter's path) vs the model's own full logits tensor, same sentences, same run.

Each mode runs in its own process so its peak memory (ru_maxrss) is its own. Both modes use
the adapter's batches (``audit.models.hf_scoring``); the full mode is the path every model whose
logits are not exactly its head's output takes (``_audit_head_is_last = False``). Prints time
and peak RSS of each, their ratios and the largest score difference.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/bench_head.py --model multilingual-lm --pairs 64
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "crows_pairs" / "crows_pairs_anonymized.csv"


def score(args: argparse.Namespace) -> dict:
    """One mode: load the model, score the sentences once warm, report time and memory."""
    import numpy as np
    import torch

    from audit.assets import resolve_model
    from audit.models.hf import load_hf

    torch.set_num_threads(args.threads)
    with open(args.data, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:args.pairs]
    texts = [t for r in rows for t in (r["sent_more"], r["sent_less"])]
    lm = load_hf(str(resolve_model(args.model)))
    lm.sequence_log_prob(texts[:4])  # warm-up; also runs the one-time head check
    checked = bool(lm.torch_module._audit_head_is_last)
    lm.torch_module._audit_head_is_last = checked and args.mode == "chunked"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    values = lm.sequence_log_prob(texts)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(args.save, values)
    return {"mode": args.mode, "head_check": checked, "texts": len(texts), "seconds": seconds,
            "peak_rss_mb": peak / 1024, "rss_before_mb": before / 1024}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="multilingual-lm", help="asset name or model folder")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mode", choices=["chunked", "full"], help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:
        print(json.dumps(score(args)))
        return 0
    import tempfile

    import numpy as np

    out, values = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("full", "chunked"):
            save = str(Path(tmp) / f"{mode}.npy")
            cmd = [sys.executable, __file__, "--mode", mode, "--save", save, "--model", args.model,
                   "--data", args.data, "--pairs", str(args.pairs), "--threads", str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            values[mode] = np.load(save)
    full, chunked = out["full"], out["chunked"]
    print(f"{args.model}: {full['texts']} sentences, {args.threads} threads, head check "
          f"{'passed' if chunked['head_check'] else 'failed (both modes ran the full logits)'}")
    for r in (full, chunked):
        print(f"  {r['mode']:<8} {r['seconds']:7.2f} s   peak RSS {r['peak_rss_mb']:7.0f} MB "
              f"(after load {r['rss_before_mb']:.0f} MB)")
    print(f"speed-up {full['seconds'] / chunked['seconds']:.2f}x, peak RSS "
          f"{full['peak_rss_mb'] / chunked['peak_rss_mb']:.2f}x lower, max |diff| "
          f"{float(np.max(np.abs(values['full'] - values['chunked']))):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
