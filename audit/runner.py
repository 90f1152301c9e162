"""The only orchestrator: load each model once, run checks in order, isolate failures, save often."""

from __future__ import annotations

import hashlib
import json
import platform
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
from audit.context import CheckContext
from audit.errors import CapabilityError, UsageError
from audit.carbon import CarbonMeter
from audit.gate import gate_check, summarise
from audit.io import atomic_write_text
from audit.runtime import seed_everything, stable_seed
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
    fail_on: list[str] = field(default_factory=list)
    country: str | None = None
    carbon: bool = False  # the CLI measures energy by default; library callers opt in
    backend: str = "local"
    ray_address: str | None = None


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


class ModelPool:
    """Loads each model alias at most once, on first use."""

    def __init__(self, suite: Suite, options: RunOptions):
        self.suite, self.options = suite, options
        self.loaded: dict[str, Any] = {}
        self._infos: dict[str, ModelInfo] = {}
        self._identities: dict[str, dict[str, Any]] = {}

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

    def identity(self, alias: str) -> dict[str, Any]:
        """What identifies a model without loading it: its spec and its files' SHA-256 (the
        resume key); computed once per alias."""
        if alias not in self._identities:
            from audit.models.loader import model_identity

            self._identities[alias] = model_identity(self.spec_for(alias), self.options,
                                                     self.suite.base_dir)
        return self._identities[alias]


def _run_id(suite: Suite, options: RunOptions) -> str:
    key = json.dumps([suite.sha256, options.seed, options.model, options.only], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _previous(out_dir: Path) -> RunResult | None:
    path = out_dir / "results.json"
    if not path.exists():
        return None
    try:
        return RunResult.model_validate_json(path.read_text(encoding="utf-8"))
    except Exception:
        return None


def check_fingerprint(entry: CheckConfig, suite: Suite, pool: "ModelPool",
                      options: RunOptions) -> str:
    """SHA-256 of everything a check's result depends on: audit version, suite file hash, seed,
    the check's name/params/model alias, and the model's spec and file hashes. ``--resume``
    reuses a result only when this matches."""
    model = pool.identity(entry.model) if entry.model != "none" else "none"
    key = {"audit": __version__, "suite": suite.sha256, "seed": options.seed,
           "check": entry.check, "params": entry.params, "alias": entry.model, "model": model,
           "dtype": options.dtype, "show_pii": options.show_pii}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def run_suite(suite: Suite, options: RunOptions) -> RunResult:
    """Run every check of ``suite``; write results.json after each; return the RunResult."""
    if options.backend == "ray":
        from audit.backends.ray_backend import run_suite_ray

        return run_suite_ray(suite, options)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(options.seed)
    pool = ModelPool(suite, options)
    entries = [e for e in suite.checks if not options.only or e.id in options.only]
    prepare_assets(suite, entries, pool, options)
    _preflight(pool, entries)
    previous = _previous(options.out_dir) if options.resume else None
    old_items = _previous_items(previous, options.out_dir)
    run = RunResult(run_id=_run_id(suite, options), created_at=_now(), seed=options.seed,
                    suite=SuiteInfo(name=suite.name, path=suite.path, sha256=suite.sha256,
                                    description=suite.description),
                    provenance=provenance(options), show_pii=options.show_pii)
    items: dict[str, list[dict[str, Any]]] = {}
    meter = CarbonMeter(options.country, enabled=options.carbon)
    for index, entry in enumerate(entries):
        _announce(options, index, len(entries), entry)
        result = _reusable(previous, entry, suite, pool, options)
        if result is not None:
            items[entry.id] = old_items.get(entry.id, [])
        else:
            with meter.task(entry.id) as box:
                result, items[entry.id] = execute_check(entry, suite, pool, options)
            result = result.model_copy(update={"environment": box["env"]})
        run.checks.append(gate_check(result, entry.gate))
        run = _finalise(run, pool, previous, options)
        save_results(run, options.out_dir, items)
    run = _finalise(run, pool, previous, options).model_copy(update={"environment": meter.stop()})
    save_results(run, options.out_dir, items)
    return run


def _previous_items(previous: RunResult | None, out_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Items of the previous run that still match their recorded digests (for reused checks)."""
    if previous is None:
        return {}
    from audit.items import verified_items

    return verified_items(previous, out_dir)


def _reusable(previous: RunResult | None, entry: CheckConfig, suite: Suite, pool: "ModelPool",
              options: RunOptions) -> CheckResult | None:
    """The previous result of ``entry`` when ``--resume`` may reuse it (same fingerprint and it
    did not error), marked ``reused``; else None."""
    if previous is None:
        return None
    old = previous.check(entry.id)
    if old is None or old.status == "error" or old.fingerprint is None:
        return None
    if old.fingerprint != check_fingerprint(entry, suite, pool, options):
        if not options.quiet:
            print(f"  {entry.id}: inputs changed since the previous run, recomputing",
                  file=sys.stderr, flush=True)
        return None
    return old.model_copy(update={"reused": True, "gates": []})


def prepare_assets(suite: Suite, entries: list[CheckConfig], pool: "ModelPool",
                   options: RunOptions) -> None:
    """Build or convert every asset the run refers to that is not ready yet, announced on
    stderr, before the first check: resolving an asset later never builds anything."""
    from audit.assets import is_prepared, prepare_asset, referenced_assets

    specs = [pool.spec_for(a) for a in dict.fromkeys(e.model for e in entries)]
    values = [s.model_dump() if hasattr(s, "model_dump") else s for s in specs]
    values += [e.params for e in entries]
    for name in referenced_assets(values):
        if is_prepared(name):
            continue
        print(f"audit: preparing asset {name} (a one-time build into the cache)", file=sys.stderr,
              flush=True)
        prepare_asset(name)


def _preflight(pool: ModelPool, entries: list[CheckConfig]) -> None:
    from audit.models.loader import preflight

    for alias in dict.fromkeys(e.model for e in entries):
        preflight(pool.spec_for(alias), alias=alias, base_dir=pool.suite.base_dir)


def _finalise(run: RunResult, pool: ModelPool, previous: RunResult | None,
              options: RunOptions) -> RunResult:
    """Models' provenance (loaded now, or kept from the previous run for reused checks), the
    synthetic flag and the gate summary."""
    models = dict(run.models)
    if previous is not None:
        reused_aliases = {c.model for c in run.checks if c.reused}
        models.update({a: m for a, m in previous.models.items() if a in reused_aliases})
    models.update(pool.infos())
    synthetic = any(bool(m.details.get("synthetic")) for m in models.values())
    return run.model_copy(update={"models": models, "synthetic": synthetic,
                                  "summary": summarise(run.checks, options.fail_on)})


def _announce(options: RunOptions, index: int, total: int, entry: CheckConfig) -> None:
    if not options.quiet:
        print(f"[{index + 1}/{total}] {entry.id} ({entry.check})", file=sys.stderr, flush=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_check(entry: CheckConfig, suite: Suite, pool: ModelPool, options: RunOptions) -> CheckResult:
    """Run one check and return its result (its per-item records are dropped; see
    :func:`execute_check`)."""
    return execute_check(entry, suite, pool, options)[0]


def execute_check(entry: CheckConfig, suite: Suite, pool: ModelPool,
                  options: RunOptions) -> tuple[CheckResult, list[dict[str, Any]]]:
    """Run one check: its result and its per-item records (redacted unless ``--show-pii``;
    counted and hashed in the result)."""
    result, items = _run_check(entry, suite, pool, options)
    if result.status != "error" and items:
        try:
            items = _clean_items(entry.id, items, options.show_pii)
        except ValueError as exc:
            return result.model_copy(update={"status": "error", "error": f"bad items: {exc}",
                                             "error_type": "runtime"}), []
    from audit.items import items_digest

    digest = items_digest(items) if items else None
    return result.model_copy(update={"n_items": len(items), "items_sha256": digest}), items


def _clean_items(check_id: str, items: list[dict[str, Any]], show_pii: bool) -> list[dict[str, Any]]:
    """Validated, JSON-clean and (unless ``show_pii``) redacted items."""
    from audit.items import validate_items
    from audit.report.redact import redact_value

    validate_items(check_id, items)
    clean = json.loads(json.dumps(items, default=_jsonable))
    return [dict(redact_value({k: v for k, v in it.items() if k != "id"}, show_pii), id=it["id"])
            for it in clean]


def _run_check(entry: CheckConfig, suite: Suite, pool: ModelPool,
               options: RunOptions) -> tuple[CheckResult, list[dict[str, Any]]]:
    """Run one check, turning every failure into a result (error/skipped) instead of a crash.
    The result records the check's fingerprint (for ``--resume``); an error keeps its full
    traceback in results.json, the console shows one line."""
    from audit.registry import get_check

    base = CheckResult(id=entry.id, check=entry.check, model=entry.model, params=entry.params)
    start = time.perf_counter()
    try:
        spec = get_check(entry.check)
        base = base.model_copy(update={"area": spec.area, "method": spec.method,
                                       "fingerprint": check_fingerprint(entry, suite, pool, options)})
        params = parse_params(spec.params, entry.params, str(suite.path), entry.id, entry.check)
        adapter = pool.get(entry.model)
        missing = spec.missing_capabilities(adapter.capabilities)
        if missing:
            why = getattr(adapter, "capability_notes", {}) or {}
            note = "; ".join(f"{k}: {v}" for k, v in sorted(why.items()))
            return base.model_copy(update={"status": "skipped",
                                           "skip_reason": missing + (f" ({note})" if note else "")}), []
        ctx = _context(entry, suite, pool, options, adapter)
        seed_everything(stable_seed(options.seed, entry.id))
        output = _call_with_fallback_record(spec.fn, ctx, params)
        return _to_result(base, output, ctx, time.perf_counter() - start), list(output.items)
    except CapabilityError as exc:
        return base.model_copy(update={"status": "skipped", "skip_reason": str(exc),
                                       "duration_s": time.perf_counter() - start}), []
    except UsageError as exc:
        return base.model_copy(update={"status": "error", "error": f"UsageError: {exc}",
                                       "error_type": "usage", "traceback": _traceback(exc),
                                       "duration_s": time.perf_counter() - start}), []
    except Exception as exc:  # noqa: BLE001 - one failing check never loses the others
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        loc = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
        return base.model_copy(update={"status": "error", "error": detail + loc,
                                       "error_type": "runtime", "traceback": _traceback(exc),
                                       "duration_s": time.perf_counter() - start}), []


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _call_with_fallback_record(fn: Any, ctx: CheckContext, params: Any) -> Any:
    """Run the check; every fallback a library took meanwhile (``audit.fallbacks``) becomes a
    warning finding on this check."""
    from audit import fallbacks

    fallbacks.reset()
    output = fn(ctx, params)
    for message in fallbacks.take():
        output.findings.append(Finding(severity="warning", message=f"Fallback used: {message}"))
    return output


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


def save_results(run: RunResult, out_dir: Path,
                 items: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    """Write the items file (when there are items) and then results.json, each atomically
    (temp file + rename), so results.json never names items that are not on disk."""
    if items is not None and any(items.values()):
        from audit.items import ITEMS_FILE, write_items

        write_items(out_dir, {k: v for k, v in items.items() if v})
        run = run.model_copy(update={"items_file": ITEMS_FILE})
    elif items is not None:
        from audit.items import ITEMS_FILE

        (out_dir / ITEMS_FILE).unlink(missing_ok=True)  # a stale file from an earlier run
    path = out_dir / "results.json"
    atomic_write_text(path, run.model_dump_json(indent=2))
    return path
