"""The clients test end to end: every upload client against every install client, real twine, uv, poetry, pdm,
hatch and pip, with real lock files (uv lock, poetry lock, pdm lock).

The full matrix (``all`` x ``all``, what ``make verify-clients`` runs) passes on a local pypiserver that is open for
reads and on one that authenticates reads too, with no password in any argv, output or report. The test fails,
naming the client pair, when one client's uploads are refused (a firewall in front of the server blocking uv's or
poetry's User-Agent), when an install resolves another version than the one uploaded (a newer release of the probe
already on the index), and when credentials are dropped on the file downloads (a proxy that strips them there).
"""

from __future__ import annotations

import http.client
import json
import shutil

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import traffic, upload
from tests.faultproxy import FaultProxy
from tests.helpers import ROOT, run_playbook
from tests.integration.test_secrets import ProcSampler, forms, recognizable

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


FULL = {"pypi_clients_upload": ["all"], "pypi_clients_install": ["all"]}
UPLOADERS = ("twine", "uv", "poetry", "pdm", "hatch")
INSTALLERS = ("pip", "uv", "uv-lock", "poetry", "pdm")


def _assert_full_matrix_passed(run) -> dict[tuple[str, str], dict]:
    assert run.rc == 0, run.output[-3000:]
    assert run.results["clients"]["status"] == "passed", run.results["clients"]
    matrix = _matrix(run)
    assert set(matrix) == {(u, i) for u in UPLOADERS for i in INSTALLERS}
    bad = {pair: row["reason"] for pair, row in matrix.items() if row["status"] != "passed"}
    assert not bad, bad
    assert all("installed 1.0.0" in r["reason"] for r in matrix.values()), matrix
    assert all(r["upload_seconds"] > 0 and r["install_seconds"] > 0 for r in matrix.values()), matrix
    return matrix


def test_the_full_matrix_passes_on_the_local_server(tmp_path):
    """make verify-clients: 5 upload clients x 5 install clients against the local pypiserver, open for reads."""
    run = run_playbook(VERIFY, tmp_path, FULL, args=["--tags", "clients"], timeout=1500)
    _assert_full_matrix_passed(run)
    summary = (run.report_dir / "summary.md").read_text()
    assert "| hatch | pdm | PASSED | upload " in summary and "| poetry | uv-lock | PASSED |" in summary


def test_the_full_matrix_passes_on_a_server_that_authenticates_reads(tmp_path):
    """pypiserver -a update,download,list: every install client installs with the run's credentials, passed its own
    documented way, and the password is in no argv, no output and no report."""
    secret = recognizable("reads")
    vars_file = tmp_path / "secret-vars.json"
    vars_file.write_text(json.dumps({"pypi_password": secret}))
    vars_file.chmod(0o600)
    extra = dict(FULL, pypi_auth_actions=["update", "download", "list"], pypi_cleanup=False)
    state = tmp_path / "state"
    try:
        with ProcSampler(forms(secret), watch=[state]) as sampler:
            run = run_playbook(VERIFY, tmp_path, extra, args=["--tags", "clients", "-e", f"@{vars_file}"], timeout=1500)
        matrix = _assert_full_matrix_passed(run)
        # the reads really needed the credentials: without them the server answers 401 for a probe's page
        port = json.loads((state / "server.json").read_text())["port"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/simple/{matrix[('twine', 'pip')]['package']}/")
        assert conn.getresponse().status == 401
    finally:
        ls.stop(str(state))
    assert not sampler.leaks, sampler.leaks  # no argv, and no state file but the credential files, held it
    assert sampler.rounds > 10, "the sampler did not run during the play"
    for form in forms(secret):
        assert form not in run.output
        for path in run.report_dir.rglob("*"):
            if path.is_file():
                assert form not in path.read_text(errors="replace"), path


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
        args=["--tags", "clients", "-e", '{"pypi_clients_install": ["all"]}'],
    )
    assert run.rc != 0 and run.results["clients"]["status"] == "failed"
    matrix = _matrix(run)
    for install in INSTALLERS:  # pip and uv, and the lock files of uv, poetry and pdm too
        row = matrix[("twine", install)]
        assert row["status"] == "failed" and "9.9.9" in row["reason"] and "1.0.0" in row["reason"], row
        assert matrix[("uv", install)]["status"] == "passed", matrix
    conn = http.client.HTTPConnection("127.0.0.1", int(pypiserver.url.rsplit(":", 1)[1].strip("/")), timeout=10)
    conn.request("GET", f"/simple/pypiops-probe-{RUN_ID}-via-uv/")
    assert conn.getresponse().status == 200  # the uv probe was uploaded and stayed


def test_a_refused_poetry_upload_fails_its_pairs_naming_poetry(tmp_path, pypiserver):
    with FaultProxy(pypiserver.url, refuse_agent=r"^[Pp]oetry") as proxy:
        run = run_playbook(
            VERIFY,
            tmp_path,
            {"pypi_target": "url", "pypi_url": proxy.url, "pypi_clients_upload": ["twine", "poetry", "hatch"]},
            args=["--tags", "clients", "-e", '{"pypi_clients_install": ["uv-lock"]}'],
        )
    assert proxy.refused, "poetry's upload never reached the proxy"
    assert run.rc != 0 and run.results["clients"]["status"] == "failed"
    matrix = _matrix(run)
    assert matrix[("poetry", "uv-lock")]["status"] == "failed", matrix
    assert "upload with poetry failed" in matrix[("poetry", "uv-lock")]["reason"] and "403" in matrix[
        ("poetry", "uv-lock")]["reason"]  # fmt: skip
    assert matrix[("twine", "uv-lock")]["status"] == "passed" and matrix[("hatch", "uv-lock")]["status"] == "passed"


def test_credentials_dropped_on_the_file_downloads_fail_every_install_client_naming_it(tmp_path, pypiserver_factory):
    """A server that authenticates reads, behind a proxy that strips the credentials from the requests for files
    (/packages/), as a client that sends them to the project page only would: every install pair fails, saying the
    credentials were not sent on the file download."""
    secret = recognizable("dropped")
    server = pypiserver_factory(auth_actions=("update", "download", "list"), username="ci-user", password=secret)
    vars_file = tmp_path / "secret-vars.json"
    vars_file.write_text(json.dumps({"pypi_username": "ci-user", "pypi_password": secret}))
    with FaultProxy(server.url, strip_auth=r"^/packages/") as proxy:
        run = run_playbook(
            VERIFY,
            tmp_path,
            {"pypi_target": "url", "pypi_url": proxy.url, "pypi_clients_upload": ["twine"]},
            args=["--tags", "clients", "-e", f"@{vars_file}", "-e", '{"pypi_clients_install": ["all"]}'],
        )
    assert proxy.stripped, "no file download reached the proxy"
    assert run.rc != 0 and run.results["clients"]["status"] == "failed"
    matrix = _matrix(run)
    for install in INSTALLERS:
        row = matrix[("twine", install)]
        assert row["status"] == "failed", row
        assert "401" in row["reason"] and "file download" in row["reason"], row
    assert secret not in run.output
