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
    env = {**os.environ, REHEARSAL_ENV: "1", "GREENBENCH_THREADS": "1",
           "GREENBENCH_SIMULATED_NVML": "power-not-supported,state-not-supported,period=0.02"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-q", f"--baseline-dir={baselines}", "--update-baselines",
                           f"--claims-json={claims_json}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = json.loads(claims_json.read_text())["rows"]
    collected = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "--collect-only", "-q",
                                "-p", "no:cacheprovider", "-p", "no:xdist"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=120).stdout
    gpu_claim_tests = [line for line in collected.splitlines() if "::test_" in line]
    assert len(rows) == len(gpu_claim_tests) >= 19
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
    assert real.device == "cuda:0" and real.fp16_runs == 10 and real.test_images is None and not real.describe()
