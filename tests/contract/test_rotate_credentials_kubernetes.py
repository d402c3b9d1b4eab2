"""Contract test of playbooks/rotate_credentials.yml on the kubernetes target.

Stand-ins, and only these: the Kubernetes API is tests/fake_k8s.py, extended here with Secrets (GET and merge
PATCH of /api/v1/namespaces/{ns}/secrets/{name}) and a "kubelet" that, ``sync_delay`` seconds after a Secret
changes, writes its ``.htpasswd`` over the file a real pypiserver on 127.0.0.1 reads (as the kubelet updates a
Secret volume in place); the release's Service is that pypiserver, given as pypi_k8s_url. The real `kubernetes`
client talks to the fake over HTTP. What this proves: the runbook patches the Secret the pods mount (never a pod),
waits until the server serves the new credentials, and proves new accepted / old refused; it stores the new password
where the deploy role reads it. What it does not: helm (pypi_rotate_k8s_method=helm needs a cluster).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import uuid
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import credentials as cred
from tests.fake_k8s import USER, FakeKube, _Handler, _status
from tests.helpers import ROOT, run_playbook

NS = "pypi-verify"
LABELS = {"app.kubernetes.io/name": "pypiserver", "app.kubernetes.io/instance": "pypi"}
RUNBOOK = ROOT / "playbooks" / "rotate_credentials.yml"
SECRET_PATH = re.compile(r"/api/v1/namespaces/([^/]+)/secrets/([^/]+)")

pytestmark = [pytest.mark.contract, pytest.mark.slow]


class SecretKube(FakeKube):
    """FakeKube plus Secrets and a kubelet that syncs one Secret's .htpasswd into a real file."""

    def __init__(self, *args, sync_delay: float | None = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.mounts: dict[tuple[str, str], str] = {}  # (ns, secret) -> the real .htpasswd the "pods" read
        self.sync_delay = sync_delay  # None: a subPath mount, never updated
        self.timers: list[threading.Timer] = []
        self.patches: list[dict] = []  # PATCH requests received on Secrets

    def add_secret(self, namespace: str, name: str, data: dict[str, bytes], mount: str | None = None) -> None:
        with self.lock:
            self.secrets[(namespace, name)] = {k: base64.b64encode(v).decode() for k, v in data.items()}
            if mount:
                self.mounts[(namespace, name)] = mount

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        with self.lock:
            return {k: base64.b64decode(v) for k, v in self.secrets[(namespace, name)].items()}

    def secret_json(self, namespace: str, name: str) -> dict:
        meta = {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, namespace + "/" + name)),
            "resourceVersion": str(next(self._resource_version)),
        }
        return {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": meta,
            "type": "Opaque",
            "data": dict(self.secrets[(namespace, name)]),
        }

    def _sync(self, namespace: str, name: str) -> None:
        target = self.mounts.get((namespace, name))
        if target is None or self.sync_delay is None:
            return
        data = self.secret_data(namespace, name).get(".htpasswd", b"")

        def write() -> None:  # atomically, as the kubelet swaps a Secret volume's ..data link
            tmp = f"{target}.kubelet-{uuid.uuid4().hex}"
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)

        timer = threading.Timer(self.sync_delay, write)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def start(self) -> None:
        fake = self

        class Handler(_SecretHandler):
            kube = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-k8s", daemon=True)
        self._thread.start()
        self.write_kubeconfig(self.kubeconfig)

    def stop(self) -> None:
        for timer in self.timers:
            timer.cancel()
        super().stop()


class _SecretHandler(_Handler):
    kube: SecretKube

    def do_GET(self) -> None:
        if not self._secret("GET"):
            super().do_GET()

    def do_PATCH(self) -> None:
        if not self._secret("PATCH"):
            super().do_PATCH()

    def _secret(self, method: str) -> bool:
        m = SECRET_PATH.fullmatch(urlsplit(self.path).path)
        if not m:
            return False
        kube, (ns, name) = self.kube, m.groups()
        body = self._body() if method == "PATCH" else {}
        with kube.lock:
            kube.requests.append((method, self.path))
            if self.headers.get("Authorization") != f"Bearer {kube.token}":
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return True
            verb = "get" if method == "GET" else "patch"
            if (verb, "secrets") in kube.forbidden:
                msg = (
                    f'secrets "{name}" is forbidden: User "{USER}" cannot {verb} resource "secrets" '
                    f'in API group "" in the namespace "{ns}"'
                )
                self._send(403, _status(403, "Forbidden", msg, {"name": name, "kind": "secrets"}))
                return True
            if (ns, name) not in kube.secrets:
                self._send(
                    404, _status(404, "NotFound", f'secrets "{name}" not found', {"name": name, "kind": "secrets"})
                )
                return True
            if method == "PATCH":
                kube.patches.append({"secret": name, "content_type": self.headers.get("Content-Type"), "body": body})
                data = kube.secrets[(ns, name)]
                for key, value in (body.get("data") or {}).items():
                    if value is None:
                        data.pop(key, None)
                    else:
                        data[key] = value
                kube._sync(ns, name)
            self._send(200, kube.secret_json(ns, name))
        return True


@pytest.fixture
def kube(tmp_path):
    fake = SecretKube(tmp_path / "kube", namespaces=(NS,), default_namespace=NS)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def _verify(url: str, user: str, password: str) -> int:
    return requests.post(url, data={":action": "verify"}, auth=(user, password), timeout=10).status_code


def _vars(kube, server, tmp_path, **extra) -> dict:
    variables = {
        "pypi_target": "kubernetes",
        "pypi_k8s_deploy": False,
        "pypi_k8s_kubeconfig": str(kube.kubeconfig),
        "pypi_k8s_namespace": NS,
        "pypi_k8s_url": server.url,
        "pypi_k8s_state_dir": str(tmp_path / "k8s-state"),
        "pypi_username": server.username,
        "pypi_rotate_wait": 30,
    }
    variables.update(extra)
    return variables


def test_existing_secret_is_patched_and_the_pods_serve_the_new_password(tmp_path, kube, auth_pypiserver):
    old = auth_pypiserver.password
    kube.add_workload("Deployment", NS, "pypi-pypiserver", replicas=1, labels=LABELS)
    pods_before = {p.uid for p in kube.pods.values()}
    with open(auth_pypiserver.htpasswd, "rb") as handle:
        ht = handle.read()
    kube.add_secret(
        NS,
        "team-pypi-auth",
        {".htpasswd": ht, "username": auth_pypiserver.username.encode(), "password": old.encode()},
        mount=auth_pypiserver.htpasswd,
    )
    state = tmp_path / "k8s-state"
    state.mkdir()
    (state / "credentials").write_text(old + "\n")  # what the deploy role stored at install time

    run = run_playbook(
        RUNBOOK,
        tmp_path,
        _vars(kube, auth_pypiserver, tmp_path, pypi_k8s_values={"auth": {"existingSecret": "team-pypi-auth"}}),
    )
    assert run.rc == 0, run.output[-4000:]
    assert [(k, v["status"]) for k, v in run.results.items()] == [
        ("current_credentials", "passed"),
        ("rotate", "passed"),
        ("proof", "passed"),
    ]
    new = (state / "credentials").read_text().rstrip("\n")
    assert new != old and len(new) == 24
    # the Secret holds the new credentials, in every key it had
    data = kube.secret_data(NS, "team-pypi-auth")
    assert cred.htpasswd_accepts(data[".htpasswd"], auth_pypiserver.username, new)
    assert not cred.htpasswd_accepts(data[".htpasswd"], auth_pypiserver.username, old)
    assert data["password"] == new.encode() and data["username"] == auth_pypiserver.username.encode()
    assert len(kube.patches) == 1 and kube.patches[0]["content_type"] == "application/strategic-merge-patch+json"
    # the server behind the Service serves them (after the kubelet's sync), independently checked
    assert _verify(auth_pypiserver.url, auth_pypiserver.username, new) == 200
    assert _verify(auth_pypiserver.url, auth_pypiserver.username, old) == 403
    # no pod was touched
    assert not any(method == "DELETE" for method, _ in kube.requests)
    assert {p.uid for p in kube.pods.values()} == pods_before
    assert "Secret pypi-verify/team-pypi-auth patched (.htpasswd, password)" in run.results["rotate"]["reason"]
    assert new not in run.output and old not in run.output
    assert "Warning" not in run.output  # an existingSecret is not helm's


def test_a_secret_the_pods_never_see_fails_the_proof_and_says_why(tmp_path, auth_pypiserver):
    fake = SecretKube(tmp_path / "kube", namespaces=(NS,), default_namespace=NS, sync_delay=None)  # a subPath mount
    fake.start()
    try:
        with open(auth_pypiserver.htpasswd, "rb") as handle:
            fake.add_secret(NS, "pypi-pypiserver-auth", {".htpasswd": handle.read()}, mount=auth_pypiserver.htpasswd)
        run = run_playbook(
            RUNBOOK,
            tmp_path,
            _vars(fake, auth_pypiserver, tmp_path, pypi_password=auth_pypiserver.password, pypi_rotate_wait=2),
        )
    finally:
        fake.stop()
    assert run.rc != 0
    assert run.results["rotate"]["status"] == "passed", run.results[
        "rotate"
    ]  # the chart's Secret, patched (pypi_k8s_deploy=false)
    flat = " ".join(run.output.split())  # the yaml callback folds long messages
    assert "Warning: pypi-pypiserver-auth is rendered by the chart from its values" in flat
    assert "a later helm upgrade --reuse-values would put it back" in flat
    proof = run.results["proof"]
    assert proof["status"] == "failed"
    assert "the credentials that must work are refused (HTTP 403)" in proof["reason"]
    assert "a subPath mount never updates" in proof["reason"]
    # the old password still works: the server never saw the change
    assert _verify(auth_pypiserver.url, auth_pypiserver.username, auth_pypiserver.password) == 200


def test_rbac_that_forbids_patching_secrets_changes_nothing(tmp_path, auth_pypiserver):
    fake = SecretKube(tmp_path / "kube", namespaces=(NS,), default_namespace=NS, forbidden=[("patch", "secrets")])
    fake.start()
    state = tmp_path / "k8s-state"
    state.mkdir()
    (state / "credentials").write_text(auth_pypiserver.password + "\n")
    try:
        with open(auth_pypiserver.htpasswd, "rb") as handle:
            fake.add_secret(NS, "pypi-pypiserver-auth", {".htpasswd": handle.read()}, mount=auth_pypiserver.htpasswd)
        before = json.dumps(sorted(fake.secrets.items()))
        run = run_playbook(RUNBOOK, tmp_path, _vars(fake, auth_pypiserver, tmp_path))
        assert json.dumps(sorted(fake.secrets.items())) == before
    finally:
        fake.stop()
    assert run.rc != 0
    reason = run.results["rotate"]["reason"]
    assert reason.startswith("RBAC forbids patch secrets in pypi-verify for system:serviceaccount:ci:deployer"), reason
    assert run.results["proof"]["status"] == "skipped"
    # the stored password was put back: it is still the one the server accepts
    assert (state / "credentials").read_text() == auth_pypiserver.password + "\n"
    assert _verify(auth_pypiserver.url, auth_pypiserver.username, auth_pypiserver.password) == 200


def test_missing_secret_is_one_sentence(tmp_path, kube, auth_pypiserver):
    run = run_playbook(
        RUNBOOK, tmp_path, _vars(kube, auth_pypiserver, tmp_path, pypi_password=auth_pypiserver.password)
    )
    assert run.rc != 0
    assert run.results["rotate"]["reason"].startswith(
        "Secret pypi-verify/pypi-pypiserver-auth does not exist; check pypi_k8s_namespace, pypi_k8s_release"
    )
    assert not kube.patches


def test_helm_method_failure_is_one_sentence_and_restores_the_stored_password(tmp_path, kube, auth_pypiserver):
    # pypi_k8s_deploy=true and no existingSecret: the chart renders the Secret, so the runbook uses helm upgrade.
    # The fake API server is no cluster helm can talk to: the upgrade fails, and nothing may change.
    state = tmp_path / "k8s-state"
    state.mkdir()
    (state / "credentials").write_text(auth_pypiserver.password + "\n")
    with open(auth_pypiserver.htpasswd, "rb") as handle:
        kube.add_secret(NS, "pypi-pypiserver-auth", {".htpasswd": handle.read()}, mount=auth_pypiserver.htpasswd)
    run = run_playbook(RUNBOOK, tmp_path, _vars(kube, auth_pypiserver, tmp_path, pypi_k8s_deploy=True))
    assert run.rc != 0
    reason = run.results["rotate"]["reason"]
    assert reason.startswith("helm upgrade of release pypi with the new password failed:"), reason
    assert "the old password is still in force" in reason, reason
    assert (state / "credentials").read_text() == auth_pypiserver.password + "\n"
    assert not kube.patches
    assert _verify(auth_pypiserver.url, auth_pypiserver.username, auth_pypiserver.password) == 200
