"""What every meter shares: the `Measurement` a window returns, the `EnergyMeter` window protocol (named
windows that nest and overlap, as Zeus's `begin_window`/`end_window`; backends implement reading only),
and the measurement procedures built on it.

Work shorter than a window is repeated until the window reaches its minimum (`measure`; on NVML the
minimum follows the counter's measured update period, `min_window_for`), `warm_up` repeats passes
until time and power stop drifting, and `idle_power` measures the baseline before a series so
net-of-idle figures can be given. A measurement's source is `measured`, `estimated` or `simulated`,
never mixed up.
"""

from __future__ import annotations

import contextlib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from greenbench.core.validation import check_seconds

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
    notes: dict[str, Any] = field(default_factory=dict)  # how the window was read: alignment, faults
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)  # peer meter -> its energy_j, duration_s or error

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
                "disagreement": self.disagreement, "device_state": self.device_state, "notes": self.notes,
                "peers": self.peers}


DEFAULT_WINDOW = ""  # the key of `begin()`/`end()` and of `window()` without a name


class EnergyMeter(ABC):
    """Named measurement windows, as Zeus's `begin_window(key)` / `end_window(key)`: any number may be open
    at once, nested or overlapping. The window bookkeeping lives here; a backend implements reading only:
    `_start_reading()` (what a window remembers at its start) and `_measurement(start)` (what it
    measured from there to now), and optionally `_first_opened()` / `_last_closed()` around the time any
    window is open (NVML's power-polling thread)."""

    name: str = "meter"

    @abstractmethod
    def _start_reading(self) -> Any:
        """Synchronise the device and read what a window needs at its start."""

    @abstractmethod
    def _measurement(self, start: Any) -> Measurement:
        """Synchronise the device and measure from the `start` reading to now."""

    def _first_opened(self) -> None:  # noqa: B027 - only meters with a background reader need it
        """Called before the first of the open windows starts."""

    def _last_closed(self) -> None:  # noqa: B027
        """Called after the last open window ended."""

    @property
    def open_windows(self) -> dict[str, Any]:
        """key -> start reading of every window open now."""
        return self.__dict__.setdefault("_open_windows", {})

    def begin_window(self, key: str) -> None:
        if not isinstance(key, str):
            raise TypeError(f"a window's key is a str, got {type(key).__name__}")
        if key in self.open_windows:
            raise RuntimeError(f"{_call('begin', key)} called twice: {_call('end', key)} the open window first")
        if not self.open_windows:
            self._first_opened()
        try:
            self.open_windows[key] = self._start_reading()
        except BaseException:
            if not self.open_windows:
                self._last_closed()
            raise

    def end_window(self, key: str) -> Measurement:
        if key not in self.open_windows:
            raise RuntimeError(f"{_call('end', key)} without {_call('begin', key)}")
        start = self.open_windows[key]
        try:
            return self._measurement(start)
        finally:
            del self.open_windows[key]
            if not self.open_windows:
                self._last_closed()

    def begin(self) -> None:
        """Open the unnamed window."""
        self.begin_window(DEFAULT_WINDOW)

    def end(self) -> Measurement:
        """Close the unnamed window and return what it measured."""
        return self.end_window(DEFAULT_WINDOW)

    @contextlib.contextmanager
    def window(self, key: str = DEFAULT_WINDOW) -> Iterator[list[Measurement]]:
        """`with meter.window() as got: work()`; afterwards got[0] is the Measurement."""
        result: list[Measurement] = []
        self.begin_window(key)
        try:
            yield result
        finally:
            result.append(self.end_window(key))

    def close(self) -> None:  # noqa: B027 - most meters hold nothing to release
        """Release the hardware interface."""


def _call(verb: str, key: str) -> str:
    return f"{verb}()" if key == DEFAULT_WINDOW else f"{verb}_window({key!r})"


def _peer_call(peers: dict[str, Any], errors: dict[str, str], call: Callable[[Any], Any]) -> dict[str, Any]:
    """call(peer) for each peer not failed yet; a peer that raises is kept out, its error kept."""
    out = {}
    for name, peer in peers.items():
        if name in errors:
            continue
        try:
            out[name] = call(peer)
        except Exception as exc:  # a peer's failure empties its column, never the window
            errors[name] = f"{type(exc).__name__}: {exc}"
    return out


def measure(meter: EnergyMeter, work: Callable[[], Any], min_window_s: float = MIN_WINDOW_S,
            peers: dict[str, EnergyMeter] | None = None) -> Measurement:
    """Run `work` inside one window, repeating it until the window lasts at least `min_window_s`. Each peer
    meter (Zeus, say) measures a window around the same work, opened just before and closed just after the
    meter's own; its figures or its error go to `Measurement.peers`."""
    min_window_s = check_seconds(min_window_s, "min_window_s", allow_zero=True)
    peers, errors = peers or {}, {}
    _peer_call(peers, errors, lambda peer: peer.begin())
    repeats = 0
    try:
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
    finally:
        got = _peer_call(peers, errors, lambda peer: peer.end())
    measurement.repeats = repeats
    measurement.peers = {**{n: {"energy_j": m.energy_j, "duration_s": m.duration_s, "source": m.source}
                            for n, m in got.items()}, **{n: {"error": e} for n, e in errors.items()}}
    return measurement


def idle_power(meter: EnergyMeter, seconds: float = 2.0) -> float:
    """Mean power (W) of the idle machine over `seconds`, as this meter sees it."""
    seconds = check_seconds(seconds, "idle seconds")
    with meter.window() as got:
        time.sleep(seconds)
    return got[0].mean_power_w


def warm_up(meter: EnergyMeter, work: Callable[[], Any], tolerance: float = 0.05, min_passes: int = 2,
            max_passes: int = 10, min_window_s: float = 0.0) -> list[Measurement]:
    """Run `work` in windows of its own until steady: the last two windows' time per pass and mean power
    differ by less than `tolerance` (relative), or `max_passes` windows ran. Each window repeats the work
    for `min_window_s` (the measuring windows' length: a 0.05–0.7 s pass alone cannot show a 5 % power
    drift through a counter that moves every 100 ms). Returns the warm-up windows."""
    if not (0 < tolerance < 1) or not (1 <= min_passes <= max_passes):
        raise ValueError(f"need 0 < tolerance < 1 and 1 ≤ min_passes ≤ max_passes, got {tolerance!r}, "
                         f"{min_passes!r}, {max_passes!r}")
    passes: list[Measurement] = []
    while len(passes) < max_passes:
        passes.append(measure(meter, work, min_window_s))
        if len(passes) >= max(min_passes, 2):
            a, b = passes[-2], passes[-1]
            drift_time = (abs(b.duration_per_repeat_s / a.duration_per_repeat_s - 1) if a.duration_s > 0
                          else math.inf)
            drift_power = abs(b.mean_power_w / a.mean_power_w - 1) if a.mean_power_w > 0 else math.inf
            if drift_time < tolerance and drift_power < tolerance:
                break
    return passes


def min_window_for(update_period_s: float, updates: int = 100, floor_s: float = 0.5, cap_s: float = 2.0) -> float:
    """The shortest window that spans `updates` counter updates (so one update's quantisation at each end
    stays near 1/updates), kept within [floor_s, cap_s]."""
    check_seconds(update_period_s, "update period")
    return min(max(updates * update_period_s, floor_s), cap_s)

