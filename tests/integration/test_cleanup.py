"""Nothing is left behind (issue 7, part 3): after a run that passed, failed, or was interrupted by a task that
errors hard, every process the collection started is stopped, every mount it made is gone, and the state and the
work dir's scratch space are removed, unless the user asked to keep them (pypi_keep_work=true).

How it is proven, on real runs of ansible-playbook: the processes (pid, start time, argv) and the mounts
(/proc/self/mountinfo) are listed before and after each run, and /proc is sampled every 25 ms during it
(tests/integration/test_secrets.py's ProcSampler, which also reads the state files that record the detached
processes' PIDs). A process belongs to the run when its argv names the run's tmp dir, or it is the S3 server on the
port the run's state recorded. After the run none of them may be alive, no mount may be under the run's tmp dir,
and each test first asserts that the sampler did see the run's servers (and the mount), so it can fail.

The passing runs are the ones test_secrets.py makes (shared: one run each for local and local_s3).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.fake_k8s import FakeKube
from tests.helpers import VENV_BIN
from tests.integration.test_secrets import (
    SHARED,
    USER,
    VERIFY,
    Observed,
    forms,
    is_moto,
    is_pypiserver,
    is_s3fs,
    leaks_in_output_and_reports,
    mounts_left,
    observed_run,
    recognizable,
    sampled_run,
    stop_leftovers,
    survivors,
)

pytestmark = pytest.mark.slow

INTERRUPTED = """\
# deploy, one test, then a task that errors hard (not a test failure: the block stops there), then teardown
- name: A run interrupted by a failing task
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Deploy, test, break, test
      block:
        - name: Deploy the target
          ansible.builtin.import_role:
            name: pypi_ops.pypiserver.deploy
        - name: A test that passes
          ansible.builtin.include_role:
            name: pypi_ops.pypiserver.functional_tests
            tasks_from: upload.yml
        - name: A task that errors hard
          ansible.builtin.command: /bin/false
          changed_when: false
        - name: A test that never runs
          ansible.builtin.include_role:
            name: pypi_ops.pypiserver.functional_tests
            tasks_from: download.yml
      always:
        - name: Tear down
          ansible.builtin.include_role:
            name: pypi_ops.pypiserver.deploy
            tasks_from: teardown.yml
        - name: Report
          ansible.builtin.import_role:
            name: pypi_ops.pypiserver.report
"""


def files_under(path: Path) -> list[str]:
    return sorted(str(p) for p in path.rglob("*") if not p.is_dir()) if path.exists() else []


def assert_saw_the_run(obs: Observed, s3: bool) -> None:
    """The sampler saw what the run started: without this, 'nothing survived' would prove nothing."""
    mine = obs.sampler.matching(obs.of_run)
    assert any(is_pypiserver(a) for a in mine), "the run's pypiserver was never sampled"
    assert obs.sampler.state_pids, "no state file recorded a PID"
    if s3:
        assert any(is_s3fs(a) for a in mine), "the run's s3fs was never sampled"
        assert any(is_moto(a) for a in mine), "the run's S3 server was never sampled"
        assert obs.sampler.mounts, "the bucket mount was never seen"


def assert_nothing_left(obs: Observed, keep_work: bool = False) -> None:
    assert survivors(obs) == [], survivors(obs)
    assert mounts_left(obs) == [], mounts_left(obs)
    assert not obs.state_dir.exists(), files_under(obs.state_dir)
    if keep_work:
        assert files_under(obs.work_dir), "pypi_keep_work=true, but the work dir was emptied"
    else:
        assert files_under(obs.work_dir) == [], files_under(obs.work_dir)[:20]


def run_and_clean(
    name: str,
    playbook: Path,
    tmp: Path,
    extra: dict,
    args: tuple = (),
    password: str | None = None,
    user: str = USER,
    env: dict[str, str] | None = None,
) -> Observed:
    """A sampled run (a recognizable password, -vvv), then the safety net: whatever it left is stopped by PID."""
    password = password or recognizable("pw")
    obs = None
    try:
        obs = sampled_run(
            name,
            playbook,
            tmp,
            extra,
            {"pypi_password": password},
            {"pypi_password": forms(password, user)},
            args,
            env=env,
        )
    finally:
        stop_leftovers(tmp / "state", obs.sampler.state_pids if obs else ())
    return obs


# ---------------------------------------------------------------- passing runs (shared with test_secrets.py)


@pytest.fixture(params=sorted(SHARED))
def passed(request, tmp_path_factory) -> Observed:
    if SHARED[request.param][3]:
        request.getfixturevalue("require_fuse")
    return observed_run(request.param, tmp_path_factory)


@pytest.mark.xdist_group("shared_runs")  # xdist: with test_secrets.py, which makes the same runs
def test_a_passing_run_leaves_no_process_mount_state_or_scratch(passed):
    assert passed.run.rc == 0, passed.run.output[-3000:]
    assert_saw_the_run(passed, s3=passed.name == "local_s3")
    if passed.name == "local":
        # persistence restarted the server: both pypiservers were recorded, and neither survived
        servers = {pid for pid, argvs in passed.sampler.pid_argvs.items() if any(is_pypiserver(a) for a in argvs)}
        servers = {pid for pid in servers if any(passed.of_run(a) for a in passed.sampler.pid_argvs[pid])}
        assert len(servers) >= 2, servers
    assert_nothing_left(passed)


# ---------------------------------------------------------------- a run in which a test fails


def test_a_failing_run_stops_everything_and_keeps_the_work_dir_when_asked(tmp_path):
    obs = run_and_clean(
        "failing",
        VERIFY,
        tmp_path,
        {"pypi_overwrite_expected": True, "pypi_keep_work": True},
        ("--tags", "upload,overwrite"),
    )
    assert obs.run.rc != 0
    assert obs.run.results["overwrite"]["status"] == "failed", obs.run.results
    assert_saw_the_run(obs, s3=False)
    assert_nothing_left(obs, keep_work=True)
    kept = files_under(obs.work_dir)
    assert any(p.endswith(".whl") for p in kept) and any(p.endswith(".tar.gz") for p in kept), kept


# ---------------------------------------------------------------- runs interrupted by a task that errors hard


@pytest.mark.parametrize("target", ["local", "local_s3"])
def test_a_run_interrupted_by_a_failing_task_leaves_nothing(tmp_path, target, request):
    if target == "local_s3":
        request.getfixturevalue("require_fuse")
    playbook = tmp_path / "interrupted.yml"
    playbook.write_text(INTERRUPTED)
    obs = run_and_clean("interrupted", playbook, tmp_path, {"pypi_target": target})
    assert obs.run.rc != 0
    assert "A task that errors hard" in obs.run.output
    assert obs.run.results["upload"]["status"] == "passed", obs.run.results
    assert "download" not in obs.run.results  # the run really stopped in the middle
    assert_saw_the_run(obs, s3=target == "local_s3")
    assert_nothing_left(obs)


def test_a_deploy_that_fails_after_the_mount_unmounts_and_stops_the_s3_server(tmp_path, require_fuse):
    """local_s3: moto and the s3fs mount are up when pypiserver cannot start (its port is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        obs = run_and_clean("deploy-fails", VERIFY, tmp_path, {"pypi_target": "local_s3", "pypi_local_port": port})
    assert obs.run.rc != 0
    deploy = obs.run.results["deploy"]
    assert deploy["status"] == "failed" and "already in use" in deploy["reason"], deploy
    mine = obs.sampler.matching(obs.of_run)
    assert any(is_moto(a) for a in mine) and any(is_s3fs(a) for a in mine), "moto and s3fs were never sampled"
    assert obs.sampler.mounts, "the bucket mount was never seen"
    assert not any(is_pypiserver(a) for a in mine)
    assert_nothing_left(obs)


# ---------------------------------------------------------------- kubernetes: the managed port-forward

NS = "pypi-verify"
LABELS = {"app.kubernetes.io/name": "pypiserver", "app.kubernetes.io/instance": "pypi"}

# A stand-in for kubectl port-forward: listens on LOCAL of its last argument LOCAL:REMOTE and relays every connection
# to the real pypiserver behind the "Service" (the fake API server cannot forward). What is under test is that the
# collection stops the forwarder it started (and re-opened after the restart), by PID.
FAKE_KUBECTL = """#!{python}
import socket, sys, threading
assert sys.argv[1] == "port-forward", sys.argv
UPSTREAM = ("127.0.0.1", {port})
local = int(sys.argv[-1].split(":")[0])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", local))
srv.listen(64)
print(f"Forwarding from 127.0.0.1:{{local}} -> {{sys.argv[-1].split(':')[1]}}", flush=True)

def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for sock in (src, dst):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def relay(conn):
    try:
        up = socket.create_connection(UPSTREAM, timeout=10)
    except OSError:
        conn.close()
        return
    up.settimeout(None)
    threading.Thread(target=pump, args=(conn, up), daemon=True).start()
    pump(up, conn)
    conn.close()
    up.close()

while True:
    client, _ = srv.accept()
    threading.Thread(target=relay, args=(client,), daemon=True).start()
"""


@pytest.mark.contract
def test_the_kubernetes_port_forward_is_stopped_after_the_run_also_once_reopened(tmp_path, pypiserver_factory):
    password = recognizable("k8s")
    server = pypiserver_factory(auth_actions=("update",), username="ci-user", password=password)
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    (fakebin / "kubectl").write_text(FAKE_KUBECTL.format(python=VENV_BIN / "python", port=server.port))
    (fakebin / "kubectl").chmod(0o755)
    k8s_state = tmp_path / "state" / "k8s"
    kube = FakeKube(tmp_path / "kube", namespaces=(NS,), default_namespace=NS, terminate_seconds=0.3, ready_delay=0.3)
    kube.start()
    try:
        kube.add_workload("Deployment", NS, "pypi-pypiserver", replicas=1, labels=LABELS)
        kube.mount_dir(NS, "/data/packages", server.package_dir)
        obs = run_and_clean(
            "kubernetes",
            VERIFY,
            tmp_path,
            {
                "pypi_target": "kubernetes",
                "pypi_k8s_deploy": False,
                "pypi_k8s_kubeconfig": str(kube.kubeconfig),
                "pypi_k8s_namespace": NS,
                "pypi_k8s_state_dir": str(k8s_state),
                "pypi_username": "ci-user",
            },
            ("--tags", "p0,persistence"),
            password=password,
            user="ci-user",
            env={"PATH": f"{fakebin}:{VENV_BIN}:{os.environ.get('PATH', '')}"},
        )
    finally:
        kube.stop()
    assert obs.run.rc == 0, obs.run.output[-4000:]
    assert obs.run.results["persistence"]["status"] == "passed", obs.run.results
    forwards = {
        pid
        for pid, argvs in obs.sampler.pid_argvs.items()
        if any("port-forward" in a and obs.of_run(a) and str(fakebin) in " ".join(a) for a in argvs)
    }
    assert len(forwards) >= 2, f"the port-forward and its re-opening after the restart were not both seen: {forwards}"
    assert survivors(obs) == [], survivors(obs)
    assert not (k8s_state / "port-forward.json").exists()
    assert leaks_in_output_and_reports(obs) == [] and obs.sampler.leaks == []
