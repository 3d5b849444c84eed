"""NVIDIA GPUs through NVML (nvidia-ml-py): the energy counter read at both ends of a window after a
device synchronize, cross-checked by power polled in a thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from greenbench.core.validation import check_scalar, check_seconds
from greenbench.energy.meter import MEASURED, EnergyMeter, Measurement, MeterUnavailable


class NvmlMeter(EnergyMeter):
    """An NVIDIA GPU through NVML (nvidia-ml-py); `nvml` may be any object with pynvml's interface.

    A window reads the energy counter at both ends, after a device synchronize, and polls power in a
    thread every `poll_interval_s`; both energies are kept (the counter's is the figure, the polled
    one its cross-check), with the GPU's temperature and SM clock at each end. GPUs without the
    counter (pre-Volta) fall back to the polled energy.
    """

    name = "nvml"

    def __init__(self, index: int = 0, nvml: Any = None, synchronize: Callable[[], None] | None = None,
                 poll_interval_s: float = 0.015, clock: Callable[[], float] = time.perf_counter):
        check_scalar(poll_interval_s, "poll_interval_s", float, low=0.001, high=1.0)
        if nvml is None:
            try:
                import pynvml as nvml
            except ImportError as exc:
                raise MeterUnavailable("nvidia-ml-py is not installed (pip install greenbench[gpu])") from exc
        self.nvml = nvml
        try:
            nvml.nvmlInit()
            self.handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except nvml.NVMLError as exc:
            raise MeterUnavailable(f"NVML cannot open GPU {index}: {exc}") from exc
        self.synchronize = synchronize or _cuda_synchronize
        self.clock = clock  # wall seconds; replaceable so tests can drive time
        self.poll_interval_s = float(poll_interval_s)
        self.source = getattr(nvml, "SOURCE", MEASURED)  # a simulated NVML says so
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.mode = "energy-counter"
        except nvml.NVMLError:  # pre-Volta GPUs have no counter: integrate polled power instead
            self.mode = "power-sampling"
        self._samples: list[tuple[float, float]] = []  # (time, W) polled while any window is open
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _counter_j(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0  # mJ

    def _power_w(self) -> float:
        return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0  # mW

    def device_state(self) -> dict[str, float | None]:
        """GPU temperature (°C) and SM clock (MHz) now; None where NVML cannot say."""
        state: dict[str, float | None] = {}
        for key, read in (("temperature_c", lambda: self.nvml.nvmlDeviceGetTemperature(
                              self.handle, getattr(self.nvml, "NVML_TEMPERATURE_GPU", 0))),
                          ("sm_clock_mhz", lambda: self.nvml.nvmlDeviceGetClockInfo(
                              self.handle, getattr(self.nvml, "NVML_CLOCK_SM", 1)))):
            try:
                state[key] = float(read())
            except (self.nvml.NVMLError, AttributeError):
                state[key] = None
        return state

    def update_period(self, max_seconds: float = 3.0, gaps: int = 5) -> float:
        """How often the energy counter (or, without one, the power reading) changes: the median of the
        first `gaps` intervals between changes, read as fast as possible for at most `max_seconds` (a
        counter updating every 100–250 ms needs over a second for 5 intervals)."""
        max_seconds = check_seconds(max_seconds, "max_seconds")
        gaps = check_scalar(gaps, "gaps", int, low=1, high=1000)
        read = self._counter_j if self.mode == "energy-counter" else self._power_w
        changes, last = [], read()
        deadline = self.clock() + max_seconds
        while len(changes) <= gaps and (now := self.clock()) < deadline:
            value = read()
            if value != last:
                changes.append(now)
                last = value
        if len(changes) < 3:
            raise MeterUnavailable(f"NVML's {self.mode} changed {len(changes)} times in {max_seconds} s: "
                                   "its update period cannot be measured")
        intervals = sorted(b - a for a, b in zip(changes, changes[1:]))
        return intervals[len(intervals) // 2]

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._samples.append((self.clock(), self._power_w()))
            self._stop.wait(self.poll_interval_s)

    def _first_opened(self) -> None:
        self._samples, self._stop = [], threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _last_closed(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._thread = None

    def _start_reading(self) -> tuple[float, float, dict[str, float | None], float]:
        self.synchronize()
        state = self.device_state()
        counter = self._counter_j() if self.mode == "energy-counter" else 0.0
        return self.clock(), counter, state, self._power_w()

    def _measurement(self, start: tuple[float, float, dict[str, float | None], float]) -> Measurement:
        self.synchronize()
        t1 = self.clock()
        counter_end = self._counter_j() if self.mode == "energy-counter" else 0.0
        t0, counter_start, state_start, power_start = start
        inside = [sample for sample in list(self._samples) if t0 < sample[0] < t1]
        samples = [(t0, power_start), *inside, (t1, self._power_w())]
        polled = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(samples, samples[1:]))
        energy = counter_end - counter_start if self.mode == "energy-counter" else polled
        return Measurement(energy, t1 - t0, self.source, f"nvml {self.mode}", {"gpu": energy}, {"gpu": self.source},
                           samples, polled_energy_j=polled if self.mode == "energy-counter" else None,
                           device_state={"start": state_start, "end": self.device_state()})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.nvml.nvmlShutdown()


def _cuda_synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
