"""Partial runs for what the full-run fault suite (test_fault_suite.py) does not prove.

The full suite runs the whole verify.yml once per fault. These cases run only the tests involved,
against real pypiserver processes, for variants of a policy rather than a broken server:
auth enforced on every action (pip then needs the credentials), listing open while expected
closed, overwrite expected on (passing, and failing when the server refuses it), and a server
that dies in the middle of the load test, so that some operations pass and the success-rate
threshold has to catch the rest.
"""

from __future__ import annotations

import re

import pytest

from tests.faultproxy import FaultProxy
from tests.helpers import ROOT, run_playbook

VERIFY = ROOT / "verify.yml"

pytestmark = pytest.mark.slow


def _only(run, test_id):
    assert run.rc != 0, run.output[-3000:]
    assert run.results[test_id]["status"] == "failed", run.results
    return run.results[test_id]["reason"]


def test_auth_enforced_on_every_action_passes(tmp_path):
    run = run_playbook(
        VERIFY,
        tmp_path,
        {"pypi_auth_actions": ["update", "download", "list"]},
        args=["--tags", "p0,auth"],
    )
    assert run.rc == 0, run.output[-3000:]
    reason = run.results["auth"]["reason"]
    assert "list without credentials 401" in reason and "download without credentials 401" in reason
    assert run.results["download"]["status"] == "passed"  # pip got the credentials (netrc) and installed


def test_auth_fails_when_listing_is_open_but_expected_closed(tmp_path, auth_pypiserver):
    run = run_playbook(
        VERIFY,
        tmp_path,
        {
            "pypi_target": "url",
            "pypi_url": auth_pypiserver.url,
            "pypi_username": auth_pypiserver.username,
            "pypi_password": auth_pypiserver.password,
            "pypi_auth_actions": ["update", "list"],
        },
        args=["--tags", "auth"],
    )
    reason = _only(run, "auth")
    assert "answered HTTP 200, expected [401]" in reason and "list without credentials" in reason


def test_overwrite_policy_on_is_verified_too(tmp_path):
    run = run_playbook(VERIFY, tmp_path, {"pypi_overwrite": True}, args=["--tags", "overwrite"])
    assert run.rc == 0, run.output[-3000:]
    assert "overwrite expected on: second upload uploaded" in run.results["overwrite"]["reason"]
    assert "new sha256 is served" in run.results["overwrite"]["reason"]


def test_overwrite_fails_when_expected_on_but_refused(tmp_path, pypiserver):
    run = run_playbook(
        VERIFY,
        tmp_path,
        {"pypi_target": "url", "pypi_url": pypiserver.url, "pypi_overwrite": True},
        args=["--tags", "overwrite"],
    )
    assert "expected uploaded, got exists" in _only(run, "overwrite")


def _load_through_a_dying_proxy(tmp_path, pypiserver, **extra) -> str:
    """The load test alone through a proxy that dies after 60 of its ~100 requests: the uploads pass, most
    downloads are refused. Returns load's reason."""
    with FaultProxy(pypiserver.url, die_after=60) as proxy:
        run = run_playbook(
            VERIFY,
            tmp_path,
            {
                "pypi_target": "url",
                "pypi_url": proxy.url,
                "pypi_load_uploads": 50,
                "pypi_load_downloads": 50,
                "pypi_connect_timeout": 2,
                **extra,
            },
            args=["--tags", "load"],
        )
    return _only(run, "load")


def test_load_fails_below_the_success_rate(tmp_path, pypiserver):
    # without the circuit breaker every operation runs, and the success rate judges them
    reason = _load_through_a_dying_proxy(tmp_path, pypiserver, pypi_breaker_failures=0)
    assert "operations failed" in reason and "< 100" in reason


def test_load_stops_after_consecutive_failures_of_one_kind(tmp_path, pypiserver):
    # with the default circuit breaker, five refused downloads in a row stop the load
    reason = _load_through_a_dying_proxy(tmp_path, pypiserver)
    match = re.search(
        r"stopped after 5 consecutive download failures \(connection refused\) at (\d+)/50; first: ", reason
    )
    assert match, reason
    assert int(match.group(1)) < 50  # it did not wait out the other downloads
