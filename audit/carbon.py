"""The compute and carbon cost of an audit (and of DP training), measured with codecarbon.

codecarbon's ``OfflineEmissionsTracker`` runs entirely offline. It estimates energy from the
hardware it finds: Intel RAPL counters or NVIDIA NVML where available, otherwise the CPU's
thermal design power (TDP, from its bundled table) scaled by this process's CPU share, plus RAM
at a fixed watts-per-GB rate. CO2-equivalent = energy x the grid carbon intensity of the country
given (``--country ISO3``, from codecarbon's bundled data); with no country, only energy is
reported (CO2e stays null: a number from a guessed grid would be wrong). One tracker runs for the
whole run; each check is one of its tasks (``start_task``/``stop_task``).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any, Iterator

from audit.results import Environment

METHOD = ("codecarbon OfflineEmissionsTracker, tracking_mode=process: RAPL/NVML power where "
          "the machine exposes it, else CPU TDP x this process's CPU share, plus RAM power; "
          "CO2e = energy x the country's grid carbon intensity (codecarbon's bundled data)")


def known_countries() -> set[str] | None:
    """ISO 3166 alpha-3 codes codecarbon has a grid carbon intensity for (its bundled
    energy-mix table), or None when codecarbon is not installed."""
    import json
    from importlib.resources import files

    try:
        text = files("codecarbon").joinpath("data/private_infra/global_energy_mix.json").read_text(
            encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None
    return {k.upper() for k in json.loads(text)}


def check_country(country: str | None, where: str = "--country") -> None:
    """Raise a usage error for a country codecarbon has no grid data for: codecarbon would log
    an error and fall back to a world-average intensity, a CO2e for a grid nobody chose."""
    known = known_countries() if country else None
    if country and known is not None and country.upper() not in known:
        from audit.errors import usage

        raise usage(where, country, "no grid carbon intensity for this ISO 3166 alpha-3 code "
                    "in codecarbon's data", "pass a code such as FRA, DEU, USA, CHN, or leave "
                    "it out (energy only)")


class CarbonMeter:
    """A run-level tracker with one task per check; every method is a no-op when codecarbon is
    not installed or ``enabled`` is false (the report then says energy was not measured)."""

    def __init__(self, country: str | None = None, enabled: bool = True):
        self.country = country.upper() if country else None
        self.tracker: Any = None
        self.started = 0.0
        self.note: str | None = None
        if enabled:
            self._start()
        else:
            self.note = "energy not measured (--no-carbon)"

    def _start(self) -> None:
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError:
            self.note = "energy not measured: codecarbon is not installed (pip install 'audit[carbon]')"
            return
        for name in ("codecarbon", "codecarbon.core"):
            logging.getLogger(name).setLevel(logging.ERROR)
        kwargs: dict[str, Any] = dict(save_to_file=False, log_level="error",
                                      tracking_mode="process", measure_power_secs=5,
                                      allow_multiple_runs=True)
        kwargs["country_iso_code"] = self.country or "USA"  # required offline; CO2e dropped if none
        try:
            self.tracker = OfflineEmissionsTracker(**kwargs)
            self.tracker.start()
        except Exception as exc:  # noqa: BLE001 - measurement must never break an audit
            self.tracker, self.note = None, f"energy not measured: codecarbon failed ({exc})"
        self.started = time.perf_counter()

    @contextmanager
    def task(self, name: str) -> Iterator[dict[str, Environment | None]]:
        """Measure one check: ``with meter.task(id) as box: ...`` then ``box["env"]``."""
        box: dict[str, Environment | None] = {"env": None}
        if self.tracker is None:
            yield box
            return
        try:
            self.tracker.start_task(name)
        except Exception:  # noqa: BLE001
            yield box
            return
        try:
            yield box
        finally:
            box["env"] = self._task_env()

    def _task_env(self) -> Environment | None:
        try:
            data = self.tracker.stop_task()
        except Exception:  # noqa: BLE001
            return None
        return self._environment(data, data.duration, method=False)

    def stop(self) -> Environment:
        """Stop the run-level tracker and return the run's totals."""
        if self.tracker is None:
            return Environment(note=self.note, method=METHOD)
        try:
            self.tracker.stop()
            data = self.tracker.final_emissions_data
        except Exception as exc:  # noqa: BLE001
            return Environment(note=f"energy not measured: codecarbon failed at stop ({exc})",
                               method=METHOD)
        return self._environment(data, time.perf_counter() - self.started)

    def _environment(self, data: Any, duration: float, method: bool = True) -> Environment:
        energy = float(data.energy_consumed)
        co2 = float(data.emissions) if self.country else None
        return Environment(energy_kwh=energy, duration_s=round(float(duration), 3), co2e_kg=co2,
                           country_iso_code=self.country, cpu_model=str(data.cpu_model or "") or None,
                           gpu_model=str(data.gpu_model or "") or None,
                           cpu_power_w=round(float(data.cpu_power or 0.0), 3),
                           method=METHOD if method else "",
                           note=None if self.country else "no country given: CO2e not computed "
                                                          "(pass --country ISO3)")


def sum_environments(envs: list[Environment | None]) -> Environment | None:
    """Energy, duration and CO2e summed over checks (None when nothing was measured)."""
    measured = [e for e in envs if e is not None and e.energy_kwh is not None]
    if not measured:
        return None
    co2 = [e.co2e_kg for e in measured]
    return Environment(energy_kwh=sum(e.energy_kwh or 0.0 for e in measured),
                       duration_s=sum(e.duration_s or 0.0 for e in measured),
                       co2e_kg=sum(co2) if all(c is not None for c in co2) else None,
                       country_iso_code=measured[0].country_iso_code,
                       cpu_model=measured[0].cpu_model, gpu_model=measured[0].gpu_model,
                       method=METHOD)
