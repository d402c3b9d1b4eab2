"""Contract test of the kubernetes target's facts and interfaces, end to end through verify.yml.

Stand-ins, and only these: the Kubernetes API is tests/fake_k8s.py (a fake API server spoken to
over real HTTP and WebSocket by the real `kubernetes` client), and the release's Service is a
real pypiserver on 127.0.0.1 given as pypi_k8s_url (as an Ingress URL would be). With
pypi_k8s_deploy=false no helm runs. The whole suite on a real cluster, helm included, is
tests/cluster/test_real_cluster.py; what stays here is what a real cluster cannot easily stage. What this
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
