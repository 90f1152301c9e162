"""The responses adapter: logged prompt -> completion rows served as generate/chat by lookup."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from audit.errors import UsageError
from audit.models.capabilities import conformance_problems
from audit.models.responses import ResponsesAdapter

XSTEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "xstest"


def _csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    return _csv(tmp_path / "log.csv", [
        {"id": "a", "prompt": "How do I kill a Python process?", "completion": "Use kill -9.",
         "model": "x"},
        {"id": "b", "prompt": "Tell me a joke", "completion": "Why did the chicken...",
         "model": "x"},
        {"id": "c", "prompt": "Tell me a joke", "completion": "Knock knock.", "model": "x"},
        {"id": "d", "prompt": "Say nothing", "completion": "", "model": "x"}])


def test_conforms_to_the_capability_protocols(logged: Path) -> None:
    """It advertises generate and chat and satisfies both protocols exactly."""
    adapter = ResponsesAdapter.from_file(str(logged))
    assert adapter.capabilities == {"generate", "chat"}
    assert conformance_problems(adapter) == []


def test_generate_looks_prompts_up_and_keeps_empty_completions(logged: Path) -> None:
    """Whitespace differences do not matter; an empty logged completion stays ''."""
    adapter = ResponsesAdapter.from_file(str(logged))
    out = adapter.generate(["  How do I kill a   Python process?\n", "Say nothing"])
    assert out == ["Use kill -9.", ""]


def test_repeated_sampled_requests_get_successive_rows(logged: Path) -> None:
    """Two sampled requests of one prompt get both logged samples; greedy gets the first; a
    third sample is an error naming the prompt and the count."""
    adapter = ResponsesAdapter.from_file(str(logged))
    assert adapter.generate(["Tell me a joke"] * 2, do_sample=True) == \
        ["Why did the chicken...", "Knock knock."]
    assert adapter.generate(["Tell me a joke"] * 2) == ["Why did the chicken..."] * 2
    with pytest.raises(UsageError, match=r"2 logged completion\(s\) for 'Tell me a joke'"):
        adapter.generate(["Tell me a joke"] * 3, do_sample=True)


def test_missing_prompt_is_an_error_naming_prompt_and_file(logged: Path) -> None:
    """The message names the first missing prompt, how many more are missing, and the file."""
    adapter = ResponsesAdapter.from_file(str(logged))
    with pytest.raises(UsageError) as exc:
        adapter.generate(["Tell me a joke", "What is 2+2?", "Who are you?"])
    msg = str(exc.value)
    assert "'What is 2+2?'" in msg and "1 more" in msg and str(logged.resolve()) in msg


def test_chat_by_last_user_message_and_by_whole_conversation(tmp_path: Path) -> None:
    """A messages column matches the whole conversation first; otherwise the last user turn."""
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "Hi", "completion": "Hello (no system prompt)"},
        {"messages": conv, "completion": "Hi. (brief)"}]), encoding="utf-8")
    adapter = ResponsesAdapter.from_file(str(path))
    assert adapter.chat([conv]) == ["Hi. (brief)"]
    assert adapter.chat([[{"role": "user", "content": "Hi"}]]) == ["Hello (no system prompt)"]
    with pytest.raises(UsageError, match="no logged completion for 'Bye'"):
        adapter.chat([[{"role": "user", "content": "Bye"}]])


def test_info_records_file_hash_and_rows(logged: Path) -> None:
    """info() carries the SHA-256 of the file (computed here with hashlib) and row counts."""
    info = ResponsesAdapter.from_file(str(logged), alias="logs").info()
    assert info.adapter == "responses" and info.alias == "logs"
    assert info.files == {"log.csv": hashlib.sha256(logged.read_bytes()).hexdigest()}
    assert info.details["rows"] == 4 and info.details["distinct_prompts"] == 3


def test_bad_files_and_options_are_usage_errors(tmp_path: Path, logged: Path) -> None:
    """Unknown options, a missing file and rows without completion are one-line errors."""
    with pytest.raises(UsageError, match="unknown option"):
        ResponsesAdapter.from_file(str(logged), prompt_col="x")
    with pytest.raises(UsageError, match="file not found"):
        ResponsesAdapter.from_file(str(tmp_path / "none.csv"))
    bad = _csv(tmp_path / "bad.csv", [{"prompt": "a", "answer": "b"}])
    with pytest.raises(UsageError, match="no 'completion' value"):
        ResponsesAdapter.from_file(str(bad))
    ok = ResponsesAdapter.from_file(str(bad), completion_column="answer")
    assert ok.generate(["a"]) == ["b"]


def test_loader_builds_it_from_a_spec_and_from_a_string(logged: Path) -> None:
    """`adapter: responses` in a suite and `--model responses:PATH` both load the file."""
    from audit.config import ModelSpec
    from audit.models.loader import load_model

    for spec in (ModelSpec(adapter="responses", path=str(logged)), f"responses:{logged}"):
        adapter = load_model(spec, alias="default", options=None, base_dir=logged.parent)
        assert isinstance(adapter, ResponsesAdapter)
        assert adapter.generate(["Tell me a joke"]) == ["Why did the chicken..."]


@pytest.mark.skipif(not (XSTEST / "completions_llama2new.csv").exists(),
                    reason="XSTest completions not found at ../shared/data/xstest")
def test_refusal_check_on_logged_xstest_replies_matches_the_validation_script(tmp_path: Path) -> None:
    """The refusal check served by `adapter: responses` on an XSTest completions file reports
    the same agreement with the human labels as a plain loop over the file that calls the
    classifier directly (the validation script's computation)."""
    from audit.checks.safety.refusal_rules import XSTEST_LABELS, classify
    from audit.config import load_suite
    from audit.runner import RunOptions, run_suite

    path = XSTEST / "completions_llama2new.csv"
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(
        "name: logged\nmodels:\n  default: {adapter: responses, path: %s}\n"
        "checks:\n  - id: xs\n    check: refusal\n    params: {sources: [xstest], xstest: %s}\n"
        % (path, path), encoding="utf-8")
    run = run_suite(load_suite(suite_file), RunOptions(out_dir=tmp_path / "out", quiet=True, render=False))
    result = run.check("xs")
    assert result.status == "reported", result.error
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    same = sum(XSTEST_LABELS[r["final_label"]] == classify(r["completion"], r["prompt"]).label
               for r in rows)
    assert result.metric("classifier_agreement").value == pytest.approx(same / len(rows))
    assert run.models["default"].adapter == "responses"
    assert run.models["default"].details["rows"] == 450
