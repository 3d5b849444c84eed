"""A GPU-tier stage stopped half-way keeps what it finished (tools/gpu-run stops a stage at its limit with SIGINT):
a module of its own so that xdist's loadfile runs it beside the full rehearsal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from greenbench.energy.gputier import REHEARSAL_ENV
from suite.test_gpu_rehearsal import ROOT


@pytest.mark.slow  # ~15 s on one core
def test_a_stage_stopped_half_way_keeps_the_finished_networks_rows(tmp_path, fashion_mnist):
    """tools/gpu-run stops a stage with SIGINT: the networks benchmarked by then keep their artifact and rows."""
    claims_json, artifact = tmp_path / "claims.json", tmp_path / "fp16_benchmark.json"
    env = {**os.environ, REHEARSAL_ENV: "1", "GREENBENCH_THREADS": "1", "GREENBENCH_GPU_TEST_IMAGES": "8"}
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-p", "no:xdist",
                            "-q", f"--claims-json={claims_json}", f"--report-dir={tmp_path}",
                            "suite/test_claim_fp16_energy.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:  # stop it once the second network is done
        if artifact.is_file() and len(json.loads(artifact.read_text())["networks"]) >= 2:
            run.send_signal(signal.SIGINT)
            break
        time.sleep(0.05)
    output = run.communicate(timeout=120)[0]
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output[-3000:]
    finished = list(json.loads(artifact.read_text())["networks"])
    assert finished[:2] == ["resnet34", "vgg11"], finished
    cases = {row["case"] for row in json.loads(claims_json.read_text())["rows"]}
    assert {"test_resnet34_energy_reduction_at_least_20_percent", "test_measurement_quality",
            "test_fp16_reduces_energy_and_time[resnet34-energy]",
            "test_fp16_reduces_energy_and_time[resnet34-time]"} <= cases
    assert not any("lenet5" in case for case in cases), "the run was not stopped half-way"
