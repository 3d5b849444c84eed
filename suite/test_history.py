"""The run history and the windowed gate (issue 22): immutable run files, a robust window test, a trend
test, change points, Holm across a run's metrics, acknowledgements, and the formats dashboards read.

The gate is demonstrated on a simulated nightly history: 30 runs of 42 noisy metrics (σ = 1 around
100, lower is better): 40 clean, one that steps up by 5σ at run 20, one that drifts up by 0.25σ a run.
Each run from the 10th on is gated against the runs before it (window 20), as a nightly job would.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from greenbench import cli
from greenbench.analysis.regression import change_points, holm, judge_window
from greenbench.harness.baselines import BaselineError, BaselineStore, acknowledgement_active
from greenbench.harness.claims import ClaimRecord, Metric
from greenbench.harness.exports import BMF_SCHEMA, append_step_summary, to_benchmark_action, to_bmf
from greenbench.harness.history import HistoryError, gate_history, load_runs, metric_series, read_run, record_run

RUNS, STEP_AT, FIRST_GATED, CLEAN = 30, 20, 10, 40
PROFILE = "cpu-test"


def _provenance(k: int) -> dict:
    date = (datetime.datetime(2026, 11, 1, 2) + datetime.timedelta(days=k)).isoformat() + "+00:00"
    return {"date": date, "profile": PROFILE, "hardware": {"cpu_model": "EPYC"}, "versions": {"torch": "2.13.0"},
            "git": {"commit": f"{k:040x}", "branch": "main"}}


def _values(k: int, rng) -> dict[str, float]:
    noise = rng.normal(0.0, 1.0, CLEAN + 2)
    values = {f"clean-{i}": 100 + noise[i] for i in range(CLEAN)}
    values["step"] = 100 + noise[CLEAN] + (5.0 if k >= STEP_AT else 0.0)
    values["drift"] = 100 + noise[CLEAN + 1] + 0.25 * k
    return values


def _records(values: dict[str, float]) -> list[ClaimRecord]:
    return [ClaimRecord("compression-8x", name, "", "", {}, True, {"m": Metric(v, 0.0, "lower")})
            for name, v in values.items()]


def _row(record: ClaimRecord) -> dict:
    return {"claim": record.claim_id, "source": "", "case": record.case, "verdict": "reproduced", "reason": "",
            "record": record.to_json()}


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    """Every gated run's verdicts, by run: what a nightly job would have printed."""
    folder = tmp_path_factory.mktemp("history")
    rng = np.random.default_rng(20261202)
    verdicts = {}
    for k in range(RUNS):
        records = _records(_values(k, rng))
        if k >= FIRST_GATED:
            verdicts[k] = {v.case: v for v in gate_history(records, load_runs(folder, PROFILE), window=20)}
        record_run(folder, [_row(r) for r in records], _provenance(k))
    return folder, verdicts


def test_the_gate_finds_the_step_at_its_run_and_the_drift_by_the_end(nightly):
    folder, verdicts = nightly
    step = {k: v["step"].verdict for k, v in verdicts.items()}
    assert all(step[k] == "ok" for k in range(FIRST_GATED, STEP_AT)), step  # no alarm before it
    assert step[STEP_AT] == "regressed", step  # the run the step began
    steps = verdicts[RUNS - 1]["step"].steps  # change-point detection locates it among the runs
    stepped_at = sorted(load_runs(folder, PROFILE))[STEP_AT][0]
    assert steps.startswith(f"run {stepped_at}: "), steps
    drift = {k: v["drift"].verdict for k, v in verdicts.items()}
    assert drift[RUNS - 1] in ("drifting", "regressed"), drift
    assert "drifting" in drift.values()  # the trend test, not only the window, sees it


def test_the_clean_series_raise_alarms_at_no_more_than_the_stated_rate(nightly):
    """Holm across 42 metrics at α = 0.05 per run: over 20 gated runs, expected ≤ 1 run with a false alarm;
    over 200 independent clean runs of 42 metrics the family-wise rate is measured (4.0 % in 2,000)."""
    _, verdicts = nightly
    false_alarm_runs = [k for k, v in verdicts.items() if any(v[f"clean-{i}"].failed for i in range(CLEAN))]
    assert len(false_alarm_runs) <= 2, false_alarm_runs
    rng = np.random.default_rng(7)
    alarms = 0
    for _ in range(200):
        history, new = rng.normal(100, 1, (20, 42)), rng.normal(100, 1, 42)
        alarms += any(holm([judge_window(list(history[:, j]), new[j], "lower").p_value for j in range(42)]))
    assert alarms / 200 <= 0.05 + 3 * (0.05 * 0.95 / 200) ** 0.5, alarms  # within 3 standard errors of α


def test_too_little_history_says_so_and_leaves_the_decision_to_the_baseline(tmp_path):
    record_run(tmp_path, [_row(r) for r in _records({"a": 1.0})], _provenance(0))
    (verdict,) = gate_history(_records({"a": 50.0}), load_runs(tmp_path), window=20)
    assert verdict.verdict == "too little history (1 runs): baseline decides" and not verdict.failed


def test_min_change_keeps_small_changes_from_failing_and_acknowledged_ones_warn(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(12):
        record_run(tmp_path, [_row(r) for r in _records({"a": 100 + 0.01 * rng.normal()})], _provenance(k))
    runs = load_runs(tmp_path)
    assert gate_history(_records({"a": 100.5}), runs)[0].verdict == "regressed"  # 50σ, but only 0.5 %
    assert gate_history(_records({"a": 100.5}), runs, min_change=0.05)[0].verdict == "ok"
    known = gate_history(_records({"a": 100.5}), runs, acknowledged=lambda *key: "new compiler (until 2027-01-01)")
    assert known[0].verdict == "acknowledged: new compiler (until 2027-01-01)" and not known[0].failed
    assert gate_history(_records({"a": 99.0}), runs)[0].verdict == "ok"  # better is never a regression


def test_history_files_are_immutable_checksummed_and_refused_when_damaged(tmp_path):
    first = record_run(tmp_path, [_row(r) for r in _records({"a": 1.0})], _provenance(0))
    second = record_run(tmp_path, [_row(r) for r in _records({"a": 1.0})], _provenance(0))
    assert first != second and first.parent.name == PROFILE  # same second, same commit: still two files
    assert read_run(first)["rows"][0]["record"]["metrics"]["m"]["value"] == 1.0
    tampered = json.loads(first.read_text())
    tampered["run"]["rows"][0]["record"]["metrics"]["m"]["value"] = 2.0
    first.write_text(json.dumps(tampered))
    with pytest.raises(HistoryError, match="checksum mismatch"):
        load_runs(tmp_path)
    first.write_text('{"schema": "greenbench-history/0"}')
    with pytest.raises(HistoryError, match="fails the history schema"):
        read_run(first)
    first.write_bytes(b"\xff\x00")
    with pytest.raises(HistoryError, match="not a readable history file"):
        read_run(first)
    with pytest.raises(HistoryError, match="does not exist"):
        load_runs(tmp_path / "nowhere")


def test_window_trend_and_holm_on_known_inputs():
    flat = [10.0] * 10
    assert judge_window(flat[:4], 10.0, "lower") is None  # fewer than 5 runs
    same = judge_window(flat, 10.0, "lower")
    assert same.z == 0 and same.p_window == pytest.approx(0.5)
    worse = judge_window(flat, 11.0, "lower")  # a deterministic metric (MAD 0) that moved: certain
    assert worse.z > 1e6 and worse.p_window < 1e-12
    assert judge_window(flat, 11.0, "higher").p_window > 0.99  # for a higher-is-better metric that is a gain
    with pytest.raises(ValueError, match="finite"):
        judge_window(flat, float("nan"), "lower")
    assert holm([0.001, 0.02, 0.04], 0.05) == [True, True, True]  # 0.001 ≤ .05/3, .02 ≤ .05/2, .04 ≤ .05
    assert holm([0.001, 0.03, 0.04], 0.05) == [True, False, False]  # 0.03 > .05/2 stops the descent
    levels = [1.0] * 10 + [5.0] * 10
    (step,) = change_points(list(np.array(levels) + np.random.default_rng(1).normal(0, 0.1, 20)))
    assert step.index == 10 and step.before == pytest.approx(1, abs=0.2) and step.after == pytest.approx(5, abs=0.2)


def test_acknowledgements_are_schema_checked_and_expire(tmp_path):
    store = BaselineStore(tmp_path, PROFILE)
    (tmp_path / PROFILE).mkdir()
    (tmp_path / PROFILE / "acknowledged.json").write_text(json.dumps({"schema": "greenbench-acknowledged/1",
                                                                      "entries": [{"claim": "c", "case": "k",
                                                                                   "metric": "m", "reason": "r"}]}))
    with pytest.raises(BaselineError, match="acknowledged.json: fails the baseline schema"):
        store.acknowledged("c", "k", "m")  # neither an until-date nor an until-commit: never forever
    entry = {"claim": "c", "case": "k", "metric": "m", "reason": "r", "until_date": "2026-12-31"}
    assert acknowledgement_active(entry, tmp_path, today=datetime.date(2026, 12, 31))
    assert not acknowledgement_active(entry, tmp_path, today=datetime.date(2027, 1, 1))
    assert store.claim_ids() == []  # the acknowledgement file is not a claim's baseline


def test_bmf_and_benchmark_action_files_follow_their_formats(tmp_path):
    records = [ClaimRecord("compression-8x", "test_x[lenet5]", "CR ≥ 8", "", {}, True,
                           {"cr": Metric(13.3, 0.1, "higher"), "bits": Metric(2.4, 0.05, "lower"),
                            "rho": Metric(0.7, 0.0, None)})]
    bmf = to_bmf(records)
    jsonschema.validate(bmf, BMF_SCHEMA)
    assert bmf["compression-8x/test_x[lenet5]"]["cr"] == {"value": 13.3, "lower_value": 13.200000000000001,
                                                           "upper_value": 13.4}
    smaller, bigger, undirected = to_benchmark_action(records)
    assert [e["name"] for e in smaller] == ["compression-8x/test_x[lenet5]/bits"] and undirected == 1
    assert bigger[0] == {"name": "compression-8x/test_x[lenet5]/cr", "unit": "1", "value": 13.3, "range": "± 0.1",
                         "extra": "claim compression-8x: CR ≥ 8"}
    with pytest.raises(ValueError, match="longer than Bencher's 64"):
        to_bmf([ClaimRecord("c", "k", "", "", {}, True, {"m" * 65: Metric(1.0)})])
    summary = tmp_path / "summary.md"
    assert not append_step_summary("x", environ={}) and append_step_summary("# table", {"GITHUB_STEP_SUMMARY":
                                                                                       str(summary)})
    assert summary.read_text() == "# table\n\n"


def test_compare_with_history_gates_prints_the_environment_change_and_writes_the_exports(nightly, tmp_path,
                                                                                          capsys):
    folder, _ = nightly
    runs = load_runs(folder, PROFILE)
    last = runs[-1][1]
    run = {**last, "provenance": {**last["provenance"], "date": "2026-12-30T02:00:00+00:00",
                                  "versions": {"torch": "2.14.0"}}}
    run["rows"] = [{**row, "record": {**row["record"], "metrics": {"m": {**row["record"]["metrics"]["m"],
                                                                         "value": 130.0}}}}
                   if row["case"] == "clean-0" else row for row in last["rows"]]
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"provenance": run["provenance"], "rows": run["rows"]}))
    (tmp_path / "baselines" / PROFILE).mkdir(parents=True)
    status = cli.main(["compare", "--run", str(claims), "--against", PROFILE, "--baseline-dir",
                       str(tmp_path / "baselines"), "--history", str(folder), "--window", "20",
                       "--bmf", str(tmp_path / "bmf.json"), "--benchmark-action", str(tmp_path / "gab.json")])
    out, err = capsys.readouterr()
    assert status == 1 and "clean-0" in out and "regressed" in out, err
    assert "versions.torch  2.13.0      2.14.0" in out  # the likely cause, beside the jump
    assert "Holm across 42 metrics at family-wise α = 0.05 per run" in out
    jsonschema.validate(json.loads((tmp_path / "bmf.json").read_text()), BMF_SCHEMA)
    assert len(json.loads((tmp_path / "gab.json").read_text())) == 42 and (tmp_path / "gab-bigger.json").is_file()


@pytest.mark.parametrize("option, value", [("--min-change", "five"), ("--min-change", "-5%"), ("--alpha", "1.5"),
                                           ("--window", "0")])
def test_compare_refuses_a_bad_gate_option(option, value, capsys):
    with pytest.raises(SystemExit):
        cli.main(["compare", "--run", "claims.json", "--history", "h", option, value])
    assert option in capsys.readouterr().err


def test_history_command_prints_each_series_and_draws_its_trend(nightly, tmp_path, capsys):
    folder, _ = nightly
    assert cli.main(["history", str(folder), "--metric", "m", "--claim", "compression-8x", "--profile", PROFILE]) == 0
    out = capsys.readouterr().out
    assert "compression-8x / step / m (30 runs)" in out and f"{0:040x}"[:10] in out and "clean-39" in out
    assert cli.main(["history", str(folder), "--case", "step", "--plot", str(tmp_path), "--baseline-dir",
                     str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.glob("trend-*.png")] == ["trend-compression-8x-step-m.png"]
    series = metric_series(load_runs(folder), metric="m")
    assert len(series[("compression-8x", "drift", "m")]) == RUNS
    assert Path(tmp_path / "trend-compression-8x-step-m.png").stat().st_size > 5000
