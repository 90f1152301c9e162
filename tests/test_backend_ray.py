"""``audit run --backend ray``: same results.json as the local backend, replicas restarted after
a crash with identical numbers, exhausted retries -> ``error`` with the other checks kept.

Reference: the local backend's results.json on the same suite and seed (times, energy and the
command line aside). A local Ray instance with 2 CPUs is started by the test (no dashboard, no
usage statistics); each test module shares it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'audit[ray]')")

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A 2-CPU Ray instance; its workers read the fault-injection file named here (absent: no
    fault), which each test writes as it needs."""
    from audit.backends.ray_backend import FAULT_ENV

    fault = tmp_path_factory.mktemp("ray") / "fault.json"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {FAULT_ENV: str(fault), "HF_HUB_OFFLINE": "1"}})
    yield fault
    ray.shutdown()


def _normalised(path: Path) -> dict:
    data = json.loads(path.read_text())
    for key in ("created_at", "environment"):
        data.pop(key, None)
    data["provenance"].pop("command", None)
    for check in data["checks"]:
        check.pop("duration_s")
        check.pop("environment", None)
    return data


def _privacy_suite(tmp_path: Path, model_dir: Path, replicas: int) -> Path:
    words = "zero one two three four five six seven eight nine".split()
    (tmp_path / "canaries.json").write_text(json.dumps({
        "format": "my pin code is {secret}", "alphabet": words, "length": 4, "separator": " ",
        "canaries": [{"id": "c1", "secret": "one two three four", "repeats": 1}]}))
    members = [f"the man is {w} and the woman is {v}" for w in words for v in words[:4]]
    (tmp_path / "m.txt").write_text("\n".join(members[:20]))
    (tmp_path / "n.txt").write_text("\n".join(members[20:40]))
    suite = tmp_path / f"privacy-{replicas}.yaml"
    suite.write_text(f"""name: ray-privacy
models:
  default: {{adapter: hf, path: {model_dir}, replicas: {replicas}, resources: {{num_cpus: 1}}}}
checks:
  - id: exposure
    check: canary_exposure
    params: {{canaries: canaries.json, method: exact}}
  - id: mia
    check: membership_inference
    params: {{members: m.txt, nonmembers: n.txt, n_boot: 200}}
  - id: memorization
    check: verbatim_memorization
    params: {{prefix_tokens: 8, suffix_tokens: 8, windows_per_text: 1}}
  - id: pii
    check: pii_leakage
    params: {{n_samples: 1, max_new_tokens: 8, backend: builtin}}
  - id: pairs
    check: pair_preference
    params: {{data: demo_pairs, n_boot: 200}}
""")
    return suite


def _run(suite: Path, out: Path, *extra: str) -> int:
    from audit.cli import main

    return main(["run", str(suite), "--out", str(out), "--quiet", "--no-report", "--no-carbon",
                 *extra])


def test_privacy_suite_equals_the_local_backend(local_ray, tmp_path, tiny_gpt2_dir):
    """Two replicas, calls split across them (10^4 canary candidates, 40 MIA texts): every
    check's results equal the local run's, bit for bit."""
    suite = _privacy_suite(tmp_path, tiny_gpt2_dir, replicas=2)
    assert _run(suite, tmp_path / "local") in (0, 1)
    assert _run(suite, tmp_path / "ray", "--backend", "ray") in (0, 1)
    local, remote = _normalised(tmp_path / "local" / "results.json"), \
        _normalised(tmp_path / "ray" / "results.json")
    assert [c["status"] for c in remote["checks"]] == ["reported"] * 5
    assert remote == local


def test_a_killed_replica_is_restarted_and_the_result_is_unchanged(local_ray, tmp_path,
                                                                    tiny_gpt2_dir):
    """A replica dies inside its first sequence_log_prob call; Ray restarts it, reloads the
    model and retries the call: same results as a run without the crash."""
    suite = _privacy_suite(tmp_path, tiny_gpt2_dir, replicas=2)
    assert _run(suite, tmp_path / "clean", "--backend", "ray", "--only", "exposure") in (0, 1)
    fault = local_ray
    fault.write_text(json.dumps({"method": "sequence_log_prob", "crashes": 1}))
    try:
        assert _run(suite, tmp_path / "crash", "--backend", "ray", "--only", "exposure") in (0, 1)
        assert json.loads(fault.read_text())["crashes"] == 0  # the crash did happen
    finally:
        fault.unlink()
    assert _normalised(tmp_path / "crash" / "results.json") == \
        _normalised(tmp_path / "clean" / "results.json")


def test_exhausted_retries_error_that_check_and_keep_the_others(local_ray, tmp_path,
                                                                 tiny_gpt2_dir):
    """Every greedy-decoding call crashes its replica, more times than Ray retries: the
    memorization check ends ``error`` with a one-line reason; the checks on the other model
    complete. (Memorization gets its own model alias, and so its own replica: a replica that
    has died for good fails every call that reaches it, so checks sharing it with the crashing
    one would fail or not depending on whether they finished first.)"""
    from audit.backends.ray_backend import RAY_RETRIES

    suite = _privacy_suite(tmp_path, tiny_gpt2_dir, replicas=1)
    text = suite.read_text()
    default_line = next(line for line in text.splitlines() if line.startswith("  default:"))
    text = text.replace(default_line, default_line + "\n" + default_line.replace("default:", "gen:"))
    text = text.replace("    check: verbatim_memorization\n",
                        "    check: verbatim_memorization\n    model: gen\n")
    suite.write_text(text)
    fault = local_ray
    fault.write_text(json.dumps({"method": "greedy_token_continuations",
                                 "crashes": 10 * (RAY_RETRIES + 1)}))
    try:
        code = _run(suite, tmp_path / "out", "--backend", "ray")
    finally:
        fault.unlink()
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    status = {c["id"]: c["status"] for c in data["checks"]}
    assert status["memorization"] == "error" and code == 2
    assert "\n" not in data["checks"][2]["error"]
    assert {status[k] for k in ("exposure", "mia", "pii", "pairs")} == {"reported"}


def _smoke_suite(tmp_path: Path, lm: dict) -> Path:
    """The shipped smoke suite (real SmolLM2 and MiniLM) with the LM's spec replaced by ``lm``
    and the encoder's by one replica that reserves no whole CPU (the test's Ray has 2)."""
    import yaml

    data = yaml.safe_load((ROOT / "suites" / "smoke.yaml").read_text())
    data["models"]["default"] = lm
    data["models"]["encoder"] = {"adapter": "hf", "path": "default-encoder",
                                 "resources": {"num_cpus": 0}}
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_smoke_suite_equals_the_local_backend(local_ray, tmp_path):
    """The shipped smoke suite on the real offline models, the LM in two 1-CPU replicas
    (template probes and memorization calls split across them): results.json equals the local
    backend's, bit for bit."""
    suite = _smoke_suite(tmp_path, {"adapter": "hf", "path": "default-lm", "replicas": 2,
                                    "resources": {"num_cpus": 1}})
    assert _run(suite, tmp_path / "local") in (0, 1)
    assert _run(suite, tmp_path / "ray", "--backend", "ray") in (0, 1)
    local, remote = _normalised(tmp_path / "local" / "results.json"), \
        _normalised(tmp_path / "ray" / "results.json")
    assert {c["status"] for c in remote["checks"]} <= {"passed", "failed", "reported"}
    assert remote == local


def test_replicas_that_cannot_fit_are_a_usage_error(local_ray, tmp_path, capsys):
    """Three 1-CPU replicas on a 2-CPU local instance would wait forever for a CPU: the run
    stops at once with exit 4 and one line naming the field and the fix."""
    suite = _smoke_suite(tmp_path, {"adapter": "hf", "path": "default-lm", "replicas": 3,
                                    "resources": {"num_cpus": 1}})
    assert _run(suite, tmp_path / "out", "--backend", "ray") == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "models.*.resources (CPU)" in err[0] and "3 CPU" in err[0]
    assert "default: 3 x 1" in err[0] and "fix:" in err[0]
