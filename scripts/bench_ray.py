"""Ray backend speed-up: canary exposure over all candidates with 1 vs N model replicas.

    python scripts/bench_ray.py [--replicas 2] [--threads 1] [--candidates 100000] [--json out.json]

Runs `audit run --backend ray --only exposure` on the canary LM (asset canary-lm, built on
first use) twice: once with one replica and once with ``--replicas`` replicas, each replica a
Ray actor with ``--threads`` CPU(s) (torch threads = num_cpus). The exposure check scores
``--candidates`` random reference secrets (method: sampled; the shipped canaries' space is
10^6, so exact ranking would score all 10^6) plus the canaries, and the Ray backend splits that
call across the replicas by the adapter's shard plan. Printed: wall
time of the check (its duration_s, actor start excluded) and of the whole command, the speed-up
(1 replica / N replicas; target >= 1.7x for 2 replicas on 2 cores) and whether every exposure
is identical (it must be: the shards are reassembled in order, and the same batches are scored).
Both runs happen in this process's session, one after the other, so they share the machine's
load; run on a quiet machine for a clean figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def canary_spec() -> dict:
    """The shipped canaries, trimmed to the 5-digit ones if the alphabet is digits."""
    from audit.assets import canary_file

    return json.loads(canary_file("canaries.json").read_text(encoding="utf-8"))


def write_suite(folder: Path, replicas: int, threads: int, candidates: int) -> Path:
    """A one-check suite: exposure of the canary LM's secrets over their full space."""
    from audit.assets import resolve_model

    spec = canary_spec()
    (folder / "canaries.json").write_text(json.dumps(spec), encoding="utf-8")
    model = resolve_model("canary-lm", prepare=True)
    suite = folder / f"bench-{replicas}.yaml"
    suite.write_text(
        f"name: bench-ray\nmodels:\n  default: {{adapter: hf, path: '{model}', replicas: {replicas}, "
        f"resources: {{num_cpus: {threads}}}}}\nchecks:\n  - id: exposure\n    check: canary_exposure\n"
        f"    params: {{canaries: canaries.json, method: sampled, n_references: {candidates}}}\n",
        encoding="utf-8")
    return suite


def run_once(folder: Path, replicas: int, threads: int, candidates: int) -> dict:
    """Run the suite with ``replicas`` replicas; wall time, check time and the exposures."""
    suite = write_suite(folder, replicas, threads, candidates)
    out = folder / f"out-{replicas}"
    cmd = [sys.executable, "-m", "audit.cli", "run", str(suite), "--out", str(out), "--backend",
           "ray", "--quiet", "--no-report", "--no-carbon"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ,
                          "RAY_USAGE_STATS_ENABLED": "0"})
    wall = time.perf_counter() - start
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    check = data["checks"][0]
    if check["status"] == "error":
        raise SystemExit(f"bench_ray: exposure errored with {replicas} replicas: {check['error']}\n"
                         f"{proc.stderr[-2000:]}")
    exposures = {m["name"]: m["value"] for m in check["metrics"]}
    items = check.get("evidence") or []
    return {"replicas": replicas, "threads_each": threads, "wall_s": round(wall, 2),
            "check_s": round(check["duration_s"], 2), "metrics": exposures,
            "evidence": items, "exit_code": proc.returncode}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--candidates", type=int, default=100_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    spec = canary_spec()
    alphabet = spec["alphabet"]
    space = (len(alphabet) if isinstance(alphabet, (str, list)) else 0) ** int(spec["length"])
    print(f"bench_ray: canary LM, {len(spec['canaries'])} canaries, secret space {space:,} "
          f"(10^{math.log10(space):.1f}), {args.candidates:,} sampled candidates; "
          f"1 vs {args.replicas} replicas x {args.threads} thread(s)",
          file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        base = run_once(Path(tmp), 1, args.threads, args.candidates)
        many = run_once(Path(tmp), args.replicas, args.threads, args.candidates)
    same = base["metrics"] == many["metrics"] and base["evidence"] == many["evidence"]
    result = {"secret_space": space, "candidates_scored": args.candidates, "one_replica": {k: base[k] for k in ("wall_s", "check_s")},
              f"{args.replicas}_replicas": {k: many[k] for k in ("wall_s", "check_s")},
              "speedup_check": round(base["check_s"] / many["check_s"], 2),
              "speedup_wall": round(base["wall_s"] / many["wall_s"], 2),
              "identical_exposures": same, "cpus": os.cpu_count()}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
