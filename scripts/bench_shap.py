"""Benchmark: our lockstep, batched Partition SHAP vs ``shap.Explainer(pipeline)`` with its
defaults, on the same texts, budget and seed, in the same run.

    python scripts/bench_shap.py [--model dreaddit-classifier] [--n 6] [--max-evals 300]
                                 [--max-words 60] [--model-batch 64] [--seed 0] [--threads 2]
    python scripts/bench_shap.py --per-method [--max-tokens 64] [--n-steps 32] ...

Baseline: a transformers ``text-classification`` pipeline (all class scores) over the same
torch module and tokenizer, explained by ``shap.Explainer(pipe)`` (Partition explainer, Text
masker over the pipeline's tokenizer, default batch size). Ours: ``audit``'s ``shap_text``
engine (shap's recursion per text, model calls pooled across texts, de-duplicated and
length-sorted, ``--model-batch`` texts per forward pass). Prints wall and CPU seconds of each,
seconds per explanation, their ratios (target >= 3x; on a shared machine the CPU-time ratio is
the steadier one, and the 1-minute load average is printed) and the largest absolute difference
between the two attributions (equal up to float noise and exactly tied queue priorities).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pick_texts(n: int, max_words: int, seed: int) -> list[str]:
    """``n`` dreaddit test texts of at most ``max_words`` words, drawn with ``seed``."""
    import numpy as np
    import pandas as pd

    from audit.assets import asset_path

    frame = pd.read_csv(asset_path("dreaddit_test"))
    pool = [t for t in frame["text"].astype(str) if len(t.split()) <= max_words]
    idx = np.sort(np.random.default_rng(seed).choice(len(pool), size=min(n, len(pool)), replace=False))
    return [pool[i] for i in idx]


def baseline(adapter, texts: list[str], max_evals: int, seed: int) -> tuple[list, tuple[float, float]]:
    """shap.Explainer over a transformers pipeline, with shap's defaults."""
    import numpy as np
    import shap
    from transformers import pipeline

    pipe = pipeline("text-classification", model=adapter.torch_module, tokenizer=adapter.tokenizer,
                    top_k=None, device=adapter.device)
    pipe(["warm up"])
    np.random.seed(seed)
    start, cpu = time.perf_counter(), time.process_time()
    explanation = shap.Explainer(pipe)(texts, max_evals=max_evals, silent=True)
    elapsed = (time.perf_counter() - start, time.process_time() - cpu)
    return [(e.values, e.base_values) for e in explanation], elapsed


def ours(adapter, texts: list[str], max_evals: int, model_batch: int, seed: int) -> tuple[list, tuple[float, float]]:
    """audit's shap_text engine."""
    from audit.checks.explain.shap_text import explain

    adapter.predict_proba(["warm up"])
    start, cpu = time.perf_counter(), time.process_time()
    rows = explain(adapter, texts, max_evals, 5, model_batch, seed)
    elapsed = (time.perf_counter() - start, time.process_time() - cpu)
    return [(r["values"], r["base"]) for r in rows], elapsed


def per_method_seconds(adapter, texts: list[str], max_evals: int, n_steps: int, model_batch: int,
                       seed: int) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds per explained text for SHAP (ours), IG and attention rollout."""
    import numpy as np

    from audit.checks.explain import rollout
    from audit.checks.explain.integrated_gradients import explain_text
    from audit.checks.explain.shap_text import explain

    def shap_all() -> None:
        """All texts at once (the lockstep engine)."""
        explain(adapter, texts, max_evals, 5, model_batch, seed)

    def ig_all() -> None:
        """One Captum call per text."""
        for text in texts:
            explain_text(adapter, text, n_steps)

    def rollout_all() -> None:
        """One forward pass with attentions per text, then the rollout."""
        for text in texts:
            rollout.attention_rollout(np.asarray(adapter.attentions(text)[1], dtype=float))

    out = {}
    for name, fn in (("shap", shap_all), ("ig", ig_all), ("attention_rollout", rollout_all)):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        out[name] = {"wall_s_per_text": round((time.perf_counter() - start) / len(texts), 3),
                     "cpu_s_per_text": round((time.process_time() - cpu) / len(texts), 3)}
    return out


def parse_args() -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dreaddit-classifier")
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--max-evals", type=int, default=300)
    parser.add_argument("--max-words", type=int, default=60)
    parser.add_argument("--model-batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-method", action="store_true",
                        help="instead: seconds per explanation of SHAP, IG and rollout")
    parser.add_argument("--n-steps", type=int, default=32, help="IG steps for --per-method")
    parser.add_argument("--max-tokens", type=int, default=None,
                        help="truncate texts to this many tokens")
    return parser.parse_args()


def compare(adapter, texts: list[str], args: argparse.Namespace) -> dict:
    """Run the baseline and ours on the same texts; timings, ratios and differences."""
    import numpy as np

    ref, t_ref = baseline(adapter, texts, args.max_evals, args.seed)
    got, t_got = ours(adapter, texts, args.max_evals, args.model_batch, args.seed)
    diff = max(float(np.abs(np.asarray(a[0]) - np.asarray(b[0])).max()) for a, b in zip(ref, got))
    base = max(float(np.abs(np.asarray(a[1]) - np.asarray(b[1])).max()) for a, b in zip(ref, got))
    return {"baseline_wall_s": round(t_ref[0], 2), "ours_wall_s": round(t_got[0], 2),
            "baseline_s_per_text": round(t_ref[0] / len(texts), 3),
            "ours_s_per_text": round(t_got[0] / len(texts), 3),
            "speedup_wall": round(t_ref[0] / t_got[0], 2),
            "baseline_cpu_s": round(t_ref[1], 2), "ours_cpu_s": round(t_got[1], 2),
            "speedup_cpu": round(t_ref[1] / t_got[1], 2),
            "max_abs_attribution_diff": diff, "max_abs_base_value_diff": base}


def main() -> int:
    """Load the model, pick the texts, print the comparison (or per-method timings) as JSON."""
    args = parse_args()
    import torch

    from audit.assets import resolve_model
    from audit.checks.explain.common import truncate_text
    from audit.models.hf import load_hf

    torch.set_num_threads(args.threads)
    adapter = load_hf(str(resolve_model(args.model)))
    texts = pick_texts(args.n, args.max_words, args.seed)
    if args.max_tokens:
        texts = [truncate_text(t, adapter, args.max_tokens)[0] for t in texts]
    report = {"model": args.model, "texts": len(texts), "max_evals": args.max_evals,
              "threads": args.threads}
    if args.per_method:
        adapter.predict_proba(["warm up"])
        report.update(n_steps=args.n_steps, methods=per_method_seconds(
            adapter, texts, args.max_evals, args.n_steps, args.model_batch, args.seed))
    else:
        report.update(compare(adapter, texts, args))
    report["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
