"""Turn a suite's model spec (or ``--model``) into an adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.config import ModelSpec
from audit.errors import usage


def _resolve_relative(path: str, base_dir: Path | None) -> str:
    """A model path by the one rule of ``audit.runtime.resolve_user_path`` (asset names are
    resolved by the callers, hub ids pass through)."""
    from audit.assets import MODEL_ASSETS
    from audit.runtime import resolve_user_path

    if path in MODEL_ASSETS:
        return path
    resolved = resolve_user_path(path, base_dir)
    if not resolved.exists() and _looks_like_hub_id(path):
        return path
    return str(resolved)


def model_identity(spec: Any, options: Any, base_dir: Path | None) -> dict[str, Any]:
    """What identifies a model without loading it: the spec (as data) and the SHA-256 of its
    files (a model folder's weights/config/tokenizer, or a predictions/data file)."""
    from audit.assets import MODEL_ASSETS, is_prepared, resolve_model
    from audit.io import file_hashes, sha256_file

    if spec == "none":
        return {"spec": "none"}
    if isinstance(spec, str):
        spec = _spec_from_string(spec)
    if not isinstance(spec, ModelSpec):
        spec = ModelSpec.model_validate(spec)
    # where and how many times a model runs does not change its answers (audit.backends)
    out: dict[str, Any] = {"spec": spec.model_dump(exclude={"replicas", "resources"})}
    if not spec.path or spec.adapter in ("fake", "openai"):
        return out
    path = spec.path
    if path in MODEL_ASSETS:
        path = str(resolve_model(path, prepare=False)) if is_prepared(path) else path
    else:
        path = _resolve_relative(path, base_dir)
    p = Path(path)
    out["files"] = file_hashes(p) if p.is_dir() else ({p.name: sha256_file(p)} if p.is_file() else {})
    return out


def load_model(spec: Any, *, alias: str, options: Any, base_dir: Path | None) -> Any:
    """Load one model from a spec: asset name, folder, hub id, predictions file, or a mapping."""
    if spec == "none":
        from audit.models.mock import NoModel

        return NoModel()
    if isinstance(spec, str):
        spec = _spec_from_string(spec)
    if not isinstance(spec, ModelSpec):
        spec = ModelSpec.model_validate(spec)
    path = _resolve_relative(spec.path, base_dir) if spec.path else None
    if spec.resources.get("num_cpus"):
        _set_threads(int(spec.resources["num_cpus"]))
    if spec.adapter == "fake":
        from audit.models.mock import fake_adapter

        return fake_adapter(alias=alias, **spec.options)
    if spec.adapter == "predictions":
        from audit.models.predictions import PredictionsAdapter

        return PredictionsAdapter.from_file(path or "", alias=alias, **spec.options)
    if spec.adapter == "openai":
        from audit.models.openai import load_openai

        return load_openai(spec, alias=alias)
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


def _set_threads(n: int) -> None:
    """``resources.num_cpus`` is also the torch thread count of the model's computations, in a
    local run as in a Ray replica: the same threads give the same floating-point results."""
    import torch

    torch.set_num_threads(max(1, n))


def _spec_from_string(text: str) -> Any:
    if text.startswith("openai:"):
        return _openai_shorthand(text)
    if text.startswith("fake"):
        kind = text.split(":", 1)[1] if ":" in text else "causal_lm"
        return ModelSpec(adapter="fake", options={"kind": kind})
    if text.startswith("responses:"):
        return ModelSpec(adapter="responses", path=text.split(":", 1)[1])
    if text.endswith((".csv", ".parquet", ".pq")):
        return ModelSpec(adapter="predictions", path=text)
    return ModelSpec(adapter="hf", path=text)


def _openai_shorthand(text: str) -> Any:
    """``openai:NAME@URL`` -> an openai ModelSpec (NAME may hold ``/`` or ``:``)."""
    import re

    from audit.config import ModelSpec

    match = re.match(r"^openai:(?P<name>.+?)@(?P<url>https?://\S+)$", text)
    if not match:
        raise usage("--model", text, "not of the form openai:NAME@URL",
                    "e.g. --model openai:my-model@http://127.0.0.1:8000/v1")
    return ModelSpec(adapter="openai", model=match["name"], base_url=match["url"])


def _load_hf(path: str, alias: str, options: Any, extra: dict[str, Any]) -> Any:
    from audit.assets import MODEL_ASSETS, resolve_model
    from audit.models.hf import load_hf

    if not path:
        raise usage("suite", f"models.{alias}", "no path given", "set `path:` or an asset name")
    source = str(resolve_model(path, prepare=False)) if path in MODEL_ASSETS else path
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


def preflight(spec: Any, *, alias: str, base_dir: Path | None) -> None:
    """Fail fast (before any check runs) when a model spec points at a missing file or folder,
    or at a folder that is not a transformers model (no config.json, or one that is not JSON)."""
    from audit.assets import MODEL_ASSETS

    if spec == "none":
        return
    if isinstance(spec, str):
        spec = _spec_from_string(spec)
    if not isinstance(spec, ModelSpec):
        spec = ModelSpec.model_validate(spec)
    if spec.adapter == "fake" or not spec.path or spec.path in MODEL_ASSETS:
        return
    path = Path(_resolve_relative(spec.path, base_dir))
    if spec.adapter == "hf" and path.is_dir():
        check_model_folder(path, alias)
        return
    if path.exists() or (spec.adapter == "hf" and _looks_like_hub_id(spec.path)):
        return
    what = "model folder" if spec.adapter == "hf" else f"{spec.adapter} file"
    raise usage(str(path), f"models.{alias}", f"{what} not found",
                "pass an existing path, a hub id (online only) or an asset from `audit assets`")


def check_model_folder(path: Path, alias: str = "default") -> None:
    """A transformers model folder must hold a config.json that is JSON (or a GGUF file): one
    usage error naming the folder and the fix otherwise (never transformers' own advice)."""
    import json

    if any(path.glob("*.gguf")):
        return
    config = path / "config.json"
    where = f"models.{alias}"
    if not any(path.iterdir()):
        raise usage(str(path), where, "the model folder is empty",
                    "point at a transformers model folder (config.json + weights) or an asset "
                    "name from `audit assets`")
    if not config.is_file():
        raise usage(str(path), where, "no config.json in the model folder",
                    "point at a transformers model folder (config.json + weights + tokenizer), "
                    "e.g. one written by save_pretrained")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise usage(str(config), where, "config.json is not UTF-8 text",
                    "re-save the model with save_pretrained") from None
    except json.JSONDecodeError as exc:
        raise usage(str(config), f"line {exc.lineno}", f"config.json is not valid JSON ({exc.msg})",
                    "fix the file or re-save the model with save_pretrained") from None
