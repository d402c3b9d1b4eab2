"""Contract tests for pod_restart: the real ``kubernetes`` client against a fake API server.

These are contract tests, not cluster tests. ``tests/fake_k8s.py`` is a documented stand-in for the
Kubernetes API server: it answers real HTTP on 127.0.0.1 with real Kubernetes JSON (Pods, Status,
Deployments, StatefulSets) and plays the ReplicaSet/StatefulSet controllers. The module runs in-process
and the ``kubernetes`` client is used unmodified — nothing is monkeypatched. What they prove is the
module's side of the contract (requests, uid preconditions, the new-uid Ready wait, error wording);
they do not prove a real cluster behaves like the fake.
"""

from __future__ import annotations

import time

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.modules import pod_restart
from tests.fake_k8s import FakeKube

pytestmark = pytest.mark.contract

NS = "pypi"


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


def _args(kube: FakeKube, **extra) -> dict:
    return {"kubeconfig": str(kube.kubeconfig), "namespace": NS, "poll_interval": 0.05, "timeout": 3, **extra}


def _uids(pods) -> set[str]:
    return {p["uid"] for p in pods}


def test_delete_waits_for_new_uids(kube_factory, run_module):
    kube = kube_factory(terminate_seconds=0.2, ready_delay=0.3)
    kube.add_workload("Deployment", NS, "pypiserver", replicas=3)
    res = run_module(pod_restart, _args(kube, deployment="pypiserver", grace_period=5))
    assert not res.failed, res
    assert res["changed"] is True and res["selector"] == "app=pypiserver"
    assert len(res["old_pods"]) == 3 and len(res["new_pods"]) == 3
    assert _uids(res["old_pods"]).isdisjoint(_uids(res["new_pods"]))
    assert all(p["node"] for p in res["new_pods"])
    # every delete carried the uid precondition of the pod that was looked at, and the grace period
    assert sorted(d["preconditions"]["uid"] for d in kube.deletes) == sorted(_uids(res["old_pods"]))
    assert all(d["gracePeriodSeconds"] == 5 for d in kube.deletes)


def test_statefulset_same_names_new_uids(kube_factory, run_module):
    kube = kube_factory(terminate_seconds=0.3, ready_delay=0.3)
    kube.add_workload("StatefulSet", NS, "pypi", replicas=2)
    res = run_module(pod_restart, _args(kube, statefulset="pypi"))
    assert not res.failed, res
    assert sorted(p["name"] for p in res["new_pods"]) == ["pypi-0", "pypi-1"]
    assert sorted(p["name"] for p in res["old_pods"]) == ["pypi-0", "pypi-1"]
    assert _uids(res["old_pods"]).isdisjoint(_uids(res["new_pods"]))
    assert res["elapsed"] >= 0.6  # gone after 0.3 s, then Ready 0.3 s later


@pytest.mark.parametrize("kind,arg", [("Deployment", "deployment"), ("StatefulSet", "statefulset")])
def test_rollout_mode_patches_restarted_at(kube_factory, run_module, kind, arg):
    kube = kube_factory(terminate_seconds=0.2, ready_delay=0.3)
    wl = kube.add_workload(kind, NS, "pypiserver", replicas=2)
    res = run_module(pod_restart, _args(kube, mode="rollout", **{arg: "pypiserver"}))
    assert not res.failed, res
    assert "kubectl.kubernetes.io/restartedAt" in wl.annotations
    assert not kube.deletes
    assert any(m == "PATCH" for m, _ in kube.requests)
    assert len(res["new_pods"]) == 2 and _uids(res["old_pods"]).isdisjoint(_uids(res["new_pods"]))


def test_rollout_needs_a_workload(kube_factory, run_module):
    kube = kube_factory()
    kube.add_workload("Deployment", NS, "web")
    res = run_module(pod_restart, _args(kube, mode="rollout", label_selector="app=web"))
    assert res.failed and "mode=rollout needs deployment or statefulset" in res["msg"]


@pytest.mark.parametrize(
    "fault,text",
    [
        ("ImagePullBackOff", "ImagePullBackOff"),
        ("CrashLoopBackOff", "CrashLoopBackOff"),
        ("Unschedulable", "Unschedulable"),
        ("MultiAttach", "Multi-Attach"),
    ],
)
def test_timeout_diagnoses_stuck_replacement(kube_factory, run_module, fault, text):
    kube = kube_factory(terminate_seconds=0.1, replacement_fault=fault)
    kube.add_workload("Deployment", NS, "pypiserver", replicas=1)
    started = time.monotonic()
    res = run_module(pod_restart, _args(kube, deployment="pypiserver", timeout=1))
    took = time.monotonic() - started
    assert res.failed
    assert 1.0 <= took < 1.0 + 1.5, took
    assert "timed out after 1s" in res["msg"] and text in res["msg"], res["msg"]
    assert res["diagnoses"] and any(text in line for line in res["diagnoses"])
    assert "Traceback" not in res["msg"]


def test_check_mode_touches_nothing(kube_factory, run_module):
    kube = kube_factory()
    kube.add_workload("Deployment", NS, "pypiserver", replicas=2)
    before = {(p.name, p.uid) for p in kube.live_pods(NS, "pypiserver")}
    res = run_module(pod_restart, _args(kube, deployment="pypiserver"), check_mode=True)
    assert not res.failed and res["changed"] is True
    assert {(p["name"], p["uid"]) for p in res["old_pods"]} == before
    assert res["new_pods"] == []
    time.sleep(0.2)
    assert {(p.name, p.uid) for p in kube.live_pods(NS, "pypiserver")} == before
    assert not kube.deletes and all(m == "GET" for m, _ in kube.requests)


def test_selector_matching_no_pods(kube_factory, run_module):
    kube = kube_factory()
    kube.add_workload("Deployment", NS, "pypiserver")
    res = run_module(pod_restart, _args(kube, label_selector="app=nothing"))
    assert res.failed and res["msg"] == f"selector app=nothing matches no running pods in namespace {NS}"


def test_missing_namespace(kube_factory, run_module):
    kube = kube_factory()
    res = run_module(pod_restart, {**_args(kube, label_selector="app=x"), "namespace": "nope"})
    assert res.failed and res["msg"] == "namespace nope does not exist"


def test_missing_deployment(kube_factory, run_module):
    kube = kube_factory()
    res = run_module(pod_restart, _args(kube, deployment="ghost"))
    assert res.failed and res["msg"] == f"deployment ghost does not exist in namespace {NS}"


def test_rbac_forbids_delete(kube_factory, run_module):
    kube = kube_factory(forbidden={("delete", "pods")})
    kube.add_workload("Deployment", NS, "pypiserver", replicas=2)
    before = {p.uid for p in kube.live_pods(NS, "pypiserver")}
    res = run_module(pod_restart, _args(kube, deployment="pypiserver"))
    assert res.failed
    assert res["msg"].startswith(f"RBAC forbids delete pods in {NS}")
    assert "grant it to the service account/user" in res["msg"]
    assert {p.uid for p in kube.live_pods(NS, "pypiserver")} == before


def test_forbidden_namespace_get_is_not_fatal(kube_factory, run_module):
    kube = kube_factory(forbidden={("get", "namespaces")}, terminate_seconds=0.1, ready_delay=0.1)
    kube.add_workload("Deployment", NS, "pypiserver", replicas=1)
    res = run_module(pod_restart, _args(kube, deployment="pypiserver"))
    assert not res.failed, res


def test_bad_token_is_a_credentials_error(kube_factory, run_module, tmp_path):
    kube = kube_factory()
    bad = kube.write_kubeconfig(tmp_path / "bad-kubeconfig", token="wrong")
    res = run_module(pod_restart, {**_args(kube, label_selector="app=x"), "kubeconfig": str(bad)})
    assert res.failed and "rejected the credentials (401)" in res["msg"]


def test_unreadable_kubeconfig(run_module, tmp_path):
    path = tmp_path / "missing-kubeconfig"
    res = run_module(pod_restart, {"kubeconfig": str(path), "namespace": NS, "label_selector": "app=x"})
    assert res.failed
    assert res["msg"].startswith(f"kubeconfig {path} is unreadable/invalid:") and res["msg"].endswith("check the path")


def test_garbage_kubeconfig(run_module, tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text("just a string\n")
    res = run_module(pod_restart, {"kubeconfig": str(path), "namespace": NS, "label_selector": "app=x"})
    assert res.failed and f"kubeconfig {path} is unreadable/invalid" in res["msg"]


def test_unknown_context(kube_factory, run_module):
    kube = kube_factory()
    res = run_module(pod_restart, _args(kube, label_selector="app=x", context="prod"))
    assert res.failed
    assert res["msg"] == f"context prod is not in kubeconfig {kube.kubeconfig}; available: fake, fake-other"


def test_unreachable_api_server(kube_factory, run_module):
    kube = kube_factory()
    kube.stop()
    res = run_module(pod_restart, _args(kube, label_selector="app=x"))
    assert res.failed and "API server is unreachable" in res["msg"]
