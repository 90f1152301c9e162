"""Number and text formatting shared by the HTML report, the comparison report and the model card.

Everything here returns plain ``str``; escaping happens where the text is placed (jinja2
autoescape for HTML, :func:`md_escape` for Markdown, :mod:`markupsafe` inside SVG).
"""

from __future__ import annotations

import json
import math
from typing import Any

from audit.results import ConfidenceInterval, Metric

DASH = "\u2014"


def fmt_num(value: Any, unit: str | None = None) -> str:
    """Format a number for a reader: 4 significant digits, thousands separators, no float noise.

    None -> an em dash; NaN -> "NaN"; integers stay integers; very small or very large magnitudes
    use scientific notation (``1.23e-05``).
    """
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, (int, float)):
        return str(value)
    text = _fmt_float(float(value))
    return f"{text}{_unit_suffix(unit)}" if unit else text


def _fmt_float(v: float) -> str:
    """The numeric part of :func:`fmt_num`."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "\u221e" if v > 0 else "\u2212\u221e"
    a = abs(v)
    if v.is_integer() and a < 1e12:
        return f"{int(v):,}"
    if a >= 1e12 or (0 < a < 1e-3):
        return f"{v:.2e}"
    if a >= 1e4:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _unit_suffix(unit: str) -> str:
    """`%` sticks to the number; other units get a space (named in the report's language)."""
    from audit.report.i18n import unit as local_unit

    return unit if unit in {"%", "\u2030"} else f" {local_unit(unit)}"


def fmt_ci(ci: ConfidenceInterval | None, unit: str | None = None) -> str:
    """``[low, high]`` of an interval, or an em dash when there is none."""
    if ci is None or (ci.low is None and ci.high is None):
        return DASH
    return f"[{fmt_num(ci.low)}, {fmt_num(ci.high)}]" + (_unit_suffix(unit) if unit else "")


def ci_note(ci: ConfidenceInterval | None) -> str:
    """``95% bootstrap-percentile`` style note on how an interval was made."""
    if ci is None or (ci.low is None and ci.high is None):
        return ""
    return f"{fmt_num(round(ci.level * 100, 2))}% {ci.method}"


def direction(metric: Metric) -> str:
    """Which way is better for this metric, in words (in the report's language)."""
    from audit.report.i18n import _

    if metric.ideal is not None:
        return _("ideal {value}").format(value=fmt_num(metric.ideal))
    if metric.higher_is_better is True:
        return _("higher is better")
    if metric.higher_is_better is False:
        return _("lower is better")
    return _("descriptive")


def fmt_value(value: Any, limit: int = 400) -> str:
    """Any JSON value as short text for a table cell (numbers formatted, long text cut)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = fmt_num(value)
    elif isinstance(value, str):
        text = value
    elif value is None:
        text = DASH
    else:
        text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return truncate(text, limit)


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\u2026 (+{len(text) - limit} chars)"


_MD_SPECIAL = set("\\`*_{}[]|!~$#")
_MD_HTML = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def md_escape(text: Any) -> str:
    """Make untrusted text inert in Markdown: HTML metacharacters become entities, Markdown
    punctuation gets a backslash, line breaks become spaces (safe inside table cells), and a
    leading list or heading marker is escaped."""
    flat = " ".join(str(text).split())
    out = "".join(_md_char(flat, i) for i in range(len(flat)))
    head = out.split(" ", 1)[0]
    if head and len(set(head)) == 1 and head[0] in "-+=":
        return "\\" + out
    if head[:-1].isdigit() and head[-1:] in {".", ")"}:
        return out[: len(head) - 1] + "\\" + out[len(head) - 1:]
    return out


def _md_char(text: str, i: int) -> str:
    """One escaped character; an intraword ``_`` (which CommonMark never treats as emphasis)
    stays bare so identifiers like ``max_group_gap`` read naturally."""
    ch = text[i]
    if ch in _MD_HTML:
        return _MD_HTML[ch]
    if ch == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
        return ch
    return "\\" + ch if ch in _MD_SPECIAL else ch

