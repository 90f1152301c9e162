"""Reference computations shared by the DP tests, written independently of audit.dp."""

from __future__ import annotations

import math


def gaussian_rdp_epsilon(sigma: float, steps: int, delta: float) -> float:
    """Hand-written RDP of the full-batch (sample rate 1) Gaussian mechanism,
    alpha * T / (2 sigma^2) (Mironov 2017, Prop. 7), converted to (eps, delta) with Balle et al.
    2020's bound (Thm. 21) over Opacus' default alpha grid."""
    alphas = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    best = math.inf
    for a in alphas:
        rdp = steps * a / (2 * sigma**2)
        eps = rdp + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        best = min(best, eps)
    return best


def skip_noise(optimizer) -> None:
    """TEST-ONLY fault: make an Opacus DPOptimizer skip its Gaussian noise (per-example clipping
    still happens) while its noise multiplier, and so the accountant and the ledger, stay
    unchanged: the ledger then claims an epsilon the training does not deliver. Pass it as
    ``train(cfg, hooks={"optimizer": skip_noise})``; nothing in ``audit`` can turn it on."""
    def add_noise_skipped() -> None:
        for p in optimizer.params:
            p.grad = p.summed_grad.view_as(p)

    optimizer.add_noise = add_noise_skipped


def build_audit_gpt2(path, n_embd: int = 64, extra_tokens: int = 2000, seed: int = 0):
    """A 2-layer GPT-2 (random init) with a word-level tokenizer of the tiny-model words plus
    ``extra_tokens`` synthetic tokens. The large vocabulary keeps random canaries from sharing
    bigrams (with ~100 words, 500 canaries of 6 tokens cover a quarter of all bigrams, and
    excluded canaries then look memorised too)."""
    from pathlib import Path

    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from tests.tiny_models import WORDS

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    words = ["<|endoftext|>", "<unk>"] + sorted(set(WORDS)) + [f"x{i:04d}"
                                                              for i in range(extra_tokens)]
    vocab = {w: i for i, w in enumerate(words)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                  pre_tokenizers.Punctuation()])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>", unk_token="<unk>",
                                  pad_token="<|endoftext|>")
    assert len(tok) == len(vocab)
    tok.save_pretrained(str(path))
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(vocab), n_positions=32, n_embd=n_embd, n_layer=2,
                        n_head=4, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    GPT2LMHeadModel(config).eval().save_pretrained(str(path))
    return path
