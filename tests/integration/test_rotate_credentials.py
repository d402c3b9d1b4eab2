"""playbooks/rotate_credentials.yml end to end on the local target: the real ansible-playbook against a real
pypiserver started through the collection (tests/playbooks/deploy_only.yml), checked afterwards with plain HTTP
requests from this test, independently of the collection's own proof.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
import requests

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from tests.helpers import ROOT, run_playbook

RUNBOOK = ROOT / "playbooks" / "rotate_credentials.yml"
DEPLOY = ROOT / "tests" / "playbooks" / "deploy_only.yml"
USER = "pypi-ops"

pytestmark = pytest.mark.slow


@pytest.fixture
def local(tmp_path):
    """A local target deployed by the collection (left running); stopped by PID at teardown, whatever happened."""
    state = tmp_path / "state"
    try:
        run = run_playbook(DEPLOY, tmp_path, {"pypi_cleanup": False})
        assert run.rc == 0, run.output[-3000:]
        server = ls.describe(ls.read_state(str(state)))
        assert server["running"], server
        yield {"tmp": tmp_path, "state": state, "server": server}
    finally:
        ls.stop(str(state))


def verify_status(url: str, password: str | None) -> int:
    """pypiserver's authenticated no-op (POST / :action=verify), sent by this test with requests."""
    auth = (USER, password) if password is not None else None
    resp = requests.post(url, data={":action": "verify"}, auth=auth, timeout=10)
    return resp.status_code


def stored(state: Path) -> str:
    return (state / "credentials").read_text().rstrip("\n")


def rotate(local, **extra):
    return run_playbook(RUNBOOK, local["tmp"], {"pypi_local_state_dir": str(local["state"]), **extra})


def test_rotation_keeps_the_process_and_swaps_the_password_twice(local):
    url, pid, state = local["server"]["url"], local["server"]["pid"], local["state"]
    first_password = stored(state)
    assert verify_status(url, first_password) == 200
    ht_before = (state / "htpasswd").read_bytes()

    first = rotate(local)
    assert first.rc == 0, first.output[-4000:]
    assert [(k, v["status"]) for k, v in first.results.items()] == [
        ("current_credentials", "passed"),
        ("rotate", "passed"),
        ("proof", "passed"),
        ("same_process", "passed"),
    ]
    second_password = stored(state)
    assert second_password != first_password and len(second_password) == 24
    assert stat.S_IMODE(os.stat(state / "credentials").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state / "htpasswd").st_mode) == 0o600
    assert (state / "htpasswd").read_bytes() != ht_before
    # independently of the runbook's own proof: old refused, new accepted, no credentials 401, same process
    assert verify_status(url, first_password) == 403
    assert verify_status(url, second_password) == 200
    assert verify_status(url, None) == 401
    after = ls.describe(ls.read_state(str(state)))
    assert after["running"] and after["pid"] == pid and ls.pid_alive(pid)
    # the passwords never appear in the output or the report
    assert first_password not in first.output and second_password not in first.output
    for path in first.report_dir.iterdir():
        text = path.read_text()
        assert second_password not in text and first_password not in text
    # the report is in reports/rotate_credentials/<UTC time>-local-<run id>/, and says where the password is
    assert first.report_dir.parent.name == "rotate_credentials"
    assert re.fullmatch(r"\d{8}T\d{6}Z-local-.+", first.report_dir.name), first.report_dir
    assert (first.report_dir / "junit.xml").exists()
    flat = " ".join(first.output.split())  # the yaml callback folds long messages
    assert f"is stored in {state / 'credentials'} (mode 0600)" in flat
    assert "403" in first.results["proof"]["reason"] and str(pid) in first.results["same_process"]["reason"]

    # a second run rotates again (from the password the first one stored) and proves it again
    second = rotate(local)
    assert second.rc == 0, second.output[-4000:]
    assert all(v["status"] == "passed" for v in second.results.values()), second.results
    third_password = stored(state)
    assert third_password not in (first_password, second_password)
    assert second.report_dir != first.report_dir and (first.report_dir / "junit.xml").exists()
    assert verify_status(url, second_password) == 403
    assert verify_status(url, first_password) == 403
    assert verify_status(url, third_password) == 200
    assert ls.describe(ls.read_state(str(state)))["pid"] == pid

    # the next deploy run (what verify.yml does first) keeps the rotated password: no restart, nothing reverted
    redeploy = run_playbook(DEPLOY, local["tmp"], {"pypi_cleanup": False})
    assert redeploy.rc == 0, redeploy.output[-3000:]
    assert verify_status(url, third_password) == 200
    assert ls.describe(ls.read_state(str(state)))["pid"] == pid


def test_a_given_new_password_is_used_and_pypi_password_is_the_old_one(local, tmp_path):
    url, state = local["server"]["url"], local["state"]
    old = stored(state)
    secrets_file = tmp_path / "new-password.json"
    secrets_file.write_text(json.dumps({"pypi_new_password": "Given-new-Passw0rd-42", "pypi_password": old}))
    run = run_playbook(RUNBOOK, local["tmp"], {"pypi_local_state_dir": str(state)}, args=["-e", f"@{secrets_file}"])
    assert run.rc == 0, run.output[-4000:]
    assert stored(state) == "Given-new-Passw0rd-42"
    assert verify_status(url, "Given-new-Passw0rd-42") == 200
    assert verify_status(url, old) == 403
    # pypi_password was set: the play says that later runs would use it, not the stored file
    assert "pypi_password is set, so later runs use it" in " ".join(run.output.split())
    assert "Given-new-Passw0rd-42" not in run.output


def test_wrong_current_password_changes_nothing(local):
    url, state = local["server"]["url"], local["state"]
    old = stored(state)
    ht_before = (state / "htpasswd").read_bytes()
    run = rotate(local, pypi_password="not-the-servers-password")
    assert run.rc != 0
    assert run.results["current_credentials"]["status"] == "failed"
    assert "is not the server's" in run.results["current_credentials"]["reason"]
    assert run.results["rotate"]["status"] == "skipped"
    assert "prerequisite current_credentials failed" in run.results["rotate"]["reason"]
    assert (state / "htpasswd").read_bytes() == ht_before and stored(state) == old
    assert verify_status(url, old) == 200


def test_url_target_is_refused_in_one_sentence(tmp_path):
    run = run_playbook(RUNBOOK, tmp_path, {"pypi_target": "url", "pypi_url": "http://127.0.0.1:9/"})
    assert run.rc != 0
    assert (
        "The url target is a server this collection does not manage, so it cannot change its credentials" in run.output
    )
    assert "Traceback" not in run.output


def test_no_running_server_fails_in_one_sentence(tmp_path):
    state = tmp_path / "state"
    run = run_playbook(RUNBOOK, tmp_path, {"pypi_local_state_dir": str(state)})
    assert run.rc != 0
    reason = run.results["current_credentials"]["reason"]
    assert reason.startswith(f"No pypiserver is running from state directory {state}, so there is nothing to rotate;")
    assert [v["status"] for v in run.results.values()] == ["failed", "skipped", "skipped", "skipped"]
    assert not (state / "credentials").exists() and not (state / "htpasswd").exists()


def test_unusable_new_password_is_refused_before_anything_changes(local, tmp_path):
    state = local["state"]
    old = stored(state)
    secrets_file = tmp_path / "bad.json"
    secrets_file.write_text(json.dumps({"pypi_new_password": "short"}))
    run = run_playbook(RUNBOOK, local["tmp"], {"pypi_local_state_dir": str(state)}, args=["-e", f"@{secrets_file}"])
    assert run.rc != 0
    assert "pypi_new_password must have at least 12 characters" in " ".join(run.output.split())
    assert stored(state) == old


def test_local_s3_target_rotates_the_same_way_and_leaves_the_mount(tmp_path, require_fuse):
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_s3

    state = tmp_path / "state"
    try:
        deploy = run_playbook(DEPLOY, tmp_path, {"pypi_target": "local_s3", "pypi_cleanup": False})
        assert deploy.rc == 0, deploy.output[-3000:]
        server = ls.describe(ls.read_state(str(state)))
        mount_before = local_s3.describe(local_s3.read_state(str(state / "s3")))
        old = stored(state)
        run = run_playbook(RUNBOOK, tmp_path, {"pypi_target": "local_s3", "pypi_local_state_dir": str(state)})
        assert run.rc == 0, run.output[-4000:]
        assert all(v["status"] == "passed" for v in run.results.values()), run.results
        assert re.fullmatch(r"\d{8}T\d{6}Z-local_s3-.+", run.report_dir.name), run.report_dir
        new = stored(state)
        assert new != old
        assert verify_status(server["url"], new) == 200 and verify_status(server["url"], old) == 403
        assert ls.describe(ls.read_state(str(state)))["pid"] == server["pid"]
        mount_after = local_s3.describe(local_s3.read_state(str(state / "s3")))
        assert mount_after["mounted"] and mount_after["s3fs_pid"] == mount_before["s3fs_pid"]
    finally:
        ls.stop(str(state))
        local_s3.stop(str(state / "s3"))


def test_check_mode_writes_nothing_and_proves_nothing(local):
    url, state = local["server"]["url"], local["state"]
    old = stored(state)
    ht_before = (state / "htpasswd").read_bytes()
    run = run_playbook(RUNBOOK, local["tmp"], {"pypi_local_state_dir": str(state)}, args=["--check"])
    assert run.rc == 0, run.output[-4000:]
    assert [(k, v["status"]) for k, v in run.results.items()] == [
        ("current_credentials", "passed"),
        ("rotate", "passed"),
        ("proof", "skipped"),
        ("same_process", "passed"),
    ]
    assert run.results["rotate"]["reason"].startswith("check mode:")
    assert (state / "htpasswd").read_bytes() == ht_before and stored(state) == old
    assert verify_status(url, old) == 200
