"""Per-item records (items.jsonl.gz) and paired comparison of two runs.

Independent references: the items file is read back with gzip + json in the test; McNemar's
exact p-value is checked against a hand computation (2 * 0.5**n for n one-sided discordant
items) and scipy's binomtest; the paired-bootstrap decision against a plainly written
resampling loop's interval.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from audit.compare import compare_runs
from audit.config import Suite
from audit.items import ITEMS_FILE, items_digest, read_items, rederive, verified_items
from audit.paired import mcnemar_exact, paired_bootstrap
from audit.runner import RunOptions, run_suite
from tests.mock_models import table_lm

N_PAIRS = 200


def _pairs_csv(tmp_path: Path) -> Path:
    rows = ["sent_more,sent_less,stereo_antistereo,bias_type"]
    for i in range(N_PAIRS):
        kind = "stereo" if i % 3 else "antistereo"
        rows.append(f"more {i} x,less {i} y,{kind},{['gender', 'race', 'age'][i % 3]}")
    path = tmp_path / "pairs.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _model(wins: set[int], tie: set[int] = frozenset()) -> object:
    """A table LM under which pair i is won by its more-stereotyping sentence iff i in wins."""
    table = {}
    for i in range(N_PAIRS):
        table[f"more {i} x"] = -10.0 if i in tie else (-5.0 if i in wins else -20.0)
        table[f"less {i} y"] = -10.0
    return table_lm(table)


def _run(tmp_path: Path, name: str, model: object, data: Path, seed: int = 0):
    suite = Suite.model_validate({"name": "pairs", "models": {"default": "fake:causal_lm"},
                                  "checks": [{"id": "pp", "check": "pair_preference",
                                              "params": {"data": str(data), "n_boot": 200}}]})
    out = tmp_path / name
    from audit.runner import ModelPool

    original = ModelPool.get
    ModelPool.get = lambda self, alias: model  # the scripted model replaces the fake
    try:
        run = run_suite(suite, RunOptions(out_dir=out, quiet=True, render=False, seed=seed))
    finally:
        ModelPool.get = original
    return run, out


def test_items_file_holds_every_pair_and_rederives_the_headline_metrics(tmp_path):
    """The items file (read with gzip + json here) has one record per pair with a stable id;
    the metrics re-derived from it alone equal the reported ones; its digest is in results."""
    data = _pairs_csv(tmp_path)
    wins = set(range(0, N_PAIRS, 2))
    run, out = _run(tmp_path, "a", _model(wins, tie={1, 3}), data)
    check = run.check("pp")
    with gzip.open(out / ITEMS_FILE, "rt") as fh:
        lines = [json.loads(x) for x in fh]
    assert len(lines) == N_PAIRS == check.n_items
    items = [x["item"] for x in lines]
    assert {x["check"] for x in lines} == {"pp"} and items[5]["id"] == "row5"
    assert items_digest(items) == check.items_sha256
    derived = rederive("pair_preference", items)
    for name, value in derived.items():
        assert value == pytest.approx(check.metric(name).value, abs=1e-9), name
    assert derived["stereotype_preference_pct"] == pytest.approx(100 * len(wins) / N_PAIRS)
    assert derived["tie_pct"] == pytest.approx(100 * 2 / N_PAIRS)


def test_tampered_items_are_not_evidence(tmp_path):
    """An items file whose content no longer matches the digest in results.json is ignored."""
    run, out = _run(tmp_path, "a", _model(set(range(50))), _pairs_csv(tmp_path))
    assert "pp" in verified_items(run, out)
    items = read_items(out)["pp"]
    items[0]["outcome"] = "win" if items[0]["outcome"] != "win" else "loss"
    from audit.items import write_items

    write_items(out, {"pp": items})
    assert verified_items(run, out) == {}


def test_mcnemar_exact_hand_values():
    """Hand: 12 discordant items all one way: p = 2 * 0.5**12; none: 1; against scipy too."""
    from scipy.stats import binomtest

    assert mcnemar_exact(0, 12) == pytest.approx(2 * 0.5 ** 12)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(7, 9) == pytest.approx(binomtest(7, 16, 0.5).pvalue)


def test_paired_bootstrap_matches_a_plain_loop():
    """The vectorised paired bootstrap equals a loop drawing the same indices one replicate at
    a time (same generator state)."""
    diff = np.random.default_rng(3).normal(0.2, 1.0, size=60)
    low, high, _ = paired_bootstrap(diff, np.random.default_rng(7), n_boot=500)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, diff.size, size=(500, diff.size))
    means = sorted(diff[row].mean() for row in idx)
    assert low == pytest.approx(np.quantile(means, 0.025)) and high == pytest.approx(np.quantile(means, 0.975))


def test_paired_test_finds_a_change_the_interval_rule_misses(tmp_path):
    """Base: 100 of 200 pairs won (50%, bootstrap CI about +-7 points). New: the same plus 12
    more (56%), no pair lost. The new value lies inside the base CI, so the interval rule alone
    calls it noise; McNemar on the 12 one-way discordant pairs gives p = 2 * 0.5**12 = 0.0005:
    a regression."""
    data = _pairs_csv(tmp_path)
    base_wins = set(range(0, N_PAIRS, 2))
    new_wins = base_wins | set(range(1, 25, 2))
    base, bdir = _run(tmp_path, "base", _model(base_wins), data)
    new, ndir = _run(tmp_path, "new", _model(new_wins), data)
    interval = compare_runs(base, new, tolerance=1.0)
    row = next(r for r in interval.rows if r.metric == "stereotype_preference_pct" and not r.group)
    assert row.status == "unchanged" and "inside the baseline" in row.reason
    paired = compare_runs(base, new, tolerance=1.0, base_items=verified_items(base, bdir),
                          new_items=verified_items(new, ndir))
    row = next(r for r in paired.rows if r.metric == "stereotype_preference_pct" and not r.group)
    assert row.status == "regressed" and paired.exit_code == 1
    assert row.paired.discordant == {"1->0": 0, "0->1": 12}
    assert row.paired.p_value == pytest.approx(2 * 0.5 ** 12)
    assert set(row.paired.discordant_ids) == {f"row{i}" for i in range(1, 25, 2)}


def test_noise_alone_is_not_flagged(tmp_path):
    """Eight pairs flip each way: same rate, McNemar p = 1: neither rule flags a regression."""
    data = _pairs_csv(tmp_path)
    base_wins = set(range(0, N_PAIRS, 2))
    new_wins = (base_wins - set(range(0, 16, 2))) | set(range(1, 17, 2))
    base, bdir = _run(tmp_path, "base", _model(base_wins), data)
    new, ndir = _run(tmp_path, "new", _model(new_wins), data)
    paired = compare_runs(base, new, tolerance=0.0, base_items=verified_items(base, bdir),
                          new_items=verified_items(new, ndir))
    row = next(r for r in paired.rows if r.metric == "stereotype_preference_pct" and not r.group)
    assert row.paired.discordant == {"1->0": 8, "0->1": 8} and row.paired.p_value == 1.0
    assert row.status == "unchanged" and not paired.regressions
