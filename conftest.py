"""pytest glue: baseline options, the `claim` fixture, hypothesis profiles and the claims table.

Claim tests hand a `ClaimRecord` to the `claim` fixture; it is compared with this hardware
profile's baseline, stored on the test report (so it crosses pytest-xdist workers), and the
claims table printed at the end is built from those records and the tests' outcomes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from greenbench.baselines import BaselineStore
from greenbench.claims import CLAIMS, ClaimRecord, Metric
from greenbench.provenance import atomic_write_json, hardware_profile, provenance
from greenbench.report import ClaimRow, render_claims_table

ROOT = Path(__file__).parent
RECORD_KEY = "greenbench.claim"

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("GREENBENCH_HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("greenbench")
    group.addoption("--baseline-dir", default=str(ROOT / "baselines"),
                    help="root of the stored baselines (default: baselines/ beside conftest.py)")
    group.addoption("--update-baselines", action="store_true",
                    help="store this run's claim figures as the baselines of this hardware profile")
    group.addoption("--claims-json", default=None, help="also write the claims table rows to this JSON file")


class ClaimCheck:
    """What a claim test uses: record the figures, compare them with the baseline, assert the claim."""

    def __init__(self, request: pytest.FixtureRequest, claim_id: str, store: BaselineStore, update: bool):
        self.request = request
        self.claim_id = claim_id
        self.store = store
        self.update = update
        callspec = getattr(request.node, "callspec", None)
        self.case = f"{request.node.originalname}[{callspec.id}]" if callspec else request.node.name
        self.expected = (store.case(claim_id, self.case) or {}).get("outcome")

    def verdict(self, holds: bool, *, claimed: str, tolerance: str, measured: dict,
                metrics: dict[str, Metric] | None = None, note: str = "") -> None:
        """Record the outcome; fail if the claim does not hold or a metric regressed from the baseline."""
        record = ClaimRecord(self.claim_id, self.case, claimed, tolerance, measured, bool(holds), metrics or {},
                             note=note)
        comparisons = self.store.compare(record) if record.metrics else []
        outcome = "reproduced" if holds else "not reproduced"
        if self.update and record.metrics:
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
            row.verdict = "reproduced"

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.rows:
            return
        rows = sorted(self.rows.values(), key=lambda r: (list(CLAIMS).index(r.claim_id), r.case))
        terminalreporter.write_sep("=", f"greenbench claims on {hardware_profile()}")
        terminalreporter.write_line(render_claims_table(rows))
        path = self.config.getoption("--claims-json")
        if path:
            atomic_write_json(Path(path), {"provenance": self.config.stash[_PROVENANCE],
                                           "rows": [r.to_json() for r in rows]})


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_PROVENANCE] = provenance()
    if not hasattr(config, "workerinput"):  # the xdist controller (or a plain run) prints the table
        config.pluginmanager.register(ClaimsTable(config), "greenbench-claims-table")


@pytest.fixture(scope="session")
def baseline_store(request: pytest.FixtureRequest) -> BaselineStore:
    return BaselineStore(Path(request.config.getoption("--baseline-dir")), hardware_profile())


@pytest.fixture(scope="session")
def baseline_root(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.getoption("--baseline-dir"))


@pytest.fixture
def claim(request: pytest.FixtureRequest, baseline_store: BaselineStore) -> ClaimCheck:
    marker = request.node.get_closest_marker("claim")
    if marker is None or not marker.args or marker.args[0] not in CLAIMS:
        raise pytest.UsageError(f"{request.node.nodeid} uses `claim` without @pytest.mark.claim('<known id>')")
    check = ClaimCheck(request, marker.args[0], baseline_store, request.config.getoption("--update-baselines"))
    if check.expected == "not reproduced" and not check.update:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason=f"baseline of {baseline_store.profile} records this claim as not reproduced"))
    return check


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("claim")
        if marker and marker.args:
            item.user_properties.append(("greenbench.claim_id", marker.args[0]))


@pytest.fixture(scope="session")
def fashion_mnist():
    """The real Fashion-MNIST (checksums verified), or a skip that says what is missing and how to get it."""
    from greenbench.data import DatasetMissingError, load_dataset

    try:
        return load_dataset("fashion-mnist")
    except DatasetMissingError as exc:
        pytest.skip(str(exc))
