"""The only orchestrator: load each model once, run checks in order, isolate failures, save often."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from audit import __version__
from audit.config import CheckConfig, Suite, parse_params
from audit.context import CheckContext, stable_seed
from audit.errors import CapabilityError, UsageError
from audit.gate import gate_check, summarise
from audit.io import atomic_write_text
from audit.results import (CheckResult, Figure, Finding, Metric, ModelInfo, Provenance, RunResult,
                           SuiteInfo)

PROVENANCE_PACKAGES = ("torch", "transformers", "numpy", "pandas", "scipy", "scikit-learn",
                       "fairlearn", "shap", "captum", "opacus", "presidio-analyzer", "pydantic",
                       "jinja2", "tokenizers", "safetensors")


@dataclass
class RunOptions:
    """Switches of one run (the CLI's flags)."""

    out_dir: Path = Path("audit-out")
    model: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int = 16
    allow_pickle: bool = False
    trust_remote_code: bool = False
    seed: int = 0
    resume: bool = False
    quiet: bool = False
    show_pii: bool = False
    only: list[str] = field(default_factory=list)
    command: str | None = None
    render: bool = True


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PROVENANCE_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def git_commit() -> str | None:
    """The current git commit of the working folder, if any."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(options: RunOptions) -> Provenance:
    """Versions, platform, device and git commit of this run."""
    return Provenance(audit_version=__version__, python=platform.python_version(),
                      platform=f"{platform.system()} {platform.machine()}",
                      packages=package_versions(), device=options.device,
                      git_commit=git_commit(), command=options.command)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and (when imported) torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


class ModelPool:
    """Loads each model alias at most once, on first use."""

    def __init__(self, suite: Suite, options: RunOptions):
        self.suite, self.options = suite, options
        self.loaded: dict[str, Any] = {}
        self._infos: dict[str, ModelInfo] = {}

    def spec_for(self, alias: str) -> Any:
        """The suite's spec for ``alias`` (``--model`` replaces ``default``; ``none`` is no model)."""
        if alias == "none":
            return "none"
        if alias == "default" and self.options.model:
            return self.options.model
        if alias not in self.suite.models:
            if alias == "default":
                raise UsageError(f"{self.suite.path}: models.default: no model given "
                                 "(fix: pass --model PATH|default-lm|default-encoder or add "
                                 "`models: {default: ...}` to the suite)")
        return self.suite.models[alias]

    def get(self, alias: str) -> Any:
        """The adapter for ``alias``, loading it the first time."""
        if alias not in self.loaded:
            from audit.models.loader import load_model

            self.loaded[alias] = load_model(self.spec_for(alias), alias=alias, options=self.options,
                                            base_dir=self.suite.base_dir)
        return self.loaded[alias]

    def infos(self) -> dict[str, ModelInfo]:
        """Provenance of every loaded model (hashed once per model, not after every check)."""
        for alias, adapter in self.loaded.items():
            if alias != "none" and (alias not in self._infos or getattr(adapter, "live_info", False)):
                self._infos[alias] = adapter.info()
        return dict(self._infos)


def _run_id(suite: Suite, options: RunOptions) -> str:
    key = json.dumps([suite.sha256, options.seed, options.model, options.only], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _previous(out_dir: Path) -> dict[str, CheckResult]:
    path = out_dir / "results.json"
    if not path.exists():
        return {}
    try:
        run = RunResult.model_validate_json(path.read_text(encoding="utf-8"))
    except Exception:
        return {}
    return {c.id: c for c in run.checks if c.status in ("passed", "failed", "skipped")}


def run_suite(suite: Suite, options: RunOptions) -> RunResult:
    """Run every check of ``suite``; write results.json after each; return the RunResult."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(options.seed)
    pool = ModelPool(suite, options)
    previous = _previous(options.out_dir) if options.resume else {}
    run = RunResult(run_id=_run_id(suite, options), created_at=_now(), seed=options.seed,
                    suite=SuiteInfo(name=suite.name, path=suite.path, sha256=suite.sha256,
                                    description=suite.description),
                    provenance=provenance(options), show_pii=options.show_pii)
    entries = [e for e in suite.checks if not options.only or e.id in options.only]
    _preflight(pool, entries)
    for index, entry in enumerate(entries):
        _announce(options, index, len(entries), entry)
        result = previous.get(entry.id)
        if result is None or result.params != entry.params or result.model != entry.model:
            result = run_check(entry, suite, pool, options)
        run.checks.append(gate_check(result, entry.gate))
        run = _finalise(run, pool)
        save_results(run, options.out_dir)
    return _finalise(run, pool)


def _preflight(pool: ModelPool, entries: list[CheckConfig]) -> None:
    from audit.models.loader import preflight

    for alias in dict.fromkeys(e.model for e in entries):
        preflight(pool.spec_for(alias), alias=alias, base_dir=pool.suite.base_dir)


def _finalise(run: RunResult, pool: ModelPool) -> RunResult:
    models = dict(run.models)
    models.update(pool.infos())
    return run.model_copy(update={"models": models, "summary": summarise(run.checks)})


def _announce(options: RunOptions, index: int, total: int, entry: CheckConfig) -> None:
    if not options.quiet:
        print(f"[{index + 1}/{total}] {entry.id} ({entry.check})", file=sys.stderr, flush=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_check(entry: CheckConfig, suite: Suite, pool: ModelPool, options: RunOptions) -> CheckResult:
    """Run one check, turning every failure into a result (error/skipped) instead of a crash."""
    from audit.registry import get_check

    base = CheckResult(id=entry.id, check=entry.check, model=entry.model, params=entry.params)
    start = time.perf_counter()
    try:
        spec = get_check(entry.check)
        base = base.model_copy(update={"area": spec.area, "method": spec.method})
        params = parse_params(spec.params, entry.params, str(suite.path), entry.id)
        adapter = pool.get(entry.model)
        missing = spec.missing_capabilities(adapter.capabilities)
        if missing:
            missing += _capability_notes(adapter, spec.requires)
            return base.model_copy(update={"status": "skipped", "skip_reason": missing})
        ctx = _context(entry, suite, pool, options, adapter)
        seed_everything(stable_seed(options.seed, entry.id))
        output = spec.fn(ctx, params)
        return _to_result(base, output, ctx, time.perf_counter() - start)
    except CapabilityError as exc:
        return base.model_copy(update={"status": "skipped", "skip_reason": str(exc),
                                       "duration_s": time.perf_counter() - start})
    except UsageError as exc:
        return base.model_copy(update={"status": "error", "error": f"UsageError: {exc}",
                                       "duration_s": time.perf_counter() - start})
    except Exception as exc:  # noqa: BLE001 - one failing check never loses the others
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        loc = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
        return base.model_copy(update={"status": "error", "error": detail + loc,
                                       "duration_s": time.perf_counter() - start})


def _capability_notes(adapter: Any, requires: list[frozenset[str]]) -> str:
    """Why the adapter lacks the capabilities a check needs, where it says (e.g. a served
    model's probe outcome): "; sequence_log_prob: <reason>"."""
    notes = getattr(adapter, "capability_notes", None) or {}
    wanted = sorted(set().union(*requires) - set(adapter.capabilities)) if requires else []
    return "".join(f"; {cap}: {notes[cap]}" for cap in wanted if cap in notes)


def _context(entry: CheckConfig, suite: Suite, pool: ModelPool, options: RunOptions,
             adapter: Any) -> CheckContext:
    from audit.assets import cache_dir

    class _LazyModels(dict):
        def __missing__(self, alias: str) -> Any:
            if alias not in suite.models and alias != "default":
                raise KeyError(alias)
            self[alias] = pool.get(alias)
            return self[alias]

    return CheckContext(model=adapter, seed=options.seed,
                        rng=np.random.default_rng(stable_seed(options.seed, entry.id)),
                        base_dir=suite.base_dir, models=_LazyModels(), show_pii=options.show_pii,
                        quiet=options.quiet, check_id=entry.id,
                        device=getattr(adapter, "device", "cpu"), cache_dir=cache_dir())


def _to_result(base: CheckResult, output: Any, ctx: CheckContext, duration: float) -> CheckResult:
    metrics = [m if isinstance(m, Metric) else Metric.model_validate(m) for m in output.metrics]
    findings = [f if isinstance(f, Finding) else Finding.model_validate(f) for f in output.findings]
    figures = [f if isinstance(f, Figure) else Figure.model_validate(f) for f in output.figures]
    evidence = json.loads(json.dumps(output.evidence, default=_jsonable))
    return base.model_copy(update={"metrics": metrics, "findings": findings, "figures": figures,
                                   "evidence": evidence, "duration_s": duration, "status": "passed",
                                   "warnings": list(ctx.warnings) + list(output.warnings)})


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def save_results(run: RunResult, out_dir: Path) -> Path:
    """Write results.json atomically (temp file + rename)."""
    path = out_dir / "results.json"
    atomic_write_text(path, run.model_dump_json(indent=2))
    return path
