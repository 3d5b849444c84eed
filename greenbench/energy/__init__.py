"""Energy meters with one interface and measurement windows around exactly the work measured.

Like Zeus, a meter is read at the beginning and end of a window. Each `Measurement` carries its
source: `measured` (a hardware counter or power sensor), `estimated` (a model of power, such as TDP ×
load) or `simulated` (the CPU rehearsal's stand-in NVML) — never mixed up.

- `meter`: `Measurement`, the `EnergyMeter` base, `measure` (work repeated to a minimum window),
  `warm_up`, `idle_power`, `min_window_for`.
- one module per backend: `nvml`, `simulated` (NVML's interface over CPU work), `rapl`, `codecarbon`,
  `zeus` (Zeus's monitor, a peer beside NVML's windows), `estimate`; `best` picks the most direct one
  this machine has.
- `carbon`: seed 002's accounting, CO2 = E × CI; `gputier`: the GPU tier's settings and rehearsal.

The public face is this package: the meters, `measure` and what a window returns.
"""

from greenbench.energy.best import best_meter
from greenbench.energy.codecarbon import CodeCarbonMeter
from greenbench.energy.estimate import CpuTimeEstimateMeter
from greenbench.energy.meter import (
    ESTIMATED,
    MEASURED,
    MIN_WINDOW_S,
    SIMULATED,
    EnergyMeter,
    Measurement,
    MeterUnavailable,
    idle_power,
    measure,
    min_window_for,
    warm_up,
)
from greenbench.energy.nvml import NvmlMeter
from greenbench.energy.rapl import RaplMeter, rapl_readable
from greenbench.energy.simulated import SimulatedNvml

__all__ = ["MEASURED", "ESTIMATED", "SIMULATED", "MIN_WINDOW_S", "Measurement", "EnergyMeter", "MeterUnavailable",
           "measure", "warm_up", "idle_power", "min_window_for", "best_meter", "NvmlMeter", "SimulatedNvml",
           "RaplMeter", "rapl_readable", "CodeCarbonMeter", "CpuTimeEstimateMeter"]
