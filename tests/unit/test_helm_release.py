"""module_utils/helm_release.py (the helm_release module's logic): the images of a real rendered chart, the real helm
binary failing against an unreachable cluster, and the sentences a refused or failed rollback gives. The release on
a real cluster (history, rollback) is tested by the upgrade drill in tests/cluster/."""

from __future__ import annotations

import json
import subprocess

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import helm_release as hr
from tests.helpers import ROOT, VENV_BIN

HELM = VENV_BIN / "helm3"
CHART = ROOT / "charts" / "pypiserver"


def _run(argv: list[str]) -> tuple[int, str, str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.skipif(not HELM.exists(), reason="helm3 is installed by make dev")
def test_images_of_the_rendered_chart_are_the_workloads_only(tmp_path):
    values = tmp_path / "v.json"
    values.write_text(
        json.dumps(
            {
                "image": {"repository": "localhost/pypiops/pypiserver", "tag": "2.3.2"},
                "auth": {"enabled": True, "username": "u", "password": "Secr3t-not-an-image"},
                "tests": {"pythonImage": "localhost/pypiops/python:3.11"},
            }
        )
    )
    rc, out, err = _run([str(HELM), "template", "rel", str(CHART), "-f", str(values)])
    assert rc == 0, err
    assert "localhost/pypiops/python:3.11" in out  # the test pods are rendered too, and must not count
    assert hr.images_in_manifest(out) == ["localhost/pypiops/pypiserver:2.3.2"]
    assert hr.images_in_manifest("") == []


@pytest.mark.skipif(not HELM.exists(), reason="helm3 is installed by make dev")
def test_real_helm_against_an_unreachable_cluster_fails_in_one_sentence(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: x}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    base = hr.base_argv(str(HELM), "ns", str(kubeconfig))
    with pytest.raises(hr.HelmError) as exc:
        hr.info(_run, base, "pypi")
    msg = exc.value.msg
    assert msg.startswith("helm history pypi failed (exit 1): ") and "\n" not in msg, msg
    assert "127.0.0.1:9" in msg or "connection refused" in msg, msg


def _scripted(history: list[dict], rollback_rc: int = 0, after: list[dict] | None = None):
    """A stand-in helm for the sentence logic (the cluster test runs the real one): history, manifest, rollback."""
    calls: list[list[str]] = []
    manifest = "kind: Deployment\nspec: {template: {spec: {containers: [{image: 'repo/img:1'}]}}}\n"

    def run(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        if "history" in argv:
            rolled = any("rollback" in c for c in calls)
            return 0, json.dumps(after if rolled and after is not None else history), ""
        if "manifest" in argv:
            return 0, manifest, ""
        if "rollback" in argv:
            return rollback_rc, "", "Error: timed out waiting for the condition\n" if rollback_rc else ""
        return 1, "", "unexpected"

    return run, calls


def test_a_release_that_does_not_exist_is_reported_not_failed():
    def run(argv):
        return 1, "", "Error: release: not found\n"

    state = hr.info(run, ["helm", "--namespace", "ns"], "pypi")
    assert state["exists"] is False and state["revision"] == 0
    assert hr.describe(state) == "not installed"


def test_rollback_to_a_revision_not_in_the_history_is_refused_by_name():
    run, calls = _scripted([{"revision": 1, "status": "superseded"}, {"revision": 2, "status": "failed"}])
    with pytest.raises(hr.HelmError) as exc:
        hr.rollback(run, ["helm"], "pypi", 7, "60s")
    assert exc.value.msg == (
        "release pypi has no revision 7 to roll back to (its history holds 1, 2); choose one of those"
    )
    assert not [c for c in calls if "rollback" in c]


def test_a_failed_rollback_names_the_state_it_left():
    hist = [{"revision": 1, "status": "superseded", "chart": "pypiserver-0.7.0"},
            {"revision": 2, "status": "failed", "chart": "pypiserver-0.7.0"}]  # fmt: skip
    after = [*hist, {"revision": 3, "status": "failed", "chart": "pypiserver-0.7.0"}]
    run, calls = _scripted(hist, rollback_rc=1, after=after)
    with pytest.raises(hr.HelmError) as exc:
        hr.rollback(run, ["helm"], "pypi", 1, "60s")
    assert ["helm", "rollback", "pypi", "1", "--wait", "--timeout", "60s"] in calls
    assert exc.value.msg == (
        "helm rollback of release pypi to revision 1 failed (exit 1, --timeout 60s): Error: timed out waiting for "
        "the condition; the release is now at revision 3 (failed, chart pypiserver-0.7.0, image repo/img:1); look "
        "at kubectl get pods, then helm history pypi"
    )
