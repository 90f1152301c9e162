"""Fail closed on --resume (issue 11): a result is reused only when every input that shaped it is
the same; a reused result is marked (results.json and report); model provenance survives.

All through the CLI (``audit.cli.main``) on a real check, ``group_fairness`` over predictions
CSV files (the predictions file *is* the model, so its SHA-256 is the model's file hash). The
number of times the check function really ran is counted by wrapping the registered function,
so "reused" and "recomputed" are observed directly, not inferred from timings or progress lines.
Independent references: a fresh run (no --resume) of the same inputs, and hashlib on the files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.cli import main

SUITE = """name: resume
checks:
  - id: fair
    check: group_fairness
    params: {sensitive: [g], n_boot: 50}
  - id: fair2
    check: group_fairness
    params: {sensitive: [g], n_boot: 50, threshold: 0.4, y_pred: null}
"""

TWO_MODELS = """name: resume2
models: {default: a.csv, other: b.csv}
checks:
  - id: on-a
    check: group_fairness
    params: {sensitive: [g], n_boot: 20}
  - id: on-b
    check: group_fairness
    model: other
    params: {sensitive: [g], n_boot: 20}
"""


def write_predictions(path: Path, seed: int, n: int = 160) -> Path:
    """A predictions file (y_true, y_pred, score, group g) whose rates depend on ``seed``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    pd.DataFrame({"y_true": y, "y_pred": (score >= 0.5).astype(int), "score": score,
                  "g": rng.choice(["a", "b"], n)}).to_csv(path, index=False)
    return path


@pytest.fixture()
def calls(monkeypatch) -> list[str]:
    """Check ids for which group_fairness really ran (the registered function, wrapped)."""
    from audit.registry import get_check

    spec = get_check("group_fairness")
    seen: list[str] = []
    original = spec.fn

    def counting(ctx, params):
        seen.append(ctx.check_id)
        return original(ctx, params)

    monkeypatch.setattr(spec, "fn", counting)
    return seen


def run(suite: Path, out: Path, *extra: str) -> dict:
    code = main(["run", str(suite), "--out", str(out), "--quiet", *extra])
    assert code in (0, 1), code
    return json.loads((out / "results.json").read_text())


def numbers(results: dict) -> dict:
    """Every metric value, CI and group value of every check (what a reader would compare)."""
    return {c["id"]: [(m["name"], m["value"], m["ci"], m["by_group"]) for m in c["metrics"]]
            for c in results["checks"]}


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, Path]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    return {"suite": suite, "a": write_predictions(tmp_path / "a.csv", 1),
            "b": write_predictions(tmp_path / "b.csv", 2), "out": tmp_path / "out",
            "root": tmp_path}


def test_resume_with_another_seed_recomputes(setup, calls) -> None:
    """--seed 8 --resume over a seed-7 folder: every check runs again and the numbers equal a
    fresh seed-8 run (the bootstrap CIs depend on the seed), not the stale seed-7 ones."""
    s = setup
    seven = run(s["suite"], s["out"], "--model", str(s["a"]), "--seed", "7", "--no-report")
    calls.clear()
    resumed = run(s["suite"], s["out"], "--model", str(s["a"]), "--seed", "8", "--resume",
                  "--no-report")
    assert calls == ["fair", "fair2"]
    fresh = run(s["suite"], s["root"] / "fresh8", "--model", str(s["a"]), "--seed", "8",
                "--no-report")
    assert resumed["seed"] == 8
    assert numbers(resumed) == numbers(fresh) != numbers(seven)
    assert not any(c.get("reused") for c in resumed["checks"])


def test_resume_with_another_model_recomputes_and_stamps_its_hash(setup, calls) -> None:
    """--model b.csv --resume over a folder written with a.csv: the check runs on b (numbers
    equal a fresh run on b) and the provenance names b's SHA-256, never a's numbers under b's
    hash."""
    s = setup
    run(s["suite"], s["out"], "--model", str(s["a"]), "--no-report")
    calls.clear()
    resumed = run(s["suite"], s["out"], "--model", str(s["b"]), "--resume", "--no-report")
    assert calls == ["fair", "fair2"]
    fresh = run(s["suite"], s["root"] / "fresh-b", "--model", str(s["b"]), "--no-report")
    assert numbers(resumed) == numbers(fresh)
    digest = hashlib.sha256(s["b"].read_bytes()).hexdigest()
    assert list(resumed["models"]["default"]["files"].values()) == [digest]


def test_resume_with_the_same_inputs_reuses_and_marks_it(setup, calls) -> None:
    """Same seed, model and suite: nothing runs again, the numbers are the first run's, each
    reused check says so in results.json, and the report marks it (glance table + notice)."""
    s = setup
    first = run(s["suite"], s["out"], "--model", str(s["a"]), "--seed", "3")
    calls.clear()
    again = run(s["suite"], s["out"], "--model", str(s["a"]), "--seed", "3", "--resume")
    assert calls == []
    assert numbers(again) == numbers(first)
    assert [c["reused"] for c in again["checks"]] == [True, True]
    html = (s["out"] / "report.html").read_text(encoding="utf-8")
    assert html.count("(reused)") == 2
    assert "2 check result(s) reused" in html and "fair, fair2" in html


def test_resume_reruns_only_the_check_that_errored(setup, calls, monkeypatch) -> None:
    """A check that errored is run again on --resume (and now passes), while the finished one
    is reused: observed through the calls themselves, not through progress output."""
    from audit.registry import get_check

    s = setup
    spec = get_check("group_fairness")
    counting = spec.fn
    state = {"fail": True}

    def flaky(ctx, params):
        if ctx.check_id == "fair2" and state["fail"]:
            counting(ctx, params)
            raise RuntimeError("transient failure")
        return counting(ctx, params)

    monkeypatch.setattr(spec, "fn", flaky)
    assert main(["run", str(s["suite"]), "--out", str(s["out"]), "--model", str(s["a"]),
                 "--quiet", "--no-report"]) == 2
    state["fail"] = False
    calls.clear()
    again = run(s["suite"], s["out"], "--model", str(s["a"]), "--resume", "--no-report")
    assert calls == ["fair2"]
    status = {c["id"]: (c["status"], c.get("reused")) for c in again["checks"]}
    assert status == {"fair": ("reported", True), "fair2": ("reported", False)}


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_full_resume_keeps_model_provenance(tmp_path: Path, calls) -> None:
    """A resume that reuses every check still records each model's source and file hashes (the
    model card's provenance), identical to the first run's."""
    (tmp_path / "suite.yaml").write_text(TWO_MODELS)
    write_predictions(tmp_path / "a.csv", 1)
    write_predictions(tmp_path / "b.csv", 2)
    first = run(tmp_path / "suite.yaml", tmp_path / "out", "--no-report")
    calls.clear()
    again = run(tmp_path / "suite.yaml", tmp_path / "out", "--resume", "--no-report")
    assert calls == []
    assert again["models"] == first["models"]
    assert {a: list(m["files"].values()) for a, m in again["models"].items()} == {
        "default": [_hash(tmp_path / "a.csv")], "other": [_hash(tmp_path / "b.csv")]}


def test_partial_resume_keeps_provenance_of_reused_models(tmp_path: Path, calls) -> None:
    """An interrupted run (only `on-a` finished, simulated with --only) then --resume of the whole
    suite: `on-a` is reused without loading model `default`, `on-b` runs on `other`; results.json
    names both models with their hashes, not only the one loaded in the resumed run."""
    (tmp_path / "suite.yaml").write_text(TWO_MODELS)
    write_predictions(tmp_path / "a.csv", 1)
    write_predictions(tmp_path / "b.csv", 2)
    run(tmp_path / "suite.yaml", tmp_path / "out", "--only", "on-a", "--no-report")
    calls.clear()
    again = run(tmp_path / "suite.yaml", tmp_path / "out", "--resume", "--no-report")
    assert calls == ["on-b"]
    assert {a: list(m["files"].values()) for a, m in again["models"].items()} == {
        "default": [_hash(tmp_path / "a.csv")], "other": [_hash(tmp_path / "b.csv")]}
