"""Agreement of the refusal classifier with the XSTest human labels, per completions file.

    python scripts/validate_refusal_classifier.py [--data ../shared/data/xstest] [--holdout NAME]
                                                  [--errors N] [--json out.json]

Reads every ``completions_<model>.csv`` (XSTest v2 replies of a model with the annotators'
``final_label``), classifies each reply with ``audit.checks.safety.refusal_rules.classify`` and
prints, per file and pooled: three-way agreement and Cohen's kappa (checked against scikit-learn
when installed), the confusion matrix, and the same collapsed to refusal vs compliance.
``--holdout NAME`` marks the file kept out while the rules were written (reported separately);
``--errors N`` prints N disagreements per file to study.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.checks.safety.agreement import agreement_report  # noqa: E402
from audit.checks.safety.refusal_rules import LABELS, XSTEST_LABELS, classify  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "xstest"


def evaluate(path: Path) -> tuple[dict, list[dict]]:
    """Report and disagreements of one completions file."""
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    truth = [XSTEST_LABELS[r["final_label"]] for r in rows]
    verdicts = [classify(r["completion"], r["prompt"]) for r in rows]
    pred = [v.label for v in verdicts]
    report = agreement_report(truth, pred, LABELS)
    report["sklearn_kappa"] = _sklearn_kappa(truth, pred)
    wrong = [{"id": r["id"], "truth": t, "pred": v.label, "rule": v.rule, "prompt": r["prompt"],
              "completion": r["completion"].strip()[:400]}
             for r, t, v in zip(rows, truth, verdicts) if t != v.label]
    return report, wrong


def _sklearn_kappa(truth: list[str], pred: list[str]) -> float | None:
    try:
        from sklearn.metrics import cohen_kappa_score
    except ImportError:
        return None
    return float(cohen_kappa_score(truth, pred, labels=list(LABELS)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--holdout", default="mistralinstruct")
    ap.add_argument("--errors", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    files = sorted(args.data.glob("completions_*.csv"))
    if not files:
        print(f"no completions_*.csv under {args.data}", file=sys.stderr)
        return 2
    out = {}
    for f in files:
        name = f.stem.removeprefix("completions_")
        report, wrong = evaluate(f)
        out[name] = report
        tag = " (held out while writing the rules)" if name == args.holdout else ""
        print(f"{name}{tag}: n={report['n']} agreement={report['agreement']:.3f} "
              f"kappa={report['kappa']:.3f} (sklearn {report['sklearn_kappa']}) | binary "
              f"agreement={report['binary_agreement']:.3f} kappa={report['binary_kappa']:.3f}")
        print(f"  confusion (rows human, cols rules; {', '.join(LABELS)}): {report['confusion']}")
        for w in wrong[:args.errors]:
            print(f"  - {w['id']} human={w['truth']} rules={w['pred']} [{w['rule']}] "
                  f"{w['prompt']!r}\n      {w['completion'][:300]!r}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
