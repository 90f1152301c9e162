"""CI fairness regression: `audit compare` and the pytest plugin on two prediction files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SUITE = textwrap.dedent("""\
    name: ci-regression-test
    models:
      default: {adapter: predictions, path: base.csv}
    checks:
      - id: by-group
        check: group_fairness
        params: {sensitive: [group], n_boot: 1000}
    """)


def _base(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    """Two groups, half positives, TPR 0.8 and FPR 0.2 in both."""
    rng = np.random.default_rng(seed)
    group = np.repeat(["a", "b"], n)
    y = np.tile(np.r_[np.ones(n // 2, int), np.zeros(n - n // 2, int)], 2)
    y_pred = np.where(y == 1, rng.random(2 * n) < 0.8, rng.random(2 * n) < 0.2).astype(int)
    return pd.DataFrame({"y_true": y, "y_pred": y_pred, "group": group})


def _drop_tpr(frame: pd.DataFrame, group: str, drop: float) -> pd.DataFrame:
    """Turn true positives of ``group`` into false negatives so its TPR falls by ``drop``."""
    out = frame.copy()
    in_group = out.group == group
    tp = out.index[in_group & (out.y_true == 1) & (out.y_pred == 1)]
    k = int(round(drop * int((in_group & (out.y_true == 1)).sum())))
    out.loc[tp[:k], "y_pred"] = 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """results.json of the base file and of two degraded copies (TPR of 'b' -0.10 and -0.01)."""
    from audit.cli import main

    root = tmp_path_factory.mktemp("regression")
    (root / "suite.yaml").write_text(SUITE)
    frames = {"base": _base(), "big": _drop_tpr(_base(), "b", 0.10),
              "small": _drop_tpr(_base(), "b", 0.01)}
    out = {}
    for name, frame in frames.items():
        frame.to_csv(root / f"{name}.csv", index=False)
        rc = main(["run", str(root / "suite.yaml"), "--model", str(root / f"{name}.csv"),
                   "--out", str(root / name), "--quiet", "--no-report"])
        assert rc == 0
        out[name] = root / name / "results.json"
    return out


def test_compare_exits_1_and_names_the_group_when_tpr_drops_by_a_tenth(runs, capsys):
    """Reference: group b's TPR falls from ~0.80 to ~0.70 (constructed); with 2,500 positives its
    baseline CI is about +/-0.016, so the drop is beyond a 0.02 tolerance and outside the CI."""
    from audit.cli import main

    capsys.readouterr()
    rc = main(["compare", str(runs["base"]), str(runs["big"]), "--tolerance", "0.02"])
    text = capsys.readouterr().out
    assert rc == 1
    assert "by-group / tpr [b]" in text
    assert "tpr [a]" not in text.split("regression")[-1]


def test_compare_exits_0_when_the_drop_is_inside_the_baseline_ci(runs, capsys):
    """Reference: a 0.01 TPR drop in group b (25 of 2,500 positives) lies inside the baseline's
    95% CI (about +/-0.016), so with the interval rule alone (--no-paired) even zero tolerance
    calls it noise. Paired by row (the default, both runs have items), the 25 rows that all flip
    one way are a real change: McNemar flags it (exit 1)."""
    from audit.cli import main

    rc = main(["compare", str(runs["base"]), str(runs["small"]), "--tolerance", "0", "--no-paired"])
    assert rc == 0, capsys.readouterr().out
    assert main(["compare", str(runs["base"]), str(runs["small"]), "--tolerance", "0"]) == 1


def test_pytest_plugin_assertion_names_the_group(runs):
    """Reference: the same comparison through the plugin's assert_no_fairness_regression."""
    from audit.pytest_plugin import assert_no_fairness_regression

    assert_no_fairness_regression(runs["base"], runs["small"], tolerance=0.0)
    with pytest.raises(AssertionError, match=r"by-group / tpr \[b\]: 0\.8\d* -> 0\.7"):
        assert_no_fairness_regression(runs["base"], runs["big"], tolerance=0.02)


def test_pytest_plugin_fixtures_in_a_users_test_suite(runs, tmp_path):
    """Reference: a user's test file run by pytest with the plugin (-p audit.pytest_plugin) and
    --audit-baseline: it must fail on the big drop and pass on the small one."""
    test_file = tmp_path / "test_user.py"
    test_file.write_text(textwrap.dedent(f"""\
        def test_big(audit_baseline, fairness_regression_check):
            fairness_regression_check(audit_baseline, r"{runs['big']}", tolerance=0.02)

        def test_small(audit_baseline, fairness_regression_check):
            fairness_regression_check(audit_baseline, r"{runs['small']}")
        """))
    from importlib.metadata import entry_points

    root = Path(__file__).resolve().parents[1]
    installed = any(e.value == "audit.pytest_plugin" for e in entry_points(group="pytest11"))
    load = [] if installed else ["-p", "audit.pytest_plugin"]  # entry point when pip-installed
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", *load, "-p", "no:cacheprovider",
                           str(test_file), "--rootdir", str(tmp_path),
                           "--audit-baseline", str(runs["base"])],
                          capture_output=True, text=True, cwd=root, timeout=300)
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout[-2000:]
    assert "tpr [b]" in proc.stdout
