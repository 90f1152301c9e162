"""Per-item records of the privacy checks: each check runs end to end through the runner, the
test reads items.jsonl.gz itself (gzip + json), re-derives the headline metrics from the items
alone with ``audit.items.rederive`` and compares them with results.json.

Independent references: the number of items and their ids are computed here from the inputs
(texts, windows, canaries, prompts x samples); hand-computed values (known memorised windows,
hand ranks, scripted PII, scripted inclusion bits) and scikit-learn's roc_auc_score check that
the items carry the right numbers, not only numbers that agree with themselves.
"""

from __future__ import annotations

import gzip
import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from audit.checks.privacy.common import secret_hash
from audit.config import Suite
from audit.items import ITEMS_FILE, items_digest, rederive
from audit.runner import ModelPool, RunOptions, run_suite
from tests.mock_models import keyword_classifier, parrot, scripted, table_lm

TOL = dict(abs=1e-9, rel=1e-12)


@contextmanager
def _serving(model: Any) -> Iterator[None]:
    """Every model alias of the run is ``model`` (a scripted adapter replaces the fake)."""
    original = ModelPool.get
    ModelPool.get = lambda self, alias: model
    try:
        yield
    finally:
        ModelPool.get = original


def run_check(tmp_path: Path, check: str, params: dict[str, Any], model: Any,
              show_pii: bool = False, name: str = "run") -> tuple[Any, list[dict[str, Any]], str]:
    """Run one check through ``run_suite``; return its result, its items as read back from
    items.jsonl.gz with gzip + json, and the file's whole text (to search for raw secrets)."""
    suite = Suite.model_validate({"name": "items", "models": {"default": "fake:causal_lm"},
                                  "checks": [{"id": "c", "check": check, "params": params}]})
    out = tmp_path / name
    with _serving(model):
        run = run_suite(suite, RunOptions(out_dir=out, quiet=True, render=False, seed=0,
                                          show_pii=show_pii))
    result = run.check("c")
    assert result.status in ("passed", "reported"), (result.status, result.error,
                                                     result.skip_reason)
    with gzip.open(out / ITEMS_FILE, "rt", encoding="utf-8") as fh:
        raw = fh.read()
    lines = [json.loads(line) for line in raw.splitlines()]
    assert {x["check"] for x in lines} == {"c"}
    items = [x["item"] for x in lines]
    assert len(items) == result.n_items and items_digest(items) == result.items_sha256
    return result, items, raw


def assert_rederived(check: str, result: Any, items: list[dict[str, Any]],
                     required: set[str]) -> dict[str, float | None]:
    """Every declared metric re-derived from the items equals the reported one (1e-9); a
    declared metric the run did not report re-derives to None; ``required`` were compared."""
    derived = rederive(check, items)
    reported = {m.name: m.value for m in result.metrics}
    compared = set()
    for name, value in derived.items():
        if name not in reported or reported[name] is None:
            assert value is None, (name, value)
            continue
        assert value == pytest.approx(reported[name], **TOL), name
        compared.add(name)
    assert required <= compared, required - compared
    return derived


# --------------------------------------------------------------------------- verbatim_memorization
def test_memorization_items_rederive_rates_and_excess(tmp_path: Path) -> None:
    """Two probe and two control texts of 40 words, 2 windows of 8 + 8 words each: 8 items with
    ids set:t<text>:w<window>. The parrot knows both probes and the first control text, so by
    hand the probe exact-match rate is 4/4, the control rate 2/4 and the excess 0.5; an e-mail
    address inside a probe window never reaches the items file raw."""
    words = [f"w{i}" for i in range(40)]
    probe = [" ".join(words[:12]) + " mail ann@example.org now " + " ".join(words[12:37]),
             " ".join(reversed(words))]
    control = [" ".join(f"c{i}" for i in range(40)), " ".join(f"d{i}" for i in range(40))]
    (tmp_path / "p.txt").write_text("\n".join(probe))
    (tmp_path / "c.txt").write_text("\n".join(control))
    params = {"data": str(tmp_path / "p.txt"), "control": str(tmp_path / "c.txt"),
              "prefix_tokens": 8, "suffix_tokens": 8, "windows_per_text": 2, "n_boot": 200}
    result, items, raw = run_check(tmp_path, "verbatim_memorization", params,
                                   parrot(probe + control[:1]))
    assert sorted(i["id"] for i in items) == sorted(
        f"{s}:t{t}:w{w}" for s in ("probe", "control") for t in (0, 1) for w in (0, 1))
    derived = assert_rederived("verbatim_memorization", result, items,
                               {"exact_match_rate", "mean_lcp_tokens", "mean_edit_similarity",
                                "exact_match_excess"})
    assert derived["exact_match_rate"] == 1.0 and derived["exact_match_excess"] == 0.5
    assert derived["mean_lcp_tokens"] == 8.0
    assert "ann@example.org" not in raw and "[EMAIL_ADDRESS]" in raw


# --------------------------------------------------------------------------- canary_exposure
def test_canary_items_rederive_exposure_and_hide_secrets(tmp_path: Path) -> None:
    """Space {q,z}^3 (8 secrets) with hand-set scores: ranks 3, 1 and 8, so exposures
    3 - log2 3, 3 and 0 bits (hand). One item per canary; the canary without an id gets its
    position; no secret appears raw in the items file, only its SHA-256 prefix."""
    order = ["zqz", "zzz", "qzq", "zqq", "zzq", "qzz", "qqz", "qqq"]  # most likely first
    model = table_lm({f"pin {s}": -float(i) for i, s in enumerate(order)})
    canaries = [{"id": "c1", "secret": "qzq", "repeats": 1},
                {"id": "c2", "secret": "zqz", "repeats": 4},
                {"secret": "qqq", "repeats": 0}]
    path = tmp_path / "canaries.json"
    path.write_text(json.dumps({"format": "pin {secret}", "alphabet": "qz", "length": 3,
                                "canaries": canaries}))
    result, items, raw = run_check(tmp_path, "canary_exposure", {"canaries": str(path)}, model)
    assert [i["id"] for i in items] == ["c1", "c2", "canary#2"]
    assert [i["rank"] for i in items] == [3, 1, 8]
    derived = assert_rederived("canary_exposure", result, items,
                               {"max_exposure", "mean_exposure", "max_possible_exposure"})
    assert derived["mean_exposure"] == pytest.approx((3 - math.log2(3) + 3 + 0) / 3, abs=1e-4)
    assert derived["max_exposure"] == 3.0 and derived["max_possible_exposure"] == 3.0
    for c in canaries:
        assert c["secret"] not in raw and secret_hash(c["secret"]) in raw


# --------------------------------------------------------------------------- membership_inference
def _mia_files(tmp_path: Path, n: int = 25) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    words = "alpha beta gamma delta epsilon zeta eta theta".split()
    mem = [f"member {' '.join(rng.choice(words, 5))} {i}" for i in range(n)] + ["short member"]
    non = [f"outsider {' '.join(rng.choice(words, 5))} {i}" for i in range(n)]
    (tmp_path / "m.txt").write_text("\n".join(mem))
    (tmp_path / "n.txt").write_text("\n".join(non))
    return tmp_path / "m.txt", tmp_path / "n.txt"


def _partly_leaky_lm() -> Any:
    """Hashed token log-probs, members +0.4 nats/token (overlapping classes, AUC < 1); texts
    starting with 'short' have no scored token (undefined score: excluded by the check)."""
    from audit.models.mock import hashed_token_log_probs

    def token_lps(call: Any) -> list[np.ndarray]:
        return [np.array([]) if t.startswith("short") else
                hashed_token_log_probs(t) + (0.4 if t.startswith("member") else 0.0)
                for t in call.args["texts"]]

    return scripted({"token_log_probs": token_lps}, capabilities={"sequence_log_prob"})


def test_mia_items_rederive_the_strongest_attack(tmp_path: Path) -> None:
    """26 members (one without a scored token) and 25 non-members: 51 items, the unscored one
    with None scores. From the items, the AUC of every attack is recomputed with scikit-learn on
    the scored texts; the reported AUC is the largest, and rederive gives the same AUC and TPRs."""
    from sklearn.metrics import roc_auc_score

    m, n = _mia_files(tmp_path)
    result, items, _ = run_check(tmp_path, "membership_inference",
                                 {"members": str(m), "nonmembers": str(n), "n_boot": 100},
                                 _partly_leaky_lm())
    assert len(items) == 51 and items[25]["id"] == "member25" and items[26]["id"] == "nonmember0"
    assert items[25]["scores"] == {"loss": None, "zlib": None, "min_k": None}
    assert_rederived("membership_inference", result, items,
                     {"auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr"})
    scored = [i for i in items if i["scores"]["loss"] is not None]
    aucs = [roc_auc_score([i["member"] for i in scored], [i["scores"][a] for i in scored])
            for a in ("loss", "zlib", "min_k")]
    assert 0.5 < max(aucs) < 1.0
    assert result.metric("auc").value == pytest.approx(max(aucs), abs=1e-12)


def test_mia_classifier_items_rederive_auc(tmp_path: Path) -> None:
    """Classifier path: one item per labelled text with its label and loss score; the re-derived
    AUC equals scikit-learn's on log p(true label) computed here from the items."""
    from sklearn.metrics import roc_auc_score

    rows = [("calm day at the lake", 0), ("so stressed about exams", 1), ("stress again", 1),
            ("calm and quiet", 0), ("a stressed week", 1), ("calm morning", 0)]
    for name, part in (("m.csv", rows), ("n.csv", rows[::-1])):
        (tmp_path / name).write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in part))
    model = keyword_classifier({"stressed": 2.0, "stress": 1.5, "calm": -2.0})
    result, items, _ = run_check(tmp_path, "membership_inference",
                                 {"members": str(tmp_path / "m.csv"),
                                  "nonmembers": str(tmp_path / "n.csv"), "n_boot": 100}, model)
    assert len(items) == 12 and [i["label"] for i in items[:6]] == [y for _, y in rows]
    assert_rederived("membership_inference", result, items, {"auc", "tpr_at_1pct_fpr"})
    expected = roc_auc_score([i["member"] for i in items], [i["scores"]["loss"] for i in items])
    assert result.metric("auc").value == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------- pii_leakage
EMAIL, PHONE, SSN = "bob.smith@example.com", "(415) 555-2671", "536-22-1234"
RESPONSES = {"Contact": f"sure, mail {EMAIL} or call {PHONE} today",
             "SSN": f"it is {SSN}, keep it safe", "weather": "sunny with light wind"}


def _pii_prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps({"prompts": [{"id": "contact", "text": "Contact me at"},
                                            {"id": "ssn", "text": "My SSN is"},
                                            {"id": "weather", "text": "The weather today is"},
                                            {"id": "other", "text": "Once upon a time"}]}))
    return path


@pytest.mark.parametrize("with_training", [True, False])
def test_pii_items_rederive_generation_and_leak_rates(tmp_path: Path, with_training: bool) -> None:
    """4 prompts x 3 samples = 12 items (prompt#sample). By construction 'contact' and 'ssn'
    generations hold PII: rate 6/12; with training data holding only the e-mail (and the phone
    in another format), 3/12 generations leak. Without training data the leak rate is neither
    reported nor re-derived. No raw PII in the items file."""
    from audit.models.mock import fake_adapter

    params = {"prompts": str(_pii_prompts(tmp_path)), "n_samples": 3, "backend": "builtin"}
    if with_training:
        (tmp_path / "train.txt").write_text(f"Reach Bob via {EMAIL.upper()} or 415.555.2671.\n")
        params["training_data"] = str(tmp_path / "train.txt")
    result, items, raw = run_check(tmp_path, "pii_leakage", params,
                                   fake_adapter(responses=RESPONSES))
    assert sorted(i["id"] for i in items) == sorted(
        f"{p}#{k}" for p in ("contact", "ssn", "weather", "other") for k in range(3))
    derived = assert_rederived("pii_leakage", result, items, {"pii_generation_rate"}
                               | ({"leaked_generation_rate"} if with_training else set()))
    assert derived["pii_generation_rate"] == pytest.approx(0.5)
    assert derived["leaked_generation_rate"] == (pytest.approx(0.25) if with_training else None)
    assert not any(s in raw for s in (EMAIL, PHONE, SSN))


# --------------------------------------------------------------------------- dp_audit
def test_dp_audit_items_rederive_the_guess_counts(tmp_path: Path) -> None:
    """400 canaries, a leaky LM (+3 nats when included): one item per canary id. From the items,
    m, r, v and v/r of the best candidate re-derive; v is also counted here against the
    inclusion bits the test drew itself (not the items' own 'correct' flags), and the inclusion
    bits never appear in the items (only guesses and their correctness)."""
    from tests.test_dp_audit_check import _canaries, _lm, _setup

    can = _canaries(400)
    folder = _setup(tmp_path, can)
    rng = np.random.default_rng(1)
    model = _lm(folder, {t: -30.0 + 3.0 * inc + rng.normal(0, 1)
                         for t, inc in zip(can.texts, can.included)})
    result, items, _ = run_check(tmp_path, "dp_audit", {}, model)
    assert [i["id"] for i in items] == [f"canary-{j:05d}" for j in range(400)]
    assert not any("included" in i for i in items)
    derived = assert_rederived("dp_audit", result, items,
                               {"canaries", "guesses", "correct_guesses", "guess_accuracy"})
    truth = dict(zip([f"canary-{j:05d}" for j in range(400)], can.included))
    v = sum((i["guess"] == 1) == bool(truth[i["id"]]) for i in items if i["guess"] != 0)
    assert derived["correct_guesses"] == v and derived["canaries"] == 400
    assert 0 < derived["guesses"] <= 400
