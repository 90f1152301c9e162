"""Does the one-run audit (dp_audit) catch a DP implementation that lies? The issue-14 table.

    python scripts/dp_audit_experiment.py --out out/dp_audit [--seeds 0 1 2] [--modes ...]

For each mode and seed: `audit train-dp` (library call) of a 2-layer GPT-2 (n_embd 64, word-level
vocabulary of ~2,100 tokens, random init; tests/dp_helpers.build_audit_gpt2) on 100 short texts
plus 1,000 audit canaries (6 random tokens; each included with probability 1/2), 10 epochs,
logical batch 64, AdamW lr 0.01, delta 1e-5; then `audit run` of a one-check suite (dp_audit,
gate epsilon_lb_minus_ledger <= 0) on the trained folder. Modes:

- ``non-private``: --no-dp (same batches);
- ``eps=8`` / ``eps=1``: DP-SGD (Opacus, hooks, clip 1) at that target epsilon;
- ``broken eps=1``: the eps=1 run with a TEST-ONLY fault (tests/dp_helpers.skip_noise) that drops
  the Gaussian noise while the accountant, and so the ledger, still claim epsilon 1.

Writes OUT/results.json and OUT/results.md (mode x ledger epsilon, eps_LB, canaries M, guesses r,
correct v, accuracy v/r, canary AUC, held-out loss, wall time) plus every model and audit folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = {"non-private": {"no_dp": True}, "eps=8": {"target_epsilon": 8.0},
         "eps=1": {"target_epsilon": 1.0}, "broken eps=1": {"target_epsilon": 1.0}}
SUITE = ("name: dp-audit\nchecks:\n  - id: dp-audit\n    check: dp_audit\n"
         "    gate: [{metric: epsilon_lb_minus_ledger, max: 0}]\n")


def prepare(out: Path) -> dict[str, Path]:
    """The base model, the 100 base texts and the suite."""
    import numpy as np

    from tests.dp_helpers import build_audit_gpt2
    from tests.tiny_models import WORDS

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 12)))) for _ in range(100)]
    (out / "base.txt").write_text("\n".join(texts) + "\n")
    (out / "dp_audit.yaml").write_text(SUITE)
    return {"model": build_audit_gpt2(out / "base-gpt2"), "data": out / "base.txt",
            "suite": out / "dp_audit.yaml"}


def run_one(paths: dict[str, Path], out: Path, mode: str, seed: int) -> dict[str, Any]:
    """Train one mode at one seed, audit it, return the table row."""
    from audit.cli import main
    from audit.dp.config import TrainConfig
    from audit.dp.train import train
    from tests.dp_helpers import skip_noise

    name = f"{mode.replace(' ', '-').replace('=', '')}-s{seed}"
    folder = out / name
    cfg = TrainConfig(model=str(paths["model"]), data=str(paths["data"]), output=str(folder),
                      max_length=12, batch_size=64, physical_batch_size=64, epochs=10, lr=0.01,
                      delta=1e-5, eval_fraction=0.1, grad_sample_mode="hooks", seed=seed,
                      audit_canaries=1000, audit_canary_tokens=6, overwrite=True,
                      **MODES[mode])
    t0 = time.perf_counter()
    res = train(cfg, hooks={"optimizer": skip_noise} if mode.startswith("broken") else None)
    wall = time.perf_counter() - t0
    code = main(["run", str(paths["suite"]), "--model", str(folder), "--out",
                 str(out / f"{name}-audit"), "--quiet"])
    check = json.loads((out / f"{name}-audit" / "results.json").read_text())["checks"][0]
    m = {x["name"]: x["value"] for x in check["metrics"]}
    return {"mode": mode, "seed": seed, "ledger_epsilon": res.ledger["epsilon"],
            "noise_multiplier": res.ledger["noise_multiplier"], "eps_lb": m["epsilon_lb"],
            "canaries": m["canaries"], "guesses": m["guesses"], "correct": m["correct_guesses"],
            "accuracy": m["guess_accuracy"], "canary_auc": m["canary_auc"],
            "gap": m["epsilon_lb_minus_ledger"], "audit_exit": code,
            "eval_loss": res.metrics.get("eval_loss"), "train_wall_s": round(wall, 1),
            "critical": [f["message"] for f in check["findings"] if f["severity"] == "critical"]}


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.3g}"
    return str(v)


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table of the rows."""
    cols = ["mode", "seed", "ledger_epsilon", "eps_lb", "canaries", "guesses", "correct",
            "accuracy", "canary_auc", "audit_exit", "eval_loss", "train_wall_s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "dp_audit")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    paths = prepare(args.out)
    rows = []
    for seed in args.seeds:
        for mode in args.modes:
            rows.append(run_one(paths, args.out, mode, seed))
            print(json.dumps(rows[-1]), flush=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "results.md").write_text(table(rows))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
