"""NVIDIA GPUs through NVML (nvidia-ml-py): the energy counter read at both ends of a window after a
device synchronize, each end aligned to a counter tick, cross-checked by power polled in a thread.

Quantisation: the counter moves every ~100 ms (20–250 ms by GPU). Read at arbitrary times, each end of
a window misses up to one period of energy: 2 × 100 ms in a 1.5-s window is up to 13 %, ~3 % typical,
so a 3 % CV gate would be a coin flip. Aligned ends (start on a tick, end on the first tick after the
work) leave only the time to notice a tick (the reads take tens of µs: < 0.01 %), for at most one
period of idle tail per window, which the window's time includes too.

Every optional read (power, temperature, clocks, the instant-power field, device details) yields None
with its reason when NVML refuses it (NVML_ERROR_NOT_SUPPORTED under a VM, say): a fault is a figure,
never a crash of the window. Only a GPU with neither counter nor power reading is unavailable.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from greenbench.core.validation import check_scalar, check_seconds
from greenbench.energy.meter import ESTIMATED, MEASURED, SIMULATED, EnergyMeter, Measurement, MeterUnavailable

POWER_INSTANT_FIELD = 186  # pynvml.NVML_FI_DEV_POWER_INSTANT: power now, not nvmlDeviceGetPowerUsage's 1-s mean
MAX_TICK_WAIT_S = 0.5  # longer than any counter period seen (250 ms); then the end is left unaligned


class NvmlMeter(EnergyMeter):
    """An NVIDIA GPU through NVML (nvidia-ml-py); `nvml` may be any object with pynvml's interface.

    A window reads the energy counter at both ends, after a device synchronize, and polls power in a
    thread every `poll_interval_s`; both energies are kept (the counter's is the figure, the polled
    one its cross-check), with the GPU's temperature and SM clock at each end. GPUs without the
    counter (pre-Volta) fall back to the polled energy.
    """

    name = "nvml"

    def __init__(self, index: int = 0, nvml: Any = None, synchronize: Callable[[], None] | None = None,
                 poll_interval_s: float = 0.015, clock: Callable[[], float] = time.perf_counter,
                 cuda_identity: tuple[str | None, str | None] | None = None, align_to_ticks: bool = True):
        check_scalar(poll_interval_s, "poll_interval_s", float, low=0.001, high=1.0)
        if nvml is None:
            try:
                import pynvml as nvml
            except ImportError as exc:
                raise MeterUnavailable("nvidia-ml-py is not installed (pip install greenbench[gpu])") from exc
        self.nvml = nvml
        try:
            nvml.nvmlInit()
            self.handle, self.device_match = (nvml_handle(nvml, *cuda_identity) if cuda_identity is not None
                                              else (nvml.nvmlDeviceGetHandleByIndex(index), f"NVML index {index}"))
        except nvml.NVMLError as exc:
            raise MeterUnavailable(f"NVML cannot open GPU {index}: {exc}") from exc
        self.synchronize = synchronize or _cuda_synchronize
        self.clock = clock  # wall seconds; replaceable so tests can drive time
        self.poll_interval_s = float(poll_interval_s)
        self.align_to_ticks = bool(align_to_ticks)
        self.faults: dict[str, str] = {}  # optional reads NVML refused, and why
        self.mode = "energy-counter" if self._optional("energy counter", self._counter_j) is not None \
            else "power-sampling"  # pre-Volta GPUs have no counter: polled power is integrated instead
        self.power_reading = ("instant (NVML_FI_DEV_POWER_INSTANT)" if self._instant_power_w() is not None
                              else "1-s average (nvmlDeviceGetPowerUsage)")
        if self.power_w() is None and self.mode == "power-sampling":
            raise MeterUnavailable(f"NVML gives this GPU neither an energy counter nor a power reading: "
                                   f"{self.faults}")
        # a polled-only energy integrates 1-s averages or sparse samples: an estimate, never a gate
        nvml_source = getattr(nvml, "SOURCE", MEASURED)
        self.source = nvml_source if self.mode == "energy-counter" or nvml_source == SIMULATED else ESTIMATED
        self._samples: list[tuple[float, float]] = []  # (time, W) polled while any window is open
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _optional(self, what: str, read: Callable[[], Any]) -> Any:
        """`read()`, or None with the reason kept in `faults` when NVML refuses it."""
        try:
            return read()
        except (self.nvml.NVMLError, AttributeError, TypeError, ValueError) as exc:
            self.faults[what] = f"{type(exc).__name__}: {exc}"
            return None

    def _counter_j(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0  # mJ

    def _instant_power_w(self) -> float | None:
        def read() -> float:
            (value,) = self.nvml.nvmlDeviceGetFieldValues(self.handle, [POWER_INSTANT_FIELD])
            if value.nvmlReturn != 0:
                raise ValueError(f"field value returned NVML code {value.nvmlReturn}")
            return value.value.uiVal / 1000.0  # mW
        return self._optional("instant power field", read)

    def power_w(self) -> float | None:
        """Power now (W): the instant field where the driver has it, else the 1-s average; None if neither."""
        if self.power_reading.startswith("instant"):
            power = self._instant_power_w()
            if power is not None:
                return power
        return self._optional("power", lambda: self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0)

    def device_state(self) -> dict[str, float | None]:
        """GPU temperature (°C) and SM clock (MHz) now; None where NVML cannot say."""
        temperature = self._optional("temperature", lambda: float(self.nvml.nvmlDeviceGetTemperature(
            self.handle, getattr(self.nvml, "NVML_TEMPERATURE_GPU", 0))))
        clock = self._optional("SM clock", lambda: float(self.nvml.nvmlDeviceGetClockInfo(
            self.handle, getattr(self.nvml, "NVML_CLOCK_SM", 1))))
        return {"temperature_c": temperature, "sm_clock_mhz": clock}

    def device_record(self) -> dict[str, Any]:
        """What identifies the GPU and the state it ran in, for provenance; None (with `faults`) where NVML
        cannot say. Read only, never set: greenbench changes no clock, power limit or MIG mode."""
        n, h = self.nvml, self.handle

        def text(value: Any) -> str:
            return value.decode() if isinstance(value, bytes) else str(value)

        reads: dict[str, Callable[[], Any]] = {
            "name": lambda: text(n.nvmlDeviceGetName(h)), "uuid": lambda: text(n.nvmlDeviceGetUUID(h)),
            "driver": lambda: text(n.nvmlSystemGetDriverVersion()),
            "cuda_driver": lambda: n.nvmlSystemGetCudaDriverVersion(),
            "power_limit_w": lambda: n.nvmlDeviceGetPowerManagementLimit(h) / 1000.0,
            "default_power_limit_w": lambda: n.nvmlDeviceGetPowerManagementDefaultLimit(h) / 1000.0,
            "application_sm_clock_mhz": lambda: n.nvmlDeviceGetApplicationsClock(h, getattr(n, "NVML_CLOCK_SM", 1)),
            "max_sm_clock_mhz": lambda: n.nvmlDeviceGetMaxClockInfo(h, getattr(n, "NVML_CLOCK_SM", 1)),
            "persistence_mode": lambda: n.nvmlDeviceGetPersistenceMode(h),
            "mig_mode": lambda: n.nvmlDeviceGetMigMode(h)[0],
            "ecc_mode": lambda: n.nvmlDeviceGetEccMode(h)[0],
            "pcie_generation": lambda: n.nvmlDeviceGetCurrPcieLinkGeneration(h),
            "pcie_width": lambda: n.nvmlDeviceGetCurrPcieLinkWidth(h)}
        record = {key: self._optional(key, read) for key, read in reads.items()}
        return {**record, "matched_by": self.device_match, "mode": self.mode, "power_reading": self.power_reading,
                "unavailable": {k: v for k, v in self.faults.items() if k in reads}}

    def update_period(self, max_seconds: float = 3.0, gaps: int = 5) -> float:
        """How often the energy counter (or, without one, the power reading) changes: the median of the
        first `gaps` intervals between changes, read as fast as possible for at most `max_seconds` (a
        counter updating every 100–250 ms needs over a second for 5 intervals)."""
        max_seconds = check_seconds(max_seconds, "max_seconds")
        gaps = check_scalar(gaps, "gaps", int, low=1, high=1000)
        read = self._counter_j if self.mode == "energy-counter" else self.power_w
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
            power = self.power_w()
            if power is not None:
                self._samples.append((self.clock(), power))
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

    def _next_tick(self, last: float) -> tuple[float, float, bool]:
        """(time, counter) at the counter's next change after reading `last`; unaligned after MAX_TICK_WAIT_S."""
        deadline = self.clock() + MAX_TICK_WAIT_S
        while True:
            value, now = self._counter_j(), self.clock()
            if value != last or now >= deadline:
                return now, value, value != last

    def _counter_reading(self) -> tuple[float, float, bool]:
        """(time, counter J, aligned to a tick) now, or at the next tick when aligning."""
        if self.mode != "energy-counter":
            return self.clock(), 0.0, False
        value = self._counter_j()
        if not self.align_to_ticks:
            return self.clock(), value, False
        return self._next_tick(value)

    def _start_reading(self) -> tuple[float, float, bool, dict[str, float | None], float | None]:
        self.synchronize()
        state = self.device_state()
        t0, counter, aligned = self._counter_reading()
        return t0, counter, aligned, state, self.power_w()

    def _measurement(self, start: tuple[float, float, bool, dict[str, float | None], float | None]) -> Measurement:
        self.synchronize()
        work_done = self.clock()
        t1, counter_end, aligned_end = self._counter_reading()
        t0, counter_start, aligned_start, state_start, power_start = start
        power_end = self.power_w()
        inside = [sample for sample in list(self._samples) if t0 < sample[0] < t1]
        samples = ([(t0, power_start)] if power_start is not None else []) + inside \
            + ([(t1, power_end)] if power_end is not None else [])
        polled = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(samples, samples[1:])) \
            if len(samples) >= 2 else None
        if self.mode == "power-sampling" and polled is None:
            raise MeterUnavailable(f"no power reading inside the window: {self.faults.get('power')}")
        energy = counter_end - counter_start if self.mode == "energy-counter" else polled
        return Measurement(energy, t1 - t0, self.source, f"nvml {self.mode}", {"gpu": energy}, {"gpu": self.source},
                           samples, polled_energy_j=polled if self.mode == "energy-counter" else None,
                           device_state={"start": state_start, "end": self.device_state()},
                           notes={"aligned to counter ticks": aligned_start and aligned_end,
                                  "idle tail s": t1 - work_done,  # waited for the end's tick: inside the window
                                  "power reading": self.power_reading,
                                  **({"unavailable": dict(self.faults)} if self.faults else {})})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.nvml.nvmlShutdown()


def cuda_identity(device: int) -> tuple[str | None, str | None]:
    """(UUID, PCI bus id) of a CUDA device as torch sees it: NVML ignores CUDA_VISIBLE_DEVICES, so its
    index 0 need not be CUDA's device 0; these two name the same GPU to both."""
    import torch

    props = torch.cuda.get_device_properties(device)
    uuid = getattr(props, "uuid", None)
    if uuid is not None:  # torch gives the bare UUID, NVML names it "GPU-…"
        uuid = str(uuid) if str(uuid).startswith("GPU-") else f"GPU-{uuid}"
    bus = (f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
           if all(hasattr(props, a) for a in ("pci_domain_id", "pci_bus_id", "pci_device_id")) else None)
    return uuid, bus


def nvml_handle(nvml: Any, uuid: str | None, pci_bus_id: str | None) -> tuple[Any, str]:
    """NVML's handle for the GPU with this UUID (else PCI bus id), and which matched; NVMLError if neither."""
    errors = []
    for how, value, get in (("UUID", uuid, "nvmlDeviceGetHandleByUUID"),
                            ("PCI bus id", pci_bus_id, "nvmlDeviceGetHandleByPciBusId")):
        if value is None:
            continue
        try:
            return getattr(nvml, get)(value), f"{how} {value}"
        except nvml.NVMLError as exc:
            errors.append(f"{how} {value}: {exc}")
    raise nvml.NVMLError(f"no NVML device matches the CUDA device ({'; '.join(errors) or 'no UUID or PCI bus id'})")


def _cuda_synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
