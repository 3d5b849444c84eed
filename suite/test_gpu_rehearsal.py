"""The GPU tier rehearsed on the CPU in every default run, so its code cannot rot unseen.

`GREENBENCH_GPU_REHEARSAL=1 pytest -m gpu` runs every GPU test's body on the CPU (simulated NVML, a
slice of the data, bfloat16 for float16): every row must come out as a rehearsal with measured
figures, and no baseline may be written, even with --update-baselines.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from greenbench.energy.gputier import REHEARSAL_ENV, gpu_tier_settings, rehearsal_requested
from greenbench.harness.claims import REHEARSAL_VERDICT

ROOT = Path(__file__).resolve().parent.parent


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow  # ~45 s on one core
def test_gpu_tier_rehearsal_runs_every_gpu_test_and_writes_no_baseline(tmp_path, fashion_mnist):
    baselines = tmp_path / "baselines"
    shutil.copytree(ROOT / "baselines", baselines)
    before = _tree_digest(baselines)
    claims_json = tmp_path / "claims.json"
    # NVML as a VM gives it: no power reading, temperature or clocks, a counter slower than the windows
    # (20 ms against windows of at most 50 ms; the 100 and 250 ms periods: test_energy's stepped clocks)
    env = {**os.environ, REHEARSAL_ENV: "1", "GREENBENCH_THREADS": "1", "GREENBENCH_GPU_TEST_IMAGES": "8",
           "GREENBENCH_MNIST_TRAIN_LIMIT": "128",
           "GREENBENCH_SIMULATED_NVML": "power-not-supported,state-not-supported,period=0.02"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-q", "-rA", f"--baseline-dir={baselines}", "--update-baselines",
                           f"--claims-json={claims_json}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = json.loads(claims_json.read_text())["rows"]
    outcomes = [line.split()[0] for line in done.stdout.splitlines() if "::test_" in line]  # -rA: one line a test
    assert set(outcomes) == {"PASSED"} and len(rows) == len(outcomes) >= 19, done.stdout[-3000:]
    for row in rows:
        assert row["verdict"] == REHEARSAL_VERDICT, row
        assert row["record"]["rehearsal"] and row["record"]["measured"], row
        assert row["record"]["baseline"] == "not compared (rehearsal)"
    assert _tree_digest(baselines) == before, "a rehearsal wrote a baseline"
    assert REHEARSAL_VERDICT in done.stdout


def test_rehearsal_switch_is_validated():
    assert rehearsal_requested({REHEARSAL_ENV: "1"}) and not rehearsal_requested({})
    with pytest.raises(ValueError, match=REHEARSAL_ENV):
        rehearsal_requested({REHEARSAL_ENV: "maybe"})
    with pytest.raises(ValueError, match="GREENBENCH_FP16_RUNS"):
        gpu_tier_settings({REHEARSAL_ENV: "1", "GREENBENCH_FP16_RUNS": "ten"})
    with pytest.raises(ValueError, match="takes an integer in \\[2, 1000\\]"):
        gpu_tier_settings({"GREENBENCH_FP16_RUNS": "1"})
    real = gpu_tier_settings({})
    worker = {"PYTEST_XDIST_WORKER": "gw3"}
    assert gpu_tier_settings(worker).device == "cuda:3"  # one GPU per xdist worker, unless GREENBENCH_GPU says
    assert gpu_tier_settings({**worker, "GREENBENCH_GPU": "1"}).device == "cuda:1"
    assert real.device == "cuda:0" and real.fp16_runs == 10 and real.kernel_runs == 3
    assert real.test_images is None and not real.describe()


def test_each_stage_limit_follows_the_measured_period_pass_and_step():
    from greenbench.harness.gpuprobe import STARTUP_S, Probe, budget_table, stage_budget

    tier = gpu_tier_settings({})  # the real run's sizes: 10 paper-loop runs, 3 kernel-loop runs, 2 warm-ups
    passes = {"lenet5": 0.2, "alexnet": 0.3, "googlenet": 0.8, "vgg11": 0.9, "resnet34": 1.5}
    steps = {"resnet34": 0.01, "alexnet-mnist": 0.004}
    budget = {b.stage: b for b in stage_budget(tier, Probe(0.1, 1.0, {}, 10_000, passes, steps), epochs=2,
                                               train_images=60_000, test_images=10_000)}
    windows = 2 * (1 + 2 + 10) + 3 * (1 + 2 + 3)  # two paper-loop series, three kernel-loop ones
    # a window: the longer of the minimum window and a pass, plus two counter periods of ticks
    assert budget["1-fp16-energy"].estimate_s == pytest.approx(5 * 2.0 + windows * (4 * 1.2 + 1.7))
    # 2 epochs of 1,875 steps for 3 networks, then 2 validations of 12,000 and a test of 10,000 images each
    assert budget["2a-train"].estimate_s == pytest.approx(3 * 2 * 1875 * 0.01 + 3.4 * (1.5 + 0.9 + 0.3))
    slower = stage_budget(tier, Probe(0.25, 1.0, {}, 10_000, passes, steps), 2, 60_000, 10_000)
    assert slower[0].estimate_s == pytest.approx(5 * 2.0 + windows * (4 * 1.5 + 2.0))  # a slower counter
    assert all(b.limit_s >= 1.5 * b.estimate_s + STARTUP_S for b in budget.values())
    assert "| total" in budget_table(list(budget.values()))


@pytest.mark.nightly  # ~20 s: two workers benchmark two networks each
def test_every_gpu_of_a_node_runs_every_test_and_the_report_gives_their_spread(tmp_path, fashion_mnist):
    """`pytest -m gpu -n <gpus> --dist each`: worker gwN on cuda:N, cases kept apart, one artifact per GPU."""
    from greenbench.harness.report import build_report

    env = {**os.environ, REHEARSAL_ENV: "1", "GREENBENCH_GPU_TEST_IMAGES": "8"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-n", "2", "--dist", "each", "-q",
                           "-p", "no:cacheprovider", f"--claims-json={tmp_path / 'claims.json'}",
                           f"--report-dir={tmp_path}", "-k", "resnet34_energy_reduction or lenet5",
                           "suite/test_claim_fp16_energy.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    cases = sorted(row["case"] for row in json.loads((tmp_path / "claims.json").read_text())["rows"])
    assert cases[:2] == ["test_fp16_reduces_energy_and_time[lenet5-energy]@cuda:0",
                         "test_fp16_reduces_energy_and_time[lenet5-energy]@cuda:1"] and len(cases) == 6
    assert sorted(p.name for p in tmp_path.glob("fp16_benchmark*.json")) == ["fp16_benchmark-cuda0.json",
                                                                              "fp16_benchmark-cuda1.json"]
    text = build_report(tmp_path, ROOT / "baselines").read_text()
    assert "Identical GPUs of one node" in text and "| resnet34  | paper:fp16" in text
