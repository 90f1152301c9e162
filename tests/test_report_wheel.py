"""The templates ship inside the wheel (package ``audit._templates``) and the installed package
renders a report with no repository checkout around it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ["report.html.j2", "_macros.html.j2", "compare.html.j2", "model_card.md.j2",
             "report.css"]


@pytest.mark.slow
def test_wheel_ships_templates_and_renders_without_repo(tmp_path: Path) -> None:
    """Build the wheel from a copy of the source, install it into an empty folder, render there."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__",
                                                             "build", "*.egg-info", "out*"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path / "whl")], check=True)
    wheel = next((tmp_path / "whl").glob("audit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert all(f"audit/_templates/{t}" in names for t in TEMPLATES)
    assert "audit/_templates/locale/zh/LC_MESSAGES/audit.mo" in names  # the Chinese catalog
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True)
    fixture = (ROOT / "tests" / "report_fixtures.py").read_text(encoding="utf-8")
    (tmp_path / "fixture_mod.py").write_text(fixture, encoding="utf-8")
    code = ("import audit.report as r, fixture_mod as f;"
            "assert r.__file__.startswith(%r);"
            "print(len(r.render_html(f.rich_run())), len(r.render_model_card(f.rich_run())));"
            "zh = r.render_html(f.rich_run(), lang='zh');"
            "assert '\u8ba1\u5206\u5361' in zh and 'lang=\"zh-Hans\"' in zh, 'no Chinese report'"
            % str(target))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                         capture_output=True, text=True,
                         env={"PYTHONPATH": f"{target}:{tmp_path}", "PATH": "/usr/bin:/bin"})
    html_len, card_len = map(int, out.stdout.split())
    assert html_len > 20_000 and card_len > 2_000
