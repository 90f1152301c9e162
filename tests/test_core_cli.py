"""Core harness: suites, registry (entry points), runner isolation, gates, compare, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.results import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "plugin_pkg"


def audit(*args: str, cwd: Path | None = None, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess with the test plugin on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGIN), str(ROOT)]))
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "audit", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=300)


def write_suite(tmp: Path, body: str, name: str = "suite.yaml") -> Path:
    path = tmp / name
    path.write_text(body)
    return path


GOOD = """
name: t
models: {default: fake}
checks:
  - id: first
    check: const_metric
    params: {value: 0.5}
    gate: [{metric: value, max: 0.6}]
  - id: boom
    check: always_raises
  - id: second
    check: const_metric
    params: {value: 0.9}
    gate: [{metric: value, min: 0.5}]
"""


def test_help_is_fast() -> None:
    """`audit --help` answers in under a second: heavy imports stay lazy (median of 3)."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "audit", "--help"], capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        assert out.returncode == 0
    assert sorted(times)[1] < 1.0
    probe = subprocess.run([sys.executable, "-c", "import sys, audit.cli; audit.cli.build_parser(); "
                            "print('torch' in sys.modules)"], capture_output=True, text=True, cwd=ROOT)
    assert probe.stdout.strip() == "False"


def test_entry_point_check_is_found(tmp_path: Path) -> None:
    """A check from a third-party package is found through the `audit.checks` entry point."""
    out = audit("list")
    assert out.returncode == 0, out.stderr
    assert "const_metric" in out.stdout and "always_raises" in out.stdout


def test_raising_check_is_isolated(tmp_path: Path) -> None:
    """A check that raises mid-run -> exit 2; the others' results are in results.json."""
    suite = write_suite(tmp_path, GOOD)
    out = audit("run", str(suite), "--out", str(tmp_path / "o"), "--quiet", "--no-report")
    assert out.returncode == 2, out.stdout + out.stderr
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    status = {c["id"]: c["status"] for c in data["checks"]}
    assert status == {"first": "passed", "boom": "error", "second": "passed"}
    assert "boom from always_raises" in data["checks"][1]["error"]
    assert data["schema_version"] == SCHEMA_VERSION


def test_gate_failure_exit_1_and_gate_verb(tmp_path: Path) -> None:
    """A failed gate gives exit 1 from `run`, and `audit gate` re-applies gates from JSON alone."""
    suite = write_suite(tmp_path, GOOD.replace("max: 0.6", "max: 0.4").replace(
        "  - id: boom\n    check: always_raises\n", ""))
    out = audit("run", str(suite), "--out", str(tmp_path / "o"), "--quiet", "--no-report",
                "--junit", str(tmp_path / "j.xml"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert 'failures="1"' in (tmp_path / "j.xml").read_text()
    relaxed = write_suite(tmp_path, GOOD.replace("max: 0.6", "max: 0.7"), "relaxed.yaml")
    again = audit("gate", str(tmp_path / "o" / "results.json"), "--suite", str(relaxed))
    assert again.returncode == 0, again.stdout
    same = audit("gate", str(tmp_path / "o" / "results.json"))
    assert same.returncode == 1


def test_skipped_when_capability_missing(tmp_path: Path) -> None:
    """A check whose needs the adapter lacks is recorded `skipped` with the reason."""
    suite = write_suite(tmp_path, "name: s\nmodels: {default: fake}\nchecks:\n"
                        "  - {id: a, check: needs_attentions}\n")
    out = audit("run", str(suite), "--out", str(tmp_path / "o"), "--quiet", "--no-report")
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["checks"][0]["status"] == "skipped"
    assert "attentions" in data["checks"][0]["skip_reason"]
    assert out.returncode == 0


def test_same_seed_same_results(tmp_path: Path) -> None:
    """Same inputs and seed give the same results.json, timestamps, durations and measured
    energy aside; another seed changes the seeded draw (so the comparison is not vacuous: the
    seed reaches the check)."""
    suite = write_suite(tmp_path, GOOD)
    dumps, draws = [], []
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        audit("run", str(suite), "--out", str(tmp_path / name), "--quiet", "--no-report", "--seed", seed)
        data = json.loads((tmp_path / name / "results.json").read_text())
        draws.append(data["checks"][0]["metrics"][1]["value"])
        data.pop("created_at")
        data["provenance"].pop("command")
        data.pop("environment")
        for c in data["checks"]:
            c.pop("duration_s")
            c.pop("environment")
        dumps.append(json.dumps(data, sort_keys=True))
    assert dumps[0] == dumps[1]
    assert draws[0] == draws[1] != draws[2]


def test_resume_skips_finished(tmp_path: Path) -> None:
    """--resume reuses finished checks (same inputs: marked ``reused``, numbers and timing
    identical) and re-runs the errored one (not marked reused; it errors again). Observed in
    results.json, not in the progress output (which names every check either way)."""
    suite = write_suite(tmp_path, GOOD)
    out_dir = tmp_path / "o"
    audit("run", str(suite), "--out", str(out_dir), "--quiet", "--no-report")
    first = json.loads((out_dir / "results.json").read_text())
    out = audit("run", str(suite), "--out", str(out_dir), "--resume", "--quiet", "--no-report")
    assert out.returncode == 2, out.stderr
    again = json.loads((out_dir / "results.json").read_text())
    reused = {c["id"]: c["reused"] for c in again["checks"]}
    assert reused == {"first": True, "boom": False, "second": True}
    for i in (0, 2):
        assert again["checks"][i]["metrics"] == first["checks"][i]["metrics"]
        assert again["checks"][i]["duration_s"] == first["checks"][i]["duration_s"]
    assert again["checks"][1]["status"] == "error"


BAD_SUITES = {
    "malformed": ("name: x\nchecks: [\n  - id: a\n", "malformed YAML"),
    "unknown_check": ("name: x\nchecks:\n  - {id: a, check: nope}\n", "unknown check 'nope'"),
    "wrong_type": ("name: x\nchecks:\n  - {id: a, check: const_metric, params: {value: abc}}\n",
                   "params.value"),
    "unknown_key": ("name: x\nchecks:\n  - {id: a, check: const_metric, colour: red}\n", "unknown key"),
    "bad_gate": ("name: x\nchecks:\n  - {id: a, check: const_metric, params: {value: 1},"
                 " gate: [{metric: value, max: 1, min: 0}]}\n", "exactly one of"),
    "dup_id": ("name: x\nchecks:\n  - {id: a, check: const_metric, params: {value: 1}}\n"
               "  - {id: a, check: const_metric, params: {value: 1}}\n", "duplicate id"),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_bad_suite_one_line_exit_4(tmp_path: Path, case: str) -> None:
    """Bad suites: one-line message naming file and field, exit 4, no traceback."""
    body, expected = BAD_SUITES[case]
    suite = write_suite(tmp_path, body)
    for verb in (("validate", str(suite)), ("run", str(suite), "--model", "fake")):
        out = audit(*verb)
        assert out.returncode == 4, (case, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0] and str(suite) in lines[0], lines
        assert "Traceback" not in out.stderr


def test_missing_model_folder_exit_4(tmp_path: Path) -> None:
    """A missing model folder is a one-line usage error (exit 4)."""
    suite = write_suite(tmp_path, "name: x\nchecks:\n  - {id: a, check: const_metric, params: {value: 1}}\n")
    out = audit("run", str(suite), "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert out.returncode == 4
    assert "not found" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_schema_and_compare(tmp_path: Path) -> None:
    """`audit schema` is JSON Schema; compare flags a regression only outside the baseline CI."""
    schema = json.loads(audit("schema").stdout)
    assert schema["title"] == "RunResult"
    template = ("name: c\nmodels: {default: fake}\nchecks:\n  - id: m\n    check: const_metric\n"
                "    params: {value: VALUE, ci_half_width: 0.05, groups: {a: 0.8, b: GROUPB}}\n")
    runs = {}
    for name, value, group_b in (("base", 0.8, 0.8), ("noise", 0.78, 0.77), ("worse", 0.8, 0.7)):
        suite = write_suite(tmp_path, template.replace("GROUPB", str(group_b)).replace("VALUE", str(value)),
                            f"{name}.yaml")
        audit("run", str(suite), "--out", str(tmp_path / name), "--quiet", "--no-report")
        runs[name] = str(tmp_path / name / "results.json")
    inside = audit("compare", runs["base"], runs["noise"], "--tolerance", "0.01")
    assert inside.returncode == 0, inside.stdout
    worse = audit("compare", runs["base"], runs["worse"], "--tolerance", "0.01")
    assert worse.returncode == 1
    assert "m / value [b]" in worse.stdout


def test_atomic_write_gives_ordinary_file_mode(tmp_path: Path) -> None:
    """Results and reports are written via a temp file + rename, with the mode a plain
    open() would give (0666 minus the umask), not mkstemp's 0600."""
    from audit.io import atomic_write_text

    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert path.read_text() == "{}"
    assert (path.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
