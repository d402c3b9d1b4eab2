"""local_server module: the lifecycle of real pypiserver processes (started, restarted, stopped, status)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.modules import local_server

SECRET = "Sup3r-s3cret-Vaue"


@pytest.fixture
def dirs(tmp_path):
    state = tmp_path / "state"
    yield {"state_dir": str(state), "package_dir": str(tmp_path / "packages")}
    ls.stop(str(state))  # stop by PID whatever the test did


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read().replace(b"\0", b" ").decode()


def test_started_is_idempotent_and_keeps_secrets_out_of_argv(dirs, run_module):
    args = dict(dirs, username="ci", password=SECRET)
    first = run_module(local_server, args)
    assert not first.failed, first
    assert first["changed"] is True and first["server"]["running"] is True
    pid = first["server"]["pid"]
    assert SECRET not in _cmdline(pid)
    assert SECRET not in str(first)
    htpasswd = os.path.join(dirs["state_dir"], "htpasswd")
    assert stat.S_IMODE(os.stat(htpasswd).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(dirs["state_dir"], "server.json")).st_mode) == 0o600
    second = run_module(local_server, args)
    assert second["changed"] is False and second["server"]["pid"] == pid


def test_changed_settings_restart_the_server(dirs, run_module):
    first = run_module(local_server, dict(dirs, auth_actions=[]))
    again = run_module(local_server, dict(dirs, auth_actions=[], overwrite=True))
    assert again["changed"] is True
    assert again["server"]["pid"] != first["server"]["pid"]
    assert again["server"]["port"] == first["server"]["port"]
    assert "--overwrite" in _cmdline(again["server"]["pid"])


def test_restarted_gives_a_new_pid_on_the_same_port_and_directory(dirs, run_module):
    first = run_module(local_server, dict(dirs, auth_actions=[]))
    marker = os.path.join(dirs["package_dir"], "kept-1.0.tar.gz")
    with open(marker, "wb") as handle:
        handle.write(b"x")
    res = run_module(local_server, dict(dirs, auth_actions=[], state="restarted"))
    assert res["changed"] is True
    assert res["previous_pid"] == first["server"]["pid"]
    assert res["server"]["pid"] != first["server"]["pid"]
    assert res["server"]["port"] == first["server"]["port"]
    assert not ls.pid_alive(first["server"]["pid"])
    assert os.path.exists(marker)


def test_status_and_stopped(dirs, run_module):
    started = run_module(local_server, dict(dirs, auth_actions=[]))
    status = run_module(local_server, {"state_dir": dirs["state_dir"], "state": "status"})
    assert status["server"]["healthy"] is True and status["changed"] is False
    stopped = run_module(local_server, {"state_dir": dirs["state_dir"], "state": "stopped"})
    assert stopped["changed"] is True
    assert not ls.pid_alive(started["server"]["pid"])
    again = run_module(local_server, {"state_dir": dirs["state_dir"], "state": "stopped"})
    assert again["changed"] is False


def test_check_mode_starts_nothing(dirs, run_module):
    res = run_module(local_server, dict(dirs, auth_actions=[]), check_mode=True)
    assert res["changed"] is True
    assert ls.read_state(dirs["state_dir"]) is None


def test_port_in_use_is_a_clear_error(dirs, run_module):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        res = run_module(local_server, dict(dirs, auth_actions=[], port=port))
    assert res.failed
    assert f"Port {port} on 127.0.0.1 is already in use" in res["msg"]


def test_auth_without_credentials_is_refused(dirs, run_module):
    res = run_module(local_server, dict(dirs))  # default auth_actions: [update]
    assert res.failed and "needs username and password" in res["msg"]


def test_unknown_auth_action(dirs, run_module):
    res = run_module(local_server, dict(dirs, auth_actions=["upload"], username="u", password="p"))
    assert res.failed and "Unknown auth action" in res["msg"]


def test_package_dir_that_is_a_file(dirs, tmp_path, run_module):
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = run_module(local_server, dict(dirs, auth_actions=[], package_dir=str(afile)))
    assert res.failed and "not a directory" in res["msg"]


def test_server_that_never_gets_healthy_fails_with_log_tail(dirs, tmp_path, run_module):
    fake = tmp_path / "fakepython"
    fake.write_text(f"#!{sys.executable}\nimport sys\nprint('boom: cannot start', flush=True)\nsys.exit(3)\n")
    fake.chmod(0o755)
    res = run_module(local_server, dict(dirs, auth_actions=[], python=str(fake), timeout=5))
    assert res.failed
    assert "did not become healthy" in res["msg"]
    assert any("boom: cannot start" in line for line in res["log_tail"])


def test_hung_server_times_out(dirs, tmp_path, run_module):
    fake = tmp_path / "sleeper"
    fake.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    fake.chmod(0o755)
    res = run_module(local_server, dict(dirs, auth_actions=[], python=str(fake), timeout=1.5))
    assert res.failed and "within 1.5s" in res["msg"]
    out = subprocess.run(["pgrep", "-f", str(fake)], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == ""  # the hung process was killed, not left behind


# ---------------------------------------------------------------- state=credentials (rotation without a restart)

NEW_SECRET = "N3w-rotated-Passw0rd"


def _verify(url: str, user: str, password: str | None) -> int:
    """pypiserver's authenticated no-op (POST / :action=verify), as a plain client sends it."""
    import requests

    auth = (user, password) if password is not None else None
    return requests.post(url, data={":action": "verify"}, auth=auth, timeout=10).status_code


def test_credentials_rotates_a_running_server_without_restarting_it(dirs, run_module):
    started = run_module(local_server, dict(dirs, username="ci", password=SECRET))
    url, pid = started["server"]["url"], started["server"]["pid"]
    assert _verify(url, "ci", SECRET) == 200
    htpasswd = os.path.join(dirs["state_dir"], "htpasswd")
    mtime_before = os.path.getmtime(htpasswd)
    res = run_module(
        local_server, {"state_dir": dirs["state_dir"], "state": "credentials", "username": "ci", "password": NEW_SECRET}
    )
    assert not res.failed, res
    assert res["changed"] is True and res["htpasswd_changed"] is True and res["credentials_file_changed"] is True
    assert res["htpasswd"] == htpasswd
    assert res["server"]["pid"] == pid and ls.pid_alive(pid)
    assert NEW_SECRET not in json.dumps(res) and SECRET not in json.dumps(res)
    assert os.path.getmtime(htpasswd) != mtime_before
    assert stat.S_IMODE(os.stat(htpasswd).st_mode) == 0o600
    creds = os.path.join(dirs["state_dir"], "credentials")
    assert res["credentials_file"] == creds
    with open(creds, encoding="utf-8") as handle:
        assert handle.read() == NEW_SECRET + "\n"  # what Ansible's password lookup reads back
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    # the same process answers with the new credentials at once: pypiserver re-read the file
    assert _verify(url, "ci", NEW_SECRET) == 200
    assert _verify(url, "ci", SECRET) == 403
    assert _verify(url, "ci", None) == 401
    assert ls.describe(ls.read_state(dirs["state_dir"]))["pid"] == pid
    # again with the same password: nothing to do
    again = run_module(
        local_server, {"state_dir": dirs["state_dir"], "state": "credentials", "username": "ci", "password": NEW_SECRET}
    )
    assert again["changed"] is False
    # and a started run with the new password afterwards leaves the process alone
    same = run_module(local_server, dict(dirs, username="ci", password=NEW_SECRET))
    assert same["changed"] is False and same["server"]["pid"] == pid


def test_credentials_twice_in_the_same_second_is_still_picked_up(dirs, run_module):
    started = run_module(local_server, dict(dirs, username="ci", password=SECRET))
    url = started["server"]["url"]
    base = {"state_dir": dirs["state_dir"], "state": "credentials", "username": "ci"}
    for password in ("First-rotation-1234", "Second-rotation-5678", "Third-rotation-9012"):
        assert not run_module(local_server, dict(base, password=password)).failed
        assert _verify(url, "ci", password) == 200
    assert _verify(url, "ci", "Second-rotation-5678") == 403


def test_credentials_check_mode_writes_nothing(dirs, run_module):
    run_module(local_server, dict(dirs, username="ci", password=SECRET))
    htpasswd = os.path.join(dirs["state_dir"], "htpasswd")
    with open(htpasswd, "rb") as handle:
        before = handle.read()
    res = run_module(
        local_server,
        {"state_dir": dirs["state_dir"], "state": "credentials", "username": "ci", "password": NEW_SECRET},
        check_mode=True,
    )
    assert res["changed"] is True and res["htpasswd_changed"] is True
    with open(htpasswd, "rb") as handle:
        assert handle.read() == before
    assert not os.path.exists(os.path.join(dirs["state_dir"], "credentials"))


def test_credentials_without_a_running_server_is_one_sentence(dirs, run_module):
    res = run_module(
        local_server, {"state_dir": dirs["state_dir"], "state": "credentials", "username": "ci", "password": NEW_SECRET}
    )
    assert res.failed
    assert res["msg"].startswith(f"No pypiserver is running from state directory {dirs['state_dir']}")
    assert res["msg"].count(". ") == 0 and res["msg"].endswith(".")
    assert not os.path.exists(os.path.join(dirs["state_dir"], "credentials"))


def test_credentials_of_a_server_without_auth_is_refused(dirs, run_module):
    run_module(local_server, dict(dirs, auth_actions=[]))
    res = run_module(
        local_server, {"state_dir": dirs["state_dir"], "state": "credentials", "username": "ci", "password": NEW_SECRET}
    )
    assert res.failed and "runs without authentication, so it has no credentials to rotate" in res["msg"]


@pytest.mark.parametrize(
    "password, words",
    [("short", "fewer than 12"), (" leading-space-pass", "whitespace"), ("line\nbreak-password", "control character")],
)
def test_credentials_refuses_unusable_passwords_before_writing(dirs, run_module, password, words):
    run_module(local_server, dict(dirs, username="ci", password=SECRET))
    htpasswd = os.path.join(dirs["state_dir"], "htpasswd")
    with open(htpasswd, "rb") as handle:
        before = handle.read()
    res = run_module(
        local_server, {"state_dir": dirs["state_dir"], "state": "credentials", "username": "ci", "password": password}
    )
    assert res.failed and words in res["msg"]
    assert password not in res["msg"]
    with open(htpasswd, "rb") as handle:
        assert handle.read() == before


def test_credentials_file_is_put_back_when_the_htpasswd_cannot_be_written(dirs, run_module):
    run_module(local_server, dict(dirs, username="ci", password=SECRET))
    creds = os.path.join(dirs["state_dir"], "credentials")
    with open(creds, "w", encoding="utf-8") as handle:
        handle.write(SECRET + "\n")
    # record an htpasswd path nobody can create a file next to (not even root): /proc/self/...
    state = ls.read_state(dirs["state_dir"])
    state["argv"][state["argv"].index("-P") + 1] = "/proc/self/pypi-ops-htpasswd"
    ls.write_state(dirs["state_dir"], state)
    res = run_module(
        local_server, {"state_dir": dirs["state_dir"], "state": "credentials", "username": "ci", "password": NEW_SECRET}
    )
    assert res.failed and "Cannot write" in res["msg"]
    with open(creds, encoding="utf-8") as handle:
        assert handle.read() == SECRET + "\n"


def test_htpasswd_of_reads_the_servers_argument():
    assert (
        ls.htpasswd_of({"argv": ["python", "-m", "pypiserver", "run", "-P", "/x/htpasswd", "/pkgs"]}) == "/x/htpasswd"
    )
    assert ls.htpasswd_of({"argv": ["python", "-m", "pypiserver", "run", "-a", ".", "-P", ".", "/pkgs"]}) is None
    assert ls.htpasswd_of(None) is None


def test_make_private_dirs_creates_every_missing_parent_0700_even_with_an_open_umask(tmp_path):
    target = tmp_path / "a" / "b" / "state"
    old = os.umask(0)
    try:
        ls.make_private_dirs(str(target))
        ls.make_private_dirs(str(target))  # idempotent
    finally:
        os.umask(old)
    for path in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    os.chmod(tmp_path, 0o755)
    ls.make_private_dirs(str(tmp_path / "a" / "other"))
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755, "an existing parent must be left as it was"
