"""Energy meters with one interface and measurement windows around exactly the work measured.

Like Zeus, a meter is read at the beginning and end of a window (`begin()`/`end()`, or the `window()`
context manager). Each `Measurement` carries energy (J), duration, per-component energy, the samples
behind it and its source: `measured` (a hardware counter or power sensor), `estimated` (a model of
power, such as TDP × load), `simulated` (the CPU rehearsal's stand-in NVML) — never mixed up.

- `NvmlMeter`: NVIDIA's cumulative energy counter (nvmlDeviceGetTotalEnergyConsumption), read after a
  device synchronize at both ends, cross-checked by power polled every 15 ms in a thread; the GPU's
  temperature and SM clock at both ends; on GPUs without the counter, the polled power integrated.
- `SimulatedNvml`: pynvml's interface driven by this process's CPU work, for rehearsals and tests.
- `RaplMeter`: Linux powercap RAPL package and DRAM counters, wrap-around handled.
- `CodeCarbonMeter`: CodeCarbon's OfflineEmissionsTracker, as seed 000 used it; its components are
  tagged by how CodeCarbon obtained them (RAPL/NVML measured; TDP, load or RAM models estimated).
- `CpuTimeEstimateMeter`: TDP share × process CPU time; the clearly tagged fallback.

Work shorter than a window is repeated until the window reaches its minimum (`measure`; on NVML the
minimum follows the counter's measured update period, `min_window_for`), `warm_up` repeats passes
until time and power stop drifting, and `idle_power` measures the baseline before a series so
net-of-idle figures can be given.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MEASURED, ESTIMATED, SIMULATED = "measured", "estimated", "simulated"
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
    source: str  # "measured", "estimated" or "simulated"
    meter: str
    components: dict[str, float] = field(default_factory=dict)  # J per component: gpu, cpu, ram
    component_sources: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (time s, reading)
    repeats: int = 1  # how many times the work ran inside the window
    polled_energy_j: float | None = None  # the same window from power polled in a thread (NVML)
    device_state: dict[str, dict[str, float | None]] = field(default_factory=dict)  # "start"/"end": temp, clock

    @property
    def energy_per_repeat_j(self) -> float:
        return self.energy_j / self.repeats

    @property
    def duration_per_repeat_s(self) -> float:
        return self.duration_s / self.repeats

    @property
    def mean_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def disagreement(self) -> float | None:
        """Polled power's energy relative to the counter's, minus 1 (None without both)."""
        if self.polled_energy_j is None or self.energy_j <= 0:
            return None
        return self.polled_energy_j / self.energy_j - 1

    def net_of_idle_j(self, idle_power_w: float) -> float:
        """Energy above the idle baseline over the same duration."""
        return self.energy_j - idle_power_w * self.duration_s

    def to_json(self) -> dict[str, Any]:
        return {"energy_j": self.energy_j, "duration_s": self.duration_s, "source": self.source, "meter": self.meter,
                "components": self.components, "component_sources": self.component_sources,
                "repeats": self.repeats, "samples": len(self.samples), "polled_energy_j": self.polled_energy_j,
                "disagreement": self.disagreement, "device_state": self.device_state}


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


def _positive_seconds(value: float, what: str, allow_zero: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{what} must be a finite number of seconds {'≥' if allow_zero else '>'} 0, got {value!r}")
    return value


def measure(meter: EnergyMeter, work: Callable[[], Any], min_window_s: float = MIN_WINDOW_S) -> Measurement:
    """Run `work` inside one window, repeating it until the window lasts at least `min_window_s`."""
    min_window_s = _positive_seconds(min_window_s, "min_window_s", allow_zero=True)
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
    seconds = _positive_seconds(seconds, "idle seconds")
    with meter.window() as got:
        time.sleep(seconds)
    return got[0].mean_power_w


def warm_up(meter: EnergyMeter, work: Callable[[], Any], tolerance: float = 0.05, min_passes: int = 2,
            max_passes: int = 10) -> list[Measurement]:
    """Run `work` in windows of its own until steady: the last two passes' time and mean power differ by
    less than `tolerance` (relative), or `max_passes` ran. Returns the warm-up windows (their count is
    how many passes it took)."""
    if not (0 < tolerance < 1) or not (1 <= min_passes <= max_passes):
        raise ValueError(f"need 0 < tolerance < 1 and 1 ≤ min_passes ≤ max_passes, got {tolerance!r}, "
                         f"{min_passes!r}, {max_passes!r}")
    passes: list[Measurement] = []
    while len(passes) < max_passes:
        with meter.window() as got:
            work()
        passes.append(got[0])
        if len(passes) >= max(min_passes, 2):
            a, b = passes[-2], passes[-1]
            drift_time = abs(b.duration_s / a.duration_s - 1) if a.duration_s > 0 else math.inf
            drift_power = abs(b.mean_power_w / a.mean_power_w - 1) if a.mean_power_w > 0 else math.inf
            if drift_time < tolerance and drift_power < tolerance:
                break
    return passes


def min_window_for(update_period_s: float, updates: int = 100, floor_s: float = 0.5, cap_s: float = 2.0) -> float:
    """The shortest window that spans `updates` counter updates (so one update's quantisation at each end
    stays near 1/updates), kept within [floor_s, cap_s]."""
    _positive_seconds(update_period_s, "update period")
    return min(max(updates * update_period_s, floor_s), cap_s)


# --------------------------------------------------------------------------- NVML

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
        seconds = _positive_seconds(seconds, "seconds")
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


class SimulatedNvml:
    """pynvml's interface over this process's own CPU work: the GPU tier's rehearsal on a CPU, and the
    meter tests' stand-in for a GPU.

    Power is `idle_w` plus `busy_w` times the share of the cores this process keeps busy; the energy
    counter integrates it and, like NVML's, changes only every `update_period_s`; the power reading
    is the mean over the last update. Its figures are tagged `simulated`, never `measured`.
    """

    SOURCE = SIMULATED
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1

    class NVMLError(Exception):
        pass

    def __init__(self, idle_w: float = 30.0, busy_w: float = 120.0, update_period_s: float = 0.002,
                 has_counter: bool = True):
        if not (math.isfinite(idle_w) and math.isfinite(busy_w) and idle_w >= 0 and busy_w >= 0):
            raise ValueError(f"idle_w and busy_w must be finite and ≥ 0, got {idle_w!r}, {busy_w!r}")
        self.idle_w, self.busy_w = float(idle_w), float(busy_w)
        self.update_period_s = _positive_seconds(update_period_s, "update_period_s")
        self.has_counter = has_counter
        self.cores = os.cpu_count() or 1
        self.shutdown = False
        self._lock = threading.Lock()
        self._t0, self._cpu0 = time.perf_counter(), time.process_time()
        self._updated = (self._t0, 0.0)
        self._power = self.idle_w

    def _energy_now(self) -> tuple[float, float]:
        t, cpu = time.perf_counter(), time.process_time()
        return t, self.idle_w * (t - self._t0) + self.busy_w * (cpu - self._cpu0) / self.cores

    def _update(self) -> float:
        with self._lock:
            t_last, e_last = self._updated
            if time.perf_counter() - t_last >= self.update_period_s:
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
        if self._start is not None:
            raise RuntimeError("begin() called twice: end() the open window first")
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


def rapl_readable(root: str | Path = "/sys/class/powercap") -> bool:
    """Whether this machine has readable RAPL package or DRAM counters."""
    try:
        RaplMeter(root)
    except MeterUnavailable:
        return False
    return True


# --------------------------------------------------------------------------- CodeCarbon

CODECARBON_MEASURED_CPU_MODES = {"intel_rapl", "intel_power_gadget", "windows_emi", "apple_powermetrics"}


class CodeCarbonMeter(EnergyMeter):
    """CodeCarbon's OfflineEmissionsTracker around the window (seed 000's instrument)."""

    name = "codecarbon"

    def __init__(self, country_iso_code: str = "USA", region: str | None = None, measure_power_secs: float = 1.0):
        _positive_seconds(measure_power_secs, "measure_power_secs")
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

        if self._tracker is not None:
            raise RuntimeError("begin() called twice: end() the open window first")
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


def best_meter(gpu_index: int | None = 0) -> EnergyMeter:
    """The most direct meter this machine offers: NVML for a CUDA GPU, else RAPL, else an estimate."""
    import torch

    if gpu_index is not None and torch.cuda.is_available():
        with contextlib.suppress(MeterUnavailable):
            return NvmlMeter(gpu_index)
    with contextlib.suppress(MeterUnavailable):
        return RaplMeter()
    return CpuTimeEstimateMeter()
