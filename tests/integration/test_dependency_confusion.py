"""End to end: a site that wants pypiserver's fallback (pypi_fallback_expected) passes the fallback test.

The failing side (the local target with pypi_local_fallback_url set fails exactly `fallback`, naming the Location and
--disable-fallback) is the `fallback_on` run of tests/integration/test_fault_suite.py; the passing side on the default
local target is test_verify_local.py. No client reaches pypi.org: they run behind the module's blocking proxy.
"""

from __future__ import annotations

import pytest

from tests.helpers import ROOT, run_playbook

pytestmark = pytest.mark.slow


def test_a_wanted_fallback_passes_and_says_so(tmp_path):
    run = run_playbook(
        ROOT / "verify.yml",
        tmp_path,
        {"pypi_local_fallback_url": "https://pypi.org/simple/", "pypi_fallback_expected": True},
        args=["--tags", "fallback"],
    )
    assert run.rc == 0, run.output[-4000:]
    reason = run.results["fallback"]["reason"]
    assert "redirects unknown projects to https://pypi.org/simple/" in reason and "(HTTP 303)" in reason, reason
    assert "as pypi_fallback_expected says" in reason and "a blocking proxy here stopped them" in reason, reason
