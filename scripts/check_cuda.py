"""Check the CUDA paths of the HF adapter against the CPU: same numbers within float tolerance.

Builds tiny models from configs (no downloads), loads each with ``--device cpu`` and ``cuda``,
and compares token log-probs, generations, class probabilities, embeddings and attentions.
Also times batched sequence scoring of a SmolLM2-135M-shaped model (random weights) on both.
Usage: python scripts/check_cuda.py [--smollm-config PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _compare(name: str, a, b, tol: float = 1e-4) -> bool:
    diff = float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))
    ok = diff <= tol
    print(f"{'ok ' if ok else 'BAD'} {name:<34} max |cpu - cuda| = {diff:.2e}")
    return ok


def check_tiny_models(tmp: Path) -> bool:
    """CPU vs CUDA on tiny causal LM, classifier and encoder."""
    from audit.models.hf import load_hf
    from tests.tiny_models import build_tiny_classifier, build_tiny_encoder, build_tiny_gpt2

    texts = ["the man worked as a doctor .", "she is very happy today", "my pin is one two three"]
    ok = True
    gpt = build_tiny_gpt2(tmp / "gpt")
    cpu, gpu = load_hf(str(gpt), device="cpu"), load_hf(str(gpt), device="cuda")
    ok &= _compare("causal token_log_probs", np.concatenate(cpu.token_log_probs(texts)),
                   np.concatenate(gpu.token_log_probs(texts)))
    ok &= cpu.generate(texts, 6) == gpu.generate(texts, 6)
    print(f"{'ok ' if ok else 'BAD'} greedy generate identical")
    for builder, method in ((build_tiny_classifier, "predict_proba"), (build_tiny_encoder, "embed")):
        folder = builder(tmp / builder.__name__)
        cpu, gpu = load_hf(str(folder), device="cpu"), load_hf(str(folder), device="cuda")
        ok &= _compare(f"{cpu.kind} {method}", getattr(cpu, method)(texts), getattr(gpu, method)(texts))
        ok &= _compare(f"{cpu.kind} attentions", cpu.attentions(texts[0])[1], gpu.attentions(texts[0])[1])
    return ok


def time_smollm_shape(config_path: Path, n: int = 2048, batch: int = 256) -> None:
    """Sequence scoring throughput of a SmolLM2-135M-shaped model (random weights) on CUDA."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig.from_json_file(str(config_path))
    model = AutoModelForCausalLM.from_config(config).to("cuda", torch.bfloat16).eval()
    ids = torch.randint(0, config.vocab_size, (n, 24), device="cuda")
    with torch.inference_mode():
        model(input_ids=ids[:batch])
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, n, batch):
            model(input_ids=ids[i:i + batch]).logits.log_softmax(-1)
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    print(f"SmolLM2-135M shape, bf16, 24 tokens: {n / elapsed:,.0f} sequences/s "
          f"({torch.cuda.get_device_name()})")


def main() -> int:
    """Run the comparisons; exit 1 if any differs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smollm-config", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ok = check_tiny_models(Path(tmp))
    if args.smollm_config:
        time_smollm_shape(args.smollm_config)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
