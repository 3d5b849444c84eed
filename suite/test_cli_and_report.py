"""The `greenbench` command (train) and the report of a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch

from greenbench import cli
from greenbench.harness.claims import ClaimRecord, Metric
from greenbench.harness.report import ClaimRow, build_report, render_claims_table
from greenbench.nn.training import load_checkpoint

REPO_BASELINES = Path(__file__).resolve().parents[1] / "baselines"


def test_train_writes_checkpoint_with_provenance(tmp_path, fashion_mnist, capsys):
    out = tmp_path / "lenet5.safetensors"
    assert cli.main(["train", "lenet5", "--epochs", "1", "--train-limit", "256", "--output", str(out), "--quiet"]) == 0
    model, meta = load_checkpoint(out)
    assert meta["network"] == "lenet5" and meta["seed"] == 158763 and meta["data_checksum"] == fashion_mnist.checksum
    assert {"hardware", "versions", "date", "test_accuracy", "weights_sha256"} <= set(meta)
    assert "test accuracy" in capsys.readouterr().out


def test_checkpoint_that_does_not_match_its_provenance_is_refused(tmp_path, fashion_mnist):
    out = tmp_path / "lenet5.safetensors"
    cli.main(["train", "lenet5", "--epochs", "1", "--train-limit", "64", "--output", str(out), "--quiet"])
    state = safetensors.torch.load_file(str(out))
    state["classifier.5.bias"] += 1
    safetensors.torch.save_file(state, str(out))
    with pytest.raises(ValueError, match="sha256"):
        load_checkpoint(out)


def test_committed_fixtures_match_their_provenance():
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    for path in fixtures.glob("*.safetensors"):
        model, meta = load_checkpoint(path)
        assert path.stat().st_size <= 3 * 2**20
        assert meta["dataset"] == "fashion-mnist" and meta["epochs"] >= 1


def _rows():
    rec = ClaimRecord("compression-8x", "test_model_quantized_within_budget_in_the_theses_cr_range[lenet5]",
                      "CR ≥ 2.58", "CR ≥ 2.58",
                      {"setting": "deadzone δ=0.7 i=5", "H bits": 2.4, "CR": 13.3, "top-1 loss pp": 0.6,
                       "top-1": 0.916}, True, {"entropy_bits": Metric(2.4, 0.0, "lower")}, baseline="matches")
    real = ClaimRecord("compression-8x", "test_real_cr_at_least_entropy_cr[lenet5]", "", "",
                       {"real CR": 13.29}, True)
    return [ClaimRow("compression-8x", "004", rec.case, "reproduced", "", rec),
            ClaimRow("compression-8x", "004", real.case, "reproduced", "", real),
            ClaimRow("fp16-energy", "000", "test_fp16_uses_less_energy[vgg11]", "not run", "no CUDA device")]


def test_claims_table_shows_claimed_measured_baseline_verdict():
    text = render_claims_table(_rows())
    assert "deadzone δ=0.7 i=5" in text and "matches" in text and "not run: no CUDA device" in text
    assert "3 claim checks: 2 reproduced, 0 not reproduced, 0 known, 1 not run" in text


def test_report_from_a_run(tmp_path):
    (tmp_path / "claims.json").write_text(json.dumps({"provenance": {"profile": "cpu-test", "date": "d"},
                                                      "rows": [r.to_json() for r in _rows()]}))
    points = [{"family": f, "setting": f"{f} i={i}", "entropy": float(i), "top1": 0.9 - 0.01 / i, "top5": 1.0,
               "loss_top1_pp": 1 / i, "cr": 32 / i} for f in ("midtread", "midrise") for i in range(2, 9)]
    (tmp_path / "rate_accuracy_lenet5.json").write_text(json.dumps(
        {"network": "lenet5", "original_top1": 0.9, "budget_pp": 0.8, "evaluations": 14, "points": points}))
    run = {"energy_j": 10.0, "duration_s": 1.0, "source": "measured", "repeats": 2}
    (tmp_path / "fp16_benchmark.json").write_text(json.dumps({"data": "fashion-mnist", "networks": {
        n: {"runs": {"fp32": [run, run], "fp16": [run, run]}} for n in ("lenet5", "resnet34")}}))
    report = build_report(tmp_path, REPO_BASELINES)
    text = report.read_text()
    assert "| lenet5" in text and "13.29" in text and "CaffeNet" in text  # ours beside thesis Table 3.10
    assert "rate_accuracy_lenet5.png" in text and (tmp_path / "rate_accuracy_lenet5.png").stat().st_size > 1000
    assert (tmp_path / "fp16_energy_time.png").is_file() and "**measured**" in text and "NOR" in text


def test_identical_gpus_spread_per_network_and_series():
    from greenbench.harness.report import gpu_spread_rows

    def bench(j):
        return {"lenet5": {"series_order": ["fp32", "fp16"], "runs": {"fp32": [], "fp16": []},
                           "summary": {"fp32": {"J per pass": j}, "fp16": {"J per pass": j / 2}}}}

    rows, headers = gpu_spread_rows({"cuda0": bench(9.0), "cuda1": bench(11.0)})
    assert headers == ["network", "series", "cuda0", "cuda1", "spread"]
    assert rows == [["lenet5", "fp32", "9.000", "11.000", "20.00 %"], ["lenet5", "fp16", "4.500", "5.500", "20.00 %"]]
