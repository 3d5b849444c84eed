"""Linux powercap RAPL package and DRAM counters, wrap-around handled.
"""

from __future__ import annotations

import time
from pathlib import Path

from greenbench.energy.meter import MEASURED, EnergyMeter, Measurement, MeterUnavailable


class RaplMeter(EnergyMeter):
    """CPU package and DRAM energy from /sys/class/powercap (intel-rapl), with counter wrap-around."""

    name = "rapl"

    def __init__(self, root: str | Path = "/sys/class/powercap"):
        self.domains: dict[str, tuple[Path, int, str]] = {}  # zone -> (counter, wrap range, component)
        for zone in sorted(Path(root).glob("intel-rapl:*")):
            try:
                label = (zone / "name").read_text().strip()
                max_range = int((zone / "max_energy_range_uj").read_text())
                int((zone / "energy_uj").read_text())
            except (OSError, ValueError):
                continue  # unreadable (often root-only) zones do not count
            component = "ram" if label == "dram" else "cpu" if label.startswith("package") else None
            if component:
                self.domains[zone.name] = (zone / "energy_uj", max_range, component)
        if not self.domains:
            raise MeterUnavailable(f"no readable RAPL package/DRAM counters under {root}")

    def _read(self) -> dict[str, int]:
        return {name: int(path.read_text()) for name, (path, _, _) in self.domains.items()}

    def _start_reading(self) -> tuple[float, dict[str, int]]:
        return time.perf_counter(), self._read()

    def _measurement(self, start: tuple[float, dict[str, int]]) -> Measurement:
        end_values, t1 = self._read(), time.perf_counter()
        t0, start_values = start
        components: dict[str, float] = {}
        for name, (_, max_range, component) in self.domains.items():
            delta = end_values[name] - start_values[name]
            if delta < 0:  # the counter wrapped once (it wraps after max_energy_range_uj)
                delta += max_range + 1
            components[component] = components.get(component, 0.0) + delta / 1e6
        energy = sum(components.values())
        return Measurement(energy, t1 - t0, MEASURED, "rapl", components, {k: MEASURED for k in components},
                           [(t0, 0.0), (t1, energy)])


def rapl_readable(root: str | Path = "/sys/class/powercap") -> bool:
    """Whether this machine has readable RAPL package or DRAM counters."""
    try:
        RaplMeter(root)
    except MeterUnavailable:
        return False
    return True
