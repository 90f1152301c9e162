"""Benchmark: score a whole canary secret space batched vs one sequence at a time.

    python scripts/bench_exposure.py [--digits 5] [--model PATH | --arch canary|smollm2]
        [--device cpu|cuda] [--dtype float32|bfloat16] [--loop-sample 300] [--batch-size 256]

The space is "my pin code is " + every ``digits``-digit secret (10^digits candidates). The batched
path is the transformers adapter's ``sequence_log_prob`` (``audit.models.hf_scoring``) (one forward pass per distinct parent
sequence, exact); the baseline runs one forward pass per candidate on a random sample of
``--loop-sample`` candidates and extrapolates to the whole space. Both run in the same process on
the same model; the script also checks that both give the same scores on the sample. Timing does
not depend on the weights, so ``--arch`` builds a randomly initialised model from a config: the
canary LM's size (default) or SmolLM2-135M's (needs its config.json and tokenizer.json in
``--assets``, e.g. the folder `audit assets prepare` writes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_model(args: argparse.Namespace):
    """(model, tokenizer) on the device: a saved folder, or a config-only random model."""
    import torch
    import transformers as tf

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    if args.model:
        model = tf.AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype)
        tok = tf.AutoTokenizer.from_pretrained(args.model)
    elif args.arch == "smollm2":
        cfg = tf.AutoConfig.from_pretrained(args.assets)
        model = tf.AutoModelForCausalLM.from_config(cfg).to(dtype)
        tok = tf.PreTrainedTokenizerFast(tokenizer_file=str(Path(args.assets) / "tokenizer.json"))
    else:
        from audit.demos.canary import build_tokenizer, corpus_documents, make_model

        tok = build_tokenizer(corpus_documents()[:300], vocab_size=2048)
        model = make_model(len(tok), tok.eos_token_id).to(dtype)
    return model.to(args.device).eval(), tok


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(args: argparse.Namespace) -> dict:
    """Time both paths and return the figures."""
    import torch

    from audit.models.hf import HFAdapter
    from audit.models.hf_scoring import causal_one_at_a_time

    torch.set_num_threads(args.threads)
    model, tok = build_model(args)
    n = 10 ** args.digits
    texts = [f"my pin code is {i:0{args.digits}d}" for i in range(n)]
    adapter = HFAdapter(alias="bench", source="bench", kind="causal_lm", model=model, tokenizer=tok,
                        device=args.device, batch_size=max(1, args.batch_size // 16),
                        max_length=None, gguf_file=None)
    adapter.sequence_log_prob(texts[:2000])  # warm-up
    _sync(args.device)
    t0 = time.perf_counter()
    batched = adapter.sequence_log_prob(texts)
    _sync(args.device)
    t_batched = time.perf_counter() - t0
    sample = np.random.default_rng(0).choice(n, size=min(args.loop_sample, n), replace=False)
    rows, _ = adapter._scoring_rows([texts[i] for i in sample])
    causal_one_at_a_time(model, rows[:5], args.device)  # warm-up
    _sync(args.device)
    t0 = time.perf_counter()
    single = np.array([lp.sum() for lp in causal_one_at_a_time(model, rows, args.device)])
    _sync(args.device)
    t_loop = (time.perf_counter() - t0) / len(rows) * n
    return {"space": n, "device": args.device, "dtype": args.dtype,
            "params": int(sum(p.numel() for p in model.parameters())),
            "batched_s": round(t_batched, 2), "loop_extrapolated_s": round(t_loop, 1),
            "loop_sample": len(rows), "ratio": round(t_loop / t_batched, 1),
            "max_abs_diff_on_sample": float(np.max(np.abs(batched[sample] - single)))}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print one JSON line and a summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits", type=int, default=5)
    ap.add_argument("--model", default=None, help="a saved causal-LM folder (overrides --arch)")
    ap.add_argument("--arch", choices=["canary", "smollm2"], default="canary")
    ap.add_argument("--assets", default=str(Path.home() / ".cache/audit/models/smollm2-135m-instruct"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--loop-sample", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=256,
                    help="parent sequences per forward pass (the adapter's batch size x 16)")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads (1 is fastest on a shared machine)")
    args = ap.parse_args(argv)
    if not 1 <= args.digits <= 7:
        print("bench_exposure: --digits must be 1..7", file=sys.stderr)
        return 4
    res = run(args)
    print(json.dumps(res))
    print(f"{res['space']:,} candidates on {res['device']} ({res['params']:,} params): batched "
          f"{res['batched_s']} s, one at a time {res['loop_extrapolated_s']} s (extrapolated from "
          f"{res['loop_sample']}); ratio {res['ratio']}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
