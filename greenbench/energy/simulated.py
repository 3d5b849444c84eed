"""pynvml's interface driven by this process's CPU work: the GPU tier's rehearsal on a CPU and the
meter tests' stand-in for a GPU. Its figures are tagged `simulated`, never `measured`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from types import SimpleNamespace

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
    FAULTS = ("power-not-supported", "power-1s-average", "no-field-values", "state-not-supported")

    class NVMLError(Exception):
        pass

    def __init__(self, idle_w: float = 30.0, busy_w: float = 120.0, update_period_s: float = 0.002,
                 has_counter: bool = True, clock: Callable[[], float] = time.perf_counter,
                 cpu_clock: Callable[[], float] = time.process_time, faults: Iterable[str] = (), devices: int = 1):
        self.idle_w = check_scalar(idle_w, "idle_w", float, low=0)
        self.busy_w = check_scalar(busy_w, "busy_w", float, low=0)
        self.update_period_s = check_seconds(update_period_s, "update_period_s")
        self.has_counter = has_counter
        self.faults = frozenset(faults)
        unknown = self.faults - set(self.FAULTS)
        if unknown:
            raise ValueError(f"unknown simulated NVML faults {sorted(unknown)}; known: {', '.join(self.FAULTS)}")
        self.devices = check_scalar(devices, "devices", int, low=1, high=64)
        self.cores = os.cpu_count() or 1
        self.shutdown = False
        self._lock = threading.Lock()
        self.clock, self.cpu_clock = clock, cpu_clock
        self._t0, self._cpu0 = clock(), cpu_clock()
        self._updated = (self._t0, 0.0)
        self._history = deque([self._updated])  # the last seconds' counter updates, for the 1-s average
        self._power = self.idle_w

    @classmethod
    def from_setting(cls, text: str | None, **kwargs) -> SimulatedNvml:
        """A simulated NVML as GREENBENCH_SIMULATED_NVML describes it ('power-1s-average,period=0.1')."""
        faults, period = [], None
        for part in filter(None, (p.strip() for p in (text or "").split(","))):
            if part.startswith("period="):
                try:
                    period = check_seconds(float(part.removeprefix("period=")), "GREENBENCH_SIMULATED_NVML period",
                                           high=10.0)
                except ValueError as exc:
                    raise ValueError(f"GREENBENCH_SIMULATED_NVML={text!r}: {exc}") from None
            else:
                faults.append(part)
        return cls(faults=faults, **({"update_period_s": period} if period is not None else {}), **kwargs)

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
                self._history.append(self._updated)
                while self._history[0][0] < t - 2.0:
                    self._history.popleft()
            return self._updated[1]

    def _handle(self, index: int) -> str:
        return f"simulated-gpu{index}"

    def _raise_if(self, fault: str) -> None:
        if fault in self.faults:
            raise self.NVMLError("Not Supported")

    def nvmlInit(self):
        self.shutdown = False

    def nvmlShutdown(self):
        self.shutdown = True

    def nvmlDeviceGetHandleByIndex(self, index):
        if not 0 <= index < self.devices:
            raise self.NVMLError("Invalid Argument")
        return self._handle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid):
        for i in range(self.devices):
            if uuid == f"GPU-simulated-{i}":
                return self._handle(i)
        raise self.NVMLError("Not Found")

    def nvmlDeviceGetHandleByPciBusId(self, bus_id):
        for i in range(self.devices):
            if bus_id.lower() == f"00000000:{i + 1:02x}:00.0":
                return self._handle(i)
        raise self.NVMLError("Not Found")

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.has_counter:
            raise self.NVMLError("Not Supported")
        return int(self._update() * 1000)  # mJ

    def nvmlDeviceGetPowerUsage(self, handle):
        self._raise_if("power-not-supported")
        self._update()
        if "power-1s-average" in self.faults:  # Ampere and newer (bar GA100): the mean over the last second
            t, e = self._updated
            t_old, e_old = next((h for h in self._history if h[0] >= t - 1.0), self._history[0])
            return int(1000 * ((e - e_old) / (t - t_old) if t > t_old else self._power))
        return int(self._power * 1000)  # mW

    def nvmlDeviceGetFieldValues(self, handle, field_ids):
        self._update()
        instant = "no-field-values" not in self.faults and "power-not-supported" not in self.faults
        return [SimpleNamespace(fieldId=f, nvmlReturn=0 if instant else 2,  # 2: NVML_ERROR_INVALID_ARGUMENT
                                value=SimpleNamespace(uiVal=int(self._power * 1000))) for f in field_ids]

    def nvmlDeviceGetTemperature(self, handle, sensor):
        self._raise_if("state-not-supported")
        return int(35 + 0.2 * self._power)

    def nvmlDeviceGetClockInfo(self, handle, clock):
        self._raise_if("state-not-supported")
        return 345 if self._power <= self.idle_w * 1.05 else 1980

    def nvmlDeviceGetName(self, handle):
        return "Simulated GPU"

    def nvmlDeviceGetUUID(self, handle):
        return f"GPU-simulated-{handle.removeprefix('simulated-gpu')}"

    def __getattr__(self, name: str):
        if name.startswith("nvml"):  # what a VM's driver does not offer: NVML_ERROR_NOT_SUPPORTED
            def not_supported(*args, **kwargs):
                raise self.NVMLError("Not Supported")
            return not_supported
        raise AttributeError(name)
