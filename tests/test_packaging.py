"""Every Python package under audit/ is listed in pyproject's explicit package list: an
unlisted one (as audit.backends once was) works from the source tree and is missing from the
wheel, so `pip install audit` would fail only for users."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_in_the_wheel_list() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "audit").rglob("__init__.py")}
    assert found - listed == set()
