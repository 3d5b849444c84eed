"""greenbench's pytest plugin end to end, as a user's suite sees it: a claim of its own, verdicts, the
claims table, baselines, strict xfail, the gate.

Each step runs pytest in a fresh process in a pytester folder outside this checkout (no conftest of
ours; the plugin comes through its entry point) over a one-test claim module whose measured figure
comes from an environment variable.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
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


def test_claim_lifecycle(run_claim, project, tmp_path, monkeypatch):
    run, stored = run_claim
    out = tmp_path / "claims.json"

    def statuses() -> list[str]:  # the claims JSON carries each row's status, as the table prints it
        return [r["verdict"] for r in json.loads(out.read_text())["rows"]]

    first = run(2.0)  # no baseline yet: the claim is judged, the missing baseline is said
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*greenbench claims on*",
                                "*figure-at-least-1*our paper, Table 2*figure 2*figure missing*reproduced*"])

    failed = run(0.5, "--update-baselines", f"--claims-json={out}")  # a claim that does not hold is stored as such
    failed.assert_outcomes(failed=1)
    assert statuses() == ["not reproduced"]
    failed.stdout.fnmatch_lines(["*ClaimNotReproduced: claim figure-at-least-1 not reproduced: measured figure 0.5*"])
    assert stored()["outcome"] == "not reproduced" and stored()["metrics"]["figure"]["value"] == 0.5

    known = run(0.5, f"--claims-json={out}")  # ... then runs as a strict expected failure that shows its figure
    known.assert_outcomes(xfailed=1)
    assert statuses() == ["known"]
    known.stdout.fnmatch_lines(["*figure 0.5*matches*known: not reproduced, as recorded*",
                                "1 claim checks: 0 reproduced, 0 not reproduced, 1 known, 0 not run"])

    fixed = run(2.0)  # holding against a "not reproduced" baseline fails until the baseline is updated
    fixed.assert_outcomes(failed=1)
    fixed.stdout.fnmatch_lines(["*XPASS(strict)*", "*figure improved*reproduced: stored as not reproduced*"])

    run(2.0, "--update-baselines").assert_outcomes(passed=1)
    assert stored()["outcome"] == "reproduced" and stored()["metrics"]["figure"]["value"] == 2.0

    regressed = run(1.5, f"--claims-json={out}")  # the claim holds (≥ 1) but fell by far more than three spreads
    regressed.assert_outcomes(failed=1)
    assert statuses() == ["regressed"]
    regressed.stdout.fnmatch_lines(["*BaselineRegression: regression against the stored baseline: figure 1.5 vs 2*",
                                    "*figure regressed*regressed: a metric regressed*"])
    assert stored()["metrics"]["figure"]["value"] == 2.0  # a run without --update-baselines writes nothing

    # a known regression acknowledged until a date: a warning in the table, never a silent pass or a failure
    (project.path / "baselines" / hardware_profile() / "acknowledged.json").write_text(json.dumps({
        "schema": "greenbench-acknowledged/1", "entries": [{"claim": "figure-at-least-1", "case": "test_figure",
                                                            "metric": "figure", "reason": "slower driver, issue 7",
                                                            "until_date": "2999-01-01"}]}))
    acknowledged = run(1.5, f"--claims-json={out}")
    acknowledged.assert_outcomes(passed=1)
    acknowledged.stdout.fnmatch_lines(["*figure acknowledged: slower*reproduced: figure acknowledged*"])
    assert json.loads(out.read_text())["rows"][0]["reason"] == \
        "figure acknowledged: slower driver, issue 7 (until 2999-01-01)"

    # within the spread: no regression; the run recorded in a history, its rows in JUnit XML and GitHub's summary
    summary, junit, history = tmp_path / "summary.md", tmp_path / "junit.xml", tmp_path / "history"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    last = run(2.01, f"--junitxml={junit}", f"--history={history}")
    last.assert_outcomes(passed=1)
    last.stdout.fnmatch_lines(["greenbench: run recorded in *history*"])
    assert "### greenbench claims" in summary.read_text() and "| figure-at-least-1" in summary.read_text()
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).iter("property")}
    assert properties["greenbench.status"] == "reproduced"
    assert json.loads(properties["greenbench.claim"])["measured"] == {"figure": 2.01}
    (recorded,) = history.glob("*/*.json")
    assert json.loads(recorded.read_text())["run"]["rows"][0]["record"]["metrics"]["figure"]["value"] == 2.01


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


def test_a_claim_test_without_a_verdict_fails_naming_the_test(project):
    project.makepyfile(test_claim_figure=CLAIM_MODULE.split("def test_figure")[0]
                       + "def test_forgot(claim):\n    pass\n")
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ClaimWithoutVerdict: test_claim_figure.py::test_forgot took the `claim` fixture "
                                 "but ended without claim.verdict*", "*error: call: *ClaimWithoutVerdict*"])


def test_an_unmet_precondition_is_not_reproduced_with_its_reason(project):
    project.makepyfile(test_claim_figure=CLAIM_MODULE.split("def test_figure")[0] + """def test_figure(claim):
    best = None  # e.g. no setting of the grid within the budget
    if best is None:
        claim.unmet("no setting within the budget", claimed="figure ≥ 1", tolerance="≥ 1", measured={"settings": 0})
""")
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*settings 0*not reproduced: no setting within the budget*"])


PLAIN_SUITE = """
import os, sys
from hypothesis import settings

def test_untouched():
    assert settings().max_examples == 100 and settings().deadline is not None  # hypothesis's own defaults
    assert "GREENBENCH_THREADS" not in os.environ
    assert not {"torch", "numba", "pynvml", "onnxruntime"} & set(sys.modules), "greenbench imported a heavy library"
"""


def test_a_suite_that_does_not_use_greenbench_is_left_alone(pytester, monkeypatch):
    pytester.makepyfile(test_plain=PLAIN_SUITE)
    monkeypatch.delenv("GREENBENCH_THREADS", raising=False)  # greenbench's own suite sets it for its workers
    monkeypatch.delenv("CI", raising=False)  # hypothesis loads its own "ci" profile (no deadline) on CI machines
    monkeypatch.setenv("GREENBENCH_HYPOTHESIS_PROFILE", "dev")  # greenbench's suite would load 60 examples
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")  # what made the plugin set threads before
    monkeypatch.setenv("GREENBENCH_FP16_RUNS", "many")  # a bad value greenbench would refuse, unused here
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_bad_greenbench_variable_is_a_one_line_usage_error(run_claim, monkeypatch):
    run, _ = run_claim
    monkeypatch.setenv("GREENBENCH_FP16_RUNS", "many")
    result = run(2.0)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: GREENBENCH_FP16_RUNS='many': takes an integer in [[]2, 1000] (*"])
    assert "Traceback" not in result.stderr.str()
    monkeypatch.setenv("GREENBENCH_FP16_RUNS", "4")
    monkeypatch.setenv("GREENBENCH_FP16_RUN", "4")
    result = run(2.0)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: GREENBENCH_FP16_RUN is not a greenbench variable (a typo?)*"])
