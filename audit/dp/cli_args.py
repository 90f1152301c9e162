"""Flags and entry point of `audit train-dp` (wired by audit/cli.py; no heavy imports here).

Example::

    audit train-dp --model default-encoder --data dreaddit_train --eval-data dreaddit_test \
        --epsilon 8 --epochs 2 --out out/dreaddit-eps8
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the train-dp flags to ``parser``."""
    g = parser.add_argument_group("model and data")
    g.add_argument("--model", required=True, help="base model folder, or an asset name "
                   "(default-encoder, default-lm); a classifier head is added when missing")
    g.add_argument("--data", required=True, help="training file (.csv/.tsv/.jsonl with text and "
                   "label columns, or .txt one text per line) or data asset (dreaddit_train)")
    g.add_argument("--eval-data", help="held-out file (default: split --eval-fraction off --data)")
    g.add_argument("--out", "--output", dest="output", required=True, help="output model folder")
    g.add_argument("--task", default="auto", choices=["auto", "classifier", "causal_lm"])
    g.add_argument("--text-column", default="text")
    g.add_argument("--label-column", default="label")
    g.add_argument("--num-labels", type=int, help="classes (default: from the data)")
    g.add_argument("--eval-fraction", type=float, default=0.1)
    g.add_argument("--max-train-samples", type=int, help="seeded subsample of the training set")
    g.add_argument("--max-eval-samples", type=int, help="seeded subsample of the held-out set")
    g.add_argument("--max-length", type=int, default=64, help="tokens per example (default 64)")
    g.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    g.add_argument("--allow-pickle", action="store_true", help="allow pickle (.bin) weights")
    _add_privacy(parser)
    _add_training(parser)
    _add_audit(parser)


def _add_privacy(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("privacy")
    g.add_argument("--epsilon", dest="target_epsilon", type=float,
                   help="target epsilon (noise multiplier solved by make_private_with_epsilon)")
    g.add_argument("--noise-multiplier", type=float, help="noise multiplier (instead of --epsilon)")
    g.add_argument("--delta", type=float, help="delta (default 1/(10 n), below 1/n)")
    g.add_argument("--max-grad-norm", type=float, default=1.0, help="per-example clip norm C")
    g.add_argument("--accountant", default="rdp", choices=["rdp", "prv"])
    g.add_argument("--grad-sample-mode", default="ghost", choices=["ghost", "hooks"],
                   help="ghost clipping (fast, falls back to hooks for tied weights) or hooks")
    g.add_argument("--no-dp", action="store_true",
                   help="train the non-private baseline (same batches and hyperparameters)")


def _add_audit(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("one-run privacy audit (checked by the dp_audit check)")
    g.add_argument("--audit-canaries", type=int, default=0, metavar="M",
                   help="draw M random-token canaries (random labels for a classifier), include "
                   "each with probability 1/2 from the seed; writes audit_canaries.json")
    g.add_argument("--audit-canary-tokens", type=int, default=8,
                   help="tokens per canary (default 8)")
    g.add_argument("--audit-secret", help="where to write which canaries were included "
                   "(default: <out>.audit-secret.json beside the model folder)")


def _add_training(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=1)
    g.add_argument("--batch-size", type=int, default=64, help="logical (expected) batch size")
    g.add_argument("--physical-batch-size", type=int, default=32, help="memory cap per pass")
    g.add_argument("--lr", type=float, default=5e-4)
    g.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    g.add_argument("--freeze-embeddings", action="store_true",
                   help="do not train the input word embeddings")
    g.add_argument("--train-only", type=lambda v: [x for x in v.split(",") if x],
                   help="comma-separated parameter-name prefixes to train (others frozen), e.g. "
                   "classifier,bert.pooler,bert.encoder.layer.5")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    g.add_argument("--quiet", action="store_true", help="print only the output folder")
    g.add_argument("--country", help="ISO 3166 alpha-3 code of the grid the machine draws from "
                   "(e.g. FRA, USA): CO2e of the training is computed from its carbon intensity; "
                   "without it only energy is recorded (train_metrics.json)")
    g.add_argument("--no-carbon", action="store_true",
                   help="do not measure the training's energy with codecarbon")


def config_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """A validated TrainConfig from parsed flags (asset names resolved)."""
    from audit.dp.config import TrainConfig

    fields = set(TrainConfig.__dataclass_fields__)
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["carbon"] = not getattr(args, "no_carbon", False)
    values["model"] = str(_resolve_model(args.model))
    values["data"] = str(_resolve_data(args.data))
    if args.eval_data:
        values["eval_data"] = str(_resolve_data(args.eval_data))
    return TrainConfig(**values).validate()


def _resolve_model(name: str):  # type: ignore[no-untyped-def]
    from audit.assets import resolve_model

    return resolve_model(name)


def _resolve_data(name: str):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from audit.assets import DATA_ASSETS, asset_path

    return asset_path(name) if name in DATA_ASSETS and not Path(name).exists() else Path(name)


def _energy_text(env) -> str:  # type: ignore[no-untyped-def]
    """The training's measured energy (and CO2e with a country) in one phrase."""
    if env is None or env.energy_kwh is None:
        return (env.note if env is not None else None) or "not measured"
    text = f"{env.energy_kwh * 1000:.3g} Wh"
    if env.co2e_kg is not None:
        text += f", {env.co2e_kg * 1000:.3g} g CO2e ({env.country_iso_code})"
    return text


def main(args: argparse.Namespace) -> int:
    """Run `audit train-dp`; prints a one-line summary and returns 0 (errors raise UsageError)."""
    cfg = config_from_args(args)
    from audit.dp.train import train

    quiet = getattr(args, "quiet", False)
    result = train(cfg, log=None if quiet else (lambda m: print(f"train-dp: {m}",
                                                                file=sys.stderr)))
    if quiet:
        print(result.output)
        return 0
    led = result.ledger
    eps = "none (non-private baseline)" if led["epsilon"] is None else f"{led['epsilon']:.4g}"
    print(f"wrote {result.output} | epsilon {eps} at delta {led['delta']:.3g} "
          f"({led['accountant'] or '-'}), sigma {led['noise_multiplier']}, "
          f"C {led['max_grad_norm']},"
          f" q {led['sample_rate']:.4g}, {led['steps']} steps | "
          + json.dumps({k: v for k, v in result.metrics.items() if k.startswith(("eval", "wall"))}))
    print(f"energy: {_energy_text(result.environment)} (train_metrics.json)")
    if led.get("audit_canaries"):
        print(f"audit canaries: {led['audit_canaries']['count']} in "
              f"{result.output / led['audit_canaries']['file']}; inclusion secret in "
              f"{result.secret} (keep it away from whoever guesses)")
    return 0
