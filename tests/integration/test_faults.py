"""Each P1/P2 test fails against a server broken in the way that test exists to catch.

The servers are real pypiserver processes; the breaks are real (an ephemeral package dir, a
server without auth, a server with --overwrite, a file corrupted on disk, a reverse proxy that
hides a version or refuses large bodies).
"""

from __future__ import annotations

import pytest

from tests.faultproxy import FaultProxy
from tests.helpers import ROOT, run_playbook

VERIFY = ROOT / "verify.yml"
FAULT = ROOT / "tests" / "playbooks" / "fault.yml"

pytestmark = pytest.mark.slow


def _only(run, test_id):
    assert run.rc != 0, run.output[-3000:]
    assert run.results[test_id]["status"] == "failed", run.results
    return run.results[test_id]["reason"]


def test_persistence_fails_when_storage_is_emptied_on_restart(tmp_path):
    run = run_playbook(VERIFY, tmp_path, {"pypi_local_ephemeral": True}, args=["--tags", "persistence"])
    reason = _only(run, "persistence")
    assert "is not on the index" in reason and "still listed" in reason


def test_persistence_passes_on_healthy_storage(tmp_path):
    run = run_playbook(VERIFY, tmp_path, args=["--tags", "persistence"])
    assert run.rc == 0, run.output[-3000:]
    assert run.results["persistence"]["status"] == "passed"
    assert "restarted (" in run.results["persistence"]["reason"]


def test_auth_fails_when_the_server_does_not_enforce_it(tmp_path, pypiserver):
    run = run_playbook(
        VERIFY,
        tmp_path,
        {"pypi_target": "url", "pypi_url": pypiserver.url, "pypi_auth_actions": ["update"]},
        args=["--tags", "auth"],
    )
    reason = _only(run, "auth")
    assert "expected unauthorized, got uploaded" in reason
    assert "upload without credentials" in reason


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


def test_overwrite_fails_when_allowed_but_not_expected(tmp_path, pypiserver_factory):
    server = pypiserver_factory(overwrite=True)
    run = run_playbook(VERIFY, tmp_path, {"pypi_target": "url", "pypi_url": server.url}, args=["--tags", "overwrite"])
    reason = _only(run, "overwrite")
    assert "expected exists, got uploaded" in reason


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


def test_missing_version_fails_multiple_versions(tmp_path, pypiserver):
    with FaultProxy(pypiserver.url, hide=r"-1\.0\.1-") as proxy:
        run = run_playbook(
            VERIFY, tmp_path, {"pypi_target": "url", "pypi_url": proxy.url}, args=["--tags", "multiple_versions"]
        )
    reason = _only(run, "multiple_versions")
    assert "not listed" in reason and "1.0.1" in reason


def test_corrupted_stored_file_fails_download_list_persistence_and_storage(tmp_path):
    run = run_playbook(
        FAULT,
        tmp_path,
        {
            "fault": "corrupt_stored_wheel",
            "fault_before": ["upload"],
            "fault_after": ["download", "list", "persistence", "storage"],
        },
    )
    assert run.rc != 0
    assert run.results["upload"]["status"] == "passed"
    for test_id in ("download", "list", "persistence", "storage"):
        assert run.results[test_id]["status"] == "failed", (test_id, run.results)
    assert "sha256" in run.results["download"]["reason"]
    assert "sha256" in run.results["storage"]["reason"]


def test_wrong_bytes_served_fail_download(tmp_path, pypiserver):
    with FaultProxy(pypiserver.url, corrupt=r"\.whl$") as proxy:
        run = run_playbook(VERIFY, tmp_path, {"pypi_target": "url", "pypi_url": proxy.url}, args=["--tags", "download"])
    assert "hash" in _only(run, "download").lower()


def test_body_size_limit_fails_large_package_with_the_fix(tmp_path, pypiserver):
    with FaultProxy(pypiserver.url, max_body=1024 * 1024) as proxy:
        run = run_playbook(
            VERIFY,
            tmp_path,
            {"pypi_target": "url", "pypi_url": proxy.url, "pypi_large_size_mib": 2},
            args=["--tags", "large_package"],
        )
    reason = _only(run, "large_package")
    assert "too_large" in reason and "413" in reason
    assert "proxy-body-size" in reason and "client_max_body_size" in reason


def test_load_fails_below_the_success_rate(tmp_path, pypiserver):
    # the proxy dies after 60 requests: most of the 50 uploads + 50 downloads fail
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
            },
            args=["--tags", "load"],
        )
    reason = _only(run, "load")
    assert "operations failed" in reason and "< 100" in reason
