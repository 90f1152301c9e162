"""JUnit XML for CI systems: one test case per gate (run/gate) or per compared metric (compare)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from audit.compare import Comparison
from audit.io import atomic_write_text
from audit.results import RunResult


def _suite(name: str) -> ET.Element:
    return ET.Element("testsuite", name=name)


def _finish(suite: ET.Element) -> str:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    suite.set("errors", str(sum(c.find("error") is not None for c in cases)))
    suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def run_to_junit(run: RunResult) -> str:
    """One test case per gate; checks without gates become one case each (status only)."""
    suite = _suite(f"audit.{run.suite.name}")
    for check in run.checks:
        if check.gates:
            for gate in check.gates:
                name = f"{gate.metric}[{gate.group}]" if gate.group else gate.metric
                case = ET.SubElement(suite, "testcase", classname=check.id, name=name,
                                     time=f"{check.duration_s:.3f}")
                if check.status == "error":
                    ET.SubElement(case, "error", message=check.error or "error")
                elif not gate.passed:
                    ET.SubElement(case, "failure", message=gate.message)
            continue
        case = ET.SubElement(suite, "testcase", classname=check.id, name=check.check,
                             time=f"{check.duration_s:.3f}")
        if check.status == "error":
            ET.SubElement(case, "error", message=check.error or "error")
        elif check.status == "skipped":
            ET.SubElement(case, "skipped", message=check.skip_reason or "skipped")
    return _finish(suite)


def comparison_to_junit(comparison: Comparison) -> str:
    """One test case per compared value; regressions are failures."""
    suite = _suite("audit.compare")
    for row in comparison.rows:
        case = ET.SubElement(suite, "testcase", classname=row.check_id,
                             name=f"{row.metric}[{row.group}]" if row.group else row.metric)
        if row.status == "regressed":
            ET.SubElement(case, "failure", message=f"{row.label}: {row.base} -> {row.new}: {row.reason}")
    return _finish(suite)


def write_junit(xml: str, path: str | Path) -> Path:
    """Write JUnit XML atomically."""
    return atomic_write_text(Path(path), xml)
