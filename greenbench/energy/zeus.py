"""Zeus's `ZeusMonitor` as a peer meter: the same windows measured by Zeus beside greenbench's NVML meter.

Zeus (`zeus` on PyPI) reads the same NVML energy counter, without aligning window ends to its ticks;
its column shows what that alignment changes. Its GPU index is CUDA's (Zeus honours
CUDA_VISIBLE_DEVICES). Anything Zeus raises leaves its column empty with the error, never the window.
"""

from __future__ import annotations

import time
from typing import Any

from greenbench.energy.meter import MEASURED, EnergyMeter, Measurement, MeterUnavailable


class ZeusMeter(EnergyMeter):
    """`zeus.monitor.ZeusMonitor` on one CUDA device, GPU energy only (cpu_indices=[])."""

    name = "zeus"

    def __init__(self, cuda_index: int = 0, monitor: Any = None):
        if monitor is None:
            try:
                from zeus.monitor import ZeusMonitor
            except ImportError as exc:
                raise MeterUnavailable("zeus is not installed (pip install zeus)") from exc
            try:
                monitor = ZeusMonitor(gpu_indices=[cuda_index], cpu_indices=[])
            except Exception as exc:  # Zeus's own errors: no GPU, NVML refused
                raise MeterUnavailable(f"ZeusMonitor could not start: {type(exc).__name__}: {exc}") from exc
        self.monitor, self.cuda_index = monitor, cuda_index
        self._keys = 0

    def _start_reading(self) -> str:
        self._keys += 1
        key = f"greenbench-{self._keys}"
        self.monitor.begin_window(key)
        return key

    def _measurement(self, start: str) -> Measurement:
        t0 = time.perf_counter()
        got = self.monitor.end_window(start)
        energy = float(got.gpu_energy[self.cuda_index])
        return Measurement(energy, float(got.time), MEASURED, "zeus ZeusMonitor", {"gpu": energy}, {"gpu": MEASURED},
                           notes={"end_window s": time.perf_counter() - t0})
