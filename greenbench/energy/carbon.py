"""Carbon accounting (seed 002 §3.1): emissions = energy (kWh) × regional carbon intensity (kg CO2/kWh).

Intensities are CodeCarbon's (its offline global energy-mix data, and its regional data for the
regions it knows), so the suite's figures match what CodeCarbon would report for the same energy.
"""

from __future__ import annotations

from functools import cache

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


def emissions_kg(energy_j: float, country_iso_code: str, region: str | None = None) -> float:
    energy_j = check_scalar(energy_j, "energy (J)", float, low=0)
    return energy_j / JOULES_PER_KWH * carbon_intensity(country_iso_code, region)


def regional_emissions(energy_j: float, regions=REPORT_REGIONS) -> list[dict]:
    """The same energy's emissions in several regions (for the report)."""
    return [{"country": c, "region": r or "", "intensity_kg_per_kwh": carbon_intensity(c, r),
             "emissions_g": 1000 * emissions_kg(energy_j, c, r)} for c, r in regions]
