"""Energy meters. NVML is exercised through `SimulatedNvml` (pynvml's interface; no GPU here); RAPL
through a fake powercap tree; CodeCarbon and the estimate for real."""

from __future__ import annotations

import threading
import time

import pytest

from greenbench.energy.best import best_meter
from greenbench.energy.codecarbon import CodeCarbonMeter
from greenbench.energy.estimate import CpuTimeEstimateMeter
from greenbench.energy.meter import (
    ESTIMATED,
    MEASURED,
    SIMULATED,
    MeterUnavailable,
    idle_power,
    measure,
    min_window_for,
    warm_up,
)
from greenbench.energy.nvml import NvmlMeter
from greenbench.energy.rapl import RaplMeter
from greenbench.energy.simulated import SimulatedNvml


def FakeNvml(watts: float = 150.0, has_counter: bool = True) -> SimulatedNvml:  # noqa: N802 - reads as a class
    """A GPU drawing a constant `watts`, with or without the energy counter."""
    return SimulatedNvml(idle_w=watts, busy_w=0.0, update_period_s=0.001, has_counter=has_counter)


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.parametrize("has_counter", [True, False], ids=["energy-counter", "power-sampling"])
def test_nvml_meter_integrates_constant_power(has_counter):
    syncs = []
    meter = NvmlMeter(nvml=FakeNvml(150.0, has_counter), synchronize=lambda: syncs.append(1), poll_interval_s=0.005)
    assert meter.mode == ("energy-counter" if has_counter else "power-sampling")
    with meter.window() as got:
        time.sleep(0.3)
    m = got[0]
    assert m.source == SIMULATED and m.components == {"gpu": m.energy_j}  # a simulation never says "measured"
    assert m.energy_j == pytest.approx(150.0 * m.duration_s, rel=0.05)  # energy = power × time
    assert len(syncs) == 2  # the device is synchronised at both ends of the window
    assert set(m.device_state) == {"start", "end"} and m.device_state["end"]["sm_clock_mhz"] > 0
    if has_counter:  # the polled power's energy cross-checks the counter's
        assert m.disagreement == pytest.approx(0.0, abs=0.05)
    else:
        assert m.polled_energy_j is None and m.disagreement is None
    meter.close()
    assert meter.nvml.shutdown


def test_nvml_meter_reports_missing_gpu():
    with pytest.raises(MeterUnavailable, match="cannot open GPU 3"):
        NvmlMeter(3, nvml=FakeNvml())


def test_short_work_is_repeated_to_fill_the_window():
    meter = NvmlMeter(nvml=FakeNvml(100.0), synchronize=lambda: None)
    m = measure(meter, lambda: _busy(0.01), min_window_s=0.2)
    # 10 ms of work fills 0.2 s in at most 20 repeats; a loaded machine stretches repeats, so fewer may do
    assert 2 <= m.repeats <= 20 and m.duration_s >= 0.2
    # counter and clock are read a descheduling apart under load: 10 % of a 0.2 s window
    assert m.energy_per_repeat_j == pytest.approx(100.0 * m.duration_s / m.repeats, rel=0.1)


def test_idle_power_and_net_energy():
    meter = NvmlMeter(nvml=FakeNvml(60.0), synchronize=lambda: None)
    idle = idle_power(meter, seconds=0.2)
    assert idle == pytest.approx(60.0, rel=0.05)
    with meter.window() as got:
        time.sleep(0.1)
    assert got[0].net_of_idle_j(idle) == pytest.approx(0.0, abs=0.5)


def _powercap(tmp_path, zones):
    for name, (label, energy, max_range) in zones.items():
        zone = tmp_path / name
        zone.mkdir()
        (zone / "name").write_text(label + "\n")
        (zone / "energy_uj").write_text(f"{energy}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
    return tmp_path


def test_rapl_meter_reads_package_and_dram_with_wraparound(tmp_path):
    root = _powercap(tmp_path, {"intel-rapl:0": ("package-0", 999_000_000, 1_000_000_000),
                                "intel-rapl:0:0": ("dram", 5_000_000, 1_000_000_000),
                                "intel-rapl:0:1": ("core", 1, 1_000_000_000)})
    meter = RaplMeter(root)
    meter.begin()
    (root / "intel-rapl:0" / "energy_uj").write_text("2000000\n")  # wrapped: 1,000,001 µJ + 2,000,000 µJ
    (root / "intel-rapl:0:0" / "energy_uj").write_text("6500000\n")
    m = meter.end()
    assert m.components["cpu"] == pytest.approx(3.000001) and m.components["ram"] == pytest.approx(1.5)
    assert m.energy_j == pytest.approx(4.500001) and m.source == MEASURED


def test_rapl_meter_unavailable_without_counters(tmp_path):
    with pytest.raises(MeterUnavailable, match="no readable RAPL"):
        RaplMeter(tmp_path)


def test_codecarbon_meter_tags_its_estimates():
    meter = CodeCarbonMeter("FRA", measure_power_secs=0.5)
    with meter.window() as got:
        _busy(1.2)
    m = got[0]
    assert m.energy_j > 0 and m.duration_s >= 1.2
    assert m.component_sources["ram"] == ESTIMATED  # CodeCarbon models RAM power
    if m.component_sources["cpu"] == ESTIMATED:  # no RAPL here: CodeCarbon fell back to TDP × load
        assert m.source == ESTIMATED
    assert meter.emissions_kg >= 0


def test_estimate_meter_is_tagged_estimated():
    meter = CpuTimeEstimateMeter(tdp_w=20.0)
    with meter.window() as got:
        _busy(0.2)
    assert got[0].source == ESTIMATED and got[0].energy_j > 0


def test_best_meter_here_never_claims_a_measurement_it_cannot_make():
    meter = best_meter()
    with meter.window() as got:
        _busy(0.05)
    assert got[0].source in (MEASURED, ESTIMATED)
    if isinstance(meter, CpuTimeEstimateMeter):
        assert got[0].source == ESTIMATED


def test_end_without_begin_and_begin_twice_are_errors():
    for meter in (CpuTimeEstimateMeter(), NvmlMeter(nvml=FakeNvml(), synchronize=lambda: None)):
        with pytest.raises(RuntimeError, match="without begin"):
            meter.end()
        meter.begin()
        with pytest.raises(RuntimeError, match="begin\\(\\) called twice"):
            meter.begin()
        meter.end()


class SteppedClock:
    """Wall time that advances by `step` seconds at every reading (and by `advance`): a test drives time itself,
    so a loaded machine cannot change what it measures. Locked: a meter's polling thread reads it too."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.advance(self.step)

    def advance(self, seconds: float) -> float:
        with self._lock:
            self.now += seconds
            return self.now


def test_simulated_power_follows_the_work_done():
    sim = SimulatedNvml(idle_w=20.0, busy_w=200.0, update_period_s=0.001)
    meter = NvmlMeter(nvml=sim, synchronize=lambda: None)
    with meter.window() as idle:
        time.sleep(0.2)
    cpu0 = time.process_time()
    with meter.window() as busy:
        _busy(0.2)
    cpu = time.process_time() - cpu0
    assert idle[0].mean_power_w == pytest.approx(20.0, rel=0.2)
    # the CPU share this process got (less on a loaded machine) is what the simulated power follows
    expected = 20.0 + 200.0 * cpu / (sim.cores * busy[0].duration_s)
    assert busy[0].mean_power_w == pytest.approx(expected, rel=0.1)
    assert cpu > 0.02  # the work ran


def test_named_windows_nest_and_overlap():
    clock = SteppedClock(1e-5)  # the windows' 50 ms are the clock's, not the machine's
    nvml = SimulatedNvml(idle_w=100.0, busy_w=0.0, update_period_s=0.001, clock=clock)
    meter = NvmlMeter(nvml=nvml, synchronize=lambda: None, poll_interval_s=0.002, clock=clock)
    meter.begin_window("outer")
    clock.advance(0.05)
    meter.begin_window("inner")
    clock.advance(0.05)
    meter.begin_window("overlap")
    inner = meter.end_window("inner")
    clock.advance(0.05)
    outer = meter.end_window("outer")
    overlap = meter.end_window("overlap")
    assert outer.duration_s > inner.duration_s + 0.04 and overlap.duration_s > 0.04
    for m in (outer, inner, overlap):  # each window's own energy and its own polled cross-check
        assert m.energy_j == pytest.approx(100.0 * m.duration_s, rel=0.1)
        assert m.samples[0][0] < m.samples[-1][0]
    assert not meter.open_windows and meter._thread is None  # polling stops with the last window
    with pytest.raises(RuntimeError, match=r"end_window\('inner'\) without begin_window\('inner'\)"):
        meter.end_window("inner")
    meter.begin_window("a")
    with pytest.raises(RuntimeError, match=r"begin_window\('a'\) called twice"):
        meter.begin_window("a")
    meter.end_window("a")


@pytest.mark.parametrize("period", [0.004, 0.1, 0.25])
def test_counter_update_period_is_measured_and_sets_the_window(period):
    clock = SteppedClock(0.0005)  # every read advances time 0.5 ms, however busy the machine is
    meter = NvmlMeter(nvml=SimulatedNvml(update_period_s=period, clock=clock), synchronize=lambda: None, clock=clock)
    measured = meter.update_period()
    assert measured == pytest.approx(period, abs=0.002)  # a read loop costs 3 clock readings
    assert clock.now < 3.0 + 0.01  # within its 3 s budget: 5 intervals of 250 ms fit
    assert min_window_for(measured, floor_s=0.0, cap_s=100.0) == pytest.approx(100 * measured)
    assert min_window_for(0.05) == 2.0 and min_window_for(0.0001) == 0.5  # within the cap and the floor
    with pytest.raises(ValueError, match="update period"):
        min_window_for(float("nan"))


def test_a_counter_that_does_not_move_has_no_update_period():
    clock = SteppedClock(0.01)
    meter = NvmlMeter(nvml=SimulatedNvml(update_period_s=10.0, clock=clock), synchronize=lambda: None, clock=clock)
    with pytest.raises(MeterUnavailable, match="update period cannot be measured"):
        meter.update_period(max_seconds=1.0)


def test_warm_up_stops_when_steady_and_is_bounded():
    meter = NvmlMeter(nvml=FakeNvml(100.0), synchronize=lambda: None)
    steady = warm_up(meter, lambda: _busy(0.02), tolerance=0.2)
    assert 2 <= len(steady) < 10
    durations = iter([0.001, 0.02, 0.002, 0.03, 0.003, 0.04])  # never steady: bounded by max_passes
    assert len(warm_up(meter, lambda: time.sleep(next(durations)), max_passes=4)) == 4
    with pytest.raises(ValueError, match="tolerance"):
        warm_up(meter, lambda: None, tolerance=0.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_window_durations_are_validated(bad):
    meter = NvmlMeter(nvml=FakeNvml(), synchronize=lambda: None)
    with pytest.raises(ValueError, match="min_window_s"):
        measure(meter, lambda: None, min_window_s=bad)
    with pytest.raises(ValueError, match="idle seconds"):
        idle_power(meter, bad)


@pytest.mark.parametrize("make", [lambda: NvmlMeter(nvml=FakeNvml(), poll_interval_s=0.0),
                                  lambda: SimulatedNvml(idle_w=float("nan")),
                                  lambda: CpuTimeEstimateMeter(tdp_w=-5),
                                  lambda: CodeCarbonMeter(measure_power_secs=0)],
                         ids=["poll-interval", "simulated-power", "tdp", "codecarbon-interval"])
def test_meter_parameters_are_validated(make):
    with pytest.raises(ValueError):
        make()


# ----------------------------------------------------------------------- what real NVML does

def _stepped_meter(period: float = 0.1, watts: float = 200.0, align: bool = True, **nvml):
    clock = SteppedClock(0.0001)
    sim = SimulatedNvml(idle_w=watts, busy_w=0.0, update_period_s=period, clock=clock, cpu_clock=lambda: 0.0, **nvml)
    return NvmlMeter(nvml=sim, synchronize=lambda: None, clock=clock, align_to_ticks=align), clock


@pytest.mark.parametrize("period", [0.1, 0.25])
def test_windows_aligned_to_counter_ticks_have_no_quantisation_error(period):
    """200 W for 1.3 s of work with a counter that moves every 100/250 ms: unaligned ends are off by up to a
    period of energy each (~10 % here); aligned ends measure power × time to the counter's resolution."""
    errors = {}
    for align in (True, False):
        meter, clock = _stepped_meter(period, align=align)
        worst = 0.0
        for offset in (0.013, 0.047, 0.081):  # the work starts at different phases of the counter
            clock.now += offset
            meter.begin()
            clock.now += 1.3
            m = meter.end()
            worst = max(worst, abs(m.mean_power_w / 200.0 - 1))
            assert m.notes["aligned to counter ticks"] is align
        errors[align] = worst
    assert errors[True] < 0.003 < errors[False], errors  # 0.3 %: the share the CV gate can afford


@pytest.mark.parametrize("faults", [("power-not-supported",), ("state-not-supported",), ("no-field-values",),
                                    ("power-1s-average", "no-field-values"), SimulatedNvml.FAULTS],
                         ids=lambda f: "+".join(f))
def test_nvml_faults_are_figures_not_crashes(faults):
    """Under a VM NVML refuses reads (NVML_ERROR_NOT_SUPPORTED): the window still measures from the counter,
    each refused read is None with its reason, and the poll thread survives."""
    meter = NvmlMeter(nvml=SimulatedNvml(update_period_s=0.002, faults=faults), synchronize=lambda: None,
                      poll_interval_s=0.002)
    assert meter.update_period() > 0  # measured through the faults (its accuracy: the stepped-clock tests)
    m = measure(meter, lambda: _busy(0.01), min_window_s=0.1)
    assert m.energy_j > 0 and m.source == SIMULATED
    power_refused = "power-not-supported" in faults
    assert (m.polled_energy_j is None) is power_refused  # no cross-check without a power reading, no crash
    if power_refused:
        assert "power" in m.notes["unavailable"]
    if "state-not-supported" in faults:
        assert m.device_state["end"] == {"temperature_c": None, "sm_clock_mhz": None}
    instant = not {"no-field-values", "power-not-supported"} & set(faults)
    assert m.notes["power reading"].startswith("instant" if instant else "1-s average")
    record = meter.device_record()
    assert record["name"] == "Simulated GPU" and record["power_limit_w"] is None  # a VM's driver offers less
    assert "power_limit_w" in record["unavailable"] and record["matched_by"] == "NVML index 0"
    assert warm_up(meter, lambda: _busy(0.005), tolerance=0.5, min_window_s=0.02)


def test_a_gpu_with_neither_counter_nor_power_is_unavailable_and_polled_energy_is_not_measured():
    with pytest.raises(MeterUnavailable, match="neither an energy counter nor a power reading"):
        NvmlMeter(nvml=SimulatedNvml(has_counter=False, faults=["power-not-supported"]), synchronize=lambda: None)

    class RealLookingNvml(SimulatedNvml):  # a driver that says its figures are real, without a counter
        SOURCE = "measured"

    meter = NvmlMeter(nvml=RealLookingNvml(has_counter=False), synchronize=lambda: None)
    assert meter.mode == "power-sampling" and meter.source == "estimated"  # polled energy never gates a claim


def test_the_metered_gpu_is_the_cuda_device_by_uuid_or_pci_bus_id():
    """NVML ignores CUDA_VISIBLE_DEVICES: NVML's index 0 is not always CUDA's device 0."""
    sim = SimulatedNvml(devices=2)
    by_uuid = NvmlMeter(nvml=sim, synchronize=lambda: None, cuda_identity=("GPU-simulated-1", None))
    assert by_uuid.handle == "simulated-gpu1" and by_uuid.device_match == "UUID GPU-simulated-1"
    by_bus = NvmlMeter(nvml=sim, synchronize=lambda: None, cuda_identity=("GPU-gone", "00000000:02:00.0"))
    assert by_bus.handle == "simulated-gpu1" and by_bus.device_match.startswith("PCI bus id")
    with pytest.raises(MeterUnavailable, match="no NVML device matches the CUDA device"):
        NvmlMeter(nvml=sim, synchronize=lambda: None, cuda_identity=("GPU-gone", "00000000:09:00.0"))


def test_the_rehearsals_simulated_nvml_is_set_by_its_variable():
    sim = SimulatedNvml.from_setting("power-1s-average, no-field-values,period=0.25")
    assert sim.faults == {"power-1s-average", "no-field-values"} and sim.update_period_s == 0.25
    for bad, fragment in (("power-gone", "unknown simulated NVML faults"), ("period=-1", "period")):
        with pytest.raises(ValueError, match=fragment):
            SimulatedNvml.from_setting(bad)


class _FakeZeusMonitor:
    """ZeusMonitor's window interface: 40 J and 0.5 s per window, or an error on end_window."""

    def __init__(self, fail: bool = False):
        self.fail, self.open = fail, set()

    def begin_window(self, key):
        self.open.add(key)

    def end_window(self, key):
        from types import SimpleNamespace

        self.open.remove(key)
        if self.fail:
            raise RuntimeError("NVML gone")
        return SimpleNamespace(time=0.5, gpu_energy={0: 40.0})


def test_peer_meters_measure_the_same_window_and_a_failing_peer_only_empties_its_column():
    from greenbench.energy.zeus import ZeusMeter

    good, bad = ZeusMeter(0, monitor=_FakeZeusMonitor()), ZeusMeter(0, monitor=_FakeZeusMonitor(fail=True))
    m = measure(NvmlMeter(nvml=FakeNvml(150.0), synchronize=lambda: None), lambda: _busy(0.01), 0.02,
                peers={"zeus": good, "broken": bad})
    assert m.energy_j > 0 and m.peers["zeus"] == {"energy_j": 40.0, "duration_s": 0.5, "source": MEASURED}
    assert m.peers["broken"] == {"error": "RuntimeError: NVML gone"} and not bad.open_windows
    assert m.to_json()["peers"] == m.peers
    with pytest.raises(MeterUnavailable, match="zeus is not installed|ZeusMonitor could not start"):
        ZeusMeter(0)  # no Zeus (or no GPU for it) here
