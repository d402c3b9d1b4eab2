"""Contract test of the kubernetes target's facts and interfaces, end to end through verify.yml.

Stand-ins, and only these: the Kubernetes API is tests/fake_k8s.py (a fake API server spoken to
over real HTTP and WebSocket by the real `kubernetes` client), and the release's Service is a
real pypiserver on 127.0.0.1 given as pypi_k8s_url (as an Ingress URL would be). With
pypi_k8s_deploy=false no helm runs (that path needs a cluster: the kind scenario). What this
proves: the target publishes the facts the unchanged functional tests need; persistence
restarts through pod_restart (new pod UIDs); storage is read through pods/exec (pod_storage)
from the directory the real server stores into.
"""

from __future__ import annotations

import pytest

from tests.fake_k8s import FakeKube
from tests.helpers import ROOT, run_playbook

NS = "pypi-verify"
LABELS = {"app.kubernetes.io/name": "pypiserver", "app.kubernetes.io/instance": "pypi"}

pytestmark = [pytest.mark.contract, pytest.mark.slow]


@pytest.fixture
def kube(tmp_path):
    fake = FakeKube(tmp_path / "kube", namespaces=(NS,), default_namespace=NS, terminate_seconds=0.3, ready_delay=0.3)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def _vars(kube, server, **extra):
    variables = {
        "pypi_target": "kubernetes",
        "pypi_k8s_deploy": False,
        "pypi_k8s_kubeconfig": str(kube.kubeconfig),
        "pypi_k8s_namespace": NS,
        "pypi_k8s_url": server.url,
        "pypi_username": server.username,
        "pypi_password": server.password,
        "pypi_large_size_mib": 1,
        "pypi_load_uploads": 5,
    }
    variables.update(extra)
    return variables


def test_functional_tests_run_unchanged_on_the_kubernetes_target(tmp_path, kube, auth_pypiserver):
    kube.add_workload("Deployment", NS, "pypi-pypiserver", replicas=1, labels=LABELS)
    kube.mount_dir(NS, "/data/packages", auth_pypiserver.package_dir)
    old = {p.uid for p in kube.pods.values()}
    run = run_playbook(ROOT / "verify.yml", tmp_path, _vars(kube, auth_pypiserver))
    assert run.rc == 0, run.output[-4000:]
    for test_id in ["connection", "upload", "download", "list", "multiple_versions", "persistence", "storage"]:
        assert run.results[test_id]["status"] == "passed", (test_id, run.results)
    assert run.results["helm_test"]["status"] == "skipped"
    # persistence restarted the release's pod through the API: the live pod has a new UID
    new = {p.uid for p in kube.pods.values() if p.deleted_at is None}
    assert new and not (new & old)
    assert any(method == "DELETE" for method, _ in kube.requests)
    # storage was read through pods/exec
    assert kube.execs
    assert "kubernetes" in (run.report_dir / "summary.md").read_text()


def test_a_restart_that_never_gets_ready_fails_persistence_with_the_reason(tmp_path, auth_pypiserver):
    fake = FakeKube(tmp_path / "kube2", namespaces=(NS,), default_namespace=NS, replacement_fault="CrashLoopBackOff")
    fake.start()
    try:
        fake.add_workload("Deployment", NS, "pypi-pypiserver", replicas=1, labels=LABELS)
        run = run_playbook(
            ROOT / "verify.yml",
            tmp_path,
            _vars(fake, auth_pypiserver, pypi_k8s_restart_timeout=3),
            args=["--tags", "persistence"],
        )
    finally:
        fake.stop()
    assert run.rc != 0
    assert run.results["persistence"]["status"] == "failed"
    assert "CrashLoopBackOff" in run.results["persistence"]["reason"]
