#!/usr/bin/env python
"""Per-sentence log-probabilities of one model served (llama-cpp-python, openai adapter) vs the
same GGUF in-process (transformers, hf adapter): correlation and absolute differences.

    .venv/bin/python scripts/served_vs_inprocess.py --n 300            # starts its own server
    .venv/bin/python scripts/served_vs_inprocess.py --url http://127.0.0.1:8080/v1 --model NAME

Sentences: the first n/2 CrowS-Pairs rows (both sentences) of ../shared/data/crows_pairs.
llama-cpp-python returns no log-probability for a text's first token (OpenAI's echo convention),
while the hf adapter scores it after BOS; so the main comparison sums the in-process values over
the same tokens (first one dropped), and the full in-process sums are reported beside it.
Prints one JSON object (and writes it with --out).
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
CROWS = ROOT.parent / "shared" / "data" / "crows_pairs" / "crows_pairs_anonymized.csv"


def sentences(n: int) -> list[str]:
    """The sent_more / sent_less sentences of the first n/2 CrowS-Pairs rows."""
    with open(CROWS, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows[: (n + 1) // 2]:
        out += [row["sent_more"], row["sent_less"]]
    return out[:n]


def served_scores(url: str, model: str, texts: list[str], concurrency: int,
                  cache: str | bool = False) -> tuple[list, float]:
    from audit.config import ModelSpec
    from audit.models.openai import load_openai

    adapter = load_openai(ModelSpec(adapter="openai", base_url=url, model=model, cache=cache,
                                    max_concurrency=concurrency))
    if "sequence_log_prob" not in adapter.capabilities:
        raise SystemExit(f"served model cannot score: {adapter.capability_notes['sequence_log_prob']}")
    start = time.perf_counter()
    lps = adapter.token_log_probs(texts)
    wall = time.perf_counter() - start
    adapter.close()
    return lps, wall


def local_scores(asset: str, texts: list[str]) -> tuple[list, float]:
    from audit.assets import resolve_model
    from audit.models.hf import load_hf

    hf = load_hf(str(resolve_model(asset)))
    start = time.perf_counter()
    lps = hf.token_log_probs(texts)
    return lps, time.perf_counter() - start


def compare(served: list, local: list) -> dict:
    """Correlation and differences of per-sentence sums (same tokens, and full in-process)."""
    s = np.array([x.sum() for x in served])
    same = np.array([x[1:].sum() for x in local])
    full = np.array([x.sum() for x in local])
    counts = sum(len(a) != len(b) - 1 for a, b in zip(served, local))
    return {"n_sentences": len(s), "token_count_mismatches": int(counts),
            "pearson_same_tokens": float(np.corrcoef(s, same)[0, 1]),
            "max_abs_diff_same_tokens": float(np.max(np.abs(s - same))),
            "mean_abs_diff_same_tokens": float(np.mean(np.abs(s - same))),
            "pearson_vs_full_in_process": float(np.corrcoef(s, full)[0, 1]),
            "max_abs_diff_vs_full_in_process": float(np.max(np.abs(s - full)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--url", help="API root of a running server (else one is started)")
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--asset", default="multilingual-lm", help="in-process twin (audit asset)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--cache", default=False, help="response cache file (default: none)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    texts = sentences(args.n)
    server = None
    if not args.url:
        from tests.servers import LlamaServer, gemma_gguf

        server = LlamaServer(gemma_gguf(), args.model, n_ctx=512).start()
        args.url = server.url
    try:
        served, served_wall = served_scores(args.url, args.model, texts, args.concurrency, args.cache)
    finally:
        if server:
            server.stop()
    local, local_wall = local_scores(args.asset, texts)
    result = {**compare(served, local), "served_wall_s": round(served_wall, 1),
              "in_process_wall_s": round(local_wall, 1), "concurrency": args.concurrency}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
