"""The clients test end to end: every upload client against every install client, real twine, uv, pip.

It passes on a healthy server, and fails, naming the client pair, when one client's uploads are refused (a
firewall in front of the server blocking uv's User-Agent) and when an install resolves another version than the
one uploaded (a newer release of the probe already on the index).
"""

from __future__ import annotations

import http.client
import shutil

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import traffic, upload
from tests.faultproxy import FaultProxy
from tests.helpers import ROOT, run_playbook

VERIFY = ROOT / "verify.yml"
RUN_ID = "clientsprobe"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (ROOT / ".venv" / "bin" / "uv").exists() and shutil.which("uv") is None, reason="uv is not installed"
    ),
]


def _matrix(run) -> dict[tuple[str, str], dict]:
    import json

    doc = json.loads((run.report_dir / "results.json").read_text())
    clients = next(t for t in doc["tests"] if t["id"] == "clients")
    return {(r["upload"], r["install"]): r for r in clients["figures"]["matrix"]}


def test_every_client_pair_passes_on_the_local_server(tmp_path):
    run = run_playbook(VERIFY, tmp_path, args=["--tags", "clients"])
    assert run.rc == 0, run.output[-3000:]
    assert run.results["clients"]["status"] == "passed"
    matrix = _matrix(run)
    assert set(matrix) == {("twine", "pip"), ("twine", "uv"), ("uv", "pip"), ("uv", "uv")}
    assert all(r["status"] == "passed" and "installed 1.0.0" in r["reason"] for r in matrix.values()), matrix
    summary = (run.report_dir / "summary.md").read_text()
    assert "## Client matrix" in summary and "| uv | uv | PASSED |" in summary


def test_a_refused_uv_upload_fails_its_pairs_only(tmp_path, pypiserver):
    with FaultProxy(pypiserver.url, refuse_agent=r"^uv/") as proxy:
        run = run_playbook(VERIFY, tmp_path, {"pypi_target": "url", "pypi_url": proxy.url}, args=["--tags", "clients"])
    assert proxy.refused, "uv's upload never reached the proxy"
    assert run.rc != 0 and run.results["clients"]["status"] == "failed"
    reason = run.results["clients"]["reason"]
    assert "uv->pip: upload with uv failed" in reason and "403" in reason, reason
    matrix = _matrix(run)
    assert matrix[("twine", "pip")]["status"] == "passed" and matrix[("twine", "uv")]["status"] == "passed"
    assert matrix[("uv", "pip")]["status"] == "failed" and matrix[("uv", "uv")]["status"] == "failed"


def test_an_install_that_resolves_another_version_fails(tmp_path, pypiserver):
    # a newer release of the twine probe is already on the index: an unpinned install resolves 9.9.9, not 1.0.0
    newer = traffic.synthetic_wheel(str(tmp_path / "seed"), f"pypiops-probe-{RUN_ID}-via-twine", "9.9.9")
    opts = httputil.ClientOptions(None, None, True, None, 5, 30)
    got = upload.http_upload(
        httputil.make_session(opts), pypiserver.url, newer["path"], newer["name"], "9.9.9", None, opts
    )
    assert got.outcome == "uploaded", got
    run = run_playbook(
        VERIFY,
        tmp_path,
        {"pypi_target": "url", "pypi_url": pypiserver.url, "pypi_run_id": RUN_ID},
        args=["--tags", "clients"],
    )
    assert run.rc != 0 and run.results["clients"]["status"] == "failed"
    matrix = _matrix(run)
    for install in ("pip", "uv"):
        row = matrix[("twine", install)]
        assert row["status"] == "failed" and "9.9.9" in row["reason"] and "1.0.0" in row["reason"], row
        assert matrix[("uv", install)]["status"] == "passed", matrix
    conn = http.client.HTTPConnection("127.0.0.1", int(pypiserver.url.rsplit(":", 1)[1].strip("/")), timeout=10)
    conn.request("GET", f"/simple/pypiops-probe-{RUN_ID}-via-uv/")
    assert conn.getresponse().status == 200  # the uv probe was uploaded and stayed
