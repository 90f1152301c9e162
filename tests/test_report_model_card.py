"""model_card.md: Hugging Face layout + Mitchell et al. 2019 sections, filled from the results."""

from __future__ import annotations

import math

import yaml

from audit.report import render_model_card
from tests.report_fixtures import rich_run

HF_SECTIONS = ["## Model Details", "## Uses", "## Bias, Risks, and Limitations",
               "### Recommendations", "## How to Get Started with the Model",
               "## Training Details", "## Evaluation",
               "#### Testing Data", "#### Factors", "#### Metrics", "### Results",
               "## Environmental Impact", "## Technical Specifications", "## Citation",
               "## More Information", "## Model Card Authors", "## Model Card Contact"]
MITCHELL_SECTIONS = ["### Intended Use", "#### Factors", "#### Metrics", "## Ethical Considerations",
                     "## Caveats and Recommendations"]


def _split(card: str) -> tuple[dict, str]:
    _, front, body = card.split("---\n", 2)
    return yaml.safe_load(front), body


def test_sections_in_hugging_face_order() -> None:
    """Every Hugging Face template section appears, in the template's order; Mitchell's too."""
    _, body = _split(render_model_card(rich_run()))
    positions = [body.index(s + "\n") for s in HF_SECTIONS]
    assert positions == sorted(positions)
    assert all(s + "\n" in body for s in MITCHELL_SECTIONS)


def test_metadata_model_index_matches_results() -> None:
    """The YAML model-index lists each check with its finite metric values (checked against the
    RunResult directly); NaN/None metrics and metric-less checks are left out."""
    run = rich_run()
    meta, _ = _split(render_model_card(run))
    assert meta["library_name"] == "transformers"
    assert {"bias", "fairness", "privacy", "explain"} <= set(meta["tags"])
    results = meta["model-index"][0]["results"]
    by_check = {r["dataset"]["name"]: {m["type"]: m["value"] for m in r["metrics"]} for r in results}
    for check in run.checks:
        finite = {m.name: m.value for m in check.metrics
                  if m.value is not None and math.isfinite(m.value)}
        if finite:
            assert by_check[check.id] == finite
        else:
            assert check.id not in by_check
    assert results[0]["task"]["type"] == "text-generation"   # causal_lm


def test_results_failed_gates_and_gaps_are_reported() -> None:
    """Values with CIs, the failed gate, the skipped and errored checks and the limitations."""
    _, body = _split(render_model_card(rich_run()))
    assert "| max_group_gap | 0.43 | \\[0.3, 0.55\\] | FAIL (\u2264 0.15) |" in body
    assert "- gender-occupations: max_group_gap = 0.43 (threshold \u2264 0.15)" in body
    assert "- shap (skipped): needs predict_proba" in body
    assert "- faith (error): RuntimeError: boom \\[EMAIL_ADDRESS\\]" in body
    assert "- **dp:** What dp_guarantee misses." in body
    assert "| women | 120 | 0.31 \\[0.22, 0.4\\] |" in body
    assert body.count("More information needed") >= 5   # what an audit cannot know is not guessed


def test_model_card_is_pure() -> None:
    """Same results, same card."""
    assert render_model_card(rich_run()) == render_model_card(rich_run())
