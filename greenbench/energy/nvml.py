"""NVIDIA GPUs through NVML (nvidia-ml-py): the energy counter read at both ends of a window after a
device synchronize, cross-checked by power polled in a thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from greenbench.core.validation import check_seconds
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
                 poll_interval_s: float = 0.015):
        if not 0.001 <= float(poll_interval_s) <= 1.0:
            raise ValueError(f"poll_interval_s must be within [0.001, 1] s, got {poll_interval_s!r}")
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
        self.poll_interval_s = float(poll_interval_s)
        self.source = getattr(nvml, "SOURCE", MEASURED)  # a simulated NVML says so
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.mode = "energy-counter"
        except nvml.NVMLError:  # pre-Volta GPUs have no counter: integrate polled power instead
            self.mode = "power-sampling"
        self._start: tuple[float, float, dict[str, float | None]] | None = None
        self._samples: list[tuple[float, float]] = []
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

    def update_period(self, seconds: float = 0.5) -> float:
        """How often the energy counter (or, without one, the power reading) changes: the median interval
        between changes seen while reading it as fast as possible for `seconds`."""
        seconds = check_seconds(seconds, "seconds")
        read = self._counter_j if self.mode == "energy-counter" else self._power_w
        changes, last = [], read()
        deadline = time.perf_counter() + seconds
        while (now := time.perf_counter()) < deadline:
            value = read()
            if value != last:
                changes.append(now)
                last = value
        if len(changes) < 3:
            raise MeterUnavailable(f"NVML's {self.mode} changed {len(changes)} times in {seconds} s: "
                                   "its update period cannot be measured")
        gaps = sorted(b - a for a, b in zip(changes, changes[1:]))
        return gaps[len(gaps) // 2]

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._samples.append((time.perf_counter(), self._power_w()))
            self._stop.wait(self.poll_interval_s)

    def begin(self) -> None:
        if self._start is not None:
            raise RuntimeError("begin() called twice: end() the open window first")
        self.synchronize()
        state = self.device_state()
        self._samples, self._stop = [], threading.Event()
        self._start = (time.perf_counter(), self._counter_j() if self.mode == "energy-counter" else 0.0, state)
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def end(self) -> Measurement:
        if self._start is None:
            raise RuntimeError("end() without begin()")
        self.synchronize()
        t1 = time.perf_counter()
        counter_end = self._counter_j() if self.mode == "energy-counter" else 0.0
        t0, counter_start, state_start = self._start
        self._start = None
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        samples = self._samples + [(t1, self._power_w())]
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
