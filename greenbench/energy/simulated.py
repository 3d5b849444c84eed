"""pynvml's interface driven by this process's CPU work: the GPU tier's rehearsal on a CPU and the
meter tests' stand-in for a GPU. Its figures are tagged `simulated`, never `measured`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from greenbench.core.validation import check_scalar, check_seconds
from greenbench.energy.meter import SIMULATED


class SimulatedNvml:
    """pynvml's interface over this process's own CPU work: the GPU tier's rehearsal on a CPU, and the
    meter tests' stand-in for a GPU.

    Power is `idle_w` plus `busy_w` times the share of the cores this process keeps busy; the energy
    counter integrates it and, like NVML's, changes only every `update_period_s`; the power reading
    is the mean over the last update. Its figures are tagged `simulated`, never `measured`. `clock` and
    `cpu_clock` (wall and process CPU seconds) may be replaced, so tests can drive time themselves.
    """

    SOURCE = SIMULATED
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1

    class NVMLError(Exception):
        pass

    def __init__(self, idle_w: float = 30.0, busy_w: float = 120.0, update_period_s: float = 0.002,
                 has_counter: bool = True, clock: Callable[[], float] = time.perf_counter,
                 cpu_clock: Callable[[], float] = time.process_time):
        self.idle_w = check_scalar(idle_w, "idle_w", float, low=0)
        self.busy_w = check_scalar(busy_w, "busy_w", float, low=0)
        self.update_period_s = check_seconds(update_period_s, "update_period_s")
        self.has_counter = has_counter
        self.cores = os.cpu_count() or 1
        self.shutdown = False
        self._lock = threading.Lock()
        self.clock, self.cpu_clock = clock, cpu_clock
        self._t0, self._cpu0 = clock(), cpu_clock()
        self._updated = (self._t0, 0.0)
        self._power = self.idle_w

    def _energy_now(self) -> tuple[float, float]:
        t, cpu = self.clock(), self.cpu_clock()
        return t, self.idle_w * (t - self._t0) + self.busy_w * (cpu - self._cpu0) / self.cores

    def _update(self) -> float:
        with self._lock:
            t_last, e_last = self._updated
            if self.clock() - t_last >= self.update_period_s:
                t, e = self._energy_now()
                self._power = (e - e_last) / (t - t_last)
                self._updated = (t, e)
            return self._updated[1]

    def nvmlInit(self):
        self.shutdown = False

    def nvmlShutdown(self):
        self.shutdown = True

    def nvmlDeviceGetHandleByIndex(self, index):
        if index != 0:
            raise self.NVMLError("Invalid Argument")
        return "simulated-gpu0"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.has_counter:
            raise self.NVMLError("Not Supported")
        return int(self._update() * 1000)  # mJ

    def nvmlDeviceGetPowerUsage(self, handle):
        self._update()
        return int(self._power * 1000)  # mW

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return int(35 + 0.2 * self._power)

    def nvmlDeviceGetClockInfo(self, handle, clock):
        return 345 if self._power <= self.idle_w * 1.05 else 1980
