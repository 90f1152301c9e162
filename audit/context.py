"""CheckContext: what the runner hands each check besides its parameters."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np


@dataclass
class CheckContext:
    """The model, randomness, paths and switches a check may use.

    - ``model``: the adapter the check runs against (see ``audit.models.capabilities``).
    - ``models``: every loaded adapter by alias (a check may name a second, e.g. a reference LM).
    - ``rng``: a numpy Generator seeded from the run seed and the check id (same seed, same run).
    - ``base_dir``: the suite file's folder; relative data paths in params resolve against it.
    - ``show_pii``: when False (default) checks redact PII in evidence.
    - ``quiet``: silence progress bars.
    """

    model: Any
    seed: int
    rng: np.random.Generator
    base_dir: Path = field(default_factory=Path.cwd)
    models: dict[str, Any] = field(default_factory=dict)
    show_pii: bool = False
    quiet: bool = False
    check_id: str = ""
    device: str = "cpu"
    cache_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def resolve_path(self, path: str | os.PathLike[str]) -> Path:
        """Resolve a user path: ``asset:NAME`` (see ``audit assets``), ``~`` expanded, relative
        paths against the suite's folder first, then the working folder."""
        from audit.assets import asset_ref

        asset = asset_ref(str(path))
        if asset is not None:
            return asset
        p = Path(os.path.expanduser(str(path)))
        if p.is_absolute():
            return p
        candidate = self.base_dir / p
        return candidate if candidate.exists() else Path.cwd() / p

    def progress(self, iterable: Iterable[Any] | None = None, total: int | None = None,
                 desc: str = "") -> Any:
        """A tqdm progress bar on stderr, silent under ``--quiet``."""
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=f"{self.check_id}: {desc}".strip(": "),
                    disable=self.quiet, leave=False, dynamic_ncols=True)

    def warn(self, message: str) -> None:
        """Record a warning that ends up in the check's result (and the report)."""
        self.warnings.append(message)

    def torch_generator(self) -> Any:
        """A torch.Generator seeded like ``rng`` (imports torch lazily)."""
        import torch

        gen = torch.Generator()
        gen.manual_seed(int(self.rng.integers(0, 2**31 - 1)))
        return gen

    def sub_rng(self, label: str) -> np.random.Generator:
        """An independent, reproducible Generator for a named sub-task."""
        return np.random.default_rng(stable_seed(self.seed, self.check_id, label))


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed derived from ``parts`` by SHA-256 (stable across runs and platforms)."""
    import hashlib

    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
