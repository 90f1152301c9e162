"""Turn a suite's model spec (or ``--model``) into an adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.errors import usage


def _resolve_relative(path: str, base_dir: Path) -> str:
    from audit.assets import asset_ref

    asset = asset_ref(path)
    if asset is not None:
        return str(asset)
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return str(p)
    candidate = base_dir / p
    return str(candidate) if candidate.exists() else str(p)


def load_model(spec: Any, *, alias: str, options: Any, base_dir: Path) -> Any:
    """Load one model from a spec: asset name, folder, hub id, predictions file, or a mapping."""
    from audit.config import ModelSpec

    if spec == "none":
        from audit.models.mock import NoModel

        return NoModel()
    if isinstance(spec, str):
        spec = _spec_from_string(spec)
    if not isinstance(spec, ModelSpec):
        spec = ModelSpec.model_validate(spec)
    path = _resolve_relative(spec.path, base_dir) if spec.path else None
    if spec.adapter == "fake":
        from audit.models.mock import fake_adapter

        return fake_adapter(alias=alias, **spec.options)
    if spec.adapter == "predictions":
        from audit.models.predictions import PredictionsAdapter

        return PredictionsAdapter.from_file(path or "", alias=alias, **spec.options)
    if spec.adapter == "responses":
        from audit.models.responses import ResponsesAdapter

        return ResponsesAdapter.from_file(path or "", alias=alias, **spec.options)
    if spec.adapter == "sklearn":
        from audit.models.tabular import TabularAdapter

        extra = dict(spec.options)
        if extra.get("eval_path"):
            extra["eval_path"] = _resolve_relative(str(extra["eval_path"]), base_dir)
        return TabularAdapter.train(path or "", alias=alias, base_dir=base_dir,
                                    allow_pickle=options.allow_pickle, **extra)
    return _load_hf(path or "", alias, options, spec.options)


def _spec_from_string(text: str) -> Any:
    from audit.config import ModelSpec

    if text.startswith("fake"):
        kind = text.split(":", 1)[1] if ":" in text else "causal_lm"
        return ModelSpec(adapter="fake", options={"kind": kind})
    if text.startswith("responses:"):
        return ModelSpec(adapter="responses", path=text.split(":", 1)[1])
    if text.endswith((".csv", ".parquet", ".pq")):
        return ModelSpec(adapter="predictions", path=text)
    return ModelSpec(adapter="hf", path=text)


def _load_hf(path: str, alias: str, options: Any, extra: dict[str, Any]) -> Any:
    from audit.assets import MODEL_ASSETS, resolve_model
    from audit.models.hf import load_hf

    if not path:
        raise usage("suite", f"models.{alias}", "no path given", "set `path:` or an asset name")
    source = str(resolve_model(path)) if path in MODEL_ASSETS else path
    if path not in MODEL_ASSETS and not Path(source).exists() and not _looks_like_hub_id(source):
        raise usage(source, "model", "model folder not found",
                    "pass an existing folder, a hub id (online only) or an asset from `audit assets`")
    if options.quiet:
        import transformers

        transformers.utils.logging.disable_progress_bar()
    kwargs = dict(device=options.device, dtype=options.dtype, batch_size=options.batch_size,
                  allow_pickle=options.allow_pickle, trust_remote_code=options.trust_remote_code)
    kwargs.update(extra)
    adapter = load_hf(source, alias=alias, **kwargs)
    if path in MODEL_ASSETS:
        adapter.asset_name = path
    return adapter


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~", "/"))


def preflight(spec: Any, *, alias: str, base_dir: Path) -> None:
    """Fail fast (before any check runs) when a model spec points at a missing file or folder."""
    from audit.assets import MODEL_ASSETS
    from audit.config import ModelSpec

    if spec == "none":
        return
    if isinstance(spec, str):
        spec = _spec_from_string(spec)
    if not isinstance(spec, ModelSpec):
        spec = ModelSpec.model_validate(spec)
    if spec.adapter == "fake" or not spec.path or spec.path in MODEL_ASSETS:
        return
    path = Path(_resolve_relative(spec.path, base_dir))
    if path.exists() or (spec.adapter == "hf" and _looks_like_hub_id(spec.path)):
        return
    what = "model folder" if spec.adapter == "hf" else f"{spec.adapter} file"
    raise usage(str(path), f"models.{alias}", f"{what} not found",
                "pass an existing path, a hub id (online only) or an asset from `audit assets`")
