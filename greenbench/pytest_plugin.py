"""greenbench's pytest plugin: claims as tests with stored, machine-tagged baselines.

Registered through the `pytest11` entry point (like pytest-benchmark), so any suite gets it once
greenbench is installed. It brings the `claim` fixture, `--baseline-dir`, `--update-baselines`,
`--claims-json` and `--report-dir`, the claims table at the end of a run, the markers and the GPU
fixtures (`gpu_tier`, `cuda_device`, `gpu_meter`) with the one-line deselection of GPU tests where there
is no CUDA (or their CPU rehearsal, GREENBENCH_GPU_REHEARSAL=1).

It changes nothing for a suite that does not use it: no hypothesis profile is loaded, no thread count
set, and torch, NVML and the provenance are touched only once a claim or a GPU test is collected.

A claim test hands its figures to `claim.verdict(...)`; they are compared with the baseline of the
profile of the device they were measured on, stored on the test report (so they cross pytest-xdist
workers), and the claims table is built from those records and the tests' outcomes. The verdict
raises `ClaimNotReproduced` when the claim does not hold and `BaselineRegression` when a metric
regressed; a claim stored as not reproduced expects exactly the first (a strict xfail), so a crash or a
regression never hides behind a known failure. This is the only module of the package that imports
pytest at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from greenbench.core.settings import SettingError, check_environment, xdist_gpu
from greenbench.harness.claims import (
    CLAIMS,
    CONTROL_FAILED,
    CONTROL_INCONCLUSIVE,
    CONTROL_PASSED,
    ERROR,
    KNOWN,
    MARKERS,
    NOT_REPRODUCED,
    NOT_RUN,
    REGRESSED,
    REHEARSAL_VERDICT,
    REPRODUCED,
    BaselineRegression,
    ClaimNotReproduced,
    ClaimRecord,
    ClaimWithoutVerdict,
    Metric,
)

RECORD_KEY = "greenbench.claim"
STATUS_KEY = "greenbench.status"
CLAIM_ID_KEY = "greenbench.claim_id"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("greenbench")
    group.addoption("--baseline-dir", default=None,
                    help="root of the stored baselines (default: baselines/ in the rootdir)")
    group.addoption("--update-baselines", action="store_true",
                    help="store this run's claim figures as the baselines of this hardware profile")
    group.addoption("--claims-json", default=None, help="also write the claims table rows to this JSON file")
    group.addoption("--history", default=None, help="record this run as a new file under DIR/<profile>/ "
                    "(greenbench history; greenbench compare --history)")
    group.addoption("--report-dir", default=None,
                    help="write the runs' artifacts (rate–accuracy points, FP16 benchmarks) here for the report")


_PROVENANCE = pytest.StashKey[dict]()


def run_provenance(config: pytest.Config) -> dict:
    """This run's provenance, gathered once and only when something needs it."""
    if _PROVENANCE not in config.stash:
        from greenbench.core.provenance import provenance

        config.stash[_PROVENANCE] = provenance()
    return config.stash[_PROVENANCE]


class ClaimCheck:
    """What a claim test uses: record the figures, compare them with the baseline, give the verdict."""

    def __init__(self, request: pytest.FixtureRequest, claim_id: str, store, update: bool, rehearsal: bool = False,
                 suffix: str = ""):
        self.request, self.claim_id, self.store = request, claim_id, store
        self.rehearsal = rehearsal  # a GPU test rehearsed on the CPU: records figures, judges nothing
        self.update = update and not rehearsal
        callspec = getattr(request.node, "callspec", None)
        self.case = (f"{request.node.originalname}[{callspec.id}]" if callspec else request.node.name) + suffix
        self.expected = (store.case(claim_id, self.case) or {}).get("outcome")
        self.given = False

    def verdict(self, holds: bool, *, claimed: str, tolerance: str, measured: dict,
                metrics: dict[str, Metric] | None = None, note: str = "", inputs: dict | None = None) -> None:
        """Record the outcome; raise BaselineRegression if a metric regressed from the baseline (known failure or
        not), then ClaimNotReproduced if the claim does not hold.

        `inputs` names what the figure was measured on (seed, data checksum, checkpoint), for provenance.
        """
        self._judge(REPRODUCED if holds else NOT_REPRODUCED, claimed, tolerance, measured, metrics, note, inputs)

    def control(self, passed: bool, *, claimed: str, tolerance: str, measured: dict, decisive: bool = True,
                metrics: dict[str, Metric] | None = None, note: str = "", inputs: dict | None = None) -> None:
        """A control: the same measurement where the claim should not hold (or a check that the test can tell).

        It is evidence for the claim, not a case of it: its row has its own label, a failing control says the
        claim's test is weak and never makes the claim not reproduced, and a control whose figure is within
        its own noise of the threshold (`decisive=False`) is inconclusive. Its metrics are gated as any.
        """
        status = CONTROL_INCONCLUSIVE if not decisive else CONTROL_PASSED if passed else CONTROL_FAILED
        self._judge(status, claimed, tolerance, measured, metrics, note, inputs)

    def _judge(self, outcome: str, claimed: str, tolerance: str, measured: dict, metrics: dict[str, Metric] | None,
               note: str, inputs: dict | None) -> None:
        if self.given:
            raise RuntimeError(f"{self.request.node.nodeid}: claim.verdict called twice; a test gives one verdict")
        self.given = True
        holds = outcome != NOT_REPRODUCED
        record = ClaimRecord(self.claim_id, self.case, claimed, tolerance, measured, holds, metrics or {},
                             note=note, inputs=inputs or {}, rehearsal=self.rehearsal)
        record.to_json()  # a record that cannot be stored fails here, before anything is written
        if self.rehearsal:  # never compared, never stored, never failed for its figures
            record.baseline = "not compared (rehearsal)"
            self._report(record, REHEARSAL_VERDICT)
            return
        comparisons = self.store.compare(record) if record.metrics else []
        if self.update:  # the outcome is stored even without metrics: a known failure must be on record
            try:
                self.store.update(record, outcome, run_provenance(self.request.config))
            except OSError as exc:  # a read-only or missing folder: the row keeps its figures and says why
                from greenbench.harness.baselines import BaselineError

                record.baseline = f"not stored ({exc.strerror or exc})"
                self._report(record, ERROR)
                raise BaselineError(f"could not store the baseline {self.store.path(self.claim_id)}: "
                                    f"{exc.strerror or exc}") from exc
            record.baseline = "updated"
        elif comparisons:
            worst = [c for c in comparisons if c.status != "ok"]
            record.baseline = "; ".join(f"{c.name} {c.status}" + (f": {c.note}" if c.note else "")
                                        for c in worst) or "matches"
        regressions = [c for c in comparisons if c.failed and not self.update]
        self._report(record, REGRESSED if regressions else outcome)
        if regressions:
            raise BaselineRegression("regression against the stored baseline: " + "; ".join(
                f"{c.name} {c.measured:.6g} vs {c.baseline:.6g} (±{c.spread:.3g})" for c in regressions))
        if not holds:
            raise ClaimNotReproduced(f"claim {self.claim_id} not reproduced: measured {record.measured_text()}; "
                                     f"claimed {claimed} ({tolerance})" + (f"; {note}" if note else ""))

    def unmet(self, reason: str, *, claimed: str, tolerance: str, measured: dict | None = None,
              inputs: dict | None = None) -> None:
        """A precondition the claim needs is not met (no setting within the budget, a fit that did not converge):
        the verdict is `not reproduced`, with the reason."""
        self.verdict(False, claimed=claimed, tolerance=tolerance, measured=measured or {}, note=reason,
                     inputs=inputs)

    def _report(self, record: ClaimRecord, status: str) -> None:
        self.request.node.user_properties.extend([(RECORD_KEY, json.dumps(record.to_json())), (STATUS_KEY, status)])


class ClaimsTable:
    """Collects claim rows from test reports (on the xdist controller too) and prints the table."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.rows: dict[str, Any] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        claim_id = props.get(CLAIM_ID_KEY)
        if claim_id is None:
            return
        from greenbench.harness.report import ClaimRow, failure_line

        worker = getattr(getattr(report, "node", None), "gateway", None)  # --dist each: every GPU runs every test
        row = self.rows.setdefault((report.nodeid, getattr(worker, "id", "")),
                                   ClaimRow(claim_id, CLAIMS[claim_id].source, report.nodeid.split("::")[-1]))
        if RECORD_KEY in props:
            row.record = ClaimRecord.from_json(json.loads(props[RECORD_KEY]))
            row.case = row.record.case
        if report.when == "teardown":  # the row is final: on disk now, so a killed run keeps it
            self._publish(final=False)
            if not report.failed:
                return
        status = props.get(STATUS_KEY)
        if report.skipped and hasattr(report, "wasxfail"):
            row.verdict, row.reason = KNOWN, "not reproduced, as recorded on this profile (strict xfail)"
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr or "")
            row.verdict, row.reason = NOT_RUN, reason.removeprefix("Skipped: ")
        elif report.failed and "XPASS(strict)" in str(report.longrepr or ""):
            row.verdict, row.reason = REPRODUCED, "stored as not reproduced: update the baseline (the run fails)"
        elif report.failed and report.when == "call" and status in (REGRESSED, NOT_REPRODUCED) \
                and _raised(report, status):
            row.verdict = status
            row.reason = "a metric regressed against the baseline" if status == REGRESSED else row.record.note
        elif report.failed:
            row.verdict, row.reason = ERROR, f"{report.when}: {failure_line(report.longrepr, report.when)}"
        elif report.when == "call":  # a regression acknowledged as known is a warning, said in the verdict
            row.verdict = status or REPRODUCED
            row.reason = row.record.baseline if row.record and "acknowledged" in row.record.baseline else ""

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:  # xdist: workers see --dist as "no"; tell them
        node.workerinput["greenbench_dist"] = self.config.option.dist

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:  # xdist: a worker's GPU deselections
        reported = getattr(node, "workeroutput", {}).get("greenbench_gpu_deselected")
        if reported and not self.config.stash.get(_GPU_DESELECTED, []):
            self.config.stash[_GPU_DESELECTED] = [tuple(entry) for entry in reported]

    def pytest_terminal_summary(self, terminalreporter) -> None:
        deselected = self.config.stash.get(_GPU_DESELECTED, [])
        if deselected:
            terminalreporter.write_line(f"greenbench: {len(deselected)} GPU tests not run: {NO_CUDA}")
        if not self.rows and not any(claim_id for _, claim_id, _ in deselected):
            return
        from greenbench.core.provenance import hardware_profile
        from greenbench.harness.report import ClaimRow, render_claims_table

        for nodeid, claim_id, name in deselected:
            if claim_id:
                self.rows[(nodeid, "")] = ClaimRow(claim_id, CLAIMS[claim_id].source, name, NOT_RUN, "no CUDA device")
        terminalreporter.write_sep("=", f"greenbench claims on {hardware_profile()}")
        terminalreporter.write_line(render_claims_table(self._sorted()))
        if recorded := self._publish(final=True):
            terminalreporter.write_line(f"greenbench: run recorded in {recorded}")

    def _sorted(self) -> list:
        return sorted(self.rows.values(), key=lambda r: (list(CLAIMS).index(r.claim_id), r.case))

    def _publish(self, final: bool):  # --claims-json atomically as rows end; --history, the step summary at the end
        from greenbench.harness.exports import publish_run

        return publish_run(self._sorted(), lambda: run_provenance(self.config), self.config.getoption("--claims-json"),
                           self.config.getoption("--history"), self.config.rootpath, final)


def _raised(report: pytest.TestReport, status: str) -> bool:
    """Whether the call failed with the verdict's own exception (not another error after the verdict)."""
    from greenbench.harness.report import failure_line

    wanted = BaselineRegression if status == REGRESSED else ClaimNotReproduced
    return failure_line(report.longrepr, report.when).startswith(f"{wanted.__name__}:")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    check = getattr(item, "funcargs", {}).get("claim")
    if isinstance(check, ClaimCheck) and not check.given:
        raise ClaimWithoutVerdict(f"{item.nodeid} took the `claim` fixture but ended without claim.verdict(...): "
                                  "a claim test must give a verdict (claim.unmet(...) for a precondition)")
    return result


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.stash.get(_GPU_DESELECTED, []):
        session.exitstatus = pytest.ExitCode.OK  # only GPU tests were asked for and there is no GPU: a clean skip


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if not hasattr(config, "workerinput"):  # the xdist controller (or a plain run) prints the table
        config.pluginmanager.register(ClaimsTable(config), "greenbench-claims-table")


@pytest.fixture(scope="session")
def baseline_root(request: pytest.FixtureRequest) -> Path:
    """Where this run's baselines live: --baseline-dir, or baselines/ in the rootdir."""
    return Path(request.config.getoption("--baseline-dir") or request.config.rootpath / "baselines")


@pytest.fixture
def claim(request: pytest.FixtureRequest, baseline_root: Path) -> ClaimCheck:
    from greenbench.core.provenance import hardware_profile
    from greenbench.energy.gputier import rehearsal_requested
    from greenbench.harness.baselines import BaselineStore

    marker = request.node.get_closest_marker("claim")
    if marker is None or not marker.args or marker.args[0] not in CLAIMS:
        raise pytest.UsageError(f"{request.node.nodeid} uses `claim` without @pytest.mark.claim('<registered id>'); "
                                f"register a claim with greenbench.claims.register_claim (registered: "
                                f"{', '.join(CLAIMS)})")
    claim_id = marker.args[0]
    on_gpu = bool(request.node.get_closest_marker("gpu"))
    store = BaselineStore(baseline_root, hardware_profile(measured_energy=CLAIMS[claim_id].measures_energy,
                                                          on_gpu=on_gpu))
    rehearsal = on_gpu and rehearsal_requested()
    gpu = gpu_of_each(request.config) if on_gpu else None
    check = ClaimCheck(request, claim_id, store, request.config.getoption("--update-baselines"), rehearsal,
                       "" if gpu is None else f"@cuda:{gpu}")
    if check.expected == NOT_REPRODUCED and not check.update and not rehearsal:
        request.applymarker(pytest.mark.xfail(
            strict=True, raises=ClaimNotReproduced,
            reason=f"baseline of {store.profile} records this claim as not reproduced"))
    return check


_GPU_DESELECTED = pytest.StashKey[list]()


@pytest.hookimpl(trylast=True)  # after -m has chosen the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    claims = [item for item in items
              if (m := item.get_closest_marker("claim")) and m.args and "claim" in getattr(item, "fixturenames", ())]
    if not gpu and not claims:
        return  # a suite that uses none of greenbench: nothing imported, nothing read
    try:
        check_environment()
    except SettingError as exc:
        raise pytest.UsageError(str(exc)) from None
    from greenbench.energy.gputier import rehearsal_requested

    if gpu and not rehearsal_requested():
        import torch

        # `pytest -m gpu` without CUDA (and not rehearsing): one line says why, not one skip per test
        if not torch.cuda.is_available():
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
    unknown = sorted({m.args[0] for item in claims if (m := item.get_closest_marker("claim")).args[0] not in CLAIMS})
    if unknown:
        raise pytest.UsageError(f"tests use @pytest.mark.claim('<registered id>') with unregistered claims "
                                f"{unknown}; register each with greenbench.claims.register_claim "
                                f"(registered: {', '.join(CLAIMS)})")
    for item in claims:  # a row of the claims table
        item.user_properties.append((CLAIM_ID_KEY, item.get_closest_marker("claim").args[0]))


def write_artifact(config: pytest.Config, name: str, payload) -> None:
    """Save a run artifact for the report when --report-dir is given."""
    from greenbench.core.provenance import atomic_write_json

    folder = config.getoption("--report-dir")
    if folder:
        suffix = "" if (gpu := gpu_of_each(config)) is None else f"-cuda{gpu}"
        atomic_write_json(Path(folder) / (Path(name).stem + suffix + Path(name).suffix), payload)


def gpu_of_each(config: pytest.Config) -> int | None:
    """Under `pytest -m gpu -n <gpus> --dist each` every GPU runs every test: this worker's CUDA index, which keeps
    their cases ("@cuda:N") and artifacts ("-cudaN") apart; None otherwise."""
    return xdist_gpu() if getattr(config, "workerinput", {}).get("greenbench_dist") == "each" else None


@pytest.fixture(scope="session")
def save_artifact(request):
    """save_artifact(name, payload): keep a JSON artifact for the report (with --report-dir)."""
    return lambda name, payload: write_artifact(request.config, name, payload)


NO_CUDA = "no CUDA device here: the GPU tier (pytest -m gpu) runs on a machine with an NVIDIA GPU"


@pytest.fixture(scope="session")
def gpu_tier():
    """The GPU tier's settings: a CUDA device, or the CPU rehearsal (GREENBENCH_GPU_REHEARSAL=1)."""
    from greenbench.energy.gputier import gpu_tier_settings

    try:
        return gpu_tier_settings()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


@pytest.fixture(scope="session")
def cuda_device(gpu_tier) -> str:
    import torch

    if not gpu_tier.rehearsal and gpu_tier.cuda_index >= torch.cuda.device_count():  # no GPU, or not this one
        pytest.skip(f"{gpu_tier.device} does not exist here ({torch.cuda.device_count()} CUDA devices)"
                    if torch.cuda.is_available() else NO_CUDA)
    return gpu_tier.device


@pytest.fixture(scope="session")
def gpu_meter(cuda_device, gpu_tier):
    """NVML's energy counter on the GPU under test, a simulated one in a rehearsal, or a skip saying why not."""
    from greenbench.energy.gputier import open_gpu_meter
    from greenbench.energy.meter import MeterUnavailable

    try:
        meter = open_gpu_meter(gpu_tier, cuda_device)
    except MeterUnavailable as exc:
        pytest.skip(f"GPU present but no NVML energy source: {exc}")
    yield meter
    meter.close()
