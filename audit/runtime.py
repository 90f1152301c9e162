"""Process-wide plumbing shared by the runner, the adapters and DP training: the one seeding
function, the one stable seed derivation, the one device resolver and the one rule for resolving
user paths. Light at import (torch only inside the functions that need it)."""

from __future__ import annotations

import hashlib
import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed derived from ``parts`` by SHA-256 (stable across runs and platforms)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global state and torch (when torch is imported or
    installed), CPU and CUDA."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is a usage error."""
    from audit.errors import usage

    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise usage("--device", device, "no CUDA device is available", "use --device cpu or auto")
    return device


def resolve_user_path(path: str | os.PathLike[str], base_dir: Path | None) -> Path:
    """The one rule for user paths: ``asset:NAME`` is an offline asset; ``~`` is expanded; an
    absolute path is kept; a relative path resolves against ``base_dir`` (the suite's folder for
    paths written in a suite) when it exists there, else against the working folder (paths
    given on the command line pass ``base_dir=None``)."""
    from audit.assets import asset_ref

    asset = asset_ref(str(path))
    if asset is not None:
        return asset
    p = Path(os.path.expanduser(str(path)))
    if p.is_absolute():
        return p
    if base_dir is not None and (base_dir / p).exists():
        return base_dir / p
    return Path.cwd() / p


def bf16_hardware(device: str) -> bool:
    """True when ``device`` computes bfloat16 matrix products in hardware: a CUDA GPU that
    supports bf16, or an x86 CPU with AVX512-BF16 or AMX-BF16. Elsewhere torch emulates bf16
    (on an AVX2-only CPU measured here about 400x slower than float32)."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
