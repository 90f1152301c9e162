#!/usr/bin/env python
"""Sequence scoring through one OpenAI-compatible server: audit's openai adapter vs
lm-evaluation-harness's ``local-completions`` model, at concurrency 1 and 4.

    .venv/bin/python scripts/bench_api.py [--n 500] [--stock] [--out bench.json]

Starts Gemma 3 270M under llama-cpp-python on loopback (``--stock``: the unpatched server;
default: through ``tests/llama_launch.py``, which only replaces a per-token Python sort of the
vocabulary that costs seconds per token with Gemma's 262k vocabulary; see that file). Both
harnesses score the same CrowS-Pairs sentences (the first n/2 rows, both sentences) with
``echo`` requests, no cache. lm-evaluation-harness 0.4.13 is installed by this script into its
own virtual environment (``.bench/lmeval-venv``; it reuses this project's packages through a
``.pth`` file, so only lm-eval and its missing dependencies are downloaded) and is not a
project dependency. lm-eval scores each sentence with ``loglikelihood_rolling`` (string
requests, HF tokenizer of the same model; its context is the BOS token, sent as text).

Reports wall times, the speed ratio (lm-eval time / ours) and max |delta| between the two
harnesses' per-sentence log-probabilities, with the reason they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LMEVAL = "lm-eval[api]==0.4.13"
VENV = ROOT / ".bench" / "lmeval-venv"

LMEVAL_DRIVER = r"""
import json, sys, time
from lm_eval.api.instance import Instance
from lm_eval.models.openai_completions import LocalCompletionsAPI
cfg = json.loads(sys.argv[1])
texts = json.load(open(cfg["texts"]))
lm = LocalCompletionsAPI(base_url=cfg["url"] + "/completions", model=cfg["model"],
                         tokenizer_backend="huggingface", tokenizer=cfg["tokenizer"],
                         tokenized_requests=False, num_concurrent=cfg["concurrency"],
                         max_retries=3, timeout=300)
reqs = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(t,), idx=i)
        for i, t in enumerate(texts)]
start = time.perf_counter()
scores = lm.loglikelihood_rolling(reqs, disable_tqdm=True)
print(json.dumps({"wall_s": time.perf_counter() - start, "scores": [float(s) for s in scores]}))
"""


def sentences(n: int) -> list[str]:
    from scripts.served_vs_inprocess import sentences as crows

    return crows(n)


def ensure_lmeval_venv() -> Path:
    """Create the bench's own venv with lm-eval (reusing this project's site-packages)."""
    py = VENV / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import lm_eval, tenacity, aiohttp"], capture_output=True).returncode == 0:
        return py
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    here = subprocess.run([sys.executable, "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    theirs = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    Path(theirs, "zz_audit_project.pth").write_text(here + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", LMEVAL],
                   check=True)
    return py


def ours(url: str, model: str, texts: list[str], concurrency: int) -> tuple[np.ndarray, float]:
    from audit.config import ModelSpec
    from audit.models.openai import load_openai

    adapter = load_openai(ModelSpec(adapter="openai", base_url=url, model=model, cache=False,
                                    max_concurrency=concurrency))
    assert "sequence_log_prob" in adapter.capabilities, adapter.capability_notes
    start = time.perf_counter()
    scores = adapter.sequence_log_prob(texts)
    wall = time.perf_counter() - start
    adapter.close()
    return scores, wall


def lmeval(py: Path, url: str, model: str, tokenizer: str, texts_file: Path,
           concurrency: int) -> tuple[np.ndarray, float]:
    cfg = {"url": url, "model": model, "tokenizer": tokenizer, "texts": str(texts_file),
           "concurrency": concurrency}
    proc = subprocess.run([str(py), "-c", LMEVAL_DRIVER, json.dumps(cfg)], capture_output=True,
                          text=True, env=dict(os.environ, HF_HUB_OFFLINE="1",
                                              TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false"))
    if proc.returncode != 0:
        raise SystemExit(f"lm-eval failed: {proc.stderr[-3000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return np.array(data["scores"]), float(data["wall_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--stock", action="store_true", help="unpatched llama-cpp-python server")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--url", help="API root of a running server (else one is started)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from audit.assets import resolve_model
    from tests.servers import LlamaServer, gemma_gguf

    texts = sentences(args.n)
    texts_file = ROOT / ".bench" / "texts.json"
    texts_file.parent.mkdir(exist_ok=True)
    texts_file.write_text(json.dumps(texts))
    py = ensure_lmeval_venv()
    tokenizer = str(resolve_model("multilingual-lm"))
    server = None if args.url else LlamaServer(gemma_gguf(), args.model, n_ctx=512,
                                               fast_logprobs=not args.stock).start()
    url = args.url or server.url
    rows = []
    try:
        for conc in args.concurrency:
            a, ta = ours(url, args.model, texts, conc)
            b, tb = lmeval(py, url, args.model, tokenizer, texts_file, conc)
            rows.append({"concurrency": conc, "ours_wall_s": round(ta, 2),
                         "lmeval_wall_s": round(tb, 2), "speedup": round(tb / ta, 2),
                         "max_abs_delta": float(np.max(np.abs(a - b))),
                         "median_abs_delta": float(np.median(np.abs(a - b)))})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if server:
            server.stop()
    result = {"n_sentences": len(texts), "server": "llama-cpp-python 0.3.36" +
              (" (stock)" if args.stock else " (numpy top-k launcher)"), "rows": rows}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
