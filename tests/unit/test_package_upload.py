"""package_upload against real pypiserver processes with real twine (and the direct HTTP client)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe, upload
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import free_port
from ansible_collections.pypi_ops.pypiserver.plugins.modules import package_upload


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """One real probe sdist + wheel, built once for this file (offline, no isolation)."""
    dest = tmp_path_factory.mktemp("dists")
    res = probe.build(None, str(dest), probe=probe.probe_spec("upload-probe", "1.0.0"))
    return res


@pytest.fixture(scope="module")
def dists_v2(tmp_path_factory):
    dest = tmp_path_factory.mktemp("dists2")
    return probe.build(None, str(dest), probe=probe.probe_spec("upload-probe", "2.0.0"))


def _args(server, files, **kw):
    args = {"repository_url": server.url, "files": [f["path"] for f in files]}
    if server.username:
        args.update(username=server.username, password=server.password)
    args.update(kw)
    return args


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_twine_upload_lands_on_disk_intact(auth_pypiserver, dists, run_module):
    res = run_module(package_upload, _args(auth_pypiserver, dists["files"]))
    assert not res.failed, res
    assert res["changed"] is True
    assert [r["outcome"] for r in res["results"]] == ["uploaded", "uploaded"]
    for f in dists["files"]:
        stored = os.path.join(auth_pypiserver.package_dir, f["filename"])
        assert _sha(stored) == f["sha256"]


def test_duplicate_upload_is_classified_exists(auth_pypiserver, dists, run_module):
    wheel = [dists["wheel"]]
    assert not run_module(package_upload, _args(auth_pypiserver, wheel)).failed
    res = run_module(package_upload, _args(auth_pypiserver, wheel))
    assert res.failed
    assert res["results"][0]["outcome"] == "exists"
    assert res["results"][0]["status"] == 400  # pypiserver answers twine's user agent with 400
    assert "expected uploaded, got exists" in res["msg"]
    assert "already exists" in res["msg"]
    ok = run_module(package_upload, _args(auth_pypiserver, wheel, expect=["exists"]))
    assert not ok.failed and ok["changed"] is False


def test_duplicate_upload_over_http_is_409(auth_pypiserver, dists, run_module):
    wheel = [dists["wheel"]]
    assert not run_module(package_upload, _args(auth_pypiserver, wheel, client="http")).failed
    res = run_module(package_upload, _args(auth_pypiserver, wheel, client="http", expect=["exists"]))
    assert not res.failed, res
    assert res["results"][0]["status"] == 409


def test_wrong_password_is_forbidden(auth_pypiserver, dists, run_module):
    res = run_module(package_upload, _args(auth_pypiserver, [dists["wheel"]], password="not-the-password"))
    assert res.failed
    assert res["results"][0]["outcome"] == "forbidden" and res["results"][0]["status"] == 403
    assert "credentials were refused" in res["msg"]
    assert "not-the-password" not in str(res)
    assert not os.listdir(auth_pypiserver.package_dir)
    refused = run_module(package_upload, _args(auth_pypiserver, [dists["wheel"]], password="x", expect=["refused"]))
    assert not refused.failed


def test_anonymous_http_upload_is_unauthorized(auth_pypiserver, dists, run_module):
    res = run_module(package_upload, _args(auth_pypiserver, [dists["wheel"]], client="http", anonymous=True))
    assert res.failed
    assert res["results"][0]["outcome"] == "unauthorized" and res["results"][0]["status"] == 401
    assert "wants credentials" in res["msg"]


def test_http_client_uploads_intact(pypiserver, dists_v2, run_module):
    res = run_module(package_upload, _args(pypiserver, dists_v2["files"], client="http"))
    assert not res.failed, res
    for f in dists_v2["files"]:
        assert _sha(os.path.join(pypiserver.package_dir, f["filename"])) == f["sha256"]


def test_unreachable_is_one_clear_message(dists, run_module):
    url = f"http://127.0.0.1:{free_port()}/"
    res = run_module(package_upload, {"repository_url": url, "files": [dists["wheel"]["path"]]})
    assert res.failed
    assert res["results"][0]["outcome"] == "unreachable"
    assert "Connection refused" in res["msg"] and "Traceback" not in res["msg"]


def test_missing_and_non_dist_files_fail_before_uploading(pypiserver, tmp_path, run_module):
    res = run_module(package_upload, {"repository_url": pypiserver.url, "files": [str(tmp_path / "nope-1.0.whl")]})
    assert res.failed and "does not exist" in res["msg"]
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    res = run_module(package_upload, {"repository_url": pypiserver.url, "files": [str(junk)]})
    assert res.failed and "not a Python distribution" in res["msg"]


def test_check_mode_sends_nothing(pypiserver, dists, run_module):
    res = run_module(package_upload, _args(pypiserver, dists["files"]), check_mode=True)
    assert not res.failed and res["changed"] is True
    assert not os.listdir(pypiserver.package_dir)


@pytest.mark.parametrize(
    "status,body,outcome",
    [
        (200, "", "uploaded"),
        (409, "", "exists"),
        (400, "Package 'x' already exists!", "exists"),
        (400, "Package 'pypiops_probe_ci42_ow-1.0.0-py3-none-any.whl' already\nexists!", "exists"),  # twine's wrap
        (400, "bad form", "rejected"),
        (401, "", "unauthorized"),
        (403, "", "forbidden"),
        (413, "", "too_large"),
        (502, "", "server_error"),
        (None, "", "unreachable"),
    ],
)
def test_classify(status, body, outcome):
    assert upload.classify(status, body) == outcome


def test_twine_output_parsing_reads_the_status_and_server_text():
    text = (
        "Uploading x.whl\nContent received from server:\n<html><pre>Package &#039;x.whl&#039; already exists!"
        "</pre></html>\nERROR    HTTPError: 400 Bad Request from http://h/\n"
    )
    got = upload.parse_twine(1, text)
    assert got.outcome == "exists" and got.status == 400
    assert "already exists" in got.detail
    assert upload.parse_twine(1, "ERROR InvalidDistribution: Unknown distribution format").outcome == "invalid_dist"
    assert upload.parse_twine(0, "").outcome == "uploaded"


# ---------------------------------------------------------------- client uv (uv publish, the real uv binary)


def _served(server, filename: str) -> bytes:
    import requests

    resp = requests.get(f"{server.url}packages/{filename}", timeout=30)
    assert resp.status_code == 200, resp.status_code
    return resp.content


def test_uv_upload_is_served_back_intact(auth_pypiserver, dists, uv_bin, tmp_path, run_module):
    progress_file = tmp_path / "progress.json"
    res = run_module(
        package_upload,
        _args(auth_pypiserver, dists["files"], client="uv", uv=uv_bin, progress_file=str(progress_file)),
    )
    assert not res.failed, res
    assert res["changed"] is True and res["client"] == "uv" and res["client_missing"] is False
    assert res["uv"] == uv_bin
    assert [(r["outcome"], r["status"]) for r in res["results"]] == [("uploaded", 200), ("uploaded", 200)]
    assert res["uploaded"] == [f["filename"] for f in dists["files"]]
    for f in dists["files"]:
        assert hashlib.sha256(_served(auth_pypiserver, f["filename"])).hexdigest() == f["sha256"]
    assert auth_pypiserver.password not in str(res)
    # The heartbeat named uv while it ran (the last file's).
    assert json.loads(progress_file.read_text())["detail"].endswith("uv publish running")


def test_uv_duplicate_upload_is_exists(auth_pypiserver, dists, uv_bin, run_module):
    wheel = [dists["wheel"]]
    assert not run_module(package_upload, _args(auth_pypiserver, wheel, client="uv", uv=uv_bin)).failed
    res = run_module(package_upload, _args(auth_pypiserver, wheel, client="uv", uv=uv_bin))
    assert res.failed and res["client_missing"] is False
    assert (res["results"][0]["outcome"], res["results"][0]["status"]) == ("exists", 409)
    assert res["msg"].startswith(f"Upload of {dists['wheel']['filename']}: expected uploaded, got exists (HTTP 409);")
    assert "already exists" in res["msg"] and "\n" not in res["msg"]
    ok = run_module(package_upload, _args(auth_pypiserver, wheel, client="uv", uv=uv_bin, expect=["exists"]))
    assert not ok.failed and ok["changed"] is False


def test_uv_wrong_password_is_forbidden(auth_pypiserver, dists, uv_bin, run_module):
    res = run_module(
        package_upload, _args(auth_pypiserver, [dists["wheel"]], client="uv", uv=uv_bin, password="not-the-password")
    )
    assert res.failed and res["client_missing"] is False
    assert (res["results"][0]["outcome"], res["results"][0]["status"]) == ("forbidden", 403)
    filename = dists["wheel"]["filename"]
    assert res["msg"].startswith(
        f"Upload of {filename}: expected uploaded, got forbidden (HTTP 403); the credentials were refused: "
        "check username/password (pypi_username/pypi_password) or the server's htpasswd file."
    ), res["msg"]
    assert "\n" not in res["msg"] and "Traceback" not in res["msg"]
    assert "not-the-password" not in str({k: v for k, v in res.items() if k != "invocation"})
    assert not os.listdir(auth_pypiserver.package_dir)


def test_uv_without_credentials_is_refused_and_says_why(auth_pypiserver, dists, uv_bin, run_module):
    args = _args(auth_pypiserver, [dists["wheel"]], client="uv", uv=uv_bin)
    del args["username"], args["password"]
    res = run_module(package_upload, args)
    assert res.failed and res["results"][0]["outcome"] == "forbidden"
    # either uv got the 403, or (pypiserver closes early) its send broke and the runner asked again: both say why
    assert "placeholder user 'pypi-ops-no-credentials'" in res["msg"], res["msg"]
    assert not os.listdir(auth_pypiserver.package_dir)


def test_uv_missing_is_client_missing_not_a_failed_upload(auth_pypiserver, dists, tmp_path, run_module):
    nowhere = str(tmp_path / "no" / "uv")
    for check_mode in (False, True):
        res = run_module(
            package_upload, _args(auth_pypiserver, [dists["wheel"]], client="uv", uv=nowhere), check_mode=check_mode
        )
        assert res.failed and res["client_missing"] is True, res
        assert res["msg"] == (
            f"uv is not at {nowhere} (no executable file there); install it on the controller (pip install uv, pinned "
            "in requirements.txt) or drop uv from the client set."
        )
        assert res["results"] == [] and res["uploaded"] == []
    assert not os.listdir(auth_pypiserver.package_dir)
    # A real upload failure of another client is not a missing client.
    refused = run_module(package_upload, _args(auth_pypiserver, [dists["wheel"]], password="wrong"))
    assert refused.failed and refused["client_missing"] is False and refused["client"] == "twine"
