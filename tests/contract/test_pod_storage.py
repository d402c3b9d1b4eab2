"""Contract tests for pod_storage: the real ``kubernetes`` client against a fake API server.

These are contract tests, not cluster tests. ``tests/fake_k8s.py`` is a documented stand-in for the
Kubernetes API server: it answers real HTTP on 127.0.0.1, and ``pods/exec`` as a real WebSocket upgrade
(``v4.channel.k8s.io``). It runs no command: it recognises the module's one inventory script and answers
it from files the test sets in memory. The module runs in-process and the ``kubernetes`` client (with
``websocket-client``) is used unmodified — nothing is monkeypatched. What they prove is the module's side
of the contract (exec request, channel/status parsing, comparison, error wording); the script itself
is checked against a real ``sh`` in ``test_inventory_script_in_real_shell``.
"""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import pod_exec
from ansible_collections.pypi_ops.pypiserver.plugins.modules import pod_storage
from tests.fake_k8s import FakeKube

pytestmark = pytest.mark.contract

NS = "pypi"
FILES = {
    "probe-1.0.0.tar.gz": b"sdist bytes " * 100,
    "probe-1.0.0-py3-none-any.whl": b"wheel bytes",
}


@pytest.fixture
def kube(tmp_path):
    with FakeKube(tmp_path / "kube", namespaces=(NS,), default_namespace=NS) as fake:
        fake.add_workload("StatefulSet", NS, "pypiserver", replicas=2)
        fake.set_files(NS, "pypiserver-0", FILES)
        yield fake


def _args(kube: FakeKube, **extra) -> dict:
    return {"kubeconfig": str(kube.kubeconfig), "namespace": NS, "timeout": 5, **extra}


def _expect(files: dict[str, bytes]) -> list[dict]:
    return [{"filename": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()]


def test_check_mode_reads_the_same(kube, run_module):
    res = run_module(pod_storage, _args(kube, pod="pypiserver-0"), check_mode=True)
    assert not res.failed, res
    assert res["count"] == 2 and res["changed"] is False


def test_mismatch_fails_naming_the_file(kube, run_module):
    expect = _expect(FILES)
    expect[0]["sha256"] = "0" * 64
    res = run_module(pod_storage, _args(kube, pod="pypiserver-0", expect=expect))
    assert res.failed
    assert "probe-1.0.0.tar.gz (sha256 expected" in res["msg"] and "in pod pypiserver-0" in res["msg"]
    assert res["mismatched"][0]["filename"] == "probe-1.0.0.tar.gz"


def test_missing_file_fails(kube, run_module):
    expect = _expect({**FILES, "probe-2.0.0.tar.gz": b"lost"})
    res = run_module(pod_storage, _args(kube, pod="pypiserver-0", expect=expect))
    assert res.failed
    assert res["missing"] == ["probe-2.0.0.tar.gz"]
    assert "missing from storage: probe-2.0.0.tar.gz" in res["msg"]


def test_missing_file_reported_without_failing(kube, run_module):
    res = run_module(
        pod_storage, _args(kube, pod="pypiserver-0", expect=[{"filename": "gone.whl"}], fail_on_mismatch=False)
    )
    assert not res.failed, res
    assert res["missing"] == ["gone.whl"]


def test_filename_with_space(kube, run_module):
    files = {"my probe-1.0.0.tar.gz": b"spaced", "plain.whl": b"x"}
    kube.set_files(NS, "pypiserver-1", files, path="/srv/pkgs")
    res = run_module(pod_storage, _args(kube, pod="pypiserver-1", path="/srv/pkgs", expect=_expect(files)))
    assert not res.failed, res
    assert res["files"]["my probe-1.0.0.tar.gz"] == {"size": 6, "sha256": hashlib.sha256(b"spaced").hexdigest()}


def test_directory_missing(kube, run_module):
    res = run_module(pod_storage, _args(kube, pod="pypiserver-0", path="/nope"))
    assert res.failed
    assert res["msg"].startswith("package directory /nope does not exist in pod pypiserver-0")


def test_rbac_forbids_exec(tmp_path, run_module):
    with FakeKube(tmp_path / "k", namespaces=(NS,), forbidden=[("create", "pods/exec")]) as kube:
        kube.add_pod(NS, "pypiserver-0", {"app": "pypiserver"})
        res = run_module(pod_storage, _args(kube, pod="pypiserver-0"))
    assert res.failed
    assert res["msg"].startswith("RBAC forbids create pods/exec in pypi for system:serviceaccount:ci:deployer")


def test_no_ready_pod_for_selector(tmp_path, run_module):
    with FakeKube(tmp_path / "k", namespaces=(NS,)) as kube:
        kube.add_pod(NS, "pypiserver-x", {"app": "pypiserver"}, fault="CrashLoopBackOff")
        res = run_module(pod_storage, _args(kube, label_selector="app=pypiserver"))
        assert res.failed
        assert res["msg"].startswith("no Ready pod matches app=pypiserver in namespace pypi")
        assert "CrashLoopBackOff" in res["msg"]
        assert not kube.execs


def test_unknown_pod(kube, run_module):
    res = run_module(pod_storage, _args(kube, pod="nope"))
    assert res.failed
    assert res["msg"] == "pod nope does not exist in namespace pypi"


def test_inventory_script_in_real_shell(tmp_path):
    """The exact script the module sends, run by a real sh: spaces survive, dot files and sub-directories do not."""
    (tmp_path / "a b-1.0.tar.gz").write_bytes(b"abc")
    (tmp_path / "empty.whl").write_bytes(b"")
    (tmp_path / ".hidden").write_bytes(b"h")
    (tmp_path / "sub").mkdir()
    out = subprocess.run(pod_exec.inventory_script(str(tmp_path)), capture_output=True, text=True, check=True)
    assert pod_exec.parse_inventory(out.stdout) == {
        "a b-1.0.tar.gz": {"size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()},
        "empty.whl": {"size": 0, "sha256": hashlib.sha256(b"").hexdigest()},
    }
    gone = subprocess.run(pod_exec.inventory_script(str(tmp_path / "nope")), capture_output=True, text=True)
    assert gone.returncode == 3
