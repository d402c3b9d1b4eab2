"""port_forward: lifecycle of a detached forwarder, with real processes only.

A stand-in forwarder (a real Python process that listens on the local port after a
delay, exits at once, or never listens) replaces kubectl through ``argv_override``
or the module's ``kubectl`` option. The real kubectl is run against an unreachable
API server. Forwarding through a real API server needs a cluster (the kind scenario).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
import time

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import port_forward as pf
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import free_port, pid_alive
from ansible_collections.pypi_ops.pypiserver.plugins.modules import port_forward

FORWARDER = r"""
import socket, sys, time
port, delay, mode = int(sys.argv[1]), float(sys.argv[3]), sys.argv[4]
if mode == "exit":
    print("error: services \"nope\" not found", flush=True)
    sys.exit(1)
if mode == "never":
    print("waiting forever", flush=True)
    time.sleep(3600)
time.sleep(delay)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(16)
print(f"Forwarding from 127.0.0.1:{port} -> {sys.argv[2]}", flush=True)
while True:
    conn, _ = srv.accept()
    conn.close()
"""

# A stand-in "kubectl": checks the argv the module builds, then listens on LOCAL of LOCAL:REMOTE.
FAKE_KUBECTL = r"""
import socket, sys
argv = sys.argv[1:]
assert argv[:6] == ["port-forward", "--address", "127.0.0.1", "-n", "pypi", "--kubeconfig"], argv
assert argv[-2] == "svc/pypiserver", argv
local, remote = argv[-1].split(":")
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(local)))
srv.listen(16)
print(f"Forwarding from 127.0.0.1:{local} -> {remote}", flush=True)
while True:
    srv.accept()[0].close()
"""


@pytest.fixture
def env(tmp_path):
    state = tmp_path / "state"
    script = tmp_path / "forwarder.py"
    script.write_text(FORWARDER)
    yield {"state_dir": str(state), "script": str(script), "marker": str(tmp_path)}
    pf.stop(str(state))
    for pid in _procs_with(str(tmp_path)):  # belt and braces: nothing a test started may survive it
        os.kill(pid, 9)


def _procs_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmd = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmd and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def _start(env, mode="listen", delay=0.5, timeout=10.0, local_port=0):
    return pf.start(
        env["state_dir"],
        namespace="pypi",
        target="svc/pypiserver",
        remote_port=8080,
        local_port=local_port,
        timeout=timeout,
        argv_override=[sys.executable, env["script"], "{local}", "{remote}", str(delay), mode],
    )


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_start_waits_until_the_port_accepts_and_records_state_0600(env):
    began = time.monotonic()
    info = _start(env, delay=0.5)
    assert time.monotonic() - began >= 0.5
    assert info["startup_seconds"] >= 0.5
    assert info["running"] and pid_alive(info["pid"])
    assert info["url"] == f"http://127.0.0.1:{info['local_port']}/"
    assert _accepts(info["local_port"])
    path = os.path.join(env["state_dir"], pf.STATE_FILE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    state = pf.read_state(env["state_dir"])
    assert state["pid"] == info["pid"] and state["local_port"] == info["local_port"]
    assert state["argv"][2:4] == [str(info["local_port"]), "8080"]
    assert pf.status(env["state_dir"])["accepting"] is True


def test_reopen_keeps_the_port_and_gives_a_new_pid(env):
    first = _start(env, delay=0.2)
    again = pf.reopen(env["state_dir"], timeout=10)
    assert again["local_port"] == first["local_port"] and again["port_changed"] is False
    assert again["pid"] != first["pid"] and again["previous_pid"] == first["pid"]
    assert not pid_alive(first["pid"]) and pid_alive(again["pid"])
    assert _accepts(again["local_port"])


def test_reopen_picks_a_new_port_when_the_old_one_was_taken(env):
    first = _start(env, delay=0.1)
    os.kill(first["pid"], 9)  # the forwarder died (its pod went away) and someone took its port
    deadline = time.monotonic() + 5
    while pid_alive(first["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", first["local_port"]))
        squatter.listen(1)
        moved = pf.reopen(env["state_dir"], timeout=10)
    assert moved["port_changed"] is True and moved["local_port"] != first["local_port"]
    assert moved["previous_port"] == first["local_port"]
    assert _accepts(moved["local_port"])


def test_stop_kills_by_pid_and_is_idempotent(env):
    info = _start(env, delay=0.1)
    stopped, out = pf.stop(env["state_dir"])
    assert stopped is True and out["running"] is False
    assert not pid_alive(info["pid"])
    assert not os.path.exists(os.path.join(env["state_dir"], pf.STATE_FILE))
    assert pf.stop(env["state_dir"]) == (False, {"running": False})
    assert _procs_with(env["marker"]) == []


def test_forwarder_that_exits_at_once_fails_clearly_and_leaves_nothing(env):
    with pytest.raises(pf.ServerError) as err:
        _start(env, mode="exit")
    msg = err.value.msg
    assert "kubectl port-forward to svc/pypiserver in ns pypi exited" in msg
    assert 'services "nope" not found' in msg and "pods/portforward" in msg
    assert any("nope" in line for line in err.value.log_tail)
    assert pf.read_state(env["state_dir"]) is None
    assert _procs_with(env["marker"]) == []


def test_forwarder_that_never_listens_times_out_and_is_killed(env):
    began = time.monotonic()
    with pytest.raises(pf.ServerError) as err:
        _start(env, mode="never", timeout=1.5)
    assert time.monotonic() - began <= 1.5 + 1
    assert "did not accept connections" in err.value.msg and "within 1.5s" in err.value.msg
    assert err.value.log_tail == ["waiting forever"]
    assert _procs_with(env["marker"]) == []


def test_bad_target_is_refused_before_anything_runs(env):
    with pytest.raises(pf.ServerError, match="svc/NAME"):
        pf.start(env["state_dir"], namespace="pypi", target="pypiserver", remote_port=8080)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_real_kubectl_against_unreachable_api_server_fails_fast(env, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{free_port()}'}}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {}}]\n"
    )
    began = time.monotonic()
    with pytest.raises(pf.ServerError) as err:
        pf.start(
            env["state_dir"],
            namespace="pypi",
            target="svc/pypiserver",
            remote_port=8080,
            kubeconfig=str(kubeconfig),
            kubectl=shutil.which("kubectl"),
            timeout=20,
        )
    assert time.monotonic() - began < 10
    assert "kubectl port-forward to svc/pypiserver in ns pypi exited" in err.value.msg
    assert "refused" in err.value.msg
    assert err.value.log_tail
    assert pf.read_state(env["state_dir"]) is None
    assert _procs_with(str(kubeconfig)) == []


# ---------------------------------------------------------------- the module


@pytest.fixture
def fake_kubectl(tmp_path):
    path = tmp_path / "kubectl"
    path.write_text(f"#!{sys.executable}\n{FAKE_KUBECTL}")
    path.chmod(0o755)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    return {"kubectl": str(path), "kubeconfig": str(kubeconfig)}


def test_module_started_is_idempotent_restarted_reopens_stopped_stops(env, fake_kubectl, run_module):
    args = dict(state_dir=env["state_dir"], namespace="pypi", target="svc/pypiserver", timeout=10, **fake_kubectl)
    check = run_module(port_forward, args, check_mode=True)
    assert check["changed"] is True and pf.read_state(env["state_dir"]) is None

    first = run_module(port_forward, args)
    assert not first.failed, first
    assert first["changed"] is True and first["url"] == f"http://127.0.0.1:{first['local_port']}/"
    assert _accepts(first["local_port"]) and pid_alive(first["pid"])

    same = run_module(port_forward, args)
    assert same["changed"] is False and same["pid"] == first["pid"]

    reopened = run_module(port_forward, {"state_dir": env["state_dir"], "state": "restarted", "timeout": 10})
    assert reopened["changed"] is True and reopened["local_port"] == first["local_port"]
    assert reopened["pid"] != first["pid"] and reopened["previous_pid"] == first["pid"]
    assert not pid_alive(first["pid"])

    status = run_module(port_forward, {"state_dir": env["state_dir"], "state": "status"})
    assert status["forward"]["accepting"] is True

    would_stop = run_module(port_forward, {"state_dir": env["state_dir"], "state": "stopped"}, check_mode=True)
    assert would_stop["changed"] is True and pid_alive(reopened["pid"])
    stopped = run_module(port_forward, {"state_dir": env["state_dir"], "state": "stopped"})
    assert stopped["changed"] is True and not pid_alive(reopened["pid"])
    again = run_module(port_forward, {"state_dir": env["state_dir"], "state": "stopped"})
    assert again["changed"] is False


def test_module_failure_is_one_message_with_log_tail(env, run_module, tmp_path):
    res = run_module(
        port_forward,
        dict(
            state_dir=env["state_dir"],
            namespace="pypi",
            target="svc/pypiserver",
            kubectl=str(tmp_path / "no-such-kubectl"),
            timeout=5,
        ),
    )
    assert res.failed and "Cannot run" in res["msg"] and "Traceback" not in res["msg"]
    missing = run_module(port_forward, {"state_dir": env["state_dir"], "state": "started"})
    assert missing.failed and "namespace and target are required" in missing["msg"]
