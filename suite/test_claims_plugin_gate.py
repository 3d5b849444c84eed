"""greenbench's pytest plugin, the gate's integrity as a user's suite sees it: a baseline that cannot be stored,
a crash or a regression behind a known failure (fixtures: suite/conftest.py; a module of its
own so that xdist's loadfile runs it beside the lifecycle)."""

from __future__ import annotations

import json

from suite.test_claims_plugin import CLAIM_MODULE


def test_a_baseline_that_cannot_be_stored_is_an_error_that_keeps_its_figure(run_claim, project, tmp_path):
    run, _ = run_claim
    blocker = project.path / "baselines-file"
    blocker.write_text("")  # a file where the baseline folder should be (root ignores read-only modes)
    out = tmp_path / "claims.json"
    result = run(2.0, f"--baseline-dir={blocker}", "--update-baselines", f"--claims-json={out}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*BaselineError: could not store the baseline*figure-at-least-1.json*"])
    row = json.loads(out.read_text())["rows"][0]
    assert row["verdict"] == "error" and "could not store" in row["reason"]
    assert row["record"]["measured"] == {"figure": 2.0} and row["record"]["baseline"].startswith("not stored")


def _known_failure(run_claim, project, body: str):
    """A suite whose claim is stored as not reproduced, then a new test body for the same case."""
    run, stored = run_claim
    run(0.5, "--update-baselines").assert_outcomes(failed=1)
    assert stored()["outcome"] == "not reproduced"
    project.makepyfile(test_claim_figure=CLAIM_MODULE.split("def test_figure")[0] + "def test_figure(claim):\n" + body)
    return run


def test_a_crash_never_hides_behind_a_known_failure(run_claim, project):
    run = _known_failure(run_claim, project, "    {}['missing']\n")
    crashed = run(0.5)
    crashed.assert_outcomes(failed=1)  # a KeyError is not the known failure: it fails, xfail or not
    crashed.stdout.fnmatch_lines(["*figure-at-least-1*error: call: KeyError: 'missing'*",
                                  "*1 claim checks: 0 reproduced, 0 not reproduced, 0 known, 1 error, 0 not run*"])


def test_a_known_failure_that_regresses_fails(run_claim):
    run, stored = run_claim
    run(0.5, "--update-baselines").assert_outcomes(failed=1)
    still_known = run(0.49)  # within the spread: still the known failure
    still_known.assert_outcomes(xfailed=1)
    worse = run(0.1)  # still not reproduced, and the figure fell by far more than three spreads
    worse.assert_outcomes(failed=1)
    worse.stdout.fnmatch_lines(["*BaselineRegression: regression against the stored baseline: figure 0.1 vs 0.5*",
                                "*figure regressed*regressed*"])
    assert stored()["metrics"]["figure"]["value"] == 0.5
