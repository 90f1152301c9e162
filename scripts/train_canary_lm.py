"""Build the canary corpus and train the small canary LM used by the privacy suite.

    python scripts/train_canary_lm.py --out out/canary [--epochs 15] [--seed 0]
        [--repeats 1 4 16] [--canaries-per-repeat 4]

Writes ``OUT/corpus/`` (train.txt, members.txt, nonmembers.txt, canaries.json) and ``OUT/model/``
(a transformers folder in safetensors). canaries.json holds the secrets in clear: it is the
ground truth of the experiment, not an audit output; keep it out of reports.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the corpus, train, and print where everything went."""
    from audit.demos.canary import build_canary_corpus, train_canary_lm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/canary"))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--canaries-per-repeat", type=int, default=4)
    ap.add_argument("--members", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.epochs < 1 or any(r < 0 for r in args.repeats):
        print("train_canary_lm: --epochs must be >= 1 and --repeats >= 0", file=sys.stderr)
        return 4
    t0 = time.perf_counter()
    spec = build_canary_corpus(args.out / "corpus", repeats=tuple(args.repeats),
                               n_canaries_per_repeat=args.canaries_per_repeat, seed=args.seed,
                               n_members=args.members, n_nonmembers=args.members)
    model_dir = train_canary_lm(args.out / "corpus", args.out / "model", epochs=args.epochs,
                                seed=args.seed, threads=args.threads, log=print)
    print(f"{len(spec['canaries'])} canaries (repeats {sorted({c['repeats'] for c in spec['canaries']})}); "
          f"model saved to {model_dir} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
