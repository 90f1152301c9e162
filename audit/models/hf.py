"""Hugging Face transformers adapter: masked LMs, causal LMs, sequence classifiers, encoders.

Loads from a local folder (or a hub id when the user is online). Safetensors only unless
``allow_pickle``; ``trust_remote_code`` off unless asked. GGUF files (e.g. the offline SmolLM2)
load through transformers' GGUF support (dequantised to float32).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from audit.models.capabilities import (AttentionMap, MaskedScoreRequest, Message, Progress,
                                       TokenizedText, TorchHandle)

from audit.errors import usage
from audit.runtime import resolve_device
from audit.results import ModelInfo

_KIND_CAPABILITIES = {
    "masked_lm": {"tokenize", "masked_log_probs", "fill_mask", "embed", "attentions",
                  "differentiable"},
    "causal_lm": {"tokenize", "sequence_log_prob", "generate", "greedy_tokens", "attentions",
                  "differentiable"},
    "classifier": {"tokenize", "predict_proba", "embed", "attentions", "differentiable"},
    "encoder": {"tokenize", "embed", "attentions", "differentiable"},
}
_CHAT_CAPABILITIES = {"chat", "chat_template"}


def detect_kind(config: Any) -> str:
    """Kind of model from its config's architectures: masked_lm, causal_lm, classifier, encoder."""
    archs = " ".join(getattr(config, "architectures", None) or [])
    if "MaskedLM" in archs:
        return "masked_lm"
    if "CausalLM" in archs or "LMHeadModel" in archs:
        return "causal_lm"
    if "SequenceClassification" in archs:
        return "classifier"
    if getattr(config, "is_decoder", False) or getattr(config, "model_type", "") in (
            "gpt2", "llama", "mistral", "qwen2", "phi", "gemma", "gpt_neox", "opt"):
        return "causal_lm"
    return "encoder"


def _dtype(name: str) -> Any:
    import torch

    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise usage("--dtype", name, "unknown dtype", "use float32, bfloat16 or float16")
    return table[name]


def _check_weights_allowed(folder: Path, allow_pickle: bool) -> str | None:
    """Return a GGUF file name if the folder holds one; refuse pickle-only folders."""
    if not folder.is_dir():
        return None
    names = [p.name for p in folder.iterdir()]
    ggufs = sorted(n for n in names if n.endswith(".gguf"))
    has_safe = any(n.endswith(".safetensors") for n in names)
    has_pickle = any(n.endswith((".bin", ".pt", ".pth", ".ckpt")) for n in names)
    if not has_safe and not ggufs and has_pickle and not allow_pickle:
        raise usage(str(folder), "weights", "only pickle weights (.bin/.pt) found; loading pickle "
                    "can run arbitrary code", "convert to safetensors or pass --allow-pickle")
    if not has_safe and ggufs:
        return ggufs[0]
    return None


def load_hf(source: str, *, alias: str = "default", device: str = "cpu", dtype: str = "float32",
            batch_size: int = 16, allow_pickle: bool = False, trust_remote_code: bool = False,
            attn_implementation: str | None = None, max_length: int | None = None,
            kind: str | None = None) -> "HFAdapter":
    """Load a transformers model + tokenizer and wrap it in an HFAdapter."""
    import transformers

    transformers.logging.set_verbosity_error()
    path = Path(source).expanduser()
    local = path.exists()
    if not local and (source.startswith((".", "/", "~")) or source.count("/") > 1):
        raise usage(source, "model", "folder not found", "pass an existing model folder or hub id")
    if local and path.is_dir():
        from audit.models.loader import check_model_folder

        check_model_folder(path, alias)
    gguf = _check_weights_allowed(path, allow_pickle) if local else None
    common: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf:
        common["gguf_file"] = gguf
    config = _load_config(source, common)
    kind = kind or ("causal_lm" if gguf else detect_kind(config))
    model = _load_model(source, kind, config, common, dtype, allow_pickle, attn_implementation)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, **common)
    dev = resolve_device(device)
    if dtype in ("bfloat16", "bf16", "float16", "fp16") and dev == "cpu":
        _warn_low_precision_cpu(dtype)
    model.to(dev).eval()
    return HFAdapter(alias=alias, source=str(path.resolve() if local else source), kind=kind,
                     model=model, tokenizer=tokenizer, device=dev, batch_size=batch_size,
                     max_length=max_length, gguf_file=gguf)


def _warn_low_precision_cpu(dtype: str) -> None:
    """Say so when a 16-bit dtype will be emulated in software on this CPU."""
    import sys

    from audit.runtime import bf16_hardware

    if not bf16_hardware("cpu"):
        print(f"audit: warning: --dtype {dtype} on a CPU without AVX512-BF16/AMX: torch emulates "
              "it, far slower than float32 (use float32 here, or bfloat16 on a GPU)",
              file=sys.stderr)


def _load_config(source: str, common: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, **common)
    except OSError as exc:
        raise usage(source, "model", f"cannot load a transformers config ({str(exc).splitlines()[0]})",
                    "pass a folder with config.json, or an asset name from `audit assets`") from None
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        if "trust_remote_code" in str(exc):
            raise usage(source, "model", first,
                        "pass --trust-remote-code only if you trust this model's code") from None
        raise usage(source, "model", f"transformers cannot read this model ({first})",
                    "check that the folder holds a complete transformers model") from None


def _load_model(source: str, kind: str, config: Any, common: dict[str, Any], dtype: str,
                allow_pickle: bool, attn_implementation: str | None) -> Any:
    import transformers as tf

    auto = {"masked_lm": tf.AutoModelForMaskedLM, "causal_lm": tf.AutoModelForCausalLM,
            "classifier": tf.AutoModelForSequenceClassification, "encoder": tf.AutoModel}[kind]
    kwargs = dict(common, dtype=_dtype(dtype))
    if "gguf_file" not in common:
        kwargs["use_safetensors"] = None if allow_pickle else True
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        return auto.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise usage(source, "weights", str(exc).splitlines()[0],
                    "provide model.safetensors (or pass --allow-pickle for .bin)") from None


def _first_continuation_token(offsets: Sequence[tuple[int, int]], cut: int) -> int:
    """Index of the first token (never the first of the row, which nothing predicts) that
    carries a character after ``cut``; ``len(offsets)`` when none does."""
    for t in range(1, len(offsets)):
        if offsets[t][1] > cut:
            return t
    return len(offsets)


def _split_at(row: list[int], offsets: list[tuple[int, int]], cut: int) -> tuple[list[int], list[int]]:
    """Token ids before the first non-special token that carries a character at or after
    ``cut``, and the non-special tokens from there on (the continuation)."""
    k = next((t for t, (a, b) in enumerate(offsets) if b > cut and b > a), len(row))
    cont = [tok for tok, (a, b) in zip(row[k:], offsets[k:]) if b > a]
    return row[:k], cont


class HFAdapter:
    """A loaded transformers model with the capability methods of
    ``audit.models.capabilities`` (which ones depends on its kind; chat needs a chat template)."""

    adapter_name = "hf"
    kv_min_prefix_tokens = 1
    """Shortest shared prompt (tokens) scored through the batched KV-cache path of
    ``continuation_log_prob`` (equal-length prompts in one pass, their cache gathered per
    continuation; tails grouped by length). Measured on SmolLM2-135M, 2 CPU cores, template
    probes (120 prompts of ~7 tokens, 2,560 targets): 6.3-7.6 s vs 19.5-20.4 s for plain rows,
    scores equal to 8e-5. An earlier
    one-prompt-at-a-time cache path was 2.5x slower than plain rows and was replaced. Prompts
    whose continuations are all one token long stay on the plain rows: there they already share
    one batched pass of the prompt (discrim-eval's yes/no, 64 prompts: 400 ms a prompt plain
    vs 421 ms through the KV path, whose equal-length batches are mostly single prompts)."""

    scoring_chunk = 2048
    """Texts per independently tokenised and batched chunk of ``token_log_probs`` /
    ``sequence_log_prob`` (chunks of the string-sorted texts): the unit the Ray backend hands
    to replicas. Small enough that a 100,000-candidate call splits evenly over replicas, large
    enough that sorting by length within a chunk batches as tightly as a global sort (rows are
    ~2k tokens per batch)."""

    def __init__(self, *, alias: str, source: str, kind: str, model: Any, tokenizer: Any,
                 device: str, batch_size: int, max_length: int | None, gguf_file: str | None):
        self.alias, self.source, self.kind = alias, source, kind
        self.torch_module, self.tokenizer, self.device = model, tokenizer, device
        self.batch_size = batch_size
        self.gguf_file = gguf_file
        limit = getattr(model.config, "max_position_embeddings", None) or 512
        self.max_length = int(min(max_length or limit, limit, 4096))
        caps = set(_KIND_CAPABILITIES[kind])
        if kind == "causal_lm" and getattr(tokenizer, "chat_template", None):
            caps |= _CHAT_CAPABILITIES
        self.capabilities = frozenset(caps)
        if kind == "causal_lm" and tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.mask_token = getattr(tokenizer, "mask_token", None)
        self.labels = self._labels() if kind == "classifier" else []
        self.special_tokens = {k: str(v) for k, v in tokenizer.special_tokens_map.items()
                               if isinstance(v, str)}
        self._bos: list[int] | None = None

    def _labels(self) -> list[str]:
        id2label = getattr(self.torch_module.config, "id2label", None) or {}
        n = self.torch_module.config.num_labels
        return [str(id2label.get(i, f"label_{i}")) for i in range(n)]

    # -- provenance -------------------------------------------------------------------------
    def info(self) -> ModelInfo:
        """Source, kind, parameter count and file hashes."""
        from audit.io import file_hashes

        folder = Path(self.source)
        n_params = sum(p.numel() for p in self.torch_module.parameters())
        details = {"architecture": type(self.torch_module).__name__, "parameters": int(n_params),
                   "device": self.device, "dtype": str(next(self.torch_module.parameters()).dtype),
                   "max_length": self.max_length}
        if self.gguf_file:
            details["gguf_file"] = self.gguf_file
        return ModelInfo(alias=self.alias, source=self.source, adapter="hf", kind=self.kind,
                         files=file_hashes(folder) if folder.exists() else {}, details=details)

    def close(self) -> None:
        """Drop the model (frees memory once no check holds a reference)."""
        self.torch_module = None

    # -- helpers ----------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], add_special_tokens: bool = True) -> dict[str, Any]:
        """Tokenise a batch with padding and truncation to ``max_length``, on the device."""
        enc = self.tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True,
                             max_length=self.max_length, add_special_tokens=add_special_tokens)
        return {k: v.to(self.device) for k, v in enc.items()}

    def bos_prefix(self) -> list[int]:
        """``[bos_token_id]`` when the model has a BOS token its tokenizer does not add."""
        if self._bos is None:
            tok = self.tokenizer
            probe = tok("a", add_special_tokens=True)["input_ids"]
            bos = getattr(tok, "bos_token_id", None)
            self._bos = [bos] if bos is not None and (not probe or probe[0] != bos) else []
        return list(self._bos)

    # -- tokenize ---------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[TokenizedText]:
        """Token ids, character offsets, special-token flags and word ids (fast tokenizers)."""
        from audit.textseg import refine_word_ids

        tok = self.tokenizer
        if not getattr(tok, "is_fast", False):
            raise usage(self.source, "tokenizer", "needs a fast tokenizer (character offsets)",
                        "save the model with a tokenizer.json (PreTrainedTokenizerFast)")
        enc = tok(list(texts), add_special_tokens=add_special_tokens,
                  return_offsets_mapping=True, return_special_tokens_mask=True)
        out = []
        for i, text in enumerate(texts):
            ids = enc["input_ids"][i]
            special = [bool(s) for s in enc["special_tokens_mask"][i]]
            offsets = [(0, 0) if s else (int(a), int(b))
                       for (a, b), s in zip(enc["offset_mapping"][i], special)]
            words = refine_word_ids(text, offsets, enc.word_ids(i))  # CJK: a word per character
            out.append(TokenizedText(text=text, ids=tuple(ids), offsets=tuple(offsets),
                                     special=tuple(special), word_ids=tuple(words),
                                     tokens=tuple(tok.convert_ids_to_tokens(ids))))
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids (special tokens skipped)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # -- causal LM: the one scorer ----------------------------------------------------------
    def _scoring_rows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
        """Token ids (BOS prepended when the tokenizer does not add it) and character offsets
        of each text, truncated to ``max_length``."""
        bos = self.bos_prefix()
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=True,
                             max_length=self.max_length - len(bos), return_offsets_mapping=True,
                             return_special_tokens_mask=True)
        rows, offsets = [], []
        for ids, offs, special in zip(enc["input_ids"], enc["offset_mapping"],
                                      enc["special_tokens_mask"]):
            rows.append(bos + list(ids))
            offsets.append([(0, 0)] * len(bos) + [(0, 0) if s else (int(a), int(b))
                                                  for (a, b), s in zip(offs, special)])
        return rows, offsets

    def _scoring_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids as :meth:`_scoring_rows` gives them, without the offsets (cheaper)."""
        bos = self.bos_prefix()
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=True,
                             max_length=self.max_length - len(bos))
        return [bos + list(ids) for ids in enc["input_ids"]]

    def _row_log_probs(self, rows: list[list[int]], progress: Progress | None,
                       score_from: list[int] | None = None) -> list[np.ndarray]:
        from audit.models.hf_scoring import causal_token_log_probs

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return causal_token_log_probs(self.torch_module, rows, self.device,
                                      max_rows=16 * self.batch_size, pad_id=int(pad),
                                      progress=progress, score_from=score_from)

    def token_log_probs(self, texts: Sequence[str], progress: Progress | None = None) -> list[np.ndarray]:
        """Log-probability of every token given its prefix, per text (float64 arrays).

        Texts are sorted as strings (so candidates that differ only in their last token sit
        together and share their parent's forward pass) and taken in chunks of
        ``scoring_chunk`` (each tokenised, sorted by length and batched on its own), so the
        split of a call across replicas is known without tokenising anything
        (:meth:`shard_plan`) and a 10^6-text call never holds all its rows."""
        out: list[np.ndarray] = [np.zeros(0)] * len(texts)
        for chunk in self._sequence_chunks(texts):
            rows = self._scoring_ids([texts[i] for i in chunk])
            for i, lp in zip(chunk, self._row_log_probs(rows, progress)):
                out[i] = lp
        return out

    def _sequence_chunks(self, texts: Sequence[str]) -> list[list[int]]:
        """Input indices in string order (stable), cut into chunks of ``scoring_chunk``."""
        order = sorted(range(len(texts)), key=texts.__getitem__)
        return [order[s:s + self.scoring_chunk] for s in range(0, len(order), self.scoring_chunk)]

    def sequence_log_prob(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Sum of token log-probabilities of each text (natural log)."""
        return np.array([float(lp.sum()) for lp in self.token_log_probs(texts, progress)])

    def continuation_log_prob(self, prompts: Sequence[str], continuations: Sequence[str],
                              progress: Progress | None = None) -> np.ndarray:
        """Summed log-probability of the tokens of ``prompt + continuation`` that carry a
        character of the continuation."""
        if len(prompts) != len(continuations):
            raise ValueError("prompts and continuations differ in length")
        full = [p + c for p, c in zip(prompts, continuations)]
        rows, offsets, split, shared = self._continuation_split(prompts, continuations)
        out = np.zeros(len(full))
        if shared:  # one pass per shared prefix, its KV cache reused by every continuation
            from audit.models.hf_scoring import continuation_log_probs_kv

            out[shared] = continuation_log_probs_kv(
                self.torch_module, [split[i][0] for i in shared], [split[i][1] for i in shared],
                self.device, max_prefixes=4 * self.batch_size, progress=progress)
        rest = sorted(set(range(len(full))) - set(shared))
        firsts = [_first_continuation_token(offsets[i], len(prompts[i])) for i in rest]
        per_token = self._row_log_probs([rows[i] for i in rest], progress,
                                        score_from=[t - 1 for t in firsts])
        for i, lp in zip(rest, per_token):
            cut = len(prompts[i])
            out[i] = float(sum(lp[t - 1] for t in range(1, len(offsets[i])) if offsets[i][t][1] > cut))
        return out

    def _continuation_split(self, prompts: Sequence[str], continuations: Sequence[str]) -> tuple:
        """Token rows and offsets of prompt + continuation, each split into (prefix ids,
        continuation ids), and the indices whose prefix is shared (scored from one KV cache)."""
        full = [p + c for p, c in zip(prompts, continuations)]
        rows, offsets = self._scoring_rows(full)
        split = [_split_at(row, offs, len(p)) for row, offs, p in zip(rows, offsets, prompts)]
        counts: dict[tuple[int, ...], int] = {}
        tails: set[tuple[int, ...]] = set()  # prompts with a continuation of 2+ tokens
        for prefix, cont in split:
            counts[tuple(prefix)] = counts.get(tuple(prefix), 0) + 1
            if len(cont) > 1:
                tails.add(tuple(prefix))
        shared = [i for i, (prefix, cont) in enumerate(split)
                  if len(prefix) >= self.kv_min_prefix_tokens and cont
                  and counts[tuple(prefix)] > 1 and tuple(prefix) in tails]
        return rows, offsets, split, shared

    # -- sharding (for backends that split one call across replicas) ------------------------
    def shard_plan(self, method: str, kwargs: dict[str, Any]) -> list[list[int]] | None:
        """Input indices in units that may be scored on different replicas: each unit is a
        whole internal batch (or a whole group sharing a KV cache), in processing order, so any
        contiguous run of units, called on its own, runs exactly the batches it ran in the whole
        call and returns bit-identical values. None: do not split this method."""
        from audit.models import hf_scoring as S

        if method in ("sequence_log_prob", "token_log_probs"):
            return self._sequence_chunks(kwargs["texts"])
        if method == "continuation_log_prob":
            return self._continuation_plan(kwargs["prompts"], kwargs["continuations"])
        if method == "masked_log_probs":
            return S.masked_plan(kwargs["requests"], batch_size=4 * self.batch_size)
        if method in ("predict_proba", "embed"):
            return self._encoder_plan(kwargs["texts"])
        if method == "generate":
            return self._generation_plan(kwargs["prompts"], kwargs.get("max_new_tokens", 32),
                                         kwargs.get("add_special_tokens", True))
        if method == "chat":
            prompts = [self.render_chat(c) for c in kwargs["conversations"]]
            return self._generation_plan(prompts, kwargs.get("max_new_tokens", 128), False)
        if method == "greedy_token_continuations":
            return S.greedy_plan(kwargs["prefixes"], kwargs["max_new_tokens"], 4 * self.batch_size)
        return None

    def _continuation_plan(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[list[int]]:
        from audit.models.hf_scoring import causal_plan, kv_plan

        rows, _, split, shared = self._continuation_split(prompts, continuations)
        kv_units = [[shared[k] for k in unit] for unit in
                    kv_plan([split[i][0] for i in shared], max_prefixes=4 * self.batch_size)]
        rest = sorted(set(range(len(rows))) - set(shared))
        units = [[rest[k] for k in unit] for unit in
                 causal_plan([rows[i] for i in rest], max_rows=16 * self.batch_size)]
        return kv_units + units

    # -- generation -------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                 progress: Progress | None = None, add_special_tokens: bool = True) -> list[str]:
        """Continue each prompt (greedy or sampled, seeded); returns only the new text.

        Prompts run in batches of similar length (``_generation_plan``), left-padded; batch k
        samples with seed ``seed + k``, so the same prompts and seed give the same texts."""
        import torch

        prompts = list(prompts)
        self.tokenizer.padding_side = "left"
        outputs = [""] * len(prompts)
        try:
            plan = self._generation_plan(prompts, max_new_tokens, add_special_tokens)
            for chunk_index, idx in enumerate(plan):
                torch.manual_seed(seed + chunk_index)
                enc = self.encode([prompts[i] for i in idx], add_special_tokens=add_special_tokens)
                kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample,
                              pad_token_id=self.tokenizer.pad_token_id)
                if do_sample:
                    kwargs.update(temperature=temperature, top_p=top_p)
                else:
                    kwargs.update(temperature=None, top_p=None, top_k=None)
                with torch.inference_mode():
                    gen = self.torch_module.generate(**enc, **kwargs)
                new = gen[:, enc["input_ids"].shape[1]:]
                for i, text in zip(idx, self.tokenizer.batch_decode(new, skip_special_tokens=True)):
                    outputs[i] = text
                if progress:
                    progress(len(idx))
        finally:
            self.tokenizer.padding_side = "right"
        return outputs

    def _generation_plan(self, prompts: Sequence[str], max_new_tokens: int,
                         add_special_tokens: bool) -> list[list[int]]:
        """Batches of ``generate``: by token length, up to 4x the batch size (decoding a few
        rows at a time leaves most of the CPU's matrix throughput unused) and a token budget."""
        from audit.models.hf_scoring import generation_plan

        ids = self.tokenizer(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]
        lengths = [min(len(x), self.max_length or len(x)) for x in ids]
        return generation_plan(lengths, max_new_tokens, 4 * self.batch_size)

    def greedy_token_continuations(self, prefixes: Sequence[Sequence[int]], max_new_tokens: int,
                                   progress: Progress | None = None) -> list[list[int]]:
        """Greedy token ids after each prefix (equal-length prefixes batched, no padding)."""
        from audit.models.hf_scoring import greedy_continuations

        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        return greedy_continuations(self.torch_module, prefixes, max_new_tokens, self.device, pad,
                                    4 * self.batch_size, progress)

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The tokenizer's chat template applied to ``messages`` (text, BOS included if the
        template writes it)."""
        return self.tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def chat(self, conversations: Sequence[Sequence[Message]], max_new_tokens: int = 128,
             do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
             progress: Progress | None = None) -> list[str]:
        """Assistant replies: the chat template, then ``generate`` without extra special tokens."""
        prompts = [self.render_chat(c) for c in conversations]
        replies = self.generate(prompts, max_new_tokens, do_sample, temperature, top_p, seed,
                                progress, add_special_tokens=False)
        return [r.strip() for r in replies]

    # -- masked LM --------------------------------------------------------------------------
    def masked_log_probs(self, requests: Sequence[MaskedScoreRequest],
                         progress: Progress | None = None) -> np.ndarray:
        """Scores of masked copies, length-bucketed, LM head applied to scored rows only."""
        from audit.models.hf_scoring import masked_log_probs

        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.mask_token_id
        return masked_log_probs(self.torch_module, requests, tok.mask_token_id, int(pad),
                                batch_size=4 * self.batch_size, device=self.device,
                                progress=progress)

    def fill_mask(self, texts: Sequence[str], top_k: int = 10) -> list[list[tuple[str, float]]]:
        """Top-k fills (token, probability) of the first mask token in each text. Texts run in
        the encoder batches (:meth:`_encoder_plan`); the model computes logits at each text's
        first mask only (:func:`hf_scoring.logits_at`)."""
        import torch

        from audit.models.hf_scoring import logits_at

        results: list[list[tuple[str, float]]] = [[] for _ in texts]
        for chunk in self._encoder_plan(texts):
            enc = self.encode([texts[i] for i in chunk])
            firsts = [self._first_mask(enc["input_ids"][row], texts[i]) for row, i in enumerate(chunk)]
            rows = torch.arange(len(chunk), device=self.device)
            with torch.inference_mode():
                logits = logits_at(self.torch_module, enc["input_ids"], enc["attention_mask"],
                                   rows, torch.tensor(firsts, device=self.device))
            top = torch.topk(torch.softmax(logits.float(), dim=-1), top_k)
            for i, ids, values in zip(chunk, top.indices.tolist(), top.values.tolist()):
                results[i] = list(zip(self.tokenizer.convert_ids_to_tokens(ids), values))
        return results

    def _first_mask(self, ids: Any, text: str) -> int:
        """Position of the first mask token in a row of token ids; a usage error naming the
        text if it has none."""
        where = (ids == self.tokenizer.mask_token_id).nonzero()
        if len(where) == 0:
            raise usage("fill_mask", "text", f"no {self.mask_token} in {text!r}",
                        f"put {self.mask_token} where the model should fill in")
        return int(where[0, 0])

    # -- classifier / encoder -----------------------------------------------------------------
    def _encoder_plan(self, texts: Sequence[str]) -> list[list[int]]:
        """Text indices of each encoder batch (:func:`hf_scoring.length_plan`): sorted by token
        length, up to 4 x batch size rows and batch size x ``ENCODER_TOKENS_PER_ROW`` padded
        tokens (the memory of batch size rows of 512 tokens), cut where padding would cost more
        than another batch."""
        from audit.models.hf_scoring import ENCODER_TOKENS_PER_ROW, length_plan

        if not texts:
            return []
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        return length_plan([len(row) for row in ids], 4 * self.batch_size,
                            ENCODER_TOKENS_PER_ROW * self.batch_size)

    def _by_length(self, texts: Sequence[str], run: Any, progress: Progress | None) -> np.ndarray:
        """Apply ``run(chunk) -> array`` to the batches of :meth:`_encoder_plan` (texts sorted
        by token length: little padding), returning rows in input order."""
        parts, done = [], []
        for chunk in self._encoder_plan(texts):
            parts.append(run([texts[i] for i in chunk]))
            done += chunk
            if progress:
                progress(len(chunk))
        if not parts:
            return np.zeros((0, 0))
        stacked = np.concatenate(parts)
        out = np.empty_like(stacked)
        out[np.asarray(done)] = stacked
        return out

    def predict_proba(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Class probabilities, shape [n, n_classes] (softmax of the logits)."""
        import torch

        def run(chunk: list[str]) -> np.ndarray:
            enc = self.encode(chunk)
            with torch.inference_mode():
                logits = self.torch_module(**enc).logits.float()
            return torch.softmax(logits, dim=-1).cpu().numpy().astype(np.float64)

        if not texts:
            return np.zeros((0, len(self.labels)))
        return self._by_length(list(texts), run, progress)

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Mean-pooled last hidden state over non-padding tokens, shape [n, hidden]."""
        import torch

        def run(chunk: list[str]) -> np.ndarray:
            enc = self.encode(chunk)
            with torch.inference_mode():
                out = self.torch_module(**enc, output_hidden_states=True)
            hidden = out.hidden_states[-1].float()
            mask = enc["attention_mask"].unsqueeze(-1).float()
            return ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()

        return self._by_length(list(texts), run, progress)

    def attentions(self, text: str) -> AttentionMap:
        """Attention weights [layers, heads, seq, seq] with the tokens, their offsets and special
        flags. Models loaded with a fused implementation (sdpa, the faster default for every
        other capability) switch to eager attention for this call only and back afterwards, so
        no other check's numbers depend on whether an attention check ran before it."""
        import torch

        module = self.torch_module
        bos = self.bos_prefix() if self.kind == "causal_lm" else []
        tt = self.tokenize([text])[0]
        ids = (bos + list(tt.ids))[:self.max_length]
        input_ids = torch.tensor([ids], device=self.device)
        loaded_with = getattr(module.config, "_attn_implementation", "eager")
        if loaded_with != "eager":
            module.set_attn_implementation("eager")
        try:
            with torch.inference_mode():
                out = module(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                             output_attentions=True)
        finally:
            if loaded_with != "eager":
                module.set_attn_implementation(loaded_with)
        if not out.attentions or out.attentions[0] is None:
            raise RuntimeError(f"{type(module).__name__} returned no attentions")
        stacked = torch.stack([a[0].float() for a in out.attentions]).cpu().numpy()
        n = len(ids)
        offsets = ([(0, 0)] * len(bos) + list(tt.offsets))[:n]
        special = ([True] * len(bos) + list(tt.special))[:n]
        return AttentionMap(tokens=self.tokenizer.convert_ids_to_tokens(ids), values=stacked,
                            offsets=offsets, special=special)

    # -- gradients (Captum, Opacus only) ------------------------------------------------------
    def differentiable(self) -> TorchHandle:
        """The torch module, tokenizer and device, for gradient-based methods only."""
        return TorchHandle(module=self.torch_module, tokenizer=self.tokenizer, device=self.device,
                           kind=self.kind)
