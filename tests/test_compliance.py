"""`make compliance` as a test: the SCIM checkers must find nothing through the gateway that they do not
find directly against scim2-server (tests/compliance.py explains the comparison). Runs in about 7 s.
The checkers are part of the project venv (tests/compliance-requirements.txt): missing, this fails."""

from __future__ import annotations

import pytest

import compliance


def test_the_gateway_passes_every_check_that_passes_directly(tmp_path):
    results = compliance.measure(tmp_path)
    for tool, (direct, _) in results.items():
        assert direct.totals()["passed"] > 0, f"{tool} passed nothing directly: see {tmp_path}"
    diffs = compliance.differences(results)
    if any(d.lost for d in diffs):
        pytest.fail(compliance.report(results, diffs, tmp_path), pytrace=False)
