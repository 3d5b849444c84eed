"""CodeCarbon's OfflineEmissionsTracker as a meter (seed 000's instrument: GPU + CPU + RAM).

Its components are tagged by how CodeCarbon obtained them: RAPL or NVML `measured`; TDP, load or RAM
models `estimated`.
"""

from __future__ import annotations

import time
from typing import Any

from greenbench.core.validation import check_seconds
from greenbench.energy.meter import ESTIMATED, JOULES_PER_KWH, MEASURED, EnergyMeter, Measurement, MeterUnavailable

CODECARBON_MEASURED_CPU_MODES = {"intel_rapl", "intel_power_gadget", "windows_emi", "apple_powermetrics"}


class CodeCarbonMeter(EnergyMeter):
    """CodeCarbon's OfflineEmissionsTracker around the window (seed 000's instrument)."""

    name = "codecarbon"

    def __init__(self, country_iso_code: str = "USA", region: str | None = None, measure_power_secs: float = 1.0):
        check_seconds(measure_power_secs, "measure_power_secs")
        try:
            import codecarbon  # noqa: F401
        except ImportError as exc:
            raise MeterUnavailable("codecarbon is not installed") from exc
        self.country_iso_code, self.region = country_iso_code, region
        self.measure_power_secs = measure_power_secs
        self.emissions_kg = float("nan")

    def _start_reading(self) -> tuple[Any, float]:
        import logging

        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        tracker = OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code, region=self.region, measure_power_secs=self.measure_power_secs,
            save_to_file=False, log_level="error", allow_multiple_runs=True)
        t0 = time.perf_counter()
        tracker.start()
        return tracker, t0

    def _measurement(self, start: tuple[Any, float]) -> Measurement:
        tracker, t0 = start
        self.emissions_kg = float(tracker.stop() or 0.0)
        t1 = time.perf_counter()
        data = tracker.final_emissions_data
        components = {"cpu": data.cpu_energy * JOULES_PER_KWH, "gpu": data.gpu_energy * JOULES_PER_KWH,
                      "ram": data.ram_energy * JOULES_PER_KWH}
        sources = {"ram": ESTIMATED, "gpu": MEASURED}  # CodeCarbon's RAM power is a model; its GPU power is NVML
        cpu_modes = {getattr(h, "_mode", None) for h in tracker._hardware if type(h).__name__ == "CPU"}
        sources["cpu"] = MEASURED if cpu_modes & CODECARBON_MEASURED_CPU_MODES else ESTIMATED
        if not any(type(h).__name__ == "GPU" for h in tracker._hardware):
            components.pop("gpu"), sources.pop("gpu")
        source = MEASURED if all(v == MEASURED for v in sources.values()) else ESTIMATED
        return Measurement(data.energy_consumed * JOULES_PER_KWH, t1 - t0, source,
                           f"codecarbon (cpu: {', '.join(sorted(m for m in cpu_modes if m))})", components, sources)
