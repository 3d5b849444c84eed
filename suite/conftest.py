"""Fixtures of the plugin's end-to-end tests (suite/test_claims_plugin*.py): a user's suite in a pytester folder."""

from __future__ import annotations

import json

import pytest

from greenbench.core.provenance import hardware_profile
from suite.test_claims_plugin import CLAIM_MODULE, ROOT, USER_CONFTEST


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
