"""Untrusted strings in results render as text: no element or attribute comes from data, and raw
PII never appears unless --show-pii.

Method: render the rich fixture once with plain strings and once with a hostile payload appended
to every free-text field (check ids, metric and group names, params, file names, findings,
evidence, figure labels, errors, provenance); parse both with ``html.parser`` and require the same
element/attribute structure, no dangerous attribute, and the payload present as visible text.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import yaml

from audit.compare import compare_runs
from audit.report import render_compare_html, render_html, render_model_card
from tests.report_fixtures import HOSTILE, PII, rich_run

ALLOWED_ATTRS = {"lang", "charset", "name", "content", "http-equiv", "class", "id", "href",
                 "style", "title", "aria-label", "scope", "xmlns", "viewbox", "role", "x", "y",
                 "x1", "x2", "y1", "y2", "width", "height", "fill", "stroke", "d", "points", "cx",
                 "cy", "r", "text-anchor", "transform", "fill-opacity",
                 "aria-labelledby", "tabindex"}  # values ours: element ids, "0"
PAYLOAD = "".join(HOSTILE)


class _Structure(HTMLParser):
    """Sequence of (tag, attribute names) and all attribute values and text."""

    def __init__(self) -> None:
        super().__init__()
        self.shape: list[tuple[str, tuple[str, ...]]] = []
        self.values: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.shape.append((tag, tuple(sorted(k for k, _ in attrs))))
        self.values += [(tag, k, v or "") for k, v in attrs]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def structure(html: str) -> _Structure:
    s = _Structure()
    s.feed(html)
    s.close()
    return s


def _assert_inert(clean_html: str, hostile_html: str, pieces: list[str]) -> None:
    """Same element structure; attribute names allow-listed; no attribute carries the payload;
    every piece of the payload is visible as text."""
    clean, bad = structure(clean_html), structure(hostile_html)
    assert [t for t, _ in bad.shape] == [t for t, _ in clean.shape]
    assert bad.shape == clean.shape
    for tag, name, value in bad.values:
        assert name in ALLOWED_ATTRS, (tag, name)
        low = value.lower()
        for needle in ("<", ">", "script", "onerror", "javascript", "{{", "{%", "alert"):
            assert needle not in low, (tag, name, value)
        if name == "href":
            assert value.startswith("#"), value
    text = "".join(bad.text)
    for piece in pieces:
        assert piece in text  # shown literally, as text


@pytest.mark.parametrize("payload", HOSTILE + [PAYLOAD])
def test_html_report_renders_hostile_strings_as_text(payload: str) -> None:
    """Each payload (and all together) in every free-text field changes no element or attribute."""
    pieces = HOSTILE if payload == PAYLOAD else [payload]
    _assert_inert(render_html(rich_run("plain")), render_html(rich_run(payload)), pieces)


def test_template_syntax_is_not_evaluated() -> None:
    """``{{ 7*7 }}`` in data is shown as typed, never evaluated to 49."""
    html = render_html(rich_run("{{ 7*7 }}"))
    text = "".join(structure(html).text)
    assert "{{ 7*7 }}" in text and "49" not in text


def test_compare_report_renders_hostile_strings_as_text() -> None:
    """The comparison report of two hostile runs has the clean report's structure."""
    def page(p: str) -> str:
        base, new = rich_run(p), rich_run(p)
        new.checks[1].metrics[0].value = 0.3
        return render_compare_html(base, new, compare_runs(base, new))
    _assert_inert(page("plain"), page(PAYLOAD), HOSTILE)


def test_pii_is_redacted_unless_show_pii() -> None:
    """Planted e-mail, phone and SSN never appear by default (evidence, findings, errors, tokens,
    model card, comparison); with show_pii the evidence shows them and a warning banner appears."""
    run = rich_run()
    default = render_html(run)
    card = render_model_card(run)
    comparison = render_compare_html(run, rich_run(), None)
    for raw in PII:
        assert raw not in default and raw not in card and raw not in comparison, raw
    shown = render_html(run, show_pii=True)
    assert all(raw in shown for raw in PII)
    assert "shows PII unredacted" in shown and "shows PII unredacted" not in default


def test_model_card_is_inert_markdown() -> None:
    """Rendered as CommonMark with raw HTML enabled (as the Hugging Face Hub does), the hostile
    model card yields no script, img or link element; its YAML front matter still parses."""
    markdown_it = pytest.importorskip("markdown_it")
    card = render_model_card(rich_run(PAYLOAD))
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["tags"][:2] == ["audit", "responsible-ai"]
    assert meta["model-index"][0]["name"] == f"default-lm{PAYLOAD}"
    html = markdown_it.MarkdownIt("commonmark", {"html": True}).render(body)
    tags = [t for t, _ in structure(html).shape]
    assert not {"script", "img", "a", "style", "b"} & set(tags), set(tags)
    text = "".join(structure(html).text)
    assert "<script>alert(1)</script>" in text and "{{ 7*7 }}" in text


def test_pii_in_any_field_is_redacted() -> None:
    """PII planted where no check should put it (group names, parameters, captions, curve names,
    suite description) is still redacted in the default report, and shown with show_pii."""
    run = rich_run()
    email, phone = PII[0], PII[1]
    run.suite.description = f"contact {email}"
    run.checks[0].params["owner"] = email
    run.checks[1].metrics[1].by_group[phone] = run.checks[1].metrics[1].by_group["Male"]
    run.checks[2].figures[0].data["curves"][0]["name"] = email
    run.checks[2].figures[0].caption = f"call {phone}"
    default = render_html(run)
    assert email not in default and phone not in default
    assert "[EMAIL_ADDRESS]" in default
    shown = render_html(run, show_pii=True)
    assert email in shown and phone in shown
    card = render_model_card(run)
    assert email not in card and phone not in card
