"""The audit's own energy in the report and model card (codecarbon; issue 17).

The figures shown must be the ones in results.json (recomputed here from the stored kWh), CO2e
only with a grid country, and a run without measurement must say so rather than show 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.cli import main

pytest.importorskip("codecarbon")

SUITE = """name: energy
models: {default: {adapter: fake}}
checks:
  - id: a
    check: template_bias
    params: {probes: gender_occupations, max_templates: 2, max_targets: 3, n_boot: 200}
"""


def _run(tmp_path: Path, name: str, *flags: str) -> tuple[dict, str, str]:
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    out = tmp_path / name
    assert main(["run", str(suite), "--out", str(out), "--quiet", *flags]) == 0
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return (data, (out / "report.html").read_text(encoding="utf-8"),
            (out / "model_card.md").read_text(encoding="utf-8"))


def test_energy_and_co2e_with_a_country(tmp_path: Path) -> None:
    data, html, card = _run(tmp_path, "fra", "--country", "FRA")
    env = data["environment"]
    assert env["energy_kwh"] > 0 and env["co2e_kg"] > 0 and env["country_iso_code"] == "FRA"
    wh = f"{env['energy_kwh'] * 1000:.3g} Wh"
    grams = f"{env['co2e_kg'] * 1000:.3g} g CO2e (FRA)"
    assert "Environmental impact of this audit" in html and wh in html and grams in html
    assert f"this audit: {wh}, {grams}" in card


def test_no_country_gives_energy_but_no_co2e(tmp_path: Path) -> None:
    data, html, card = _run(tmp_path, "none")
    assert data["environment"]["energy_kwh"] > 0 and data["environment"]["co2e_kg"] is None
    assert "not computed: no grid country given" in html and "g CO2e" not in card


def test_no_carbon_says_not_measured(tmp_path: Path) -> None:
    data, html, card = _run(tmp_path, "off", "--no-carbon")
    assert (data.get("environment") or {}).get("energy_kwh") is None
    assert " Wh" not in card.split("Environmental Impact")[1].split("##")[0]
    assert "this audit: " in card
