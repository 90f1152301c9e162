"""Languages of the report and the model card: gettext message catalogs (en, zh).

The English text in the templates (``{{ _("...") }}``, jinja2's ``i18n`` extension) and in the
view code (``_()`` below) is the message id; ``reports/templates/locale/<lang>/LC_MESSAGES/
audit.po`` holds the translations and ``audit.mo`` their compiled form, which ships in the wheel
(package ``audit._templates``) and is read with the standard library's ``gettext``. English needs
no catalog. Rendering sets the language for the view code through a context variable
(:func:`use`), so the view functions keep their signatures.

What is translated: headings, labels, verdicts, statuses, directions, units and the fixed
sentences of the report and the card. What is not: numbers (formatted identically in every
language), identifiers (check ids, metric names, group names), and text stored in results.json
by the checks (method cards, findings, metric descriptions, evidence), which is English; the
Chinese report says so.

Maintaining the catalogs (Babel, in the ``test`` extra)::

    pybabel extract -F reports/templates/locale/babel.cfg -k _ -k N_ -o reports/templates/locale/audit.pot .
    pybabel update -i reports/templates/locale/audit.pot -d reports/templates/locale -D audit
    pybabel compile -d reports/templates/locale -D audit

``tests/test_zh_report.py`` fails when a message has no Chinese translation or when ``audit.mo``
is older than ``audit.po``.
"""

from __future__ import annotations

import contextlib
import gettext
import io
from contextvars import ContextVar
from functools import lru_cache
from typing import Iterator

LANGS = ("en", "zh")
DOMAIN = "audit"
HTML_LANG = {"en": "en", "zh": "zh-Hans"}
_CURRENT: ContextVar[str] = ContextVar("audit_report_lang", default="en")


def N_(message: str) -> str:
    """Mark a string for extraction without translating it (module-level constants)."""
    return message


# Words that reach the templates as data (statuses, severities, gate outcomes, units): marked
# here so extraction puts them in the catalog; translated where shown.
WORDS = [N_("passed"), N_("failed"), N_("reported"), N_("error"), N_("skipped"), N_("pass"), N_("fail"),
         N_("FAIL"), N_("info"), N_("warning"), N_("critical"),
         N_("bias"), N_("fairness"), N_("privacy"), N_("explain")]
UNITS = {"nats": N_("nats"), "bits": N_("bits"), "s": N_("s"), "tokens": N_("tokens")}


def check_lang(lang: str) -> str:
    """``lang`` if supported, else a ValueError naming the supported languages."""
    if lang not in LANGS:
        raise ValueError(f"unknown report language {lang!r}; supported: {', '.join(LANGS)}")
    return lang


def _catalog_bytes(lang: str) -> bytes | None:
    """The compiled catalog from the repository folder beside this package (a source
    checkout), else from the installed package (see ``templating._read_template``)."""
    from audit.report.templating import REPO_TEMPLATES, TEMPLATE_PACKAGE

    rel = f"locale/{lang}/LC_MESSAGES/{DOMAIN}.mo"
    if (REPO_TEMPLATES / rel).is_file():
        return (REPO_TEMPLATES / rel).read_bytes()
    try:
        from importlib.resources import files

        resource = files(TEMPLATE_PACKAGE).joinpath(rel)
        if resource.is_file():
            return resource.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    return None


@lru_cache(maxsize=len(LANGS))
def translations(lang: str = "en") -> gettext.NullTranslations:
    """The gettext translations of ``lang`` (English: identity). A missing catalog for a
    supported language is an internal error naming the file, never a silent English report."""
    if check_lang(lang) == "en":
        return gettext.NullTranslations()
    data = _catalog_bytes(lang)
    if data is None:
        raise FileNotFoundError(f"message catalog locale/{lang}/LC_MESSAGES/{DOMAIN}.mo not found "
                                "in audit._templates or reports/templates")
    return gettext.GNUTranslations(io.BytesIO(data))


def current() -> str:
    """The language being rendered."""
    return _CURRENT.get()


@contextlib.contextmanager
def use(lang: str) -> Iterator[None]:
    """Render in ``lang`` inside the ``with`` block (view code reads it through :func:`_`)."""
    token = _CURRENT.set(check_lang(lang))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _(message: str) -> str:
    """``message`` translated into the current language."""
    return translations(current()).gettext(message)


def unit(name: str) -> str:
    """A unit's display form in the current language (unknown units pass through)."""
    return _(UNITS[name]) if name in UNITS else name
