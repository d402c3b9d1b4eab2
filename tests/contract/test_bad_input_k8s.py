"""Bad Kubernetes inputs (issue 7): each case ends within its timeout with one sentence naming the cause and the next
step, no traceback, no hang.

Contract tests: ``tests/fake_k8s.py`` is the documented stand-in for the API server (real HTTP, HTTPS for kubectl,
real Kubernetes JSON), spoken to by the real ``kubernetes`` client (pod_restart, pod_storage, htpasswd_secret, run
in-process, nothing monkeypatched) and by the real ``kubectl`` (port_forward). The deploy role's kubernetes path runs
through ansible-playbook. What is already covered elsewhere is not repeated here (see the table in the report:
tests/contract/test_pod_restart.py has pod_restart's unreadable/garbage kubeconfig, unknown context, missing namespace,
RBAC delete, empty selector and the four stuck states; test_pod_storage.py has RBAC exec and a CrashLoopBackOff pod).
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import threading
import time

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import k8s_wait as kw
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import port_forward as pf
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import pid_alive
from ansible_collections.pypi_ops.pypiserver.plugins.modules import htpasswd_secret, pod_restart, pod_storage
from ansible_collections.pypi_ops.pypiserver.plugins.modules import port_forward as port_forward_module
from tests.fake_k8s import USER, FakeKube
from tests.helpers import ROOT, run_playbook

pytestmark = pytest.mark.contract

NS = "pypi"
APP = {"app": "pypiserver"}
KUBECTL = shutil.which("kubectl")


@pytest.fixture
def kube_factory(tmp_path):
    started: list[FakeKube] = []

    def factory(**kwargs) -> FakeKube:
        kube = FakeKube(tmp_path / f"kube{len(started)}", namespaces=(NS,), default_namespace=NS, **kwargs)
        kube.start()
        started.append(kube)
        return kube

    yield factory
    for kube in started:
        kube.stop()


def _one_sentence(msg: str) -> None:
    assert "Traceback" not in msg and "\n" not in msg, msg


def _k8s(kube: FakeKube, **extra) -> dict:
    return {"kubeconfig": str(kube.kubeconfig), "namespace": NS, **extra}


# ---------------------------------------------------------------- kubeconfig and context, for every API module


def _module_cases():
    return [
        pytest.param(pod_restart, {"label_selector": "app=pypiserver", "timeout": 2}, id="pod_restart"),
        pytest.param(pod_storage, {"label_selector": "app=pypiserver", "timeout": 2}, id="pod_storage"),
        pytest.param(
            htpasswd_secret, {"name": "auth", "username": "ci", "password": "N3w-Passw0rd-123"}, id="htpasswd"
        ),
    ]


@pytest.mark.parametrize("module,args", _module_cases())
def test_unreadable_kubeconfig(module, args, run_module, tmp_path):
    missing = tmp_path / "no-kubeconfig"
    res = run_module(module, {"kubeconfig": str(missing), "namespace": NS, **args})
    assert res.failed
    _one_sentence(res["msg"])
    msg = res["msg"].lower()
    assert f"kubeconfig {missing} is unreadable/invalid".lower() in msg and "check the path" in msg


@pytest.mark.parametrize("module,args", [p for p in _module_cases() if p.id != "pod_restart"])
def test_unknown_context(module, args, kube_factory, run_module):
    kube = kube_factory()
    res = run_module(module, _k8s(kube, context="prod", **args))
    assert res.failed
    _one_sentence(res["msg"])
    expected = f"context prod is not in kubeconfig {kube.kubeconfig}; available: fake, fake-other"
    assert expected.lower() in res["msg"].lower()
    assert kube.requests == []  # refused before any request


@pytest.mark.parametrize("module,args", [p for p in _module_cases() if p.id != "pod_restart"])
def test_missing_namespace(module, args, kube_factory, run_module):
    kube = kube_factory()
    res = run_module(module, _k8s(kube, **args) | {"namespace": "nope"})
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"].lower().startswith("namespace nope does not exist"), res["msg"]
    if module is htpasswd_secret:
        assert "check pypi_k8s_namespace and the kubeconfig context" in res["msg"]


# ---------------------------------------------------------------- RBAC


@pytest.mark.parametrize("module", [pod_restart, pod_storage], ids=["pod_restart", "pod_storage"])
def test_rbac_forbids_listing_pods(module, kube_factory, run_module):
    kube = kube_factory(forbidden={("list", "pods")})
    kube.add_workload("Deployment", NS, "pypiserver", replicas=1)
    res = run_module(module, _k8s(kube, label_selector="app=pypiserver", timeout=2))
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"] == f"RBAC forbids list pods in {NS} for {USER}: grant it to the service account/user"
    assert not kube.deletes and not kube.execs


@pytest.mark.parametrize("verb", ["get", "patch"])
def test_rbac_forbids_the_secret(verb, kube_factory, run_module):
    kube = kube_factory(forbidden={(verb, "secrets")})
    kube.add_secret(NS, "auth", {".htpasswd": b"ci:$apr1$x$y\n"})
    before = dict(kube.secrets[(NS, "auth")])
    res = run_module(htpasswd_secret, _k8s(kube, name="auth", username="ci", password="N3w-Passw0rd-123"))
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"] == f"RBAC forbids {verb} secrets in {NS} for {USER}: grant it to the service account/user."
    assert kube.secrets[(NS, "auth")] == before


def test_htpasswd_secret_patches_an_existing_secret_and_refuses_a_missing_one(kube_factory, run_module):
    """The positive path against the same fake (so the failures above are not the fake refusing everything)."""
    kube = kube_factory()
    kube.add_secret(NS, "auth", {".htpasswd": b"ci:$apr1$x$y\n"})
    res = run_module(htpasswd_secret, _k8s(kube, name="auth", username="ci", password="N3w-Passw0rd-123"))
    assert not res.failed, res
    assert res["changed"] is True and res["keys"] == [".htpasswd"]
    assert kube.secret_data(NS, "auth")[".htpasswd"].startswith(b"ci:")
    gone = run_module(htpasswd_secret, _k8s(kube, name="ghost", username="ci", password="N3w-Passw0rd-123"))
    assert gone.failed
    assert gone["msg"].startswith(f"Secret {NS}/ghost does not exist; check pypi_k8s_namespace"), gone["msg"]


# ---------------------------------------------------------------- selectors and stuck pods


def test_pod_storage_selector_matching_no_pod(kube_factory, run_module):
    kube = kube_factory()
    kube.add_workload("Deployment", NS, "pypiserver", replicas=1)
    res = run_module(pod_storage, _k8s(kube, label_selector="app=nothing"))
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"].startswith(f"no Ready pod matches app=nothing in namespace {NS} (none match); check the selector")
    assert not kube.execs


def test_pod_storage_pod_stuck_pulling_its_image(kube_factory, run_module):
    kube = kube_factory()
    kube.add_pod(NS, "pypiserver-x", APP, fault="ImagePullBackOff")
    res = run_module(pod_storage, _k8s(kube, label_selector="app=pypiserver"))
    assert res.failed
    _one_sentence(res["msg"])
    assert "container app waiting: ImagePullBackOff" in res["msg"]
    assert "next: image registry.example/app:does-not-exist of container app cannot be pulled" in res["msg"]
    assert "imagePullSecrets" in res["msg"]
    assert not kube.execs


@pytest.mark.parametrize(
    "fault,needles",
    [
        (
            "ImagePullBackOff",
            [
                "container app waiting: ImagePullBackOff",
                "[image registry.example/app:does-not-exist]",
                "next: image registry.example/app:does-not-exist of container app cannot be pulled: check the image name and tag",
            ],
        ),
        (
            "CrashLoopBackOff",
            [
                "container app waiting: CrashLoopBackOff",
                "last exit code 1 (Error)",
                "keeps crashing (last exit code 1 (Error)): read kubectl logs --previous -n pypi",
            ],
        ),
    ],
)
def test_pod_restart_stuck_replacement_names_the_state_the_reason_and_the_next_step(
    fault, needles, kube_factory, run_module
):
    kube = kube_factory(terminate_seconds=0.1, replacement_fault=fault)
    kube.add_workload("Deployment", NS, "pypiserver", replicas=1)
    began = time.monotonic()
    res = run_module(pod_restart, _k8s(kube, deployment="pypiserver", timeout=1, poll_interval=0.05))
    assert time.monotonic() - began < 1 + 5  # the deadline holds (generous margin: no timed assertion)
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"].startswith("timed out after 1s waiting for 1 new Ready pod(s)")
    for needle in needles:
        assert needle in res["msg"], (needle, res["msg"])


def test_pod_restart_wait_mode(kube_factory, run_module):
    """mode=wait (the deploy role's check of a release): Ready pods pass at once and nothing is touched; no pod at all
    fails at once; pods that never get Ready fail at the timeout with the diagnosis."""
    kube = kube_factory()
    kube.add_workload("Deployment", NS, "pypiserver", replicas=2)
    before = {p.uid for p in kube.live_pods(NS, "pypiserver")}
    ok = run_module(pod_restart, _k8s(kube, label_selector="app=pypiserver", mode="wait", timeout=5))
    assert not ok.failed, ok
    assert ok["changed"] is False and {p["uid"] for p in ok["new_pods"]} == before
    assert not kube.deletes and all(method == "GET" for method, _ in kube.requests)

    none = run_module(pod_restart, _k8s(kube, label_selector="app=nothing", mode="wait", timeout=5))
    assert none.failed
    _one_sentence(none["msg"])
    assert none["msg"].startswith(f"no pod matches app=nothing in namespace {NS}; check that the workload is installed")

    kube.add_pod(NS, "stuck", {"app": "stuck"}, fault="ImagePullBackOff")
    stuck = run_module(pod_restart, _k8s(kube, label_selector="app=stuck", mode="wait", timeout=1, poll_interval=0.05))
    assert stuck.failed
    _one_sentence(stuck["msg"])
    assert stuck["msg"].startswith("timed out after 1s waiting for 1 Ready pod(s) matching app=stuck")
    assert "ImagePullBackOff" in stuck["msg"] and "cannot be pulled" in stuck["msg"]


def test_the_ready_wait_backs_off_until_its_deadline(kube_factory, monkeypatch):
    """wait_for_new_ready polls with a pause growing by half up to 4x the first, never past the deadline."""
    kube = kube_factory()
    kube.add_pod(NS, "stuck", {"app": "stuck"}, fault="CrashLoopBackOff")
    core = kw.k8s_client.CoreV1Api(kw.load_client(str(kube.kubeconfig), None))
    pauses: list[float] = []
    real, me = time.sleep, threading.current_thread()

    def sleep(seconds: float) -> None:
        if threading.current_thread() is me:
            pauses.append(seconds)
        real(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    with pytest.raises(kw.WaitTimeout) as err:
        kw.wait_for_new_ready(core, NS, "app=stuck", [], 1, timeout=2.0, sleep=0.1)
    assert "CrashLoopBackOff" in err.value.msg
    phase = pauses[:1]
    for pause in pauses[1:]:
        if pause < phase[-1]:
            break
        phase.append(pause)
    assert len(phase) >= 3 and phase[-1] > phase[0], pauses
    assert max(pauses) <= 0.4 + 1e-9 and sum(pauses) <= 2.0 + 1e-6, pauses


# ---------------------------------------------------------------- port_forward: the real kubectl against the fake


def _kubectl_procs(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmd = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmd and pid_alive(int(entry)):
            found.append(int(entry))
    return found


@pytest.fixture
def forward(tmp_path, monkeypatch):
    """port_forward's arguments; kubectl's discovery cache goes to tmp_path. Nothing it starts may survive."""
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "kube-cache"))
    state = tmp_path / "pf-state"
    yield {"state_dir": str(state), "kubectl": KUBECTL, "remote_port": 8080, "timeout": 10}
    pf.stop(str(state))
    leftover = _kubectl_procs(str(tmp_path))
    for pid in leftover:
        os.kill(pid, 9)
    assert not leftover, "a kubectl port-forward was left running"


def _pf_kube(kube_factory, *, pods: bool = True, fault: str | None = None, **kwargs) -> FakeKube:
    kube = kube_factory(tls=True, **kwargs)
    kube.add_service(NS, "pypi-pypiserver", APP)
    if pods:
        kube.add_pod(NS, "pypi-pypiserver-0", APP, fault=fault)
    return kube


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
@pytest.mark.parametrize(
    "case,expect",
    [
        pytest.param(
            {"context": "prod"},
            ['context "prod" does not exist', "check context (pypi_k8s_context) against kubectl config get-contexts"],
            id="unknown-context",
        ),
        pytest.param(
            {"namespace": "nope"},
            ['namespaces "nope" not found', "namespace nope does not exist: check the namespace (pypi_k8s_namespace)"],
            id="missing-namespace",
        ),
        pytest.param(
            {"target": "svc/ghost"},
            ['services "ghost" not found', "svc/ghost does not exist in namespace pypi: check the release name"],
            id="missing-service",
        ),
        pytest.param(
            {"forbidden": {("get", "services")}},
            [f"RBAC forbids get services in pypi for {USER}: grant it to the service account/user"],
            id="rbac-services",
        ),
        pytest.param(
            {"forbidden": {("create", "pods/portforward")}},
            [f"RBAC forbids create pods/portforward in pypi for {USER}: grant it to the service account/user"],
            id="rbac-portforward",
        ),
        pytest.param(
            {"pods": False, "timeout": 3},
            ["timed out waiting for the condition", "no running pod behind svc/pypi-pypiserver appeared"],
            id="no-pod-behind-the-service",
        ),
        pytest.param(
            {"fault": "ImagePullBackOff"},
            [
                "pod is not running. Current status=Pending",
                "the pod behind svc/pypi-pypiserver is not running (Pending): check kubectl describe pod -n pypi",
            ],
            id="pod-pending",
        ),
    ],
)
def test_port_forward_with_real_kubectl(case, expect, kube_factory, forward, run_module):
    case = dict(case)
    kube = _pf_kube(
        kube_factory, pods=case.pop("pods", True), fault=case.pop("fault", None), forbidden=case.pop("forbidden", ())
    )
    args = {**forward, "kubeconfig": str(kube.kubeconfig), "namespace": NS, "target": "svc/pypi-pypiserver", **case}
    began = time.monotonic()
    res = run_module(port_forward_module, args)
    took = time.monotonic() - began
    assert res.failed
    _one_sentence(res["msg"])
    assert res["msg"].startswith(f"kubectl port-forward to {args['target']} in ns {args['namespace']} exited")
    for needle in expect:
        assert needle in res["msg"], (needle, res["msg"])
    assert took < args["timeout"] + 5, took  # kubectl gave up by itself, before the module's deadline killed it
    assert pf.read_state(forward["state_dir"]) is None


def test_port_forward_missing_kubeconfig_fails_before_kubectl_runs(forward, run_module, tmp_path):
    missing = tmp_path / "nowhere" / "kubeconfig"
    res = run_module(
        port_forward_module, {**forward, "kubeconfig": str(missing), "namespace": NS, "target": "svc/pypi-pypiserver"}
    )
    assert res.failed
    assert (
        res["msg"] == f"kubeconfig {missing} does not exist or is not a file; check kubeconfig (pypi_k8s_kubeconfig)."
    )
    assert not os.path.exists(os.path.join(forward["state_dir"], pf.LOG_FILE))  # kubectl never started


# ---------------------------------------------------------------- the deploy role's kubernetes path

LABELS = {"app.kubernetes.io/name": "pypiserver", "app.kubernetes.io/instance": "pypi"}


DEPLOY_CASES = {
    "unreadable-kubeconfig": "kubeconfig {missing} does not exist or is not a file; check pypi_k8s_kubeconfig.",
    "unknown-context": "context prod is not in kubeconfig {kubeconfig}; available: fake, fake-other; check pypi_k8s_context.",
    "deploy-unknown-context": "context prod is not in kubeconfig {kubeconfig}; available: fake, fake-other; check",
    "missing-namespace": "namespace nope does not exist",
    "rbac-list-pods": f"RBAC forbids list pods in {NS} for {USER}: grant it to the service account/user",
    "no-release-pods": "no pod matches app.kubernetes.io/name=pypiserver,app.kubernetes.io/instance=pypi in namespace",
    "image-pull": "timed out after 2s waiting for 1 Ready pod(s)",
    "crash-loop": "timed out after 2s waiting for 1 Ready pod(s)",
    "chart-path-nowhere": "pypi_k8s_chart_ref {nowhere} is not a chart (there is no such file or directory); point it at a"
    " chart directory with Chart.yaml or a packaged .tgz, or give a chart name with pypi_k8s_chart_repo_url.",
    "chart-dir-without-chart-yaml": "is not a chart (the directory has no Chart.yaml); point it at a chart directory",
}

PLAY = """
- name: The deploy role's kubernetes path, once per bad input
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Deploy
      ansible.builtin.include_role:
        name: pypi_ops.pypiserver.deploy
      vars:
        pypi_target: kubernetes
        pypi_k8s_deploy: "{{ item.deploy }}"
        pypi_k8s_chart_ref: "{{ item.chart }}"
        pypi_k8s_url: http://127.0.0.1:9/
        pypi_password: Some-Passw0rd-123
        pypi_k8s_namespace: "{{ item.namespace }}"
        pypi_k8s_kubeconfig: "{{ item.kubeconfig }}"
        pypi_k8s_context: "{{ item.context }}"
        pypi_k8s_restart_timeout: 2
        pypi_k8s_state_dir: "{{ item.state }}"
      loop: "{{ cases }}"
      loop_control:
        label: "{{ item.id }}"
    - name: Results
      ansible.builtin.copy:
        content: "{{ pypi_results | to_json }}"
        dest: "{{ results_file }}"
        mode: "0600"
"""


@pytest.mark.slow
def test_deploy_checks_the_release_through_the_api_with_one_sentence_per_bad_input(tmp_path, kube_factory):
    """pypi_k8s_deploy=false (a release that is already installed): deploy reads its pods through the API before any
    test, so a bad kubeconfig, context, namespace, RBAC or a stuck release fails deploy itself with the reason.
    pypi_k8s_deploy=true with a chart path that points nowhere (or at a directory without Chart.yaml) or an unknown
    context fails before helm runs and before any request. All cases in one ansible-playbook run (one deploy per
    case, each recorded in pypi_results, as verify.yml records it; a failed deploy skips every test, naming it)."""
    good = kube_factory()
    good.add_workload("Deployment", NS, "pypi-pypiserver", replicas=1, labels=LABELS)
    rbac = kube_factory(forbidden={("list", "pods")})
    rbac.add_workload("Deployment", NS, "pypi-pypiserver", replicas=1, labels=LABELS)
    empty = kube_factory()
    pull, crash = kube_factory(), kube_factory()
    pull.add_pod(NS, "pypi-pypiserver-a", LABELS, fault="ImagePullBackOff")
    crash.add_pod(NS, "pypi-pypiserver-b", LABELS, fault="CrashLoopBackOff")
    missing = tmp_path / "no-kubeconfig"

    chartless = kube_factory()
    no_chart_yaml = tmp_path / "charts" / "no-chart-yaml"
    nowhere = tmp_path / "charts" / "missing"
    no_chart_yaml.mkdir(parents=True)

    def case(id_, kube, namespace=NS, context="", kubeconfig=None, chart=None):
        return {
            "id": id_,
            "deploy": chart is not None,
            "chart": str(chart or ROOT / "charts" / "pypiserver"),
            "namespace": namespace,
            "context": context,
            "kubeconfig": kubeconfig or str(kube.kubeconfig),
            "state": str(tmp_path / "state" / id_),
        }

    cases = [
        case("ok", good),
        case("unreadable-kubeconfig", good, kubeconfig=str(missing)),
        case("unknown-context", good, context="prod"),
        case("missing-namespace", good, namespace="nope"),
        case("rbac-list-pods", rbac),
        case("no-release-pods", empty),
        case("image-pull", pull),
        case("crash-loop", crash),
        case("chart-path-nowhere", chartless, chart=nowhere),
        case("chart-dir-without-chart-yaml", chartless, chart=no_chart_yaml),
        case("deploy-unknown-context", chartless, context="prod", chart=ROOT / "charts" / "pypiserver"),
    ]
    playbook = tmp_path / "deploy_cases.yml"
    playbook.write_text(textwrap.dedent(PLAY))
    results_file = tmp_path / "results.json"
    run = run_playbook(playbook, tmp_path, {"cases": cases, "results_file": str(results_file)}, timeout=300)
    assert run.rc == 0, run.output[-4000:]
    deploys = [r for r in json.loads(results_file.read_text()) if r["id"] == "deploy"]
    assert len(deploys) == len(cases), deploys
    by_case = dict(zip([c["id"] for c in cases], deploys, strict=True))
    assert by_case["ok"]["status"] == "passed", by_case["ok"]
    for id_, needle in DEPLOY_CASES.items():
        got = by_case[id_]
        assert got["status"] == "failed", (id_, got)
        _one_sentence(got["reason"])
        kubeconfig = chartless.kubeconfig if id_ == "deploy-unknown-context" else good.kubeconfig
        expected = needle.format(missing=missing, kubeconfig=kubeconfig, nowhere=nowhere)
        assert expected in got["reason"], (id_, got["reason"])
    assert (
        "ImagePullBackOff" in by_case["image-pull"]["reason"] and "cannot be pulled" in by_case["image-pull"]["reason"]
    )
    assert "last exit code 1 (Error)" in by_case["crash-loop"]["reason"]
    assert "kubectl logs --previous" in by_case["crash-loop"]["reason"]
    # the deploy never touched a pod: reads only
    for kube in (good, rbac, empty, pull, crash):
        assert all(method == "GET" for method, _ in kube.requests), kube.requests
    # a bad chart path or context is deploy's first failure (so the block stopped there, before helm), and nothing
    # reached the API server
    assert chartless.requests == []
