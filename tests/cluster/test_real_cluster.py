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
import json
import os
import re
import shutil
import signal
import subprocess
import time
import typing as t
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.helpers import ROOT, VENV_BIN, run_playbook

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
    forward comes back on the same local port by itself, and the log shows it did."""
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
        while "supervisor" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "lost connection to pod" in log.read_text() or "supervisor" in log.read_text(), (
            "kubectl never lost its connection: the fault was not staged"
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    assert resp.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "the forward did not come back on its port"
                time.sleep(0.5)
        assert "starting it again on the same local port" in log.read_text()
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
        k8s_vars(cluster, namespace, tmp_path, pypi_upgrade_from_values=OLDER, pypi_upgrade_rollback=True),
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
