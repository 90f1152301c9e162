"""`audit train-dp --audit-canaries M` and the one-run audit on real training runs.

Fast tests train the tiny classifier for one epoch and check the files, the secret's separation
and the ledger. The slow tests are the audit's teeth (issue 14): a GPT-2 with a 2,000-token
vocabulary trained for 10 epochs on 100 short texts plus 1,000 canaries (6 random tokens each,
about 500 included): non-private, DP at epsilon 8 and 1, and DP whose noise a test-only hook
removes while the ledger still claims epsilon 1.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from audit.dp.config import TrainConfig
from audit.errors import UsageError


@pytest.fixture(scope="module")
def csv_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import pandas as pd

    from tests.tiny_models import WORDS

    root = tmp_path_factory.mktemp("dpa_data")
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 9)))) for _ in range(40)]
    pd.DataFrame({"text": texts, "label": [int("good" in t) for t in texts]}).to_csv(
        root / "d.csv", index=False)
    return root / "d.csv"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_canaries_secret_and_ledger(tiny_classifier_dir, csv_data, tmp_path):
    """The canary file (texts, labels, no bits) sits in the model folder; the secret (one bit per
    canary) beside it; no file in the model folder holds the bits; the ledger commits to both
    files by SHA-256 (hashed here with hashlib), counts the included canaries in its dataset
    size, and takes its sample rate from base + all canaries, so the rate does not depend on the
    secret; dp_guarantee's cross-checks accept the real ledger (no false alarm)."""
    from audit.dp.ledger import consistency_problems
    from audit.dp.train import train

    out = tmp_path / "m"
    res = train(TrainConfig(model=str(tiny_classifier_dir), data=str(csv_data), output=str(out),
                            max_length=12, batch_size=8, physical_batch_size=8, epochs=1,
                            noise_multiplier=1.0, eval_fraction=0.25, audit_canaries=40,
                            audit_canary_tokens=5))
    secret_path = tmp_path / "m.audit-secret.json"
    assert res.secret == secret_path and secret_path.is_file()
    public = json.loads((out / "audit_canaries.json").read_text())
    secret = json.loads(secret_path.read_text())
    bits = secret["included"]
    assert public["count"] == 40 == len(bits) and set(bits) <= {0, 1} and 0 < sum(bits) < 40
    assert all(r["label"] in (0, 1) and len(r["text"].split()) >= 3 for r in public["canaries"])
    assert len({r["text"] for r in public["canaries"]}) == 40
    for f in out.iterdir():
        assert '"included"' not in f.read_text(errors="ignore"), f.name
    led = res.ledger
    assert led["audit_canaries"]["canaries_sha256"] == _sha(out / "audit_canaries.json")
    assert led["audit_canaries"]["secret_sha256"] == _sha(secret_path)
    assert secret["canaries_sha256"] == _sha(out / "audit_canaries.json")
    base = 30  # 40 rows, eval fraction 0.25
    assert led["dataset"]["size"] == base + sum(bits)
    assert led["dataset"]["sampling_population"] == base + 40
    assert led["sample_rate"] == pytest.approx(1 / math.ceil(70 / 8))
    assert consistency_problems(led) == []


def test_canary_draw_is_seeded_fair_and_distinct() -> None:
    """4,000 canaries: inclusion frequency within 0.5 +- 0.03 (5 sigma is 0.04), labels of both
    classes about equally often, every text distinct with the asked number of tokens; the same
    seed gives the same canaries and bits, another seed others."""
    from audit.dp.canaries import draw_canaries
    from tests.tiny_models import tiny_word_tokenizer

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tok = tiny_word_tokenizer(Path(tmp))
    a = draw_canaries(tok, "classifier", 4000, 7, 2, seed=5)
    b = draw_canaries(tok, "classifier", 4000, 7, 2, seed=5)
    c = draw_canaries(tok, "classifier", 4000, 7, 2, seed=6)
    assert abs(a.included.mean() - 0.5) < 0.03 and abs(np.mean(a.labels) - 0.5) < 0.03
    assert len(set(a.texts)) == 4000
    assert all(len(tok(t, add_special_tokens=False)["input_ids"]) == 7 for t in a.texts[:200])
    assert a.texts == b.texts and (a.included == b.included).all()
    assert a.texts != c.texts and (a.included != c.included).any()
    specials = set(tok.all_special_tokens)
    assert not any(w in specials for t in a.texts for w in t.split())


def test_secret_inside_model_folder_is_refused(csv_data, tmp_path, capsys):
    """The secret may not be written into the model folder it is hidden from: exit 4, one line
    naming --audit-secret."""
    from audit.cli import main

    code = main(["train-dp", "--model", str(tmp_path), "--data", str(csv_data), "--out",
                 str(tmp_path / "o"), "--epsilon", "8", "--audit-canaries", "10",
                 "--audit-secret", str(tmp_path / "o" / "s.json")])
    err = capsys.readouterr().err.strip()
    assert code == 4 and "--audit-secret" in err and len(err.splitlines()) == 1
    with pytest.raises(UsageError, match="--audit-canaries"):
        TrainConfig(model="m", data="d", output="o", no_dp=True, audit_canaries=-1).validate()


# ---------------------------------------------------------------------------- teeth (slow)
@pytest.fixture(scope="module")
def lm_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.dp_helpers import build_audit_gpt2
    from tests.tiny_models import WORDS

    root = tmp_path_factory.mktemp("dpa_lm")
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 12)))) for _ in range(100)]
    (root / "d.txt").write_text("\n".join(texts) + "\n")
    suite = root / "audit.yaml"
    suite.write_text("name: dp-audit\nchecks:\n  - id: dp-audit\n    check: dp_audit\n"
                     "    gate: [{metric: epsilon_lb_minus_ledger, max: 0}]\n")
    return {"model": build_audit_gpt2(root / "gpt2"), "data": root / "d.txt", "suite": suite,
            "root": root}


def _train_and_audit(lm_setup: dict[str, Path], name: str, hooks=None, **kw):
    """Train one canary run (settings of the module docstring) and audit it with `audit run`;
    returns (ledger, dp_audit metrics by name, findings, exit code)."""
    import torch

    from audit.cli import main
    from audit.dp.train import train

    torch.set_num_threads(1)  # measured faster than 2 threads for this tiny model on 2 cores
    out = lm_setup["root"] / name
    cfg = TrainConfig(model=str(lm_setup["model"]), data=str(lm_setup["data"]), output=str(out),
                      max_length=12, batch_size=64, physical_batch_size=64, epochs=10, lr=0.01,
                      delta=1e-5, eval_fraction=0.1, grad_sample_mode="hooks",
                      audit_canaries=1000, audit_canary_tokens=6, overwrite=True, **kw)
    ledger = train(cfg, hooks=hooks).ledger
    code = main(["run", str(lm_setup["suite"]), "--model", str(out), "--out",
                 str(lm_setup["root"] / f"{name}-audit"), "--quiet", "--no-report"])
    run = json.loads((lm_setup["root"] / f"{name}-audit" / "results.json").read_text())
    check = run["checks"][0]
    return ledger, {m["name"]: m["value"] for m in check["metrics"]}, check["findings"], code


@pytest.mark.slow
def test_non_private_training_gives_a_large_lower_bound(lm_setup):
    """(a) Non-private, 1,000 canaries: the audit separates included from excluded canaries
    almost perfectly (measured: 600 of 600 guesses right, eps_LB 4.53, the most 1,000 canaries
    can show at 95 % after Bonferroni is about 5.2). With no DP claim the gap is undefined, so
    the gate fails closed."""
    ledger, m, findings, code = _train_and_audit(lm_setup, "nodp", no_dp=True)
    assert ledger["epsilon"] is None and m["canaries"] == 1000
    assert m["epsilon_lb"] > 3.5 and m["guess_accuracy"] > 0.97 and m["canary_auc"] > 0.97
    assert m["epsilon_lb_minus_ledger"] is None and code == 1


@pytest.mark.slow
@pytest.mark.parametrize("epsilon", [8.0, 1.0])
def test_dp_training_stays_below_its_claim(lm_setup, epsilon):
    """(b) The same run under DP-SGD at epsilon 8 and 1: eps_LB <= the ledger's epsilon and the
    gate passes (measured: eps_LB 0.51 at epsilon 8, 0 at epsilon 1)."""
    ledger, m, findings, code = _train_and_audit(lm_setup, f"eps{epsilon:g}",
                                                 target_epsilon=epsilon)
    assert ledger["epsilon"] <= epsilon + 1e-6 and m["epsilon_ledger"] == ledger["epsilon"]
    assert m["epsilon_lb"] <= ledger["epsilon"] and code == 0
    assert findings[0]["severity"] == "info"


@pytest.mark.slow
def test_broken_dp_claiming_epsilon_1_is_caught(lm_setup):
    """(c) DP-SGD whose noise a test-only hook removes (clipping kept) while the accountant and
    the ledger still claim epsilon 1: the audit refutes the claim (measured eps_LB 4.53 > 1), a
    critical finding says the implementation leaks more than it claims, and the gate fails."""
    from tests.dp_helpers import skip_noise

    ledger, m, findings, code = _train_and_audit(lm_setup, "broken", target_epsilon=1.0,
                                                 hooks={"optimizer": skip_noise})
    assert ledger["dp"] and ledger["epsilon"] <= 1.0 + 1e-6
    assert m["epsilon_lb"] > 1.0 and m["epsilon_lb_minus_ledger"] > 0 and code == 1
    assert any(f["severity"] == "critical" and "leaks more than it claims" in f["message"]
               for f in findings)
