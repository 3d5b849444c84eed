"""Stored baselines: schema, atomic writes, the gate, and the compare tool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenbench import cli
from greenbench.core.provenance import atomic_write_json, hardware_profile
from greenbench.harness.baselines import (
    BaselineError,
    BaselineStore,
    compare_metric,
    load_paper_table,
    paper_comparisons,
)
from greenbench.harness.claims import CLAIMS, ClaimRecord, Metric

REPO_BASELINES = Path(__file__).resolve().parents[1] / "baselines"


def _record(value: float, case: str = "test_x[a]", claim_id: str = "compression-8x", spread: float = 0.1,
            better: str | None = "higher") -> ClaimRecord:
    return ClaimRecord(claim_id, case, "claimed", "tol", {"x": value}, True, {"x": Metric(value, spread, better)})


def test_update_then_compare_round_trip(tmp_path):
    store = BaselineStore(tmp_path, "cpu-test")
    assert store.compare(_record(1.0))[0].status == "missing"
    store.update(_record(1.0), "reproduced", {"date": "d", "hardware": {}, "versions": {}})
    assert [c.status for c in store.compare(_record(1.2))] == ["ok"]  # within 3 combined spreads
    assert store.compare(_record(0.2))[0].status == "regressed"
    assert store.compare(_record(2.0))[0].status == "improved"
    store.update(_record(5.0, case="test_x[b]"), "not reproduced", {"date": "d", "hardware": {}, "versions": {}})
    data = json.loads(store.path("compression-8x").read_text())
    assert set(data["cases"]) == {"test_x[a]", "test_x[b]"}  # other cases are kept
    assert data["cases"]["test_x[b]"]["outcome"] == "not reproduced"


def test_update_removes_what_a_writer_killed_mid_write_left(tmp_path):
    store = BaselineStore(tmp_path, "cpu-test")
    path = store.path("compression-8x")
    path.parent.mkdir(parents=True)
    stale = path.parent / f".{path.name}.k9x2_q.tmp"  # atomic_write_json's temporary name
    stale.write_text('{"schema": ')
    other = path.parent / ".other.json.k9x2_q.tmp"  # another claim's: its own writer cleans it
    other.write_text("")
    store.update(_record(1.0), "reproduced", {"date": "d", "hardware": {}, "versions": {}})
    assert not stale.exists() and other.exists()


def test_gate_on_two_sided_and_deterministic_metrics():
    assert compare_metric("m", Metric(10.0, 0.0, None), {"value": 10.0, "spread": 0.0}).status == "ok"
    assert compare_metric("m", Metric(10.001, 0.0, None), {"value": 10.0, "spread": 0.0}).status == "changed"
    assert compare_metric("m", Metric(10.0 + 1e-9, 0.0, None), {"value": 10.0, "spread": 0.0}).status == "ok"
    assert compare_metric("m", Metric(8.0, 0.2, "lower"), {"value": 10.0, "spread": 0.0}).status == "improved"
    assert compare_metric("m", Metric(9.0, 0.5, "lower"), {"value": 10.0, "spread": 0.0}).status == "ok"


@pytest.mark.parametrize("mangle, problem", [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: json.dumps({**d, "schema": "other/9"}), "schema"),
    (lambda d: json.dumps({**d, "cases": {"c": {"outcome": "maybe", "metrics": {}, "measured": {}, "date": ""}}}),
     "cases/c/outcome"),
    (lambda d: json.dumps({**d, "cases": {"c": {"outcome": "reproduced", "metrics": {"m": {"value": "high"}},
                                                "measured": {}, "date": ""}}}), "cases/c/metrics/m"),
])
def test_bad_baseline_file_names_the_problem_and_is_not_overwritten(tmp_path, mangle, problem):
    store = BaselineStore(tmp_path, "cpu-test")
    path = store.update(_record(1.0), "reproduced", {"date": "d", "hardware": {}, "versions": {}})
    path.write_text(mangle(json.loads(path.read_text())))
    broken = path.read_text()
    with pytest.raises(BaselineError, match=problem):
        store.compare(_record(1.0))
    with pytest.raises(BaselineError):
        store.update(_record(2.0), "reproduced")
    assert path.read_text() == broken  # a file we cannot read is never replaced behind the user's back


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "b.json"
    atomic_write_json(path, {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]  # no temporary file left behind


def test_paper_tables_validate():
    for path in (REPO_BASELINES / "paper").glob("*.json"):
        table = load_paper_table(path.stem, REPO_BASELINES)
        assert table["source"]


def test_stored_profiles_validate():
    for profile in BaselineStore(REPO_BASELINES, "-").profiles():
        store = BaselineStore(REPO_BASELINES, profile)
        for path in (REPO_BASELINES / profile).glob("*.json"):
            assert store.load(path.stem) is not None


def test_paper_comparison_rows():
    record = ClaimRecord("table1-counts", "test_parameters_and_flops_match_table_1[vgg11]", "", "", {}, True,
                         {"flops": Metric(235_581_440.0)})
    row = paper_comparisons([record], REPO_BASELINES)[0]
    assert row.baseline == 235_577_344 and row.change_text == "+0.00 %"


def _profile(root: Path, name: str, value: float) -> None:
    BaselineStore(root, name).update(_record(value), "reproduced", {"date": "d", "hardware": {}, "versions": {}})


def test_compare_cli_gates_with_exit_status(tmp_path, capsys):
    _profile(tmp_path, "cpu-old", 10.0)
    _profile(tmp_path, "cpu-new", 10.1)
    assert cli.main(["compare", "--profile", "cpu-new", "--against", "cpu-old", "--baseline-dir", str(tmp_path)]) == 0
    _profile(tmp_path, "cpu-worse", 5.0)
    assert cli.main(["compare", "--profile", "cpu-worse", "--against", "cpu-old", "--baseline-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "regressed" in out and "-50.00 %" in out
    empty = tmp_path / "cpu-empty"
    empty.mkdir()
    assert cli.main(["compare", "--profile", "cpu-old", "--against", "cpu-empty", "--baseline-dir", str(tmp_path),
                     "--fail-on-missing"]) == 2


def test_compare_cli_reads_a_run(tmp_path, capsys):
    _profile(tmp_path, "cpu-old", 10.0)
    run = tmp_path / "claims.json"
    run.write_text(json.dumps({"provenance": {}, "rows": [
        {"claim": "compression-8x", "source": "", "case": "test_x[a]", "verdict": "reproduced", "reason": "",
         "record": _record(10.05).to_json()}]}))
    assert cli.main(["compare", "--run", str(run), "--against", "cpu-old", "--baseline-dir", str(tmp_path)]) == 0
    assert "ok" in capsys.readouterr().out


def test_compare_names_what_differs_between_the_baselines_environment_and_the_runs(tmp_path, capsys):
    from greenbench.core.provenance import environment_diff

    recorded = {"date": "2026-11-01", "profile": "cpu-old", "threads": "1",
                "hardware": {"cpu_model": "EPYC 9654", "gpu": {"driver": "560.1", "power_limit_w": 700}},
                "versions": {"torch": "2.11.0", "numpy": "2.4.6"}}
    run = {**recorded, "date": "2026-12-01", "threads": "2",
           "hardware": {"cpu_model": "EPYC 9654", "gpu": {"driver": "570.2", "power_limit_w": 700}},
           "versions": {"torch": "2.13.0", "numpy": "2.4.6", "numba": "0.68.1"}}
    assert environment_diff(recorded, run) == [("hardware.gpu.driver", "560.1", "570.2"), ("threads", "1", "2"),
                                               ("versions.numba", None, "0.68.1"),
                                               ("versions.torch", "2.11.0", "2.13.0")]  # never the date
    assert environment_diff(recorded, recorded) == []
    BaselineStore(tmp_path, "cpu-old").update(_record(10.0), "reproduced", recorded)
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"provenance": run, "rows": [
        {"claim": "compression-8x", "source": "", "case": "test_x[a]", "verdict": "reproduced", "reason": "",
         "record": _record(10.0).to_json()}]}))
    assert cli.main(["compare", "--run", str(claims), "--against", "cpu-old", "--baseline-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "environment of the baselines of compression-8x (recorded 2026-11-01)" in out and "4 differences" in out
    assert "versions.torch       2.11.0      2.13.0" in out and "hardware.gpu.driver  560.1       570.2" in out


def test_profiles_name_the_machine_model_only_for_measured_energy():
    cpu = {"machine": "x86_64", "cpu_model": "AMD EPYC 9654 96-Core Processor", "gpu": None}
    assert hardware_profile(cpu) == "cpu-x86-64"  # deterministic numerics: shared by an architecture
    assert hardware_profile(cpu, measured_energy=True) == "cpu-x86-64-amd-epyc-9654-96-core-processor"
    gpu = {**cpu, "gpu": {"model": "NVIDIA H100 80GB HBM3"}}
    assert hardware_profile(gpu) == hardware_profile(gpu, measured_energy=True) == "cuda-nvidia-h100-80gb-hbm3"
    # a claim's profile follows the device its figure was measured on, not the machine's best device
    assert hardware_profile(gpu, on_gpu=True) == "cuda-nvidia-h100-80gb-hbm3"
    assert hardware_profile(gpu, on_gpu=False) == "cpu-x86-64"
    assert hardware_profile(gpu, measured_energy=True, on_gpu=False) == "cpu-x86-64-amd-epyc-9654-96-core-processor"
    assert hardware_profile(cpu, on_gpu=True) == "cpu-x86-64"  # a GPU test rehearsed on a CPU
    energy_claims = {c.id for c in CLAIMS.values() if c.measures_energy}
    assert energy_claims == {"fp16-energy", "mnist-energy"}
