"""pytest plugin: fixtures and assertions for fairness regression tests in a team's own test suite.

Installed with audit (entry point ``pytest11: audit``), so any test can write::

    from audit.pytest_plugin import assert_no_fairness_regression

    def test_new_model_is_not_less_fair(audit_run):
        new = audit_run("suites/ci-fairness.yaml", model="preds/new.csv")
        assert_no_fairness_regression("baseline/results.json", new, tolerance=0.02)

A metric regresses only when it is worse by more than ``tolerance`` AND outside the baseline's
confidence interval (``audit.compare.compare_runs``); the assertion message is the table of
regressions, naming the check, the metric and the group.

Command-line options: ``--audit-baseline PATH`` (a results.json; the ``audit_baseline`` fixture
loads it, or skips the test when it is not given) and ``--audit-tolerance X`` (default 0.0, the
``audit_tolerance`` fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import pytest


def load_results(source: Any) -> Any:
    """A RunResult from a RunResult, a results.json path, or an ``audit run`` output folder."""
    from audit.results import RunResult, load_run

    if isinstance(source, RunResult):
        return source
    path = Path(source)
    if path.is_dir():
        path = path / "results.json"
    return load_run(str(path))


def fairness_regressions(base: Any, new: Any, tolerance: float = 0.0,
                         checks: Iterable[str] | None = None, area: str | None = "fairness"
                         ) -> list[Any]:
    """Regressed rows of ``compare_runs(base, new, tolerance)``, limited to an area or check ids."""
    from audit.compare import compare_runs

    base_run, new_run = load_results(base), load_results(new)
    wanted = set(checks) if checks else None
    areas = {c.id: c.area for c in list(base_run.checks) + list(new_run.checks)}
    rows = compare_runs(base_run, new_run, tolerance=tolerance).regressions
    return [r for r in rows if (wanted is None or r.check_id in wanted)
            and (wanted is not None or area is None or areas.get(r.check_id) == area)]


def _describe(row: Any) -> str:
    """One regression as a line: check / metric [group]: base -> new (why)."""
    ci = row.base_ci
    span = f", baseline CI [{ci.low:.4g}, {ci.high:.4g}]" if ci and ci.low is not None \
        and ci.high is not None else ""
    fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
    return f"{row.label}: {fmt(row.base)} -> {fmt(row.new)}{span} ({row.reason})"


def assert_no_fairness_regression(base: Any, new: Any, tolerance: float = 0.0,
                                  checks: Iterable[str] | None = None,
                                  area: str | None = "fairness") -> None:
    """Fail (AssertionError) when any fairness metric or group value regressed from base to new.

    ``base``/``new``: RunResult objects, results.json paths or ``audit run`` output folders.
    ``checks`` limits the comparison to these check ids; otherwise checks of ``area`` (default
    fairness; None for all) are compared.
    """
    rows = fairness_regressions(base, new, tolerance, checks, area)
    if rows:
        lines = "\n  ".join(_describe(r) for r in rows)
        raise AssertionError(f"{len(rows)} fairness regression(s) beyond tolerance "
                             f"{tolerance:g} and outside the baseline CI:\n  {lines}")


def run_suite_file(suite: str | Path, out_dir: Path, model: str | None = None, seed: int = 0,
                   only: Iterable[str] = ()) -> Any:
    """Run a suite (path or shipped name) quietly into ``out_dir``; returns the RunResult."""
    from audit.config import load_suite
    from audit.runner import RunOptions, run_suite

    options = RunOptions(out_dir=Path(out_dir), model=model, seed=seed, quiet=True,
                         only=list(only), render=False)
    return run_suite(load_suite(suite), options)


def pytest_addoption(parser: Any) -> None:
    """``--audit-baseline`` and ``--audit-tolerance``."""
    group = parser.getgroup("audit", "audit fairness regression testing")
    group.addoption("--audit-baseline", default=None,
                    help="baseline results.json (or audit output folder) for fairness regressions")
    group.addoption("--audit-tolerance", type=float, default=0.0,
                    help="absolute worsening allowed before a metric counts as regressed")


@pytest.fixture
def audit_baseline(request: Any) -> Any:
    """The baseline RunResult named by ``--audit-baseline`` (skips the test when absent)."""
    path = request.config.getoption("--audit-baseline")
    if not path:
        pytest.skip("no --audit-baseline given")
    return load_results(path)


@pytest.fixture
def audit_tolerance(request: Any) -> float:
    """The ``--audit-tolerance`` value (default 0.0)."""
    return float(request.config.getoption("--audit-tolerance"))


@pytest.fixture
def audit_run(tmp_path: Path) -> Callable[..., Any]:
    """A function ``audit_run(suite, model=None, seed=0, only=())`` that runs a suite into a
    temporary folder and returns its RunResult."""
    counter = iter(range(1_000_000))

    def run(suite: str | Path, model: str | None = None, seed: int = 0,
            only: Iterable[str] = ()) -> Any:
        return run_suite_file(suite, tmp_path / f"run{next(counter)}", model, seed, only)

    return run


@pytest.fixture
def fairness_regression_check(audit_tolerance: float) -> Callable[..., None]:
    """``assert_no_fairness_regression`` with ``--audit-tolerance`` as the default tolerance."""

    def check(base: Any, new: Any, tolerance: float | None = None, **kwargs: Any) -> None:
        assert_no_fairness_regression(base, new, audit_tolerance if tolerance is None
                                      else tolerance, **kwargs)

    return check
