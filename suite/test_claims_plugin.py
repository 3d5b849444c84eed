"""greenbench's pytest plugin end to end, as a user's suite sees it: a claim of its own, verdicts, the
claims table, baselines, strict xfail, the gate.

Each step runs pytest in a fresh process in a pytester folder outside this checkout (no conftest of
ours; the plugin comes through its entry point) over a one-test claim module whose measured figure
comes from an environment variable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenbench.core.provenance import hardware_profile

ROOT = Path(__file__).resolve().parent.parent

USER_CONFTEST = """
from greenbench.claims import register_claim

register_claim("figure-at-least-1", source="our paper, Table 2", statement="the figure is at least 1")
"""

CLAIM_MODULE = """
import os
import pytest
from greenbench.claims import Metric

pytestmark = pytest.mark.claim("figure-at-least-1")

def test_figure(claim):
    value = float(os.environ["GB_FIGURE"])
    claim.verdict(value >= 1.0, claimed="figure ≥ 1", tolerance="≥ 1", measured={"figure": value},
                  metrics={"figure": Metric(value, 0.01, "higher")})
"""


@pytest.fixture
def project(pytester):
    """A user's suite in a pytester folder outside this checkout: its own conftest registers its claim."""
    assert ROOT not in pytester.path.parents
    pytester.makeconftest(USER_CONFTEST)
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    return pytester


@pytest.fixture
def run_claim(project, monkeypatch):
    project.makepyfile(test_claim_figure=CLAIM_MODULE)
    baselines = project.path / "baselines"

    def run(figure: float, *args: str):
        monkeypatch.setenv("GB_FIGURE", str(figure))
        return project.runpytest_subprocess(f"--baseline-dir={baselines}", "-p", "no:cacheprovider", *args)

    def stored() -> dict:
        path = baselines / hardware_profile() / "figure-at-least-1.json"
        return json.loads(path.read_text())["cases"]["test_figure"]

    return run, stored


def test_claim_lifecycle(run_claim):
    run, stored = run_claim

    first = run(2.0)  # no baseline yet: the claim is judged, the missing baseline is said
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*greenbench claims on*",
                                "*figure-at-least-1*our paper, Table 2*figure 2*figure missing*reproduced*"])

    failed = run(0.5, "--update-baselines")  # a claim that does not hold is stored as such
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*claim figure-at-least-1 not reproduced: measured figure 0.5*"])
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


def test_baselines_default_to_the_users_rootdir(project, monkeypatch):
    project.makepyfile(test_claim_figure=CLAIM_MODULE)
    monkeypatch.setenv("GB_FIGURE", "3")
    project.runpytest_subprocess("--update-baselines").assert_outcomes(passed=1)
    assert (project.path / "baselines" / hardware_profile() / "figure-at-least-1.json").is_file()


def test_an_unregistered_claim_is_a_usage_error(project):
    project.makepyfile(test_other="import pytest\n\n@pytest.mark.claim('nobody-said-this')\n"
                                  "def test_x(claim):\n    pass\n")
    result = project.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unregistered claims*nobody-said-this*register_claim*"])


def test_pytest_help_lists_the_plugins_options_from_an_empty_folder(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*greenbench*", "*--baseline-dir*", "*--update-baselines*", "*--claims-json*"])


def test_claims_are_validated_when_registered():
    from greenbench.harness.claims import CLAIMS, register_claim

    assert register_claim("compression-8x", CLAIMS["compression-8x"].source, CLAIMS["compression-8x"].statement,
                          measures_energy=False) == CLAIMS["compression-8x"]  # the same again: a no-op
    with pytest.raises(ValueError, match="is taken"):
        register_claim("compression-8x", "elsewhere", "something else")
    with pytest.raises(ValueError, match="claim id"):
        register_claim("Bad Id!", "s", "t")
    with pytest.raises(ValueError, match="non-empty source"):
        register_claim("fine-id", " ", "t")
