"""Settings of one `audit train-dp` run, validated up front with one-line usage errors."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from audit.errors import usage

TASKS = ("auto", "classifier", "causal_lm")
MODES = ("ghost", "hooks")
OPTIMIZERS = ("adamw", "sgd")


@dataclass
class TrainConfig:
    """Everything that determines a DP-SGD (or ``no_dp`` baseline) fine-tuning run."""

    model: str
    data: str
    output: str
    task: str = "auto"
    eval_data: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    eval_fraction: float = 0.1
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    num_labels: int | None = None
    max_length: int = 64
    epochs: int = 1
    batch_size: int = 64
    physical_batch_size: int = 32
    lr: float = 5e-4
    optimizer: str = "adamw"
    target_epsilon: float | None = None
    noise_multiplier: float | None = None
    delta: float | None = None
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    grad_sample_mode: str = "ghost"
    no_dp: bool = False
    freeze_embeddings: bool = False
    train_only: list[str] | None = None
    seed: int = 0
    device: str = "cpu"
    allow_pickle: bool = False
    overwrite: bool = False
    audit_canaries: int = 0
    audit_canary_tokens: int = 8
    audit_secret: str | None = None
    country: str | None = None
    carbon: bool = False  # the CLI measures energy by default (--no-carbon); library callers opt in

    def validate(self) -> "TrainConfig":
        """Check every setting; raise a one-line UsageError (exit 4) naming the bad one."""
        _check_privacy(self)
        _check_training(self)
        _check_canaries(self)
        if self.carbon:
            from audit.carbon import check_country

            check_country(self.country)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (recorded in train_metrics.json)."""
        return asdict(self)


def _bad(flag: str, problem: str, fix: str) -> Exception:
    return usage("train-dp", flag, problem, fix)


def _check_privacy(cfg: TrainConfig) -> None:
    eps, sigma, delta = cfg.target_epsilon, cfg.noise_multiplier, cfg.delta
    if eps is not None and not (math.isfinite(eps) and eps > 0):
        raise _bad("--epsilon", f"{eps} is not a positive finite number", "pass e.g. --epsilon 8")
    if sigma is not None and not (math.isfinite(sigma) and sigma >= 0):
        raise _bad("--noise-multiplier", f"{sigma} is negative or not finite",
                   "pass e.g. --noise-multiplier 1.0")
    if delta is not None and not (0.0 < delta < 1.0):
        raise _bad("--delta", f"{delta} is not in (0, 1)",
                   "pass a delta below 1/n, or leave it out for the default 1/(10 n)")
    if cfg.max_grad_norm <= 0 or not math.isfinite(cfg.max_grad_norm):
        raise _bad("--max-grad-norm", f"{cfg.max_grad_norm} is not positive", "pass e.g. 1.0")
    if cfg.accountant not in ("rdp", "prv"):
        raise _bad("--accountant", f"unknown accountant {cfg.accountant!r}", "use rdp or prv")
    if cfg.grad_sample_mode not in MODES:
        raise _bad("--grad-sample-mode", f"unknown mode {cfg.grad_sample_mode!r}",
                   "use ghost or hooks")
    if not cfg.no_dp and eps is None and sigma is None:
        raise _bad("--epsilon", "neither a target epsilon nor a noise multiplier given",
                   "pass --epsilon E, --noise-multiplier S, or --no-dp for the baseline")


def _check_training(cfg: TrainConfig) -> None:
    positive = {"--epochs": cfg.epochs, "--batch-size": cfg.batch_size,
                "--physical-batch-size": cfg.physical_batch_size,
                "--max-length": cfg.max_length}
    for flag, value in positive.items():
        if int(value) < 1:
            raise _bad(flag, f"{value} is not a positive integer", "pass an integer >= 1")
    if not cfg.lr > 0:
        raise _bad("--lr", f"{cfg.lr} is not positive", "pass e.g. 5e-4")
    if cfg.task not in TASKS:
        raise _bad("--task", f"unknown task {cfg.task!r}", f"use one of {', '.join(TASKS)}")
    if cfg.optimizer not in OPTIMIZERS:
        raise _bad("--optimizer", f"unknown optimizer {cfg.optimizer!r}", "use adamw or sgd")
    if cfg.device not in ("cpu", "cuda", "auto"):
        raise _bad("--device", f"unknown device {cfg.device!r}", "use cpu, cuda or auto")


def _check_canaries(cfg: TrainConfig) -> None:
    """--audit-canaries: a non-negative count, and a secret kept outside the model folder."""
    from pathlib import Path

    if int(cfg.audit_canaries) < 0:
        raise _bad("--audit-canaries", f"{cfg.audit_canaries} is negative",
                   "pass a count such as 1000, or 0 for none")
    if int(cfg.audit_canary_tokens) < 1:
        raise _bad("--audit-canary-tokens", f"{cfg.audit_canary_tokens} is not positive",
                   "pass e.g. 8")
    if cfg.audit_canaries and cfg.audit_secret:
        out, secret = Path(cfg.output).resolve(), Path(cfg.audit_secret).resolve()
        if secret == out or out in secret.parents:
            raise _bad("--audit-secret", "the secret would be written inside the model folder",
                       "write it elsewhere (default: <out>.audit-secret.json beside the folder)")
