"""The clearly tagged fallback: TDP share × process CPU time, `estimated`, never a gate.
"""

from __future__ import annotations

import os
import time

from greenbench.core.validation import check_scalar
from greenbench.energy.meter import ESTIMATED, EnergyMeter, Measurement


class CpuTimeEstimateMeter(EnergyMeter):
    """Estimate: process CPU time × (TDP / cores). Tagged `estimated`; never gates a claim."""

    name = "cpu-time estimate"

    def __init__(self, tdp_w: float | None = None):
        self.cores = os.cpu_count() or 1
        if tdp_w is None:  # a generic 10 W per core
            self.tdp_w = 10.0 * self.cores
        else:
            self.tdp_w = check_scalar(tdp_w, "tdp_w", float, low=0, include_low=False)

    def _start_reading(self) -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def _measurement(self, start: tuple[float, float]) -> Measurement:
        t0, c0 = start
        t1, c1 = time.perf_counter(), time.process_time()
        energy = (c1 - c0) * self.tdp_w / self.cores
        return Measurement(energy, t1 - t0, ESTIMATED, self.name, {"cpu": energy}, {"cpu": ESTIMATED},
                           [(t0, 0.0), (t1, energy)])
