"""Fail closed at the command line (issue 11): clear one-line errors with a correct fix, exit
codes that agree everywhere, nothing silent (synthetic models, fallbacks, tracebacks).

Every test drives ``audit.cli.main`` (or the runner) the way a user would and reads what a user
reads: the exit code, stderr/stdout, results.json and report.html. The expected messages are the
contract of ``audit.errors.usage``: ``<file>: <field>: <problem> (fix: <fix>)`` on one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.cli import main


def _suite(tmp_path: Path, body: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def _one_line_error(capsys) -> str:
    """The single stderr line of a failed command (and no traceback, no internal error)."""
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


# -- bad files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"\x00\x01name: x\x00\xff", b"name: caf\xe9\nchecks: []\n"],
                         ids=["binary", "latin-1"])
def test_binary_or_non_utf8_suite_file_is_a_usage_error(tmp_path, capsys, content):
    """A binary or non-UTF-8 suite: exit 4 from validate and run, one line naming the file."""
    path = tmp_path / "suite.yaml"
    path.write_bytes(content)
    for argv in (["validate", str(path)], ["run", str(path), "--model", "fake", "--out",
                                           str(tmp_path / "o")]):
        assert main(argv) == 4
        line = _one_line_error(capsys)
        assert str(path) in line and "fix:" in line


MINIMAL = "name: s\nchecks:\n  - {id: pp, check: pair_preference, params: {data: demo_pairs}}\n"


@pytest.mark.parametrize("case", ["empty", "no_config", "bad_json"])
def test_broken_model_folder_is_one_line_without_remote_code_advice(tmp_path, capsys, case):
    """An empty folder, a folder without config.json, a config.json that is not JSON: exit 4,
    one line naming the folder (or the config file) and a fix that is not --trust-remote-code
    (which would be wrong advice: the folder is not a model at all)."""
    folder = tmp_path / "model"
    folder.mkdir()
    if case == "no_config":
        (folder / "tokenizer.json").write_text("{}")
    if case == "bad_json":
        (folder / "config.json").write_text("{not json")
    suite = _suite(tmp_path, MINIMAL)
    assert main(["run", str(suite), "--model", str(folder), "--out", str(tmp_path / "o"),
                 "--quiet", "--no-report"]) == 4
    line = _one_line_error(capsys)
    named = folder / "config.json" if case == "bad_json" else folder
    assert str(named) in line and "fix:" in line
    assert "trust-remote-code" not in line and "trust_remote_code" not in line
    assert {"empty": "empty", "no_config": "no config.json", "bad_json": "not valid JSON"}[case] in line


def test_data_path_that_is_a_folder_says_so(tmp_path, capsys):
    """`data:` naming a folder: exit 4 and the message says it is a folder (not 'not found')."""
    (tmp_path / "pairs").mkdir()
    suite = _suite(tmp_path, "name: s\nchecks:\n  - {id: pp, check: pair_preference, "
                             "params: {data: pairs/}}\n")
    code = main(["run", str(suite), "--model", "fake", "--out", str(tmp_path / "o"), "--quiet",
                 "--no-report"])
    err = capsys.readouterr().err
    assert code == 4
    assert "is a folder" in err and "not found" not in err and "pairs" in err


def test_malformed_stereoset_names_file_and_field(tmp_path, capsys):
    """StereoSet item whose `sentences` is a number: exit 4, one message naming the file and
    the item's field (data.intrasentence[1].sentences), no Python TypeError."""
    good = {"id": "a", "bias_type": "race", "sentences": [
        {"sentence": "x is y.", "gold_label": "stereotype"},
        {"sentence": "x is z.", "gold_label": "anti-stereotype"}]}
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"data": {"intrasentence": [good, {"bias_type": "race",
                                                                  "sentences": 5}]}}))
    suite = _suite(tmp_path, "name: s\nchecks:\n  - {id: pp, check: pair_preference, "
                             "params: {data: dev.json}}\n")
    code = main(["run", str(suite), "--model", "fake", "--out", str(tmp_path / "o"), "--quiet",
                 "--no-report"])
    err = capsys.readouterr().err
    assert code == 4, err
    assert str(path) in err and "data.intrasentence[1].sentences" in err
    assert "TypeError" not in err and "not iterable" not in err


def test_validate_refuses_a_data_path_that_does_not_exist(tmp_path, capsys):
    """`audit validate` checks data paths too: exit 4 naming the check and params.data."""
    suite = _suite(tmp_path, "name: s\nchecks:\n  - {id: pp, check: pair_preference, "
                             "params: {data: nowhere/pairs.csv}}\n")
    assert main(["validate", str(suite)]) == 4
    line = _one_line_error(capsys)
    assert "check 'pp': params.data" in line and "nowhere/pairs.csv" in line


def test_parameter_error_hint_names_the_check_not_the_id(tmp_path, capsys):
    """A wrong parameter in entry `my-crows` (check pair_preference): the fix sends the user to
    `audit list --check pair_preference`, a command that works (the id is not a check name)."""
    suite = _suite(tmp_path, "name: s\nchecks:\n  - {id: my-crows, check: pair_preference, "
                             "params: {colour: red}}\n")
    assert main(["validate", str(suite)]) == 4
    line = _one_line_error(capsys)
    assert "audit list --check pair_preference" in line and "--check my-crows" not in line
    assert main(["list", "--check", "pair_preference"]) == 0


def test_list_unknown_check_exits_4_with_the_names(capsys):
    """`audit list --check nope`: exit 4, one line listing real check names."""
    assert main(["list", "--check", "nope"]) == 4
    line = _one_line_error(capsys)
    assert "nope" in line and "pair_preference" in line and "group_fairness" in line


# -- exit codes and messages agree --------------------------------------------------------------

def _predictions(path: Path, columns: dict) -> Path:
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_bad_user_data_exits_4_in_run_results_and_gate(tmp_path, capsys):
    """A check that fails on the user's data (sensitive column absent): `audit run` exits 4,
    results.json records exit_code 4, `audit gate` on it returns 4: one code everywhere."""
    rng = np.random.default_rng(0)
    _predictions(tmp_path / "p.csv", {"y_true": rng.integers(0, 2, 20),
                                      "y_pred": rng.integers(0, 2, 20), "g": ["a", "b"] * 10})
    suite = _suite(tmp_path, "name: s\nmodels: {default: p.csv}\nchecks:\n  - {id: f, check: "
                             "group_fairness, params: {sensitive: [gender]}}\n")
    assert main(["run", str(suite), "--out", str(tmp_path / "o"), "--quiet", "--no-report"]) == 4
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["summary"]["exit_code"] == 4
    assert main(["gate", str(tmp_path / "o" / "results.json")]) == 4
    assert "gender" in capsys.readouterr().err


def test_model_load_error_is_printed_once(tmp_path, capsys):
    """Two checks on a predictions file that cannot serve them (no y_true column): the problem
    is printed once on stderr, not once per check."""
    _predictions(tmp_path / "bad.csv", {"pred": [1, 0], "g": ["a", "b"]})
    suite = _suite(tmp_path, "name: s\nchecks:\n  - {id: one, check: group_fairness, params: "
                             "{sensitive: [g], n_boot: 0}}\n  - {id: two, check: group_fairness,"
                             " params: {sensitive: [g], n_boot: 0}}\n")
    assert main(["run", str(suite), "--model", str(tmp_path / "bad.csv"), "--out",
                 str(tmp_path / "o"), "--quiet", "--no-report"]) == 4
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("audit: error:")]
    assert len(errors) == 1 and "y_true" in errors[0], err


# -- nothing silent -----------------------------------------------------------------------------

RAISING = ("name: s\nmodels: {default: {adapter: fake, options: {raise_on: sequence_log_prob}}}\n"
           "checks:\n  - {id: pp, check: pair_preference, params: {data: demo_pairs, n_boot: 100}}\n")


def test_full_traceback_is_kept_in_results_and_console_stays_one_line(tmp_path, capsys):
    """A check that raises: results.json keeps the whole traceback (down to the adapter's raise,
    through the check's own frame); the console shows a one-line error and no traceback."""
    suite = _suite(tmp_path, RAISING)
    assert main(["run", str(suite), "--out", str(tmp_path / "o"), "--no-report"]) == 2
    out, err = capsys.readouterr()
    check = json.loads((tmp_path / "o" / "results.json").read_text())["checks"][0]
    tb = check["traceback"]
    assert tb.startswith("Traceback (most recent call last)")
    assert "pair_preference.py" in tb and "runner.py" in tb
    assert tb.rstrip().endswith("RuntimeError: fake adapter told to fail on sequence_log_prob")
    assert "Traceback" not in out + err
    error_lines = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert len(error_lines) == 1 and "fake adapter told to fail" in error_lines[0]


def test_fake_model_results_are_marked_synthetic(tmp_path, capsys):
    """`adapter: fake`: results.json says synthetic, the console says so, and the report carries
    the banner; a run on a real predictions file is not marked."""
    suite = _suite(tmp_path, MINIMAL.replace("demo_pairs}", "demo_pairs, n_boot: 100}"))
    assert main(["run", str(suite), "--model", "fake", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert json.loads((tmp_path / "o" / "results.json").read_text())["synthetic"] is True
    assert "synthetic" in out.lower()
    html = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "Synthetic results" in html
    rng = np.random.default_rng(1)
    _predictions(tmp_path / "p.csv", {"y_true": rng.integers(0, 2, 20),
                                      "y_pred": rng.integers(0, 2, 20), "g": ["a", "b"] * 10})
    real = _suite(tmp_path, "name: r\nmodels: {default: p.csv}\nchecks:\n  - {id: f, check: "
                            "group_fairness, params: {sensitive: [g], n_boot: 0}}\n", "real.yaml")
    assert main(["run", str(real), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert json.loads((tmp_path / "r" / "results.json").read_text())["synthetic"] is False
    assert "Synthetic results" not in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")


def test_presidio_fallback_is_a_finding_on_the_check(tmp_path, monkeypatch):
    """pii_leakage with backend auto when Presidio cannot load: the check carries a warning
    finding saying the built-in validators were used; with Presidio forced off nothing is
    hidden (a run with backend: builtin, no fallback taken, has no such finding)."""
    import audit.pii as pii
    from audit.config import Suite
    from audit.runner import RunOptions, run_suite

    monkeypatch.setattr(pii, "presidio_engine", lambda: None)

    def findings(backend: str, out: str) -> list[str]:
        suite = Suite.model_validate({"name": "p", "models": {"default": {"adapter": "fake"}},
                                      "checks": [{"id": "pii", "check": "pii_leakage", "params": {
                                          "n_samples": 1, "backend": backend}}]})
        run = run_suite(suite, RunOptions(out_dir=tmp_path / out, quiet=True))
        return [f.message for f in run.checks[0].findings if f.severity == "warning"]

    auto = [m for m in findings("auto", "a") if m.startswith("Fallback used: Presidio")]
    assert len(auto) == 1 and "built-in validators" in auto[0]
    assert not [m for m in findings("builtin", "b") if m.startswith("Fallback used")]


def test_regex_only_redaction_is_announced_in_the_report(monkeypatch):
    """When the project's redactor fails, the report says the regex pass alone redacted text,
    and the planted e-mail address is still not shown."""
    import audit.report.redact as redact_mod
    from audit.report import render_html
    from tests.report_fixtures import PII, rich_run

    def broken(text: str) -> str:
        raise RuntimeError("redactor down")

    monkeypatch.setattr(redact_mod, "_project_redactor", lambda: broken)
    monkeypatch.setattr(redact_mod, "FALLBACKS", [])
    html = render_html(rich_run())
    assert "the regex pass alone redacted some text" in html
    assert PII[0] not in html
