"""The clearly tagged fallback: TDP share × process CPU time, `estimated`, never a gate.
"""

from __future__ import annotations

import math
import os
import time

from greenbench.energy.meter import ESTIMATED, EnergyMeter, Measurement


class CpuTimeEstimateMeter(EnergyMeter):
    """Estimate: process CPU time × (TDP / cores). Tagged `estimated`; never gates a claim."""

    name = "cpu-time estimate"

    def __init__(self, tdp_w: float | None = None):
        self.cores = os.cpu_count() or 1
        self.tdp_w = float(tdp_w) if tdp_w is not None else 10.0 * self.cores  # a generic 10 W per core
        if not (math.isfinite(self.tdp_w) and self.tdp_w > 0):
            raise ValueError(f"tdp_w must be a finite number of watts > 0, got {tdp_w!r}")
        self._start: tuple[float, float] | None = None

    def begin(self) -> None:
        if self._start is not None:
            raise RuntimeError("begin() called twice: end() the open window first")
        self._start = (time.perf_counter(), time.process_time())

    def end(self) -> Measurement:
        if self._start is None:
            raise RuntimeError("end() without begin()")
        t0, c0 = self._start
        self._start = None
        t1, c1 = time.perf_counter(), time.process_time()
        energy = (c1 - c0) * self.tdp_w / self.cores
        return Measurement(energy, t1 - t0, ESTIMATED, self.name, {"cpu": energy}, {"cpu": ESTIMATED},
                           [(t0, 0.0), (t1, energy)])
