"""greenbench's pytest plugin: claims as tests with stored, machine-tagged baselines.

Registered through the `pytest11` entry point (like pytest-benchmark), so any suite gets it once
greenbench is installed. It brings the `claim` fixture, `--baseline-dir`, `--update-baselines`,
`--claims-json` and `--report-dir`, the claims table at the end of a run, the markers, the
hypothesis profiles (`GREENBENCH_HYPOTHESIS_PROFILE`: dev, ci, nightly) and the GPU fixtures
(`gpu_tier`, `cuda_device`, `gpu_meter`) with the one-line deselection of GPU tests where there is
no CUDA (or their CPU rehearsal, GREENBENCH_GPU_REHEARSAL=1).

A claim test hands its figures to `claim.verdict(...)`; they are compared with this hardware
profile's baseline, stored on the test report (so they cross pytest-xdist workers), and the
claims table is built from those records and the tests' outcomes. Claims are registered with
`greenbench.claims.register_claim` (the papers' own are built in). This is the only module of the
package that imports pytest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from greenbench.core.provenance import atomic_write_json, hardware_profile, provenance
from greenbench.energy.gputier import gpu_tier_settings, rehearsal_requested
from greenbench.harness.baselines import BaselineStore
from greenbench.harness.claims import CLAIMS, REHEARSAL_VERDICT, ClaimRecord, Metric
from greenbench.harness.report import ClaimRow, render_claims_table

RECORD_KEY = "greenbench.claim"

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("GREENBENCH_HYPOTHESIS_PROFILE", "dev"))

if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker: the workers already fill the cores
    os.environ.setdefault("GREENBENCH_THREADS", "1")
if os.environ.get("GREENBENCH_THREADS"):
    import numba
    import torch

    torch.set_num_threads(int(os.environ["GREENBENCH_THREADS"]))
    numba.set_num_threads(min(int(os.environ["GREENBENCH_THREADS"]), numba.config.NUMBA_NUM_THREADS))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("greenbench")
    group.addoption("--baseline-dir", default=None,
                    help="root of the stored baselines (default: baselines/ in the rootdir)")
    group.addoption("--update-baselines", action="store_true",
                    help="store this run's claim figures as the baselines of this hardware profile")
    group.addoption("--claims-json", default=None, help="also write the claims table rows to this JSON file")
    group.addoption("--report-dir", default=None,
                    help="write the runs' artifacts (rate–accuracy points, FP16 benchmarks) here for the report")


class ClaimCheck:
    """What a claim test uses: record the figures, compare them with the baseline, assert the claim."""

    def __init__(self, request: pytest.FixtureRequest, claim_id: str, store: BaselineStore, update: bool,
                 rehearsal: bool = False):
        self.request = request
        self.claim_id = claim_id
        self.store = store
        self.rehearsal = rehearsal  # a GPU test rehearsed on the CPU: records figures, judges nothing
        self.update = update and not rehearsal
        callspec = getattr(request.node, "callspec", None)
        self.case = f"{request.node.originalname}[{callspec.id}]" if callspec else request.node.name
        self.expected = (store.case(claim_id, self.case) or {}).get("outcome")

    def verdict(self, holds: bool, *, claimed: str, tolerance: str, measured: dict,
                metrics: dict[str, Metric] | None = None, note: str = "", inputs: dict | None = None) -> None:
        """Record the outcome; fail if the claim does not hold or a metric regressed from the baseline.

        `inputs` names what the figure was measured on (seed, data checksum, checkpoint), for provenance.
        """
        record = ClaimRecord(self.claim_id, self.case, claimed, tolerance, measured, bool(holds), metrics or {},
                             note=note, inputs=inputs or {}, rehearsal=self.rehearsal)
        if self.rehearsal:  # never compared, never stored, never failed for its figures
            record.baseline = "not compared (rehearsal)"
            self.request.node.user_properties.append((RECORD_KEY, json.dumps(record.to_json())))
            return
        comparisons = self.store.compare(record) if record.metrics else []
        outcome = "reproduced" if holds else "not reproduced"
        if self.update:  # the outcome is stored even without metrics: a known failure must be on record
            self.store.update(record, outcome, self.request.config.stash[_PROVENANCE])
            record.baseline = "updated"
        elif comparisons:
            worst = [c for c in comparisons if c.status != "ok"]
            record.baseline = "; ".join(f"{c.name} {c.status}" for c in worst) or "matches"
        self.request.node.user_properties.append((RECORD_KEY, json.dumps(record.to_json())))
        regressions = [c for c in comparisons if c.failed and not self.update]
        assert holds, (f"claim {self.claim_id} not reproduced: measured {record.measured_text()}; "
                       f"claimed {claimed} ({tolerance})")
        assert not regressions, "regression against the stored baseline: " + "; ".join(
            f"{c.name} {c.measured:.6g} vs {c.baseline:.6g} (±{c.spread:.3g})" for c in regressions)


_PROVENANCE = pytest.StashKey[dict]()


class ClaimsTable:
    """Collects claim rows from test reports (on the xdist controller too) and prints the table."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.rows: dict[str, ClaimRow] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        claim_id = props.get("greenbench.claim_id")
        if claim_id is None:
            return
        row = self.rows.setdefault(report.nodeid, ClaimRow(claim_id, CLAIMS[claim_id].source,
                                                           report.nodeid.split("::")[-1]))
        if RECORD_KEY in props:
            row.record = ClaimRecord.from_json(json.loads(props[RECORD_KEY]))
            row.case = row.record.case
        if report.when == "teardown" and not report.failed:
            return
        longrepr = str(report.longrepr or "")
        if report.skipped and hasattr(report, "wasxfail"):
            row.verdict, row.reason = "not reproduced", "known on this profile (strict xfail)"
        elif report.skipped:
            row.verdict = "not run"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else longrepr
            row.reason = reason.removeprefix("Skipped: ")
        elif report.failed and "XPASS(strict)" in longrepr:
            row.verdict, row.reason = "reproduced", "baseline says not reproduced: update it"
        elif report.failed and row.record is None:
            row.verdict, row.reason = "not run", f"error during {report.when}"
        elif report.failed:
            row.verdict = "reproduced" if row.record.holds else "not reproduced"
            row.reason = "baseline regression" if row.record.holds else ""
        elif report.when == "call":
            row.verdict = REHEARSAL_VERDICT if row.record is not None and row.record.rehearsal else "reproduced"

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:  # xdist: a worker's GPU deselections
        reported = getattr(node, "workeroutput", {}).get("greenbench_gpu_deselected")
        if reported and not self.config.stash.get(_GPU_DESELECTED, []):
            self.config.stash[_GPU_DESELECTED] = [tuple(entry) for entry in reported]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        deselected = self.config.stash.get(_GPU_DESELECTED, [])
        if deselected:
            terminalreporter.write_line(f"greenbench: {len(deselected)} GPU tests not run: {NO_CUDA}")
        for nodeid, claim_id, name in deselected:
            if claim_id:
                self.rows[nodeid] = ClaimRow(claim_id, CLAIMS[claim_id].source, name, "not run", "no CUDA device")
        if not self.rows:
            return
        rows = sorted(self.rows.values(), key=lambda r: (list(CLAIMS).index(r.claim_id), r.case))
        terminalreporter.write_sep("=", f"greenbench claims on {hardware_profile()}")
        terminalreporter.write_line(render_claims_table(rows))
        path = self.config.getoption("--claims-json")
        if path:
            atomic_write_json(Path(path), {"provenance": self.config.stash[_PROVENANCE],
                                           "rows": [r.to_json() for r in rows]}, sort_keys=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.stash.get(_GPU_DESELECTED, []):
        session.exitstatus = pytest.ExitCode.OK  # only GPU tests were asked for and there is no GPU: a clean skip


MARKERS = (
    "gpu: needs a CUDA GPU; run the GPU tier with `pytest -m gpu` (GREENBENCH_GPU_REHEARSAL=1 rehearses it on a CPU)",
    "slow: takes more than about 30 s on 2 cores; part of the default run unless deselected",
    "nightly: long runs (full sweeps, all networks) for nightly CI: `pytest -m nightly`",
    "claim(id): a test of a published claim; its outcome is a row of the claims table",
    "property: a hypothesis property test",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[_PROVENANCE] = provenance()
    if not hasattr(config, "workerinput"):  # the xdist controller (or a plain run) prints the table
        config.pluginmanager.register(ClaimsTable(config), "greenbench-claims-table")


@pytest.fixture(scope="session")
def baseline_root(request: pytest.FixtureRequest) -> Path:
    """Where this run's baselines live: --baseline-dir, or baselines/ in the rootdir."""
    return Path(request.config.getoption("--baseline-dir") or request.config.rootpath / "baselines")


@pytest.fixture
def claim(request: pytest.FixtureRequest, baseline_root: Path) -> ClaimCheck:
    marker = request.node.get_closest_marker("claim")
    if marker is None or not marker.args or marker.args[0] not in CLAIMS:
        raise pytest.UsageError(f"{request.node.nodeid} uses `claim` without @pytest.mark.claim('<registered id>'); "
                                f"register a claim with greenbench.claims.register_claim (registered: "
                                f"{', '.join(CLAIMS)})")
    claim_id = marker.args[0]
    store = BaselineStore(baseline_root, hardware_profile(measured_energy=CLAIMS[claim_id].measures_energy))
    rehearsal = bool(request.node.get_closest_marker("gpu")) and rehearsal_requested()
    check = ClaimCheck(request, claim_id, store, request.config.getoption("--update-baselines"), rehearsal)
    if check.expected == "not reproduced" and not check.update and not rehearsal:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason=f"baseline of {store.profile} records this claim as not reproduced"))
    return check


_GPU_DESELECTED = pytest.StashKey[list]()


@pytest.hookimpl(trylast=True)  # after -m has chosen the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    gpu = [item for item in items if item.get_closest_marker("gpu")]
    # `pytest -m gpu` without CUDA (and not rehearsing): one line says why, not one skip per test
    if gpu and not torch.cuda.is_available() and not rehearsal_requested():
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]
        config.hook.pytest_deselected(items=gpu)
        deselected = []
        for item in gpu:
            marker = item.get_closest_marker("claim")
            claim_id = marker.args[0] if marker and marker.args and "claim" in item.fixturenames else None
            deselected.append((item.nodeid, claim_id, item.name))
        config.stash[_GPU_DESELECTED] = deselected
        if hasattr(config, "workeroutput"):  # tell the xdist controller, which collects nothing itself
            config.workeroutput["greenbench_gpu_deselected"] = deselected
    unknown = set()
    for item in items:
        marker = item.get_closest_marker("claim")
        if marker and marker.args and "claim" in getattr(item, "fixturenames", ()):  # a row of the claims table
            if marker.args[0] not in CLAIMS:
                unknown.add(marker.args[0])
            item.user_properties.append(("greenbench.claim_id", marker.args[0]))
    if unknown:
        raise pytest.UsageError(f"tests use @pytest.mark.claim('<registered id>') with unregistered claims "
                                f"{sorted(unknown)}; register each with greenbench.claims.register_claim "
                                f"(registered: {', '.join(CLAIMS)})")


def write_artifact(config: pytest.Config, name: str, payload) -> None:
    """Save a run artifact for the report when --report-dir is given."""
    folder = config.getoption("--report-dir")
    if folder:
        atomic_write_json(Path(folder) / name, payload)


@pytest.fixture(scope="session")
def save_artifact(request):
    """save_artifact(name, payload): keep a JSON artifact for the report (with --report-dir)."""
    return lambda name, payload: write_artifact(request.config, name, payload)


NO_CUDA = "no CUDA device here: the GPU tier (pytest -m gpu) runs on a machine with an NVIDIA GPU"


@pytest.fixture(scope="session")
def gpu_tier():
    """The GPU tier's settings: a CUDA device, or the CPU rehearsal (GREENBENCH_GPU_REHEARSAL=1)."""
    try:
        return gpu_tier_settings()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


@pytest.fixture(scope="session")
def cuda_device(gpu_tier) -> str:
    import torch

    if not gpu_tier.rehearsal and not torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    return gpu_tier.device


@pytest.fixture(scope="session")
def gpu_meter(cuda_device, gpu_tier):
    """NVML's energy counter on the GPU under test (a measured source), a simulated one in a rehearsal,
    or a skip saying why not. `meter.min_window_s` follows the counter's update period, measured here."""
    from greenbench.energy.meter import MeterUnavailable, min_window_for
    from greenbench.energy.nvml import NvmlMeter
    from greenbench.energy.simulated import SimulatedNvml

    try:
        meter = (NvmlMeter(nvml=SimulatedNvml(), synchronize=lambda: None) if gpu_tier.rehearsal
                 else NvmlMeter(0))
        meter.update_period_s = meter.update_period()
    except MeterUnavailable as exc:
        pytest.skip(f"GPU present but no NVML energy source: {exc}")
    meter.min_window_s = min_window_for(meter.update_period_s, floor_s=gpu_tier.window_floor_s,
                                        cap_s=gpu_tier.window_cap_s)
    yield meter
    meter.close()
