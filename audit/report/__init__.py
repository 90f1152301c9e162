"""Rendering of audit results: the HTML transparency report, the model card and the comparison
report. Every function here is pure (results in, text out) except :func:`write_report`.

- :func:`render_html` -- one self-contained ``report.html`` (inline CSS and SVG, no scripts).
- :func:`render_model_card` -- ``model_card.md`` in the Hugging Face layout.
- :func:`render_compare_html` -- two runs side by side, regressions highlighted.
- :func:`write_report` -- writes report.html and model_card.md atomically into a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.results import RunResult

__all__ = ["render_html", "render_model_card", "render_compare_html", "write_report"]


def _css() -> Any:
    """The report stylesheet as Markup (our own file, inserted verbatim into ``<style>``)."""
    from markupsafe import Markup

    from audit.report.templating import read_asset

    return Markup(read_asset("report.css").replace("</", "<\\/"))


def render_html(run: RunResult, *, show_pii: bool = False, lang: str = "en") -> str:
    """The transparency report of ``run`` as one HTML document (PII redacted unless ``show_pii``),
    headings, labels and verdicts in ``lang`` (``en`` or ``zh``; numbers identical)."""
    from audit.report import i18n
    from audit.report.templating import html_env
    from audit.report.view import build_report_view

    with i18n.use(lang):
        view = build_report_view(run, show_pii=show_pii)
        return html_env(not show_pii, lang).get_template("report.html.j2").render(v=view, css=_css())


def render_model_card(run: RunResult, lang: str = "en") -> str:
    """``model_card.md`` for ``run``: Hugging Face layout plus Mitchell et al. 2019 sections."""
    from audit.report.model_card import render_model_card as _render

    return _render(run, lang)


def render_compare_html(base: RunResult, new: RunResult, comparison: Any = None) -> str:
    """Both runs side by side with regressions highlighted (``comparison`` from
    ``audit.compare.compare_runs``; computed with the default tolerance when None)."""
    from audit.report.compare_view import build_compare_view
    from audit.report.templating import html_env

    if comparison is None:
        from audit.compare import compare_runs

        comparison = compare_runs(base, new)
    view = build_compare_view(base, new, comparison)
    return html_env().get_template("compare.html.j2").render(v=view, css=_css())


def write_report(run: RunResult, out_dir: str | Path, show_pii: bool = False,
                 lang: str = "en") -> dict[str, Path]:
    """Write ``report.html`` and ``model_card.md`` (in ``lang``) into ``out_dir`` atomically;
    return their paths."""
    from audit.io import atomic_write_text

    out = Path(out_dir)
    html = render_html(run, show_pii=show_pii, lang=lang)
    card = render_model_card(run, lang)
    paths = {"html": atomic_write_text(out / "report.html", html),
             "model_card": atomic_write_text(out / "model_card.md", card)}
    return paths

