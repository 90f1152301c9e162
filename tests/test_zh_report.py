"""The report and the model card in Chinese (``--lang zh``): message catalogs, identical numbers,
Chinese headings, escaping and redaction unchanged, the CLI flag.

Independent references: Babel (the extraction of every translatable string from the templates
and the view code, and the compilation of the .po file) for the catalogs; the English render of
the same results for the numbers (extracted from the visible text by the standard library's
HTML parser, in document order).
"""

from __future__ import annotations

import gettext
import io
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audit.report import render_html, render_model_card
from tests.report_fixtures import rich_run

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "reports" / "templates" / "locale"
PO = LOCALE / "zh" / "LC_MESSAGES" / "audit.po"
MO = LOCALE / "zh" / "LC_MESSAGES" / "audit.mo"
NUMBER = re.compile(r"[-\u2212]?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?")


class _Text(HTMLParser):
    """Visible text of an HTML page (no <style>, <title> of the document kept), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip += tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag == "style"

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(parser.parts)


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


# --------------------------------------------------------------------------- catalogs
def _extracted_ids() -> set[str]:
    """Every message id Babel extracts with the project's mapping (templates + report code)."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with open(LOCALE / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    ids = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(
            str(ROOT), method_map, options_map, keywords={"_": None, "N_": None}):
        ids.add(msg if isinstance(msg, str) else msg[0])
    return ids


def test_every_message_has_a_chinese_translation() -> None:
    """Babel's extraction finds > 150 messages; each is in the zh catalog, translated, not fuzzy,
    and the catalog holds no obsolete entries (the .pot matches the extraction too)."""
    pytest.importorskip("babel")
    from babel.messages.pofile import read_po

    ids = _extracted_ids()
    catalog = read_po(PO.open("rb"))
    translated = {m.id: m.string for m in catalog if m.id}
    assert len(ids) > 150
    assert ids == set(translated), (sorted(ids - set(translated))[:5], sorted(set(translated) - ids)[:5])
    assert all(s.strip() for s in translated.values())
    assert not [m.id for m in catalog if m.id and m.fuzzy]
    pot = {m.id for m in read_po((LOCALE / "audit.pot").open("rb")) if m.id}
    assert pot == ids


def test_compiled_catalog_matches_the_po_file() -> None:
    """The shipped audit.mo is the compilation of audit.po: Babel compiles the .po afresh and
    the standard library's gettext reads both to the same translation of every message."""
    pytest.importorskip("babel")
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    catalog = read_po(PO.open("rb"))
    fresh = io.BytesIO()
    write_mo(fresh, catalog)
    fresh.seek(0)
    a, b = gettext.GNUTranslations(fresh), gettext.GNUTranslations(MO.open("rb"))
    for m in catalog:
        if m.id:
            assert a.gettext(m.id) == b.gettext(m.id) == m.string


def test_translations_add_no_numbers() -> None:
    """No translation introduces or drops a number (so the zh report's numbers can only come
    from the results): the digits of each msgstr equal those of its msgid."""
    pytest.importorskip("babel")
    from babel.messages.pofile import read_po

    for m in read_po(PO.open("rb")):
        if m.id:
            assert numbers(m.string) == numbers(m.id), m.id


# --------------------------------------------------------------------------- renders
def test_zh_report_numbers_equal_en() -> None:
    """Every number in the visible text of the Chinese report equals the English report's, in
    the same order (values, CIs, thresholds, counts, seeds, durations, chart ticks); and the two
    texts do differ (the test would not pass on two English renders by accident)."""
    en, zh = render_html(rich_run()), render_html(rich_run(), lang="zh")
    te, tz = visible_text(en), visible_text(zh)
    assert len(numbers(te)) > 200
    assert numbers(te) == numbers(tz)
    assert "Scorecard" in te and "计分卡" in tz and "Scorecard" not in tz


def test_zh_model_card_numbers_equal_en() -> None:
    """The same for model_card.md; the YAML metadata (machine-readable) is identical."""
    en, zh = render_model_card(rich_run()), render_model_card(rich_run(), "zh")
    assert numbers(en) == numbers(zh)
    assert en.split("---\n", 2)[1] == zh.split("---\n", 2)[1]
    assert "## Model Details" in en and "## 模型详情" in zh and "## Model Details" not in zh


def test_zh_report_headings_labels_verdicts_units() -> None:
    """lang attribute, headings, the verdict, statuses, directions and units are Chinese; the
    note says what stays English; identifiers stay as they are."""
    zh = render_html(rich_run(), lang="zh")
    text = visible_text(zh)
    assert '<html lang="zh-Hans">' in zh
    for word in ("透明度报告", "计分卡", "模型与数据来源", "可复现性", "至少一项检查出错", "项检查通过",
                 "越低越好", "方法说明", "分组结果", "证据", "保留英文原文"):
        assert word in text, word
    assert re.search(r"\d \u79d2", text)                          # "1.2 秒": seconds
    for english in ("Model and data provenance", "Checks at a glance", "Reproducibility",
                    "At least one check errored", "lower is better", "Package versions"):
        assert english not in text, english
    assert "gender-occupations" in text and "max_group_gap" in text


def test_unknown_status_words_are_not_translated_or_trusted() -> None:
    """A status or severity word arriving as data is translated only when it is a known word;
    anything else is shown as escaped text (the |word filter never returns markup)."""
    from audit.report.templating import html_env

    env = html_env(True, "zh")
    out = env.from_string("{{ s|word }}|{{ t|word }}").render(s="failed", t="<b>x</b>")
    assert out == "未通过|&lt;b&gt;x&lt;/b&gt;"


def test_zh_report_still_escapes_and_redacts() -> None:
    """Untrusted text (a suite name with markup, a finding with Chinese PII) is escaped and
    redacted in the Chinese report exactly as in the English one."""
    from audit.results import Finding

    run = rich_run()
    run.suite.name = "<script>alert(1)</script>"
    run.checks[0].findings.append(Finding(message="手机13812345678，身份证11010519491231002X"))
    for lang in ("en", "zh"):
        html = render_html(run, lang=lang)
        assert "<script>alert" not in html and "&lt;script&gt;" in html
        assert "13812345678" not in html and "11010519491231002X" not in html
        assert "[CN_MOBILE]" in html and "[CN_RESIDENT_ID]" in html


def test_english_default_is_unchanged_by_the_catalog_machinery() -> None:
    """lang='en' renders exactly what render_html renders without a language argument, with an
    English lang attribute and no language note."""
    assert render_html(rich_run()) == render_html(rich_run(), lang="en")
    assert '<html lang="en">' in render_html(rich_run()) and "lang-note" not in render_html(rich_run())


# --------------------------------------------------------------------------- CLI
def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "audit", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_report_lang_zh(tmp_path: Path) -> None:
    """`audit report results.json --lang zh` writes a Chinese report and card; `--lang fr` is a
    usage error (exit 4) naming the supported languages."""
    results = tmp_path / "results.json"
    results.write_text(rich_run().model_dump_json(), encoding="utf-8")
    proc = _cli("report", str(results), "--lang", "zh", "--out", str(tmp_path / "zh"))
    assert proc.returncode == 0, proc.stderr
    assert "计分卡" in (tmp_path / "zh" / "report.html").read_text(encoding="utf-8")
    assert "## 模型详情" in (tmp_path / "zh" / "model_card.md").read_text(encoding="utf-8")
    bad = _cli("report", str(results), "--lang", "fr")
    assert bad.returncode == 4 and "en, zh" in bad.stderr


ZH_SUITE = """
name: zh-pii
models:
  default: {{adapter: fake, options: {{responses: {responses}}}}}
checks:
  - id: pii-zh
    check: pii_leakage
    params: {{language: zh, n_samples: 2}}
"""


def test_cli_run_lang_zh_redacts_chinese_pii_everywhere(tmp_path: Path) -> None:
    """`audit run --lang zh` on scripted Chinese generations: results.json, report.html and
    model_card.md hold none of the raw values; the report is Chinese; with --show-pii the raw
    values appear in results.json."""
    from tests.test_zh_pii import ID, USCC, ZH_RESPONSES

    (tmp_path / "suite.yaml").write_text(
        ZH_SUITE.format(responses=json.dumps(ZH_RESPONSES, ensure_ascii=False)), encoding="utf-8")
    proc = _cli("run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "out"), "--quiet",
                "--lang", "zh")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    files = {n: (tmp_path / "out" / n).read_text(encoding="utf-8")
             for n in ("results.json", "report.html", "model_card.md")}
    for name, text in files.items():
        for raw in (ID, USCC, "13812345678", "中关村大街27号"):
            assert raw not in text, (name, raw)
    assert "[CN_RESIDENT_ID]" in files["results.json"] and "计分卡" in files["report.html"]
    shown = _cli("run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "shown"),
                 "--quiet", "--show-pii")
    assert shown.returncode in (0, 1) and ID in (tmp_path / "shown" / "results.json").read_text()
