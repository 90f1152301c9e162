"""The jinja2 environments of the reports (templates in ``audit._templates`` / reports/templates).

HTML templates render with autoescape on, so every value from results.json is text. Both
environments carry jinja2's ``i18n`` extension with the language's gettext catalog installed
(:mod:`audit.report.i18n`); ``{{ _("...") }}`` marks translatable text. Never pass values from
results.json as ``_()`` parameters: they would bypass the redacting ``finalize``. The Markdown
environment has no HTML autoescape; instead every ``{{ }}`` output passes through
:func:`audit.report.fmt.md_escape` (its ``finalize``), unless wrapped in :class:`MdSafe` by code
that built it from escaped parts.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATE_PACKAGE = "audit._templates"
REPO_TEMPLATES = Path(__file__).resolve().parents[2] / "reports" / "templates"


class MdSafe(str):
    """Markdown built by our code from escaped parts; the Markdown finalize passes it through."""


def _read_template(name: str) -> str | None:
    """Template text from the repository folder beside this ``audit`` package (a source
    checkout: its templates belong to the code that runs, even when an editable install of
    another checkout maps ``audit._templates`` elsewhere), else from the installed package."""
    path = REPO_TEMPLATES / name
    if path.is_file():
        return path.read_text(encoding="utf-8")
    try:
        from importlib.resources import files

        resource = files(TEMPLATE_PACKAGE).joinpath(name)
        if resource.is_file():
            return resource.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    return None


def read_asset(name: str) -> str:
    """A template or stylesheet's text; a missing one is an internal error naming the file."""
    text = _read_template(name)
    if text is None:
        raise FileNotFoundError(f"report template {name!r} not found in {TEMPLATE_PACKAGE} "
                                f"or {REPO_TEMPLATES}")
    return text


def _loader() -> Any:
    """A jinja2 loader over :func:`read_asset` (works from a wheel, a zip or the repo)."""
    from jinja2 import FunctionLoader

    return FunctionLoader(lambda name: (read_asset(name), None, lambda: True))


def _install_language(env: Any, lang: str, markdown: bool = False) -> Any:
    """Add jinja2's i18n extension's gettext functions for ``lang`` to ``env``, and the ``word``
    filter, which translates a status or severity that arrives as data (a known word only:
    anything else stays plain text and is escaped and redacted like every value). HTML uses
    jinja2's "newstyle" gettext (translations are autoescaped Markup; a literal % is %%); in
    Markdown a translation is :class:`MdSafe` (our catalog's text, not escaped)."""
    from audit.report.i18n import WORDS, translations

    tr = translations(lang)
    if markdown:
        env.install_gettext_callables(lambda s: MdSafe(tr.gettext(s)),
                                      lambda s, p, n: MdSafe(tr.ngettext(s, p, n)), newstyle=False)
    else:
        env.install_gettext_translations(tr, newstyle=True)
    env.filters["word"] = lambda value: tr.gettext(value) if value in WORDS else value
    return env


@lru_cache(maxsize=8)
def html_env(redact: bool = True, lang: str = "en") -> Any:
    """The HTML environment: autoescape on for every template, undefined names are errors.

    With ``redact`` (the default) every string output also passes through the PII redactor, a
    last line of defence behind the view models' own redaction (group names, parameters,
    captions... are covered too). Markup built by our code (SVG, CSS) is left alone.
    """
    from jinja2 import Environment, StrictUndefined

    env = Environment(loader=_loader(), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=False, lstrip_blocks=False, extensions=["jinja2.ext.i18n"],
                      finalize=_redact_finalize if redact else None)
    env.filters["css_class"] = css_class
    return _install_language(env, lang)


def _redact_finalize(value: Any) -> Any:
    """Redact PII in a plain string output; leave Markup, numbers and None as they are."""
    from markupsafe import Markup

    from audit.report.redact import redact_text

    if isinstance(value, str) and not isinstance(value, Markup):
        return redact_text(value)
    return value


def css_class(value: Any) -> str:
    """A CSS class name from a status word: only ``[a-z0-9-]`` survive (defence in depth for
    results files built without validation)."""
    return "".join(ch for ch in str(value).lower() if ch.isascii() and (ch.isalnum() or ch == "-"))[:24]


def _md_finalize(value: Any) -> Any:
    """Redact PII in, then Markdown-escape, every output that is not :class:`MdSafe` (a model card
    is for publishing, so it is always redacted)."""
    from audit.report.fmt import md_escape
    from audit.report.redact import redact_text

    if isinstance(value, MdSafe):
        return value
    return md_escape(redact_text("" if value is None else str(value)))


@lru_cache(maxsize=4)
def md_env(lang: str = "en") -> Any:
    """The Markdown environment: no HTML autoescape, every output Markdown-escaped."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(loader=_loader(), autoescape=False, undefined=StrictUndefined,
                      finalize=_md_finalize, keep_trailing_newline=True,
                      trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    return _install_language(env, lang, markdown=True)
