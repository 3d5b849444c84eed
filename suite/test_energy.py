"""Energy meters. NVML is exercised through a fake of pynvml's interface (no GPU here); RAPL through a
fake powercap tree; CodeCarbon and the estimate for real."""

from __future__ import annotations

import time

import pytest

from greenbench.energy import (
    ESTIMATED,
    MEASURED,
    CodeCarbonMeter,
    CpuTimeEstimateMeter,
    MeterUnavailable,
    NvmlMeter,
    RaplMeter,
    best_meter,
    idle_power,
    measure,
)


class FakeNvml:
    """pynvml's calls the meter uses: a GPU drawing `watts`, with or without the energy counter."""

    class NVMLError(Exception):
        pass

    def __init__(self, watts: float = 150.0, has_counter: bool = True):
        self.watts, self.has_counter = watts, has_counter
        self.t0 = time.perf_counter()
        self.shutdown = False

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        self.shutdown = True

    def nvmlDeviceGetHandleByIndex(self, index):
        if index != 0:
            raise self.NVMLError("Invalid Argument")
        return "gpu0"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.has_counter:
            raise self.NVMLError("Not Supported")
        return int((time.perf_counter() - self.t0) * self.watts * 1000)  # mJ

    def nvmlDeviceGetPowerUsage(self, handle):
        return int(self.watts * 1000)  # mW


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.parametrize("has_counter", [True, False], ids=["energy-counter", "power-sampling"])
def test_nvml_meter_integrates_constant_power(has_counter):
    syncs = []
    meter = NvmlMeter(nvml=FakeNvml(150.0, has_counter), synchronize=lambda: syncs.append(1), sample_interval_s=0.005)
    assert meter.mode == ("energy-counter" if has_counter else "power-sampling")
    with meter.window() as got:
        time.sleep(0.3)
    m = got[0]
    assert m.source == MEASURED and m.components == {"gpu": m.energy_j}
    assert m.energy_j == pytest.approx(150.0 * m.duration_s, rel=0.05)  # energy = power × time
    assert len(syncs) == 2  # the device is synchronised at both ends of the window
    meter.close()
    assert meter.nvml.shutdown


def test_nvml_meter_reports_missing_gpu():
    with pytest.raises(MeterUnavailable, match="cannot open GPU 3"):
        NvmlMeter(3, nvml=FakeNvml())


def test_short_work_is_repeated_to_fill_the_window():
    meter = NvmlMeter(nvml=FakeNvml(100.0), synchronize=lambda: None)
    m = measure(meter, lambda: _busy(0.01), min_window_s=0.2)
    assert m.repeats >= 15 and m.duration_s >= 0.2
    assert m.energy_per_repeat_j == pytest.approx(100.0 * m.duration_s / m.repeats, rel=0.05)


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


def test_end_without_begin_is_an_error():
    for meter in (CpuTimeEstimateMeter(), NvmlMeter(nvml=FakeNvml(), synchronize=lambda: None)):
        with pytest.raises(RuntimeError, match="without begin"):
            meter.end()
