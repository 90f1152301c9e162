"""Loading the model to fine-tune, the forward pass Opacus can differentiate per sample, and the
per-sample loss.

The forward pass passes ``position_ids`` (and ``token_type_ids`` for BERT-family models)
explicitly, repeated along the batch: left to the model, these come from broadcast buffers of
batch size 1 and Opacus then computes per-sample gradients of the wrong shape (DESIGN.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.dp.config import TrainConfig
from audit.errors import usage

CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def infer_task(config: Any) -> str:
    """``causal_lm`` when the checkpoint's architecture is a causal LM, else ``classifier``."""
    archs = getattr(config, "architectures", None) or []
    return "causal_lm" if any(a.endswith(CAUSAL_SUFFIXES) for a in archs) else "classifier"


def load_model(cfg: TrainConfig) -> tuple[Any, Any, str]:
    """Load tokenizer and model from a local folder; a classifier gets a new seeded head."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    transformers.logging.set_verbosity_error()
    if not Path(cfg.model).exists():
        raise usage("train-dp", "--model", f"{cfg.model} not found",
                    "pass a local model folder (e.g. the output of `audit assets`)")
    config = AutoConfig.from_pretrained(cfg.model)
    task = infer_task(config) if cfg.task == "auto" else cfg.task
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    model = _load_weights(cfg, task)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, task


def _load_weights(cfg: TrainConfig, task: str) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"use_safetensors": None if cfg.allow_pickle else True}
    try:
        if task == "causal_lm":
            return AutoModelForCausalLM.from_pretrained(cfg.model, **kwargs)
        labels = cfg.num_labels or _num_labels_from_data(cfg)
        return AutoModelForSequenceClassification.from_pretrained(
            cfg.model, num_labels=labels, **kwargs)
    except (OSError, ValueError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise usage("train-dp", "--model", f"cannot load {cfg.model}: {first}",
                    "pass a folder with safetensors weights, or --allow-pickle") from None


def _num_labels_from_data(cfg: TrainConfig) -> int:
    from audit.dp.data import read_texts

    labels = read_texts(cfg.data, cfg.text_column, cfg.label_column).labels
    if labels is None:
        raise usage(cfg.data, cfg.label_column, "no label column for a classifier",
                    "pass --label-column, or --task causal_lm")
    return max(2, max(labels) + 1)


def model_inputs(config: Any, ids: Any, mask: Any) -> dict[str, Any]:
    """Forward kwargs with ``position_ids``/``token_type_ids`` repeated along the batch."""
    import torch

    batch, length = ids.shape
    kwargs = {"input_ids": ids, "attention_mask": mask,
              "position_ids": torch.arange(length, device=ids.device).unsqueeze(0).repeat(batch, 1)}
    if getattr(config, "type_vocab_size", 0):
        kwargs["token_type_ids"] = torch.zeros_like(ids)
    return kwargs


def forward_logits(module: Any, config: Any, ids: Any, mask: Any) -> Any:
    """Logits of ``module`` (plain or Opacus-wrapped) for one batch."""
    return module(**model_inputs(config, ids, mask)).logits


def make_criterion(task: str) -> Any:
    """A per-sample loss module with a ``reduction`` attribute (as Opacus' ghost clipping needs)."""
    import torch

    class PerSampleLoss(torch.nn.Module):
        """Cross-entropy per example: on the label, or the mean over a sequence's real tokens."""

        def __init__(self) -> None:
            super().__init__()
            self.reduction = "mean"

        def forward(self, logits: Any, target: Any) -> Any:
            per = per_sample_loss(task, logits, target)
            if self.reduction == "none":
                return per
            return per.mean() if self.reduction == "mean" else per.sum()

    return PerSampleLoss()


def per_sample_loss(task: str, logits: Any, target: Any) -> Any:
    """Loss of each example: CE on its label, or mean next-token CE over non-padding tokens."""
    import torch.nn.functional as F

    if task != "causal_lm":
        return F.cross_entropy(logits, target, reduction="none")
    shifted, labels = logits[:, :-1, :], target[:, 1:]
    tok = F.cross_entropy(shifted.reshape(-1, shifted.shape[-1]), labels.reshape(-1),
                          reduction="none", ignore_index=-100).view(labels.shape)
    valid = (labels != -100).sum(dim=1).clamp(min=1)
    return tok.sum(dim=1) / valid
