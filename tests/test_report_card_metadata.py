"""The model card's ``co2_eq_emissions`` metadata, read back by Hugging Face's own parser.

Independent check: ``huggingface_hub.ModelCard`` (the Hub client's card parser) reads the card
and its ``.data`` must hold the values computed here by hand from the run's ``environment``
(grams = kg x 1000). The key names are the Hub's model card spec
(https://huggingface.co/docs/hub/model-cards-co2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.report import render_model_card
from audit.results import Environment
from tests.report_fixtures import rich_run

hf = pytest.importorskip("huggingface_hub", reason="huggingface_hub not installed")


def _card_data(run) -> dict:
    card = hf.ModelCard(render_model_card(run))
    return card.data.to_dict()


def _with_env(**kw):
    run = rich_run()
    run.environment = Environment(**kw)
    return run


def test_emissions_in_grams_with_location_and_hardware() -> None:
    """A measured run with a country: emissions (g) = co2e_kg x 1000, source codecarbon, the
    country's name and code, CPU and GPU; the rest of the metadata (model-index) still parses."""
    run = _with_env(energy_kwh=0.0123, duration_s=60.0, co2e_kg=0.000689, country_iso_code="FRA",
                    cpu_model="AMD EPYC 7B13", gpu_model="1 x NVIDIA H200")
    data = _card_data(run)
    co2 = data["co2_eq_emissions"]
    assert co2["emissions"] == pytest.approx(0.689, rel=1e-6)
    assert co2["source"] == "codecarbon"
    assert co2["training_type"].startswith("audit")
    assert "FRA" in co2["geographical_location"]
    assert co2["hardware_used"] == "CPU: AMD EPYC 7B13; GPU: 1 x NVIDIA H200"
    card = hf.ModelCard(render_model_card(run))
    assert card.data.eval_results and card.data.co2_eq_emissions == co2


def test_country_name_from_codecarbon_table() -> None:
    """The location names the country (codecarbon's table) next to its code."""
    pytest.importorskip("codecarbon")
    run = _with_env(energy_kwh=0.001, co2e_kg=0.0001, country_iso_code="FRA", cpu_model="x")
    assert _card_data(run)["co2_eq_emissions"]["geographical_location"] == "France (FRA)"


def test_energy_without_country_has_no_emissions_number() -> None:
    """Energy measured but no grid country: the block is there without ``emissions`` (a number
    from a guessed grid would be wrong) and without a location."""
    co2 = _card_data(_with_env(energy_kwh=0.002, duration_s=3.0, cpu_model="Intel Xeon"))[
        "co2_eq_emissions"]
    assert "emissions" not in co2 and "geographical_location" not in co2
    assert co2["source"] == "codecarbon" and co2["hardware_used"] == "CPU: Intel Xeon"


@pytest.mark.parametrize("env", [None, Environment(note="energy not measured (--no-carbon)")])
def test_not_measured_means_no_co2_metadata(env) -> None:
    """No environment, or one without energy: no ``co2_eq_emissions`` at all."""
    run = rich_run()
    run.environment = env
    assert "co2_eq_emissions" not in _card_data(run)


def test_hostile_hardware_name_stays_a_yaml_string() -> None:
    """A CPU name with YAML and Markdown syntax is one string value, not structure."""
    name = "x\n---\nlicense: mit\n: [a, {b"
    data = _card_data(_with_env(energy_kwh=0.001, cpu_model=name))
    assert data["co2_eq_emissions"]["hardware_used"] == f"CPU: {name}"
    assert "license" not in data


def test_card_of_a_real_run_with_country(tmp_path: Path) -> None:
    """End to end: `audit run --country FRA` on a fake-model suite; the card's metadata holds
    the results.json environment's CO2e in grams (about 3 s)."""
    pytest.importorskip("codecarbon")
    from audit.cli import main

    suite = tmp_path / "s.yaml"
    suite.write_text("name: e\nmodels: {default: {adapter: fake}}\nchecks:\n  - id: a\n"
                     "    check: template_bias\n    params: {probes: gender_occupations, "
                     "max_templates: 1, max_targets: 2, n_boot: 100}\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--quiet", "--country", "FRA"]) == 0
    env = json.loads((out / "results.json").read_text(encoding="utf-8"))["environment"]
    co2 = hf.ModelCard.load(out / "model_card.md").data.co2_eq_emissions
    assert co2["emissions"] == pytest.approx(env["co2e_kg"] * 1000, rel=1e-5)
    assert co2["geographical_location"].endswith("(FRA)")
