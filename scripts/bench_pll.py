#!/usr/bin/env python
"""Benchmark: batched CrowS-Pairs masked-LM scoring vs the one-mask-at-a-time loop, same run.

Model: BERT-base size (BertConfig() defaults: 12 layers, hidden 768, vocab 30,522) with random,
seeded weights, and the bert-base-uncased WordPiece vocabulary that ships with the offline
all-MiniLM-L6-v2 encoder. Data: CrowS-Pairs sentence pairs (the first --pairs of a seeded shuffle).
Batched: every masked copy of every sentence through the adapter's ``masked_log_probs`` (``audit.models.hf_scoring``) (length-bucketed batches).
Loop: the reference way (nyu-mll/crows-pairs metric.py): one forward pass per masked copy; with
``--loop-sample K`` only K seeded copies are run and the loop's total is extrapolated per copy.
Both run in ``--rounds`` alternating rounds, each on its share of the copies, so both see the same
moments of a shared machine whose speed drifts (a loop timed minutes before the batched path
measured 105-131 ms a copy on the same machine on one day).
Prints both times, the per-copy speed-up (and each round's) and the largest score difference on
the shared copies.

    .venv/bin/python scripts/bench_pll.py --pairs 64 --loop-sample 64
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "crows_pairs" / "crows_pairs_anonymized.csv"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="CrowS-Pairs CSV")
    p.add_argument("--pairs", type=int, default=64, help="pairs scored by the batched path")
    p.add_argument("--loop-sample", type=int, default=64, help="masked copies run by the loop (0: all)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=4,
                   help="loop and batched path alternate in this many rounds")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--tokenizer", default="default-encoder",
                   help="tokenizer folder (default: the offline MiniLM's bert-base-uncased vocab)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtypes", default="float32,bfloat16",
                   help="dtypes of the batched path, each timed against the fp32 loop")
    return p.parse_args()


def build(device: str, seed: int, tokenizer: str = "default-encoder"):
    """Random BERT-base masked LM + the bert-base-uncased vocabulary of the offline MiniLM."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    if tokenizer == "default-encoder":
        from audit.assets import resolve_model

        tokenizer = str(resolve_model("default-encoder"))
    tok = AutoTokenizer.from_pretrained(tokenizer)
    torch.manual_seed(seed)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tok))).eval().to(device)
    return model, tok


def loop_scores(model, tok, jobs, device: str) -> list[float]:
    """One forward pass per masked copy, batch of one, no padding (the reference loop)."""
    import torch

    out = []
    with torch.inference_mode():
        for job in jobs:
            ids = torch.tensor([job.ids], device=device)
            masked = ids.clone()
            masked[0, list(job.mask)] = tok.mask_token_id
            logits = model(masked).logits[0]
            out.append(sum(torch.log_softmax(logits[p], 0)[job.ids[p]].item() for p in job.score))
    return out


def interleaved(args, model, typed, tok, jobs, sample):
    """Loop and batched path in alternating rounds, each on its share of the copies (the loop on
    its share of ``sample``), so both see the same moments of a shared machine whose speed
    drifts. Returns the loop's scores, the batched scores of every copy, both total times and
    each round's per-copy speed-up."""
    import numpy as np

    from audit.models.hf_scoring import masked_log_probs

    batched = np.zeros(len(jobs))
    looped: list[float] = []
    t_loop = t_batched = 0.0
    ratios = []
    for part, few in zip(np.array_split(np.arange(len(jobs)), args.rounds),
                         np.array_split(sample, args.rounds)):
        t0 = time.perf_counter()
        looped += loop_scores(model, tok, [jobs[i] for i in few], args.device)
        t1 = time.perf_counter()
        batched[part] = masked_log_probs(typed, [jobs[i] for i in part], tok.mask_token_id,
                                         tok.pad_token_id, args.batch_size, device=args.device)
        t2 = time.perf_counter()
        t_loop, t_batched = t_loop + t1 - t0, t_batched + t2 - t1
        ratios.append(((t1 - t0) / max(len(few), 1)) / ((t2 - t1) / len(part)))
    return np.asarray(looped), batched, t_loop, t_batched, ratios


def report(args, model, chosen, jobs, sample, t_batched: float, t_loop: float, diff: float) -> None:
    """Print the set-up, both timings, the per-copy speed-up and the score difference."""
    import numpy as np

    per_loop, per_batch = t_loop / len(sample), t_batched / len(jobs)
    print(f"model: BertForMaskedLM(BertConfig()) random weights, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, device {args.device}, "
          f"{args.threads} threads")
    print(f"data: {len(chosen)} CrowS-Pairs pairs -> {len(jobs)} masked copies "
          f"(mean length {np.mean([len(j.ids) for j in jobs]):.1f} tokens)")
    print(f"batched: {t_batched:.2f} s for {len(jobs)} copies ({per_batch * 1e3:.2f} ms/copy, "
          f"batch size {args.batch_size})")
    print(f"loop:    {t_loop:.2f} s for {len(sample)} copies ({per_loop * 1e3:.2f} ms/copy); "
          f"all {len(jobs)} copies would take {per_loop * len(jobs):.1f} s")
    print(f"speed-up (per copy, loop / batched): {per_loop / per_batch:.1f}x")
    print(f"max |batched - loop| score difference on {len(sample)} shared copies: {diff:.2e}")


def main() -> int:
    args = parse_args()
    import numpy as np
    import torch

    from audit.checks.bias.scoring import build_pair_jobs
    from audit.models.hf import HFAdapter
    from audit.models.hf_scoring import masked_log_probs

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.is_file():
        print(f"bench_pll: CrowS-Pairs CSV not found at {data} (pass --data)", file=sys.stderr)
        return 4
    with open(data, newline="", encoding="utf-8") as fh:
        pairs = [{"sent_more": r["sent_more"], "sent_less": r["sent_less"]} for r in csv.DictReader(fh)]
    rng = np.random.default_rng(args.seed)
    chosen = [pairs[i] for i in rng.permutation(len(pairs))[:args.pairs]]
    model, tok = build(args.device, args.seed, args.tokenizer)
    adapter = HFAdapter(alias="bench", source="bench", kind="masked_lm", model=model, tokenizer=tok,
                        device=args.device, batch_size=args.batch_size, max_length=None,
                        gguf_file=None)
    jobs, _ = build_pair_jobs(adapter, [(p["sent_more"], p["sent_less"]) for p in chosen], "crows")
    sample = np.arange(len(jobs)) if args.loop_sample <= 0 else np.sort(
        rng.choice(len(jobs), min(args.loop_sample, len(jobs)), replace=False))
    for name in [d for d in args.dtypes.split(",") if d]:
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]
        typed = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
        masked_log_probs(typed, jobs[:8], tok.mask_token_id, tok.pad_token_id, 8, device=args.device)
        looped, batched, t_loop, t_batched, ratios = interleaved(args, model, typed, tok, jobs, sample)
        print(f"--- batched in {name} (loop always float32) ---")
        report(args, typed, chosen, jobs, sample, t_batched, t_loop,
               float(np.max(np.abs(batched[sample] - looped))))
        print(f"per-round speed-ups ({args.rounds} rounds): " + ", ".join(f"{r:.1f}x" for r in ratios))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
