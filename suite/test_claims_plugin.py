"""The claim plugin of conftest.py end to end: verdicts, the claims table, baselines, strict xfail, the gate.

Each step runs this repository's conftest.py in a fresh pytest process over a one-test claim module
whose measured figure comes from an environment variable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenbench.provenance import hardware_profile

ROOT = Path(__file__).resolve().parent.parent

CLAIM_MODULE = """
import os
import pytest
from greenbench.claims import Metric

pytestmark = pytest.mark.claim("affine-quantization")

def test_figure(claim):
    value = float(os.environ["GB_FIGURE"])
    claim.verdict(value >= 1.0, claimed="figure ≥ 1", tolerance="≥ 1", measured={"figure": value},
                  metrics={"figure": Metric(value, 0.01, "higher")})
"""


@pytest.fixture
def project(pytester):
    """A pytester folder with this repository's conftest.py and pytest settings."""
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makeini((ROOT / "pytest.ini").read_text().replace("testpaths = suite\n", ""))
    return pytester


@pytest.fixture
def run_claim(project, monkeypatch):
    project.makepyfile(test_claim_figure=CLAIM_MODULE)
    baselines = project.path / "baselines"

    def run(figure: float, *args: str):
        monkeypatch.setenv("GB_FIGURE", str(figure))
        return project.runpytest_subprocess(f"--baseline-dir={baselines}", "-p", "no:cacheprovider", *args)

    def stored() -> dict:
        path = baselines / hardware_profile() / "affine-quantization.json"
        return json.loads(path.read_text())["cases"]["test_figure"]

    return run, stored


def test_claim_lifecycle(run_claim):
    run, stored = run_claim

    first = run(2.0)  # no baseline yet: the claim is judged, the missing baseline is said
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*greenbench claims on*", "*affine-quantization*figure 2*figure missing*reproduced*"])

    failed = run(0.5, "--update-baselines")  # a claim that does not hold is stored as such
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*claim affine-quantization not reproduced: measured figure 0.5*"])
    assert stored()["outcome"] == "not reproduced" and stored()["metrics"]["figure"]["value"] == 0.5

    known = run(0.5)  # ... and then runs as a strict expected failure that still shows its figure
    known.assert_outcomes(xfailed=1)
    known.stdout.fnmatch_lines(["*figure 0.5*matches*not reproduced: known on this profile*"])

    fixed = run(2.0)  # holding against a "not reproduced" baseline fails until the baseline is updated
    fixed.assert_outcomes(failed=1)
    fixed.stdout.fnmatch_lines(["*XPASS(strict)*", "*figure improved*reproduced: baseline says not reproduced*"])

    run(2.0, "--update-baselines").assert_outcomes(passed=1)
    assert stored()["outcome"] == "reproduced" and stored()["metrics"]["figure"]["value"] == 2.0

    regressed = run(1.5)  # the claim holds (≥ 1) but fell by far more than three spreads
    regressed.assert_outcomes(failed=1)
    regressed.stdout.fnmatch_lines(["*regression against the stored baseline: figure 1.5 vs 2*",
                                    "*baseline regression*"])
    assert stored()["metrics"]["figure"]["value"] == 2.0  # a run without --update-baselines writes nothing

    run(2.01).assert_outcomes(passed=1)  # within the spread: no regression


def test_gpu_tier_without_cuda_skips_in_one_line(project):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    project.makepyfile(test_gpu="import pytest\n\n@pytest.mark.gpu\ndef test_needs_cuda():\n    assert False\n")
    result = project.runpytest_subprocess("-m", "gpu", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["greenbench: 1 GPU tests not run: *"])
