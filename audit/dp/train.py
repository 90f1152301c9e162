"""DP-SGD fine-tuning of a Hugging Face classifier or causal LM with Opacus (`audit train-dp`).

One function, :func:`train`, runs the whole thing: read and split the data, load the model,
wrap it with Opacus (or not, for the ``no_dp`` baseline), train over Poisson-sampled logical
batches split into physical batches, evaluate, and write the model folder with
``privacy_ledger.json``, ``train_metrics.json`` (with the energy and, given a grid country, the
CO2e that loading, training and evaluating used, measured by :class:`audit.carbon.CarbonMeter`
when ``carbon`` is on) and ``split.json`` (the row indices used).

The baseline and the private run draw the same Poisson batches from the same seeded sampler and
use the same hyperparameters, so the only difference is clipping and noise (the ledger's
``data_order_sha256`` proves the data order matched).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from audit.dp.config import TrainConfig
from audit.errors import usage


@dataclass
class TrainResult:
    """What a run produced: the output folder, its ledger and its metrics."""

    output: Path
    ledger: dict[str, Any]
    metrics: dict[str, Any]
    messages: list[str] = field(default_factory=list)
    secret: Path | None = None
    environment: Any = None  # audit.results.Environment: energy (and CO2e) of the run


@dataclass
class _Prepared:
    model: Any
    tokenizer: Any
    task: str
    train_set: Any
    eval_set: Any
    train_rows: np.ndarray
    eval_rows: np.ndarray
    data_sha256: dict[str, str]
    swapped: list[str]
    row_ids: list[Any] = field(default_factory=list)
    population: int = 0
    canaries: Any = None


def train(cfg: TrainConfig, log: Callable[[str], None] | None = None,
          hooks: dict[str, Any] | None = None) -> TrainResult:
    """Run one DP-SGD (or baseline) fine-tuning as configured and write its outputs.

    ``hooks`` is for tests: ``{"optimizer": fn(optimizer), "module": fn(wrapped_module)}`` are
    called once Opacus has wrapped them.
    """
    messages: list[str] = []

    def say(msg: str) -> None:
        messages.append(msg)
        (log or (lambda m: None))(msg)

    cfg.validate()
    out = _prepare_output(cfg)
    from audit.carbon import CarbonMeter

    meter = CarbonMeter(cfg.country, enabled=cfg.carbon)  # load, train and evaluate
    try:
        prep, state, metrics = _fit(cfg, say, hooks)
    finally:
        env = meter.stop()
    ledger = _ledger(cfg, prep, state)
    secret = _save_canaries(out, cfg, prep, ledger)
    _save(out, cfg, prep, ledger, metrics, messages, env)
    return TrainResult(output=out, ledger=ledger, metrics=metrics, messages=messages,
                       secret=secret, environment=env)


def _fit(cfg: TrainConfig, say: Callable[[str], None],
         hooks: dict[str, Any] | None) -> tuple[_Prepared, Any, dict[str, Any]]:
    """Seed, load data and model, train, evaluate: the prepared run, its state and metrics."""
    _seed_everything(cfg.seed)
    prep = _prepare(cfg)
    start = time.perf_counter()
    from audit.dp.loop import run_loop

    with _quiet_library_warnings():
        state = run_loop(cfg, prep, say, hooks or {})
    wall = time.perf_counter() - start
    from audit.dp.evaluate import evaluate

    metrics = {"wall_time_s": round(wall, 3), **state.metrics,
               **evaluate(prep.model, prep.eval_set, prep.task, cfg)}
    return prep, state, metrics


@contextlib.contextmanager
def _quiet_library_warnings() -> Iterator[None]:
    """Silence Opacus/torch warnings that say nothing about this run's guarantee."""
    import warnings

    with warnings.catch_warnings():
        for pattern in ("Secure RNG turned off", "Full backward hook is firing",
                        "Optimal order is the largest alpha", "Using a non-full backward hook"):
            warnings.filterwarnings("ignore", message=pattern)
        yield


def _prepare_output(cfg: TrainConfig) -> Path:
    out = Path(cfg.output)
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise usage(str(out), "--output", "folder exists and is not empty",
                        "pass a new folder or --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _prepare(cfg: TrainConfig) -> _Prepared:
    """Read data, load model and tokenizer, and build the tokenized train/eval sets."""
    from audit.dp import data as D
    from audit.dp.model import load_model

    model, tokenizer, task = load_model(cfg)
    need_labels = task == "classifier"
    label_col = cfg.label_column if need_labels else None
    source = D.read_texts(cfg.data, cfg.text_column, label_col)
    if need_labels and source.labels is None:
        raise usage(cfg.data, cfg.label_column, "no label column for a classifier",
                    "pass --label-column or --task causal_lm")
    if cfg.eval_data:
        evaluation = D.read_texts(cfg.eval_data, cfg.text_column, label_col)
        train_rows = np.arange(len(source.texts))
        eval_rows = np.arange(len(evaluation.texts))
    else:
        evaluation = source
        train_rows, eval_rows = D.split_indices(len(source.texts), cfg.eval_fraction, cfg.seed)
    train_rows = D.subsample(train_rows, cfg.max_train_samples, cfg.seed)
    eval_rows = D.subsample(eval_rows, cfg.max_eval_samples, cfg.seed + 7)
    train_set = _encode(tokenizer, source, train_rows, cfg, task)
    eval_set = _encode(tokenizer, evaluation, eval_rows, cfg, task) if len(eval_rows) else None
    if need_labels:
        _check_labels(model, source.labels, cfg)
    shas = {"train": source.sha256, "eval": evaluation.sha256}
    prep = _Prepared(model=model, tokenizer=tokenizer, task=task, train_set=train_set,
                     eval_set=eval_set, train_rows=train_rows, eval_rows=eval_rows,
                     data_sha256=shas, swapped=[], row_ids=[int(r) for r in train_rows],
                     population=len(train_rows))
    if cfg.audit_canaries:
        _add_canaries(cfg, prep)
    return prep


def _add_canaries(cfg: TrainConfig, prep: _Prepared) -> None:
    """Draw the audit canaries and append the included ones to the training set.

    The sampling population (which fixes the sample rate and the steps) is the base set plus
    every canary, drawn or not, so the Poisson sample rate does not depend on the secret.
    """
    import torch
    from torch.utils.data import TensorDataset

    from audit.dp.canaries import canary_id, draw_canaries
    from audit.dp.data import encode

    labels = int(prep.model.config.num_labels) if prep.task == "classifier" else None
    canaries = draw_canaries(prep.tokenizer, prep.task, cfg.audit_canaries,
                             cfg.audit_canary_tokens, labels, cfg.seed)
    chosen = np.flatnonzero(canaries.included)
    texts = [canaries.texts[j] for j in chosen]
    lab = [canaries.labels[j] for j in chosen] if canaries.labels is not None else None
    if len(chosen):
        extra = encode(prep.tokenizer, texts, lab, cfg.max_length, prep.task)
        prep.train_set = TensorDataset(*(torch.cat([a, b]) for a, b in
                                         zip(prep.train_set.tensors, extra.tensors)))
    prep.row_ids += [canary_id(int(j)) for j in chosen]
    prep.population = len(prep.train_rows) + cfg.audit_canaries
    prep.canaries = canaries


def _encode(tokenizer: Any, source: Any, rows: np.ndarray, cfg: TrainConfig, task: str) -> Any:
    from audit.dp.data import encode

    texts = [source.texts[i] for i in rows]
    labels = [source.labels[i] for i in rows] if source.labels is not None else None
    return encode(tokenizer, texts, labels, cfg.max_length, task)


def _check_labels(model: Any, labels: list[int], cfg: TrainConfig) -> None:
    k = int(model.config.num_labels)
    if max(labels) >= k:
        raise usage(cfg.data, cfg.label_column, f"class id {max(labels)} >= num_labels {k}",
                    "pass --num-labels")


def _ledger(cfg: TrainConfig, prep: _Prepared, state: Any) -> dict[str, Any]:
    """The privacy ledger of a finished run (no timestamps: same seed, same bytes)."""
    from audit.dp.ledger import LEDGER_SCHEMA, library_versions

    n = len(prep.train_set)
    return {
        "schema": LEDGER_SCHEMA,
        "dp": not cfg.no_dp,
        "epsilon": state.epsilon,
        "delta": state.delta,
        "delta_rule": "user" if cfg.delta is not None else "1/(10 n)",
        "accountant": None if cfg.no_dp else cfg.accountant,
        "accountant_history": state.history,
        "target_epsilon": cfg.target_epsilon,
        "noise_multiplier": state.noise_multiplier,
        "max_grad_norm": None if cfg.no_dp else cfg.max_grad_norm,
        "sample_rate": state.sample_rate,
        "sampling": "poisson",
        "steps": state.steps,
        "epochs": cfg.epochs,
        "logical_batch_size": cfg.batch_size,
        "expected_batch_size": state.expected_batch_size,
        "physical_batch_size": cfg.physical_batch_size,
        "grad_sample_mode": None if cfg.no_dp else state.mode,
        "grad_sample_mode_requested": None if cfg.no_dp else cfg.grad_sample_mode,
        "optimizer": cfg.optimizer, "lr": cfg.lr, "max_length": cfg.max_length,
        "dataset": {"path": str(cfg.data), "sha256": prep.data_sha256["train"], "size": n,
                    "eval_path": str(cfg.eval_data or cfg.data),
                    "eval_sha256": prep.data_sha256["eval"], "eval_size": len(prep.eval_rows),
                    "train_rows_sha256": _rows_sha(prep.train_rows),
                    "sampling_population": prep.population},
        "data_order_sha256": state.data_order_sha256,
        "seed": cfg.seed,
        "model": {"base": str(cfg.model), "task": prep.task,
                  "trainable_parameters": state.trainable_parameters},
        "versions": library_versions(),
    }


def _rows_sha(rows: np.ndarray) -> str:
    from audit.dp.ledger import sha256_json

    return sha256_json([int(r) for r in rows])


def _save_canaries(out: Path, cfg: TrainConfig, prep: _Prepared,
                   ledger: dict[str, Any]) -> Path | None:
    """Write the canary file and the secret; record their commitments in the ledger."""
    if prep.canaries is None:
        ledger["audit_canaries"] = None
        return None
    from audit.dp.canaries import default_secret_path, write_canaries

    secret = Path(cfg.audit_secret) if cfg.audit_secret else default_secret_path(out)
    ledger["audit_canaries"] = write_canaries(prep.canaries, out, secret)
    return secret


def _save(out: Path, cfg: TrainConfig, prep: _Prepared, ledger: dict[str, Any],
          metrics: dict[str, Any], messages: list[str], env: Any) -> None:
    """Write model + tokenizer (safetensors), ledger, metrics (with the measured energy, kept
    out of the ledger so that its bytes depend only on the seed) and the row split."""
    from audit.dp.ledger import write_ledger

    prep.model.save_pretrained(out, safe_serialization=True)
    prep.tokenizer.save_pretrained(out)
    write_ledger(ledger, out)
    record = {"metrics": metrics, "config": cfg.to_dict(), "messages": messages,
              "environment": env.model_dump()}
    (out / "train_metrics.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    split = {"data": str(cfg.data), "eval_data": str(cfg.eval_data or cfg.data),
             "train_rows": [int(r) for r in prep.train_rows],
             "eval_rows": [int(r) for r in prep.eval_rows]}
    (out / "split.json").write_text(json.dumps(split) + "\n", encoding="utf-8")
