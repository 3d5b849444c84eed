"""Energy meters with one interface and measurement windows around exactly the work measured.

Like Zeus, a meter is read at the beginning and end of a window (`begin()`/`end()`, or the `window()`
context manager). Each `Measurement` carries energy (J), duration, per-component energy, the samples
behind it and its source: `measured` (a hardware counter or power sensor), `estimated` (a model of
power, such as TDP × load) — never mixed up.

- `NvmlMeter`: NVIDIA's cumulative energy counter (nvmlDeviceGetTotalEnergyConsumption), read after a
  device synchronize at both ends; on GPUs without the counter, power sampling integrated over time.
- `RaplMeter`: Linux powercap RAPL package and DRAM counters, wrap-around handled.
- `CodeCarbonMeter`: CodeCarbon's OfflineEmissionsTracker, as seed 000 used it; its components are
  tagged by how CodeCarbon obtained them (RAPL/NVML measured; TDP, load or RAM models estimated).
- `CpuTimeEstimateMeter`: TDP share × process CPU time; the clearly tagged fallback.

Windows shorter than a counter's update period are repeated until they reach `MIN_WINDOW_S` (see
`measure`), and `idle_power` measures the baseline before a series so net-of-idle figures can be given.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MEASURED, ESTIMATED = "measured", "estimated"
# NVML's energy counter and RAPL update every few to ~100 ms; a window of 1 s keeps the quantisation
# error of one update below a few per cent. Shorter work is repeated until the window is this long.
MIN_WINDOW_S = 1.0
JOULES_PER_KWH = 3.6e6


class MeterUnavailable(RuntimeError):
    """The meter's hardware interface is not present or not readable here."""


@dataclass
class Measurement:
    energy_j: float
    duration_s: float
    source: str  # "measured" or "estimated"
    meter: str
    components: dict[str, float] = field(default_factory=dict)  # J per component: gpu, cpu, ram
    component_sources: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (time s, reading)
    repeats: int = 1  # how many times the work ran inside the window

    @property
    def energy_per_repeat_j(self) -> float:
        return self.energy_j / self.repeats

    @property
    def duration_per_repeat_s(self) -> float:
        return self.duration_s / self.repeats

    @property
    def mean_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0

    def net_of_idle_j(self, idle_power_w: float) -> float:
        """Energy above the idle baseline over the same duration."""
        return self.energy_j - idle_power_w * self.duration_s

    def to_json(self) -> dict[str, Any]:
        return {"energy_j": self.energy_j, "duration_s": self.duration_s, "source": self.source, "meter": self.meter,
                "components": self.components, "component_sources": self.component_sources,
                "repeats": self.repeats, "samples": len(self.samples)}


class EnergyMeter(ABC):
    name: str = "meter"

    @abstractmethod
    def begin(self) -> None:
        """Open a window: synchronise the device and read the counters."""

    @abstractmethod
    def end(self) -> Measurement:
        """Close the window and return what it measured."""

    @contextlib.contextmanager
    def window(self) -> Iterator[list[Measurement]]:
        """`with meter.window() as got: work()`; afterwards got[0] is the Measurement."""
        result: list[Measurement] = []
        self.begin()
        try:
            yield result
        finally:
            result.append(self.end())

    def close(self) -> None:  # noqa: B027 - most meters hold nothing to release
        """Release the hardware interface."""


def measure(meter: EnergyMeter, work: Callable[[], Any], min_window_s: float = MIN_WINDOW_S) -> Measurement:
    """Run `work` inside one window, repeating it until the window lasts at least `min_window_s`."""
    repeats = 0
    meter.begin()
    started = time.perf_counter()
    try:
        while True:
            work()
            repeats += 1
            if time.perf_counter() - started >= min_window_s:
                break
    finally:
        measurement = meter.end()
    measurement.repeats = repeats
    return measurement


def idle_power(meter: EnergyMeter, seconds: float = 2.0) -> float:
    """Mean power (W) of the idle machine over `seconds`, as this meter sees it."""
    with meter.window() as got:
        time.sleep(seconds)
    return got[0].mean_power_w


# --------------------------------------------------------------------------- NVML

class NvmlMeter(EnergyMeter):
    """An NVIDIA GPU through NVML (nvidia-ml-py); `nvml` may be any object with pynvml's interface."""

    name = "nvml"

    def __init__(self, index: int = 0, nvml: Any = None, synchronize: Callable[[], None] | None = None,
                 sample_interval_s: float = 0.02):
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
        self.sample_interval_s = sample_interval_s
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.mode = "energy-counter"
        except nvml.NVMLError:  # pre-Volta GPUs have no counter: integrate sampled power instead
            self.mode = "power-sampling"
        self._start: tuple[float, float] | None = None
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _counter_j(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0  # mJ

    def _power_w(self) -> float:
        return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0  # mW

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._samples.append((time.perf_counter(), self._power_w()))
            self._stop.wait(self.sample_interval_s)

    def begin(self) -> None:
        self.synchronize()
        if self.mode == "energy-counter":
            self._start = (time.perf_counter(), self._counter_j())
        else:
            self._samples, self._stop = [], threading.Event()
            self._start = (time.perf_counter(), 0.0)
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def end(self) -> Measurement:
        if self._start is None:
            raise RuntimeError("end() without begin()")
        self.synchronize()
        t1 = time.perf_counter()
        t0, e0 = self._start
        self._start = None
        if self.mode == "energy-counter":
            e1 = self._counter_j()
            samples = [(t0, e0), (t1, e1)]
            energy = e1 - e0
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            samples = self._samples + [(t1, self._power_w())]
            energy = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(samples, samples[1:]))
        return Measurement(energy, t1 - t0, MEASURED, f"nvml {self.mode}", {"gpu": energy}, {"gpu": MEASURED},
                           samples)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.nvml.nvmlShutdown()


def _cuda_synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


# --------------------------------------------------------------------------- RAPL

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
        self._start: tuple[float, dict[str, int]] | None = None

    def _read(self) -> dict[str, int]:
        return {name: int(path.read_text()) for name, (path, _, _) in self.domains.items()}

    def begin(self) -> None:
        self._start = (time.perf_counter(), self._read())

    def end(self) -> Measurement:
        if self._start is None:
            raise RuntimeError("end() without begin()")
        end_values, t1 = self._read(), time.perf_counter()
        t0, start_values = self._start
        self._start = None
        components: dict[str, float] = {}
        for name, (_, max_range, component) in self.domains.items():
            delta = end_values[name] - start_values[name]
            if delta < 0:  # the counter wrapped once (it wraps after max_energy_range_uj)
                delta += max_range + 1
            components[component] = components.get(component, 0.0) + delta / 1e6
        energy = sum(components.values())
        return Measurement(energy, t1 - t0, MEASURED, "rapl", components, {k: MEASURED for k in components},
                           [(t0, 0.0), (t1, energy)])


# --------------------------------------------------------------------------- CodeCarbon

CODECARBON_MEASURED_CPU_MODES = {"intel_rapl", "intel_power_gadget", "windows_emi", "apple_powermetrics"}


class CodeCarbonMeter(EnergyMeter):
    """CodeCarbon's OfflineEmissionsTracker around the window (seed 000's instrument)."""

    name = "codecarbon"

    def __init__(self, country_iso_code: str = "USA", region: str | None = None, measure_power_secs: float = 1.0):
        try:
            import codecarbon  # noqa: F401
        except ImportError as exc:
            raise MeterUnavailable("codecarbon is not installed") from exc
        self.country_iso_code, self.region = country_iso_code, region
        self.measure_power_secs = measure_power_secs
        self._tracker = None
        self.emissions_kg = float("nan")

    def begin(self) -> None:
        import logging

        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code, region=self.region, measure_power_secs=self.measure_power_secs,
            save_to_file=False, log_level="error", allow_multiple_runs=True)
        self._t0 = time.perf_counter()
        self._tracker.start()

    def end(self) -> Measurement:
        if self._tracker is None:
            raise RuntimeError("end() without begin()")
        tracker, self._tracker = self._tracker, None
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
        return Measurement(data.energy_consumed * JOULES_PER_KWH, t1 - self._t0, source,
                           f"codecarbon (cpu: {', '.join(sorted(m for m in cpu_modes if m))})", components, sources)


# --------------------------------------------------------------------------- estimate fallback

class CpuTimeEstimateMeter(EnergyMeter):
    """Estimate: process CPU time × (TDP / cores). Tagged `estimated`; never gates a claim."""

    name = "cpu-time estimate"

    def __init__(self, tdp_w: float | None = None):
        self.cores = os.cpu_count() or 1
        self.tdp_w = tdp_w if tdp_w is not None else 10.0 * self.cores  # a generic 10 W per core
        self._start: tuple[float, float] | None = None

    def begin(self) -> None:
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


def best_meter(gpu_index: int | None = 0) -> EnergyMeter:
    """The most direct meter this machine offers: NVML for a CUDA GPU, else RAPL, else an estimate."""
    import torch

    if gpu_index is not None and torch.cuda.is_available():
        with contextlib.suppress(MeterUnavailable):
            return NvmlMeter(gpu_index)
    with contextlib.suppress(MeterUnavailable):
        return RaplMeter()
    return CpuTimeEstimateMeter()
