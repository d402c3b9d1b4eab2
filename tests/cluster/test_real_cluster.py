"""The kubernetes target on a REAL single-node Kubernetes that the project builds and starts itself
(scripts/cluster/cluster.py: kube-apiserver, controller-manager, scheduler, kubelet and kube-proxy 1.32 built from
the Go modules, Debian's etcd, containerd and runc, CoreDNS, images built here with no registry).

Nothing is faked here: helm installs charts/pypiserver, the pods run pypiserver from the locally built image, the
port-forward goes through the apiserver and kubelet to containerd, a pod deletion makes the ReplicaSet create a new
pod on the same volume, and the chart's own helm test pods run in the cluster.

One cluster serves the whole module (xdist group "cluster"); every test uses its own namespace and deletes it. The
last test takes the cluster down and proves nothing is left: no process, mount, netns, veth, bridge, iptables chain
or cgroup. Where the machine cannot run a cluster (not root, no Go, no containerd/runc/etcd), the module skips
naming what is missing; under CI=true that is a failure instead, so these tests can never pass silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
import typing as t
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.helpers import ROOT, VENV_BIN, rewrite_tar_member, run_playbook

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.xdist_group("cluster"), pytest.mark.timeout(3600)]

CLUSTER_PY = ROOT / "scripts" / "cluster" / "cluster.py"
STATE = Path(os.environ.get("PYPIOPS_CLUSTER_STATE") or ROOT / ".cluster")
KUBECTL = VENV_BIN / "kubectl"
PY = VENV_BIN / "python"
VERIFY = ROOT / "verify.yml"
S3_TESTS = {"s3_connectivity", "s3_upload", "s3_download"}


def _problem() -> str:
    if os.geteuid() != 0:
        return "the local cluster needs root (containerd, bridges, iptables, mounts)"
    if shutil.which("go") is None:
        return "no Go toolchain on PATH (the cluster's binaries are built with go build)"
    for tool in ("containerd", "runc", "etcd", "iptables", "ctr", "debootstrap"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return (
                f"{tool} is not installed (apt-get install containerd runc containernetworking-plugins etcd-server "
                "iptables debootstrap)"
            )
    if not KUBECTL.exists():
        return f"{KUBECTL} is missing; run 'make dev'"
    return ""


def _cluster(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PY), str(CLUSTER_PY), *args, "--state", str(STATE), "--kubectl", str(KUBECTL)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def kubectl(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(STATE / "kubeconfig"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def host_snapshot() -> dict[str, set[str]]:
    """What a cluster leaves on the host, to compare before and after."""
    snap: dict[str, set[str]] = {
        "processes": set(),
        "mounts": set(),
        "links": set(),
        "chains": set(),
        "netns": set(),
        "cgroups": set(),
    }
    markers = (str(STATE), "/run/pypiops-cluster", "/var/lib/pypiops-cluster")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(m in cmd for m in markers) and "pytest" not in cmd:
            snap["processes"].add(f"{pid} {cmd[:120]}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mnt = line.split()[4]
        if mnt.startswith(markers) or "/netns/cni-" in mnt:
            snap["mounts"].add(mnt)
    for link in os.listdir("/sys/class/net"):
        if link.startswith(("pypiops", "veth", "cni")):
            snap["links"].add(link)
    for tool in ("iptables-save", "ip6tables-save"):
        if shutil.which(tool):
            out = subprocess.run([tool], capture_output=True, text=True, check=False).stdout
            snap["chains"] |= {
                f"{tool}:{line.split()[0]}"
                for line in out.splitlines()
                if line.startswith((":KUBE-", ":CNI-", ":PYPIOPS-"))
            }
    for d in ("/run/netns", "/var/run/netns"):
        if os.path.isdir(d):
            snap["netns"] |= {n for n in os.listdir(d) if n.startswith("cni-")}
    for hier in Path("/sys/fs/cgroup").iterdir():
        if (hier / "pypiops").exists():
            snap["cgroups"].add(str(hier / "pypiops"))
    return snap


def _residue() -> bool:
    """The same test as cluster.py's residue(): sockets, node state or the bridge of a cluster never taken down."""
    return any(
        os.path.exists(p) for p in ("/run/pypiops-cluster", "/var/lib/pypiops-cluster", "/sys/class/net/pypiops0")
    )


class Cluster(t.NamedTuple):
    kubeconfig: Path
    values_file: Path
    started_here: bool
    baseline: dict[str, set[str]]


@pytest.fixture(scope="module")
def cluster() -> t.Iterator[Cluster]:
    problem = _problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the real-cluster tests must run in CI: {problem}")
        pytest.skip(problem)
    was_up = _cluster("status", timeout=60).returncode == 0
    if not was_up and _residue():
        # an earlier cluster was killed without its down (a cancelled CI job): up() would clean that residue, which
        # the baseline would then count as "down took something that was there before"; clean it first instead
        down = _cluster("down", timeout=600)
        assert down.returncode == 0, f"cleaning an earlier cluster's residue failed: {down.stderr.strip()[-2000:]}"
    baseline = host_snapshot() if not was_up else {}
    up = _cluster("up")
    if up.returncode != 0:
        # e.g. containers cannot start in this sandbox: a skip that says so, but never in CI
        why = f"the local cluster did not come up on this machine: {up.stderr.strip()[-3000:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    yield Cluster(STATE / "kubeconfig", STATE / "values-local.yaml", not was_up, baseline)
    if not was_up and (STATE / "kubeconfig").exists():
        _cluster("down", timeout=600)


@pytest.fixture
def namespace(cluster: Cluster) -> t.Iterator[str]:
    name = "e2e-" + uuid.uuid4().hex[:8]
    yield name
    kubectl(
        "delete", "namespace", name, "--ignore-not-found", "--wait=true", "--timeout=180s", timeout=240, check=False
    )


def k8s_vars(cluster: Cluster, namespace: str, tmp_path: Path, **extra: t.Any) -> dict[str, t.Any]:
    out = {
        "pypi_target": "kubernetes",
        "pypi_k8s_kubeconfig": str(cluster.kubeconfig),
        "pypi_k8s_values_files": [str(cluster.values_file)],
        "pypi_k8s_namespace": namespace,
        "pypi_k8s_state_dir": str(tmp_path / "k8s-state"),
        "pypi_k8s_helm_test": True,
        "pypi_k8s_uninstall": True,
        "pypi_cleanup": True,
    }
    out.update(extra)
    return out


def _statuses(results: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: r["status"] for name, r in results.items()}


# ------------------------------------------------------------------------------------------------ the cluster


def test_cluster_up_is_idempotent_and_answers(cluster):
    pid_before = (STATE / "pids" / "kube-apiserver.pid").read_text()
    again = _cluster("up", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stderr
    assert (STATE / "pids" / "kube-apiserver.pid").read_text() == pid_before
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == 1
    ready = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert nodes[0]["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.13"
    assert nodes[0]["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    server = json.loads(kubectl("config", "view", "--raw", "-o", "json").stdout)["clusters"][0]["cluster"]["server"]
    assert server.startswith("https://127.0.0.1:")


# ------------------------------------------------------------------------------------------------ the full suite


def test_full_suite_with_helm_test_on_the_real_cluster(cluster, namespace, tmp_path):
    run = run_playbook(VERIFY, tmp_path, k8s_vars(cluster, namespace, tmp_path), timeout=1200)
    statuses = _statuses(run.results)
    assert run.rc == 0, run.output[-4000:]
    not_passed = {k: v for k, v in statuses.items() if v != "passed" and k not in [*S3_TESTS, "replicas"]}
    assert not_passed == {}, {k: run.results[k]["reason"] for k in not_passed}
    assert {statuses[k] for k in S3_TESTS} == {"skipped"}
    # one pod: nothing to compare it with (the S3 two-replica case below runs the replicas test)
    assert (
        statuses["replicas"] == "skipped"
        and "kubernetes target reaches 1 replica(s)" in run.results["replicas"]["reason"]
    )
    for required in ("deploy", "upload", "download", "persistence", "storage", "helm_test", "load", "large_package"):
        assert statuses.get(required) == "passed", required
    # persistence went through a real pod deletion: two different UIDs in the reason
    reason = run.results["persistence"]["reason"]
    assert "restarted (" in reason and " -> " in reason
    old, new = reason.split("restarted (", 1)[1].split(")", 1)[0].split(" -> ")
    assert old and new and old != new
    assert "Succeeded" in run.results["helm_test"]["reason"]


# ------------------------------------------------------------------------------------------------ S3 mode, 2 replicas


def _pod_listing(namespace: str, pod: str, path: str) -> str:
    code = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080{path}', timeout=10).read().decode())"
    return kubectl("-n", namespace, "exec", pod, "-c", "pypiserver", "--", "python3", "-c", code, timeout=60).stdout


def test_s3_mode_with_two_replicas_every_pod_serves_every_upload(cluster, namespace, tmp_path, run_module):
    """The chart's S3 mode with the bucket mounted on the node (moto + s3fs, the CSI driver's stand-in) and
    replicaCount 2 on that shared storage: the whole suite passes, the s3_* tests included, and afterwards each of
    the two pods, asked directly (exec, not through the Service), lists every file the run uploaded."""
    from ansible_collections.pypi_ops.pypiserver.plugins.modules import local_s3

    state = tmp_path / "k8s-state"
    try:
        run = run_playbook(
            VERIFY,
            tmp_path,
            k8s_vars(
                cluster,
                namespace,
                tmp_path,
                pypi_k8s_s3_node_mount=True,
                pypi_k8s_values={"replicaCount": 2},
                pypi_cleanup=False,
                pypi_k8s_uninstall=False,
            ),
            timeout=1500,
        )
        statuses = _statuses(run.results)
        assert {k: v for k, v in statuses.items() if v != "passed"} == {}, {
            k: run.results[k]["reason"] for k, v in statuses.items() if v != "passed"
        }
        assert "s3://" in run.results["s3_upload"]["reason"]
        # the replicas test read each pod through its own port-forward after an upload through the Service's
        assert "all 2 replicas, asked directly, list" in run.results["replicas"]["reason"], run.results["replicas"]
        pods = json.loads(
            kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/name=pypiserver", "-o", "json").stdout
        )["items"]
        names = sorted(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))
        assert len(names) == 2, names
        args = next(c["args"] for c in pods[0]["spec"]["containers"] if c["name"] == "pypiserver")
        assert "simple-dir" in args  # the chart's no-cache backend for more than one replica
        listings = {pod: _pod_listing(namespace, pod, "/simple/") for pod in names}
        probes = {line.split(">")[1].split("<")[0] for line in listings[names[0]].splitlines() if "<a " in line}
        assert any(p.startswith("pypiops-probe") or p.startswith("pypiops_probe") for p in probes), probes
        for pod in names:
            for project in probes:
                page = _pod_listing(namespace, pod, f"/simple/{project}/")
                assert page == _pod_listing(namespace, names[0], f"/simple/{project}/"), (
                    f"replica {pod} lists {project} differently from {names[0]}: stale replica"
                )
    finally:
        kubectl(
            "-n",
            namespace,
            "delete",
            "pods",
            "-l",
            "app.kubernetes.io/component=helm-test",
            "--wait=true",
            timeout=120,
            check=False,
        )
        subprocess.run(
            [
                str(VENV_BIN / "helm3"),
                "--kubeconfig",
                str(cluster.kubeconfig),
                "-n",
                namespace,
                "uninstall",
                "pypi",
                "--wait",
                "--timeout",
                "120s",
            ],
            capture_output=True,
            timeout=180,
            check=False,
        )
        run_module(local_s3, {"state": "stopped", "state_dir": str(state / "s3")})
    assert not any(line.split()[1].startswith(str(state)) for line in Path("/proc/mounts").read_text().splitlines())


# ------------------------------------------------------------------------------------------------ faults


def test_emptydir_fails_persistence_naming_the_lost_files(cluster, namespace, tmp_path):
    run = run_playbook(
        VERIFY,
        tmp_path,
        k8s_vars(
            cluster,
            namespace,
            tmp_path,
            pypi_k8s_helm_test=False,
            pypi_k8s_values={"persistence": {"type": "emptyDir"}},
        ),
        args=["--tags", "upload,persistence"],
        timeout=900,
    )
    assert run.rc != 0
    assert run.results["upload"]["status"] == "passed"
    assert run.results["persistence"]["status"] == "failed", run.results["persistence"]
    reason = run.results["persistence"]["reason"]
    assert "pypiops_probe" in reason or "pypiops-probe" in reason, reason


def test_missing_image_fails_the_deploy_within_its_timeout(cluster, namespace, tmp_path):
    t0 = time.monotonic()
    run = run_playbook(
        VERIFY,
        tmp_path,
        k8s_vars(
            cluster,
            namespace,
            tmp_path,
            pypi_k8s_wait_timeout="45s",
            pypi_k8s_values={"image": {"tag": "0.0.0-does-not-exist"}},
        ),
        args=["--tags", "connection"],
        timeout=600,
    )
    took = time.monotonic() - t0
    assert run.rc != 0
    assert run.results["deploy"]["status"] == "failed"
    reason = run.results["deploy"]["reason"]
    assert "ErrImageNeverPull" in reason or "ImagePullBackOff" in reason, reason
    assert "0.0.0-does-not-exist" in reason
    assert took < 400, f"the run took {took:.0f} s for a 45 s helm wait"  # bounded, not a benchmark


def test_rbac_without_delete_fails_helm_test_naming_rbac(cluster, namespace, tmp_path):
    run = run_playbook(
        VERIFY,
        tmp_path,
        k8s_vars(
            cluster, namespace, tmp_path, pypi_k8s_values={"tests": {"persistenceVerbs": ["get", "list", "watch"]}}
        ),
        args=["--tags", "helm_test"],
        timeout=900,
    )
    assert run.rc != 0
    assert run.results["helm_test"]["status"] == "failed"
    reason = run.results["helm_test"]["reason"]
    assert "RBAC" in reason and "delete" in reason and "test-persistence" in reason, reason


# ------------------------------------------------------------------------------------------------ the canary CronJob


def _canary_job(namespace: str, release: str, job: str) -> tuple[str, str]:
    """A Job made from the canary CronJob now (kubectl create job --from): (its final condition, its pod's log)."""
    kubectl("-n", namespace, "create", "job", job, f"--from=cronjob/{release}-pypiserver-canary")
    deadline = time.monotonic() + 240
    state = ""
    while time.monotonic() < deadline and not state:
        conditions = json.loads(kubectl("-n", namespace, "get", "job", job, "-o", "json").stdout)["status"].get(
            "conditions"
        ) or []  # fmt: skip
        state = next(
            (c["type"] for c in conditions if c["type"] in ("Complete", "Failed") and c["status"] == "True"), ""
        )
        time.sleep(2)
    logs = kubectl("-n", namespace, "logs", f"job/{job}", timeout=60, check=False)
    return state, logs.stdout + logs.stderr


def test_canary_cronjob_passes_on_a_healthy_release_and_fails_on_read_only_storage(cluster, namespace):
    helm = [str(VENV_BIN / "helm"), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    secret = "Can4ry-" + uuid.uuid4().hex[:10]
    install = subprocess.run(
        [*helm, "install", "rel", str(ROOT / "charts" / "pypiserver"), "--create-namespace", "--wait",
         "--timeout", "300s", "-f", str(cluster.values_file), "--set", "canary.enabled=true",
         "--set", "canary.schedule=0 0 1 1 *", "--set", "auth.enabled=true", "--set", "auth.username=canary",
         "--set", "auth.actions={update,download,list}", "-f", "-"],
        input=json.dumps({"auth": {"password": secret}}), capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    state, log = _canary_job(namespace, "rel", "canary-healthy")
    assert state == "Complete", log
    assert "CANARY OK" in log and "upload ok" in log and "remove ok" in log and secret not in log
    # the same release, its package volume mounted read-only: the canary's upload must fail, and so its Job
    deployment = json.loads(kubectl("-n", namespace, "get", "deployment", "rel-pypiserver", "-o", "json").stdout)
    mounts = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    index = next(i for i, m in enumerate(mounts) if m["mountPath"] == "/data/packages")
    patch = [{"op": "add", "path": f"/spec/template/spec/containers/0/volumeMounts/{index}/readOnly", "value": True}]
    kubectl("-n", namespace, "patch", "deployment", "rel-pypiserver", "--type=json", "-p", json.dumps(patch))
    kubectl("-n", namespace, "rollout", "status", "deployment/rel-pypiserver", "--timeout=300s", timeout=320)
    state, log = _canary_job(namespace, "rel", "canary-read-only")
    assert state == "Failed", log
    assert "CANARY FAILED: canary step upload failed" in log and "HTTP 500" in log, log
    assert "connection ok" in log and "simple ok" in log and secret not in log


# ------------------------------------------------------------------------------------------------ modules on real objects


SLOW_STOP_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: slowstop, labels: {app: slowstop}}
spec:
  replicas: 1
  selector: {matchLabels: {app: slowstop}}
  template:
    metadata: {labels: {app: slowstop}}
    spec:
      terminationGracePeriodSeconds: 40
      securityContext: {runAsUser: 9898, runAsGroup: 9898}
      containers:
        - name: server
          image: localhost/pypiops/python:3.11
          imagePullPolicy: Never
          # Ignores SIGTERM: the old pod stays Terminating (and serving) for the whole grace period.
          command:
            - python3
            - -c
            - >-
              import signal, http.server; signal.signal(signal.SIGTERM, signal.SIG_IGN);
              http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=8080, bind='0.0.0.0')
          readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: slowstop}
spec:
  selector: {app: slowstop}
  ports: [{port: 8080, targetPort: 8080}]
"""


def _apply_slowstop(namespace: str) -> None:
    kubectl("create", "namespace", namespace)
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(STATE / "kubeconfig"), "-n", namespace, "apply", "-f", "-"],
        input=SLOW_STOP_DEPLOYMENT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    kubectl("-n", namespace, "rollout", "status", "deployment/slowstop", "--timeout=120s", timeout=150)


def _pods(namespace: str) -> list[dict[str, t.Any]]:
    return json.loads(kubectl("-n", namespace, "get", "pods", "-l", "app=slowstop", "-o", "json").stdout)["items"]


def _forward_slowstop(cluster: Cluster, namespace: str, run_module, state_dir: str) -> dict[str, t.Any]:  # noqa: ANN001
    """The slowstop Deployment and Service, and the collection's port-forward to the Service."""
    from ansible_collections.pypi_ops.pypiserver.plugins.modules import port_forward

    _apply_slowstop(namespace)
    args = {
        "state_dir": state_dir,
        "state": "started",
        "kubeconfig": str(cluster.kubeconfig),
        "namespace": namespace,
        "target": "svc/slowstop",
        "remote_port": 8080,
        "kubectl": str(KUBECTL),
    }
    started = run_module(port_forward, args)
    assert not started.failed, started
    return started


def test_pod_restart_on_a_real_replicaset_with_the_old_pod_still_terminating(cluster, namespace, run_module):
    from ansible_collections.pypi_ops.pypiserver.plugins.modules import pod_restart

    _apply_slowstop(namespace)
    old = _pods(namespace)
    assert len(old) == 1
    result = run_module(
        pod_restart,
        {
            "kubeconfig": str(cluster.kubeconfig),
            "namespace": namespace,
            "label_selector": "app=slowstop",
            "mode": "delete",
            "timeout": 120,
        },
    )
    assert not result.failed, result
    new_uids = [p["uid"] for p in result["new_pods"]]
    assert [p["uid"] for p in result["old_pods"]] == [old[0]["metadata"]["uid"]]
    assert len(new_uids) == 1 and new_uids[0] != old[0]["metadata"]["uid"]
    # The module returned while the old pod was still Terminating (it ignores SIGTERM for 40 s): the new-UID
    # Ready wait did not count it, and did not wait for it to go.
    now = {p["metadata"]["uid"]: p for p in _pods(namespace)}
    assert old[0]["metadata"]["uid"] in now, "the old pod was already gone: the fault was not staged"
    assert now[old[0]["metadata"]["uid"]]["metadata"].get("deletionTimestamp")
    ready = {c["type"]: c["status"] for c in now[new_uids[0]]["status"]["conditions"]}
    assert ready["Ready"] == "True"


def test_port_forward_reopened_after_a_real_pod_restart(cluster, namespace, run_module, tmp_path):
    from ansible_collections.pypi_ops.pypiserver.plugins.modules import pod_restart, port_forward

    state_dir = str(tmp_path / "pf")
    common = {"state_dir": state_dir}
    started = _forward_slowstop(cluster, namespace, run_module, state_dir)
    url = started["url"]
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200
        restarted = run_module(
            pod_restart,
            {
                "kubeconfig": str(cluster.kubeconfig),
                "namespace": namespace,
                "label_selector": "app=slowstop",
                "mode": "delete",
                "timeout": 120,
            },
        )
        assert not restarted.failed, restarted
        # Force the old pod away now, so the old forward has nothing left to talk to.
        kubectl(
            "-n",
            namespace,
            "delete",
            "pod",
            restarted["old_pods"][0]["name"],
            "--grace-period=0",
            "--force",
            "--wait=true",
            timeout=120,
            check=False,
        )
        reopened = run_module(port_forward, {**common, "state": "restarted"})
        assert not reopened.failed, reopened
        with urllib.request.urlopen(reopened["url"], timeout=10) as resp:
            assert resp.status == 200
        assert reopened["pid"] != started["pid"]
    finally:
        run_module(port_forward, {**common, "state": "stopped"})


def test_port_forward_survives_a_connection_the_pod_breaks(cluster, namespace, run_module, tmp_path):
    """A POST whose body the server never reads (Python's http.server answers 501 and closes, as pypiserver does
    with a refused upload) breaks one forwarded stream; kubectl port-forward then exits for good. The collection's
    forward comes back by itself, and a request made while kubectl is being started again is not refused: the local
    port is the supervisor's, which relays to kubectl and waits for it."""
    import http.client

    from ansible_collections.pypi_ops.pypiserver.plugins.modules import port_forward

    state_dir = str(tmp_path / "pf")
    started = _forward_slowstop(cluster, namespace, run_module, state_dir)
    port = started["local_port"]
    try:
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            try:
                conn.request("POST", "/", body=b"x" * (32 << 20), headers={"Content-Type": "application/octet-stream"})
                conn.getresponse().read()
            except OSError:
                pass
            finally:
                conn.close()
        log = Path(state_dir, "port-forward.log")
        deadline = time.monotonic() + 30
        while "starting it again" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "starting it again" in log.read_text(), (
            f"kubectl never lost its connection: the fault was not staged; log: {log.read_text()[-2000:]}"
        )
        # at once, while kubectl is being started again (the supervisor waits 0.3 s, then kubectl needs its start):
        # the local port stays open and the request waits for the new kubectl instead of being refused
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
            assert resp.status == 200
        assert "the local port stays open" in log.read_text()
    finally:
        run_module(port_forward, {"state_dir": state_dir, "state": "stopped"})


# ------------------------------------------------------------------------------------------------ molecule


def test_molecule_cluster_scenario(cluster, tmp_path, monkeypatch):
    from tests.integration.test_molecule import _molecule

    monkeypatch.setenv("PYPIOPS_KEEP_CLUSTER", "1")  # the module's other tests share this cluster
    (tmp_path / "home").mkdir()
    proc = _molecule("test", "cluster", tmp_path, timeout=1500)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    for step in ("create", "converge", "idempotence", "verify", "destroy"):
        assert f"cluster > {step}: Executed: Successful" in out, step
    # skipped: the 3 S3 tests (no bucket) and replicas (one pod); the passed count grows with the suite
    assert re.search(r"\b\d+ passed, 0 failed, 4 skipped", out), out[-3000:]


# ------------------------------------------------------------------------------------------------ the upgrade drill

UPGRADE_DRILL = ROOT / "playbooks" / "upgrade_drill.yml"
OLDER = {"image": {"tag": "2.3.2"}}  # localhost/pypiops/pypiserver:2.3.2, built by scripts/cluster/images.py
DRILL_STEPS = (
    "drill_install",
    "drill_probes",
    "drill_upgrade",
    "drill_probes_upgraded",
    "drill_rollback",
    "drill_probes_rolled_back",
    "drill_cleanup",
)


def _helm_history(cluster: Cluster, namespace: str, release: str = "pypi") -> list[dict[str, t.Any]]:
    proc = subprocess.run(
        [str(VENV_BIN / "helm3"), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, "history", release,
         "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return json.loads(proc.stdout) if proc.returncode == 0 else []


def test_upgrade_drill_from_the_older_image_keeps_every_probe_and_passes_the_suite(cluster, namespace, tmp_path):
    """2.3.2 installed, probes uploaded and hashed, helm upgrade to the current chart and 2.4.2, the probes compared,
    the whole suite on the upgraded release, helm rollback to revision 1 and the probes compared again; then the
    probes removed and the drill's release uninstalled."""
    t0 = time.monotonic()
    run = run_playbook(
        UPGRADE_DRILL,
        tmp_path,
        # the site's values as an extra var (which wins over every other variable) name the current image: the
        # drill's older image still reaches the install, through pypi_k8s_values_overlay
        k8s_vars(
            cluster,
            namespace,
            tmp_path,
            pypi_upgrade_from_values=OLDER,
            pypi_upgrade_rollback=True,
            pypi_k8s_values={"image": {"tag": "2.4.2"}},
        ),
        timeout=2400,
    )
    took = time.monotonic() - t0
    statuses = _statuses(run.results)
    assert run.rc == 0, run.output[-5000:]
    assert {s: statuses.get(s) for s in DRILL_STEPS} == dict.fromkeys(DRILL_STEPS, "passed"), {
        s: run.results.get(s) for s in DRILL_STEPS
    }
    assert "localhost/pypiops/pypiserver:2.3.2" in run.results["drill_install"]["reason"]
    upgrade = run.results["drill_upgrade"]["reason"]
    assert re.search(r"from revision 1 \(deployed, .*pypiserver:2\.3\.2\) to revision 2 \(deployed, .*pypiserver:2\.4\.2\)",
                     upgrade), upgrade  # fmt: skip
    for step in ("drill_probes_upgraded", "drill_probes_rolled_back"):
        assert "all 4 probe files of 2 projects are listed with the sha256" in run.results[step]["reason"], step
    assert "now revision 3 (deployed" in run.results["drill_rollback"]["reason"]
    assert "pypiserver:2.3.2" in run.results["drill_rollback"]["reason"]
    # the full suite ran on the upgraded release
    suite = {k: v for k, v in statuses.items() if not k.startswith("drill_")}
    not_passed = {k: v for k, v in suite.items() if v != "passed" and k not in [*S3_TESTS, "replicas"]}
    assert not_passed == {}, {k: run.results[k]["reason"] for k in not_passed}
    for required in ("upload", "download", "persistence", "helm_test", "load", "large_package"):
        assert suite.get(required) == "passed", required
    cleanup = run.results["drill_cleanup"]["reason"]
    assert "none left" in cleanup and "release pypi uninstalled" in cleanup, cleanup
    assert _helm_history(cluster, namespace) == []
    print(f"upgrade drill with rollback and the full suite: {took:.0f} s")


def test_upgrade_drill_to_a_missing_image_rolls_back_and_the_old_release_still_serves(cluster, namespace, tmp_path):
    """The upgrade to an image that does not exist fails at helm's wait (Recreate: the old pod is already gone); the
    drill rolls back to revision 1, proves the old release serves every probe with its sha256 again, and says all
    of it in one row. The release is kept (pypi_k8s_uninstall=false), so this test can look at it too."""
    t0 = time.monotonic()
    run = run_playbook(
        UPGRADE_DRILL,
        tmp_path,
        k8s_vars(
            cluster,
            namespace,
            tmp_path,
            pypi_upgrade_from_values=OLDER,
            pypi_upgrade_to_values={"image": {"tag": "0.0.0-does-not-exist"}},
            pypi_k8s_wait_timeout="60s",
            pypi_k8s_uninstall=False,
        ),
        timeout=900,
    )
    took = time.monotonic() - t0
    statuses = _statuses(run.results)
    assert run.rc != 0
    assert statuses["drill_install"] == "passed" and statuses["drill_probes"] == "passed", run.results
    assert statuses["drill_upgrade"] == "failed"
    # the full reason from results.json (junit.xml's message attribute is cut)
    rows = json.loads((run.report_dir / "results.json").read_text())["tests"]
    reason = next(r["reason"] for r in rows if r["id"] == "drill_upgrade")
    assert "0.0.0-does-not-exist" in reason and ("ErrImageNeverPull" in reason or "ImagePullBackOff" in reason), reason
    assert "the failed upgrade left the release at revision 2 (failed" in reason, reason
    assert "brought it back to revision 3 (deployed" in reason and "pypiserver:2.3.2" in reason, reason
    assert "the old release still serves all 4 probe files with their sha256" in reason, reason
    for step in ("drill_probes_upgraded", "drill_rollback", "drill_probes_rolled_back"):
        assert statuses[step] == "skipped" and "drill_upgrade failed" in run.results[step]["reason"], step
    assert not [k for k in statuses if not k.startswith("drill_")], "the suite must not run after a failed upgrade"
    # the probes were removed through the rolled-back release, which the drill kept as asked
    cleanup = run.results["drill_cleanup"]
    assert cleanup["status"] == "passed", cleanup
    assert "removed 3 probe version(s) of 2 project(s)" in cleanup["reason"], cleanup
    assert "kept at revision 3 (deployed" in cleanup["reason"], cleanup
    assert took < 600, f"the drill took {took:.0f} s for a 60 s helm wait"  # bounded, not a benchmark
    # and the cluster agrees: revision 3 is a rollback to 1, its pod runs 2.3.2 and answers
    history = _helm_history(cluster, namespace)
    assert [h["revision"] for h in history] == [1, 2, 3], history
    assert history[-1]["status"] == "deployed" and "Rollback to 1" in history[-1]["description"], history
    listed = kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/name=pypiserver", "-o", "json").stdout
    pods = [p for p in json.loads(listed)["items"] if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    assert pods[0]["spec"]["containers"][0]["image"] == "localhost/pypiops/pypiserver:2.3.2"
    assert all(c["ready"] for c in pods[0]["status"]["containerStatuses"])
    assert "<html" in _pod_listing(namespace, pods[0]["metadata"]["name"], "/simple/").lower()


# ------------------------------------------------------------------------------------------------ diagnostics


def _bundle_files(report_dir: Path) -> dict[str, str]:
    """Every file of a run's report directory (the bundle included), relative path -> text."""
    return {
        str(p.relative_to(report_dir)): p.read_text(errors="replace")
        for p in sorted(report_dir.rglob("*"))
        if p.is_file()
    }


def _rfc3339(stamp: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", stamp.replace("Z", "+00:00"))).timestamp()


def _no_secret(files: dict[str, str], secret: str, user: str) -> None:
    import base64

    forms = {
        secret,
        base64.b64encode(secret.encode()).decode().rstrip("="),
        base64.b64encode(f"{user}:{secret}".encode()).decode().rstrip("="),
    }
    leaks = {name: form for name, text in files.items() for form in forms if form in text}
    assert leaks == {}, f"secret leaked into {sorted(leaks)}"


def test_crashloop_run_leaves_a_diagnostics_bundle_naming_the_pod_and_its_previous_log(cluster, namespace, tmp_path):
    """pypiserver started with an option it does not know exits at once; the kubelet restarts it into
    CrashLoopBackOff, helm's wait fails the deploy, and the bundle written before the teardown names the pod, the
    container and CrashLoopBackOff, holds the crashed container's log with pypiserver's own error, the namespace's
    events and the pod's describe, links from summary.md and the failed JUnit entry, and holds no form of the
    password."""
    secret = "Cr4shL00p-" + uuid.uuid4().hex[:12]
    t0 = time.monotonic()
    run = run_playbook(
        VERIFY,
        tmp_path,
        k8s_vars(
            cluster,
            namespace,
            tmp_path,
            pypi_password=secret,
            pypi_k8s_wait_timeout="60s",
            pypi_k8s_values={"extraArgs": ["--no-such-option"]},
        ),
        args=["--tags", "connection"],
        timeout=600,
    )
    took = time.monotonic() - t0
    assert run.rc != 0
    assert run.results["deploy"]["status"] == "failed", run.results
    report = run.report_dir
    bundle = report / "diagnostics"
    index = (bundle / "index.md").read_text()
    cause = next(line for line in index.splitlines() if line.startswith("- **cause**:"))
    assert "CrashLoopBackOff" in cause and "container pypiserver" in cause, index
    pod = re.search(r"pod (pypi-pypiserver-[a-z0-9]+-[a-z0-9]+) container pypiserver", cause)
    assert pod, cause
    name = pod.group(1)
    # the crashed container's own log: pypiserver's (argparse's) error about the option, with the run that wrote it
    previous = (bundle / "kubernetes" / "logs" / f"{name}.previous.log").read_text()
    assert "--previous" in previous and "(rc 0)" in previous, previous
    assert "unrecognized arguments: --no-such-option" in previous, previous
    assert "; the previous container's last log line: pypi-server: error: unrecognized arguments" in cause, cause
    events = (bundle / "kubernetes" / "events.txt").read_text()
    assert f"Warning BackOff pod/{name}" in events and f"Started pod/{name}" in events, events
    stamps = [line.split()[0] for line in events.splitlines()[1:] if line.strip()]
    assert len(stamps) >= 4 and stamps == sorted(stamps, key=_rfc3339), events  # oldest first, every event
    describe = (bundle / "kubernetes" / "describe-pods.txt").read_text()
    assert re.search(rf"^Name: +{name}$", describe, re.M) and "CrashLoopBackOff" in describe, describe
    assert "--no-such-option" in describe
    for listed in ("kubernetes/events.txt", "kubernetes/describe-pods.txt", f"kubernetes/logs/{name}.previous.log"):
        assert f"]({listed})" in index, listed
    # linked from the report files, the failed testcase included
    assert "diagnostics/index.md" in (report / "summary.md").read_text()
    import xml.etree.ElementTree as ET

    case = next(c for c in ET.parse(report / "junit.xml").getroot().iter("testcase") if c.get("name") == "deploy")
    failure = case.find("failure")
    assert failure is not None and "diagnostics: diagnostics/index.md" in (failure.text or ""), ET.tostring(case)
    _no_secret(_bundle_files(report), secret, "pypi-ops")
    assert took < 400, f"the run took {took:.0f} s for a 60 s helm wait"  # bounded, not a benchmark
    print(f"crash-loop run with its diagnostics: {took:.0f} s")


def test_diagnostics_keep_the_helm_test_pods_logs_and_the_pv_and_name_a_failed_helm_test(
    cluster, namespace, tmp_path, run_module
):
    """The chart's storage and connection helm tests run in the cluster (helm test --filter); the diagnostics module
    then finds their pods by the helm.sh/hook annotation and the release's instance label and keeps their logs, and
    describes the PV bound to the release's PVC. With auth on, no form of the password is in the bundle. Then the
    server is scaled to 0 and the connection test fails for real: the bundle names the missing pod and the failed
    test pod with its last log line."""
    from ansible_collections.pypi_ops.pypiserver.plugins.modules import diagnostics

    t0 = time.monotonic()
    helm = [str(VENV_BIN / "helm3"), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    secret = "D1agn0st-" + uuid.uuid4().hex[:12]
    install = subprocess.run(
        [*helm, "install", "diag", str(ROOT / "charts" / "pypiserver"), "--create-namespace", "--wait",
         "--timeout", "300s", "-f", str(cluster.values_file), "--set", "auth.enabled=true",
         "--set", "auth.username=diag", "-f", "-"],
        input=json.dumps({"auth": {"password": secret}}), capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    tested = subprocess.run(
        [*helm, "test", "diag", "--timeout", "240s", "--filter", "name=diag-pypiserver-test-storage",
         "--filter", "name=diag-pypiserver-test-connection"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    claim = json.loads(kubectl("-n", namespace, "get", "pvc", "diag-pypiserver", "-o", "json").stdout)
    volume = claim["spec"]["volumeName"]

    def collect(dest: Path) -> dict[str, t.Any]:
        return run_module(
            diagnostics,
            {
                "dest": str(dest),
                "target": "kubernetes",
                "results": [{"id": "helm_test", "status": "failed", "reason": "forced, to collect a bundle"}],
                "release_namespace": namespace,
                "release": "diag",
                "selector": "app.kubernetes.io/name=pypiserver,app.kubernetes.io/instance=diag",
                "kubeconfig": str(cluster.kubeconfig),
                "kubectl": str(KUBECTL),
                "helm": str(VENV_BIN / "helm3"),
                "username": "diag",
                "password": secret,
                "timeout": 90,
            },
        )

    result = collect(tmp_path / "reports")
    assert not result.failed and not result["timed_out"], result
    bundle = tmp_path / "reports" / "diagnostics"
    files = set(result["files"])
    said = {  # what each test pod's script prints when it passes
        "diag-pypiserver-test-storage": "storage at /data/packages is writable and deletable by uid 9898",
        "diag-pypiserver-test-connection": "GET /health -> Ok",
    }
    for test_pod, line in said.items():
        assert f"kubernetes/logs/{test_pod}.log" in files, files
        log = (bundle / "kubernetes" / "logs" / f"{test_pod}.log").read_text()
        assert "(rc 0)" in log and line in log, log
        assert f"## pod {test_pod}: Succeeded" in (bundle / "kubernetes" / "pods.md").read_text()
    assert "test-simple-index.log" not in " ".join(files)  # not run, so no pod: nothing invented
    servers = [f for f in files if f.startswith("kubernetes/logs/diag-pypiserver-") and "-test-" not in f]
    assert len(servers) == 1, files
    assert not any(f.endswith(".previous.log") for f in files), files  # nothing restarted
    pv = (bundle / "kubernetes" / "describe-pv.txt").read_text()
    assert "(rc 0)" in pv and re.search(rf"^Name: +{volume}$", pv, re.M), pv
    assert f"Claim:           {namespace}/diag-pypiserver" in pv, pv
    assert "STATUS: deployed" in (bundle / "kubernetes" / "helm-status.txt").read_text()
    assert result["causes"] == [], result["causes"]  # a healthy release: nothing invented
    _no_secret(_bundle_files(tmp_path / "reports"), secret, "diag")

    # no server: the connection test fails (curl gives up), and the bundle says both
    kubectl("-n", namespace, "scale", "deployment", "diag-pypiserver", "--replicas=0")
    kubectl("-n", namespace, "wait", "--for=delete", "pod", "-l", "app.kubernetes.io/name=pypiserver",
            "--timeout=90s", timeout=120)  # fmt: skip
    failed = subprocess.run(
        [*helm, "test", "diag", "--timeout", "120s", "--filter", "name=diag-pypiserver-test-connection"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert failed.returncode != 0, failed.stdout
    broken = collect(tmp_path / "broken")
    causes = broken["causes"]
    assert causes[0] == f"no pod of release diag exists in namespace {namespace}", causes
    assert any(
        re.fullmatch(r"pod diag-pypiserver-test-connection container health exited \d+ \(Error\); "
                     r"its last log line: curl: \(\d+\) .+", c) for c in causes
    ), causes  # fmt: skip
    assert "Failed" in (tmp_path / "broken" / "diagnostics" / "kubernetes" / "pods.md").read_text()
    _no_secret(_bundle_files(tmp_path / "broken"), secret, "diag")
    print(f"helm test (storage, connection), a failed one, and two bundles: {time.monotonic() - t0:.0f} s")


# ------------------------------------------------------------------------------------------------ restore drill


RESTORE_DRILL = ROOT / "playbooks" / "restore_drill.yml"
RESTORE_ROWS = ["deploy", "backup", "deploy_fresh", "restore", "files_intact", "install"]


def _helm_releases(namespace: str) -> list[str]:
    proc = subprocess.run(
        [str(VENV_BIN / "helm3"), "--kubeconfig", str(STATE / "kubeconfig"), "list", "-n", namespace, "-a", "-q"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return proc.stdout.split()


def test_restore_drill_from_the_pod_into_a_fresh_release_and_a_tampered_backup(cluster, namespace, tmp_path):
    """The package directory of the release's pod backed up through pods/exec (every file hashed), a fresh release of
    the same chart on a new claim, the backup restored into its pod, every file served by the fresh release with the
    backed-up sha256 and pip installing the probe from it; the fresh release, its claim and the source release are
    gone afterwards. Then the same backup altered after the fact is refused, naming the file and both sha256s."""
    backups = tmp_path / "backups"
    t0 = time.monotonic()
    run = run_playbook(
        RESTORE_DRILL, tmp_path / "a", k8s_vars(cluster, namespace, tmp_path / "a", pypi_backup_dir=str(backups)),
        timeout=1200,
    )  # fmt: skip
    took = time.monotonic() - t0
    assert run.rc == 0, run.output[-5000:]
    assert list(run.results) == RESTORE_ROWS, run.results
    assert all(row["status"] == "passed" for row in run.results.values()), run.results
    (backup_dir,) = [p for p in backups.iterdir() if p.is_dir()]
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["format"] == "tar" and manifest["source"]["kind"] == "pod", manifest["source"]
    assert manifest["source"]["where"].startswith("/data/packages in pod pypi-pypiserver-"), manifest["source"]
    assert manifest["source"]["where"].endswith(f"(namespace {namespace})"), manifest["source"]
    names = {f["name"]: f["sha256"] for f in manifest["files"]}
    # the backup checked independently of the code under test
    with tarfile.open(backup_dir / "packages.tar.gz") as tar:
        assert {m.name: hashlib.sha256(tar.extractfile(m).read()).hexdigest() for m in tar if m.isfile()} == names
    wheels = [n for n in names if n.endswith(".whl") and n.startswith("pypiops_probe_")]
    assert wheels, names
    fresh = run.results["deploy_fresh"]["reason"]
    assert "fresh release pypi-restore (pod pypi-restore-pypiserver-" in fresh, fresh
    assert f"claim pypi-restore-pypiserver) in namespace {namespace}" in fresh, fresh
    assert f"restored {len(names)} file(s)" in run.results["restore"]["reason"], run.results["restore"]
    assert f"serves all {len(names)} file(s) of the manifest" in run.results["files_intact"]["reason"]
    assert "from the restored index only" in run.results["install"]["reason"]
    # nothing of the drill is left in the namespace: no release (pypi_k8s_uninstall), no fresh claim
    assert _helm_releases(namespace) == []
    claims = json.loads(kubectl("-n", namespace, "get", "pvc", "-o", "json").stdout)["items"]
    assert "pypi-restore-pypiserver" not in [c["metadata"]["name"] for c in claims], claims
    assert not list((tmp_path / "a").glob("**/forward/*.pid")), "the fresh release's port-forward is left"
    print(f"restore drill on kubernetes: {took:.0f} s, {len(names)} file(s)")

    # the backup altered after it was taken: refused before anything is restored, naming the file and both sha256s
    wheel = wheels[0]
    rewrite_tar_member(backup_dir / "packages.tar.gz", wheel, b"tampered wheel")
    bad = run_playbook(
        RESTORE_DRILL, tmp_path / "b",
        k8s_vars(cluster, namespace, tmp_path / "b", pypi_restore_from=str(backup_dir)), timeout=900,
    )  # fmt: skip
    assert bad.rc != 0
    assert bad.results["backup"]["status"] == "failed", bad.results
    tampered = hashlib.sha256(b"tampered wheel").hexdigest()
    reason = json.loads((bad.report_dir / "results.json").read_text())["tests"]
    reason = next(r["reason"] for r in reason if r["id"] == "backup")
    assert f"{wheel} has sha256 {tampered} in the backup, the manifest says {names[wheel]}" in reason, reason
    assert [bad.results[r]["status"] for r in RESTORE_ROWS[2:]] == ["skipped"] * 4
    assert _helm_releases(namespace) == []


# ------------------------------------------------------------------------------------------------ down


def test_up_after_a_cluster_killed_without_down_cleans_and_comes_back(cluster):
    """A cancelled job kills every cluster process with SIGKILL: the next up finds the bridge, veths, sockets and
    chains left behind, cleans them and starts a cluster that runs pods again."""
    kubectl("run", "victim", "--image=localhost/pypiops/pause:3.10", "--image-pull-policy=Never", "-n", "default")
    kubectl("wait", "--for=condition=Ready", "pod/victim", "-n", "default", "--timeout=120s", timeout=150)
    ours = [p.split()[0] for p in host_snapshot()["processes"]]
    assert ours, "no cluster process found to kill"
    for pid in ours:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    assert os.path.exists("/sys/class/net/pypiops0"), "the kill should leave the bridge behind"
    up = _cluster("up")
    assert up.returncode == 0, up.stderr[-3000:]
    assert "left from an earlier run" in up.stderr
    kubectl("run", "again", "--image=localhost/pypiops/pause:3.10", "--image-pull-policy=Never", "-n", "default")
    kubectl("wait", "--for=condition=Ready", "pod/again", "-n", "default", "--timeout=120s", timeout=150)
    kubectl("delete", "pod", "again", "-n", "default", "--wait=false")


def test_zz_cluster_down_leaves_nothing(cluster):
    """Runs last in the module (file order): take the cluster down and compare the host with before it came up."""
    during = host_snapshot()
    assert during["processes"] and during["links"] and during["chains"] and during["cgroups"], (
        "the snapshot saw no cluster: it cannot prove anything"
    )
    down = _cluster("down", timeout=600)
    assert down.returncode == 0, down.stderr
    after = host_snapshot()
    baseline = cluster.baseline or {k: set() for k in after}
    left = {k: sorted(after[k] - baseline.get(k, set())) for k in after if after[k] - baseline.get(k, set())}
    assert left == {}, left
    # and down took nothing that was there before the cluster (another tool's chains, netns or links)
    gone = {
        k: sorted(baseline[k] - after[k]) for k in ("chains", "netns", "links") if baseline.get(k, set()) - after[k]
    }
    assert gone == {}, gone
    if not cluster.started_here:  # a developer's cluster was up before the tests: bring it back
        assert _cluster("up").returncode == 0
