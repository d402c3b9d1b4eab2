"""module_utils.uv_runner against real pypiserver processes, with real probe wheels and the real uv (no mocks).

uv is looked for in the project venv first (``.venv/bin/uv``, where requirements.txt installs it), then at
``$PYPI_OPS_UV``; without either the tests skip with that reason (and fail under CI=true, where uv must be present).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http, install
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe as pb
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import uv_runner as uvr
from tests.badservers import BadServer, refusing_port

NAME = "pypi-ops-uv-probe"
IMPORT = "pypi_ops_uv_probe"
USER, PASSWORD = "uv-user", "uv-S3cret-pass"


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> dict[str, dict]:
    """Probe wheels of two releases, built once per session: {version: wheel record}."""
    dest = str(tmp_path_factory.mktemp("uv-dists"))
    return {
        version: pb.build(None, dest, probe=pb.probe_spec(NAME, version), formats=["wheel"])["wheel"]
        for version in ("1.0.0", "2.0.0")
    }


def opts(username: str | None = None, password: str | None = None, **extra) -> http.ClientOptions:
    return http.ClientOptions(username, password, True, None, 5.0, 30.0)._replace(**extra)


def put(server, *records: dict) -> None:
    """'Upload' by dropping files into the served directory (the fixture's simple-dir backend lists it live)."""
    os.makedirs(server.package_dir, exist_ok=True)
    for record in records:
        shutil.copy(record["path"], server.package_dir)


def stored(server) -> set[str]:
    return set(os.listdir(server.package_dir)) if os.path.isdir(server.package_dir) else set()


def spec(server, tmp_path, uv_bin, **extra) -> uvr.UvInstallSpec:
    return uvr.UvInstallSpec(
        **dict({"index_url": server.simple_url, "name": NAME, "work_dir": str(tmp_path), "uv": uv_bin}, **extra)
    )


# ---------------------------------------------------------------- finding uv


def _executable(path) -> str:
    path.write_text("#!/bin/sh\necho 'uv 9.9.9'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_find_uv_explicit_then_next_to_python_then_path(tmp_path, monkeypatch):
    explicit = _executable(tmp_path / "my-uv")
    assert uvr.find_uv(explicit) == explicit
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    beside = _executable(bindir / "uv")
    assert uvr.find_uv(None, str(bindir / "python")) == beside
    other = tmp_path / "elsewhere"
    other.mkdir()
    on_path = _executable(other / "uv")
    monkeypatch.setenv("PATH", str(other))
    beside_running = os.path.join(os.path.dirname(sys.executable), "uv")  # .venv/bin/uv once uv is installed there
    assert uvr.find_uv(None, str(tmp_path / "no-uv-here" / "python")) in (on_path, beside_running)
    assert uvr.uv_version(None, explicit) == "9.9.9"


def test_find_uv_missing_is_one_sentence_naming_where_it_looked(tmp_path, monkeypatch):
    with pytest.raises(uvr.UvNotFound) as err:
        uvr.find_uv(str(tmp_path / "nope" / "uv"))
    assert str(tmp_path / "nope" / "uv") in err.value.msg and "pip install uv" in err.value.msg
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(uvr.sys, "executable", str(tmp_path / "bin" / "python"))
    with pytest.raises(uvr.UvNotFound) as err:
        uvr.find_uv(None, str(tmp_path / "py" / "python"))
    assert "not on PATH" in err.value.msg and str(tmp_path / "py") in err.value.msg
    assert "\n" not in err.value.msg


def test_scrubbed_unsets_every_inherited_uv_variable_but_ours():
    environ = {"UV_EXTRA_INDEX_URL": "https://pypi.org/simple/", "UV_NO_CONFIG": "0", "HOME": "/root", "UV_X": "1"}
    argv = uvr.scrubbed(["uv", "pip"], keep={"UV_NO_CONFIG": "1"}, environ=environ)
    assert argv == ["env", "-u", "UV_EXTRA_INDEX_URL", "-u", "UV_X", "--", "uv", "pip"]
    assert uvr.scrubbed(["uv"], environ={"HOME": "/root"}) == ["uv"]


# ---------------------------------------------------------------- publish


def test_publish_uploads_with_credentials_in_the_environment(auth_pypiserver, dists, uv_bin):
    wheel = dists["1.0.0"]
    creds = opts(auth_pypiserver.username, auth_pypiserver.password)
    got = uvr.uv_publish(None, auth_pypiserver.url, wheel["path"], creds, 120, uv_bin)
    assert got == ("uploaded", 200, ""), got
    path = os.path.join(auth_pypiserver.package_dir, wheel["filename"])
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == wheel["sha256"]
    argv = uvr.publish_argv(uv_bin, auth_pypiserver.url, wheel["path"], opts(USER, PASSWORD))
    assert PASSWORD not in " ".join(argv) and USER not in " ".join(argv)
    assert argv[argv.index("--trusted-publishing") + 1] == "never" and "--check-url" not in argv


def test_publish_duplicate_is_exists_even_with_an_inherited_check_url(auth_pypiserver, dists, uv_bin, monkeypatch):
    creds = opts(auth_pypiserver.username, auth_pypiserver.password)
    wheel = dists["1.0.0"]
    assert uvr.uv_publish(None, auth_pypiserver.url, wheel["path"], creds, 120, uv_bin).outcome == "uploaded"
    # An inherited UV_PUBLISH_CHECK_URL would make uv skip the duplicate with rc 0 ("already exists, skipping").
    monkeypatch.setenv("UV_PUBLISH_CHECK_URL", auth_pypiserver.simple_url)
    got = uvr.uv_publish(None, auth_pypiserver.url, wheel["path"], creds, 120, uv_bin)
    assert got.outcome == "exists" and got.status == 409, got
    assert "already exists" in got.detail and "<" not in got.detail


def test_publish_wrong_password_is_forbidden(auth_pypiserver, dists, uv_bin):
    got = uvr.uv_publish(
        None, auth_pypiserver.url, dists["1.0.0"]["path"], opts(auth_pypiserver.username, "wrong"), 120, uv_bin
    )
    assert got.outcome == "forbidden" and got.status == 403, got
    assert stored(auth_pypiserver) == set()


def test_refused_big_upload_is_forbidden_not_unreachable(auth_pypiserver, tmp_path_factory, uv_bin):
    # pypiserver refuses before reading the body and closes: uv then often says "Broken pipe" instead of 403.
    dest = str(tmp_path_factory.mktemp("uv-big"))
    big = pb.build(None, dest, probe=pb.probe_spec("pypi-ops-uv-big", "1.0.0", payload_size=4 << 20), formats=["wheel"])
    for password in ("wrong", "also-wrong", "still-wrong"):
        got = uvr.uv_publish(None, auth_pypiserver.url, big["wheel"]["path"], opts("ci-user", password), 120, uv_bin)
        assert got.outcome == "forbidden" and got.status == 403, got
    got = uvr.uv_publish(None, auth_pypiserver.url, big["wheel"]["path"], opts(), 120, uv_bin)
    assert got.outcome == "forbidden" and uvr.ANONYMOUS_USER in got.detail, got
    assert stored(auth_pypiserver) == set()


def test_publish_without_credentials(auth_pypiserver, pypiserver, dists, uv_bin):
    # uv publish cannot send an anonymous request; the placeholder is refused by an authenticating server ...
    refused = uvr.uv_publish(None, auth_pypiserver.url, dists["1.0.0"]["path"], opts(), 120, uv_bin)
    assert refused.outcome == "forbidden" and uvr.ANONYMOUS_USER in refused.detail, refused
    assert stored(auth_pypiserver) == set()
    # ... and lets it upload where uploads are open to everyone.
    ok = uvr.uv_publish(None, pypiserver.url, dists["1.0.0"]["path"], opts(), 120, uv_bin)
    assert ok.outcome == "uploaded", ok
    assert stored(pypiserver) == {dists["1.0.0"]["filename"]}


def test_credentials_stored_with_uv_auth_are_not_used(pypiserver_factory, dists, uv_bin, tmp_path, monkeypatch):
    server = pypiserver_factory(auth_actions=("list", "download", "update"), username=USER, password=PASSWORD)
    put(server, dists["1.0.0"])
    store = tmp_path / "uv-credentials"
    env = dict(os.environ, UV_CREDENTIALS_DIR=str(store))
    login = [uv_bin, "auth", "login", server.url, "--username", USER, "--password", PASSWORD]
    subprocess.run(login, env=env, check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("UV_CREDENTIALS_DIR", str(store))  # what a developer's machine could have
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    work = tmp_path / "work"
    with pytest.raises(install.InstallError) as err:  # no credentials given: the stored login must not be used
        uvr.install_and_import(None, spec(server, work, uv_bin), opts())
    assert "wants credentials (HTTP 401)" in err.value.msg
    got = uvr.uv_publish(None, server.url, dists["2.0.0"]["path"], opts(), 120, uv_bin)
    assert got.outcome == "forbidden", got
    assert stored(server) == {dists["1.0.0"]["filename"]}


def test_publish_unreachable_and_not_a_dist(dists, uv_bin, tmp_path):
    with refusing_port() as port:
        got = uvr.uv_publish(None, f"http://127.0.0.1:{port}/", dists["1.0.0"]["path"], opts("u", "p"), 60, uv_bin)
    assert got.outcome == "unreachable" and "Connection refused" in got.detail, got
    junk = tmp_path / "junk-1.0-py3-none-any.whl"
    junk.write_bytes(b"not a zip")
    got = uvr.uv_publish(None, "http://127.0.0.1:9/", str(junk), opts("u", "p"), 60, uv_bin)
    assert got.outcome == "invalid_dist", got


@pytest.mark.parametrize(("status", "outcome"), [(500, "server_error"), (413, "too_large"), (405, "rejected")])
def test_publish_server_refusals_are_classified(status, outcome, dists, uv_bin):
    with BadServer("status", status=status) as bad:
        got = uvr.uv_publish(None, bad.url, dists["1.0.0"]["path"], opts("u", "p"), 60, uv_bin)
    assert got.outcome == outcome and got.status == status, got


def test_parse_publish_measured_texts():
    dup = (
        "error: Failed to publish `f.whl` to `http://h/`\n  cause: Server returned status code 409 Conflict. Server says:\n"
        "   <html><pre>Package &#039;f.whl&#039; already exists!\n   You may start server with `--overwrite` option.</pre></html>"
    )
    assert uvr.parse_publish(2, dup) == (
        "exists",
        409,
        "Package 'f.whl' already exists! You may start server with `--overwrite` option.",
    )
    missing = "error: Failed to publish `f.whl` to `http://h/`\n  cause: Failed to send POST request\n  cause: Missing credentials for: http://h/"
    assert uvr.parse_publish(2, missing).outcome == "unauthorized"
    assert uvr.parse_publish(0, "File f.whl already exists, skipping").outcome == "exists"
    assert uvr.parse_publish(2, "error: No files found to publish").outcome == "invalid_dist"
    assert uvr.parse_publish(2, "something new and strange").outcome == "error"


# ---------------------------------------------------------------- venv + pip install


def test_install_exact_version_from_the_index_only(pypiserver, dists, uv_bin, tmp_path):
    put(pypiserver, dists["1.0.0"], dists["2.0.0"])
    res = uvr.install_and_import(
        None,
        spec(
            pypiserver,
            tmp_path,
            uv_bin,
            version="1.0.0",
            expected_version="1.0.0",
            expected_sha256=dists["1.0.0"]["sha256"],
        ),
        opts(),
    )
    assert res["installed_version"] == "1.0.0" and res["imported_version"] == "1.0.0"
    assert res["filename"] == dists["1.0.0"]["filename"]
    assert res["resolved_url"] == f"{pypiserver.url}packages/{dists['1.0.0']['filename']}"
    assert res["sha256"] == dists["1.0.0"]["sha256"]
    assert res["import_file"].startswith(str(tmp_path)) and f"/site-packages/{IMPORT}/" in res["import_file"]
    assert all(u.startswith(pypiserver.url) for u in res["requests"])
    cmd = res["cmd"]
    assert cmd[cmd.index("--default-index") + 1] == f"{uvr.INDEX_NAME}={pypiserver.simple_url}"
    assert {"--no-config", "--no-cache", "--no-build"} <= set(cmd)
    assert not {"--index-url", "--extra-index-url", "--index", "--find-links", "-f"} & set(cmd)
    assert os.listdir(tmp_path) == [], "the throwaway venv was left behind"


def test_install_with_credentials_in_the_environment(pypiserver_factory, dists, uv_bin, tmp_path):
    server = pypiserver_factory(auth_actions=("list", "download", "update"), username=USER, password=PASSWORD)
    put(server, dists["2.0.0"])
    res = uvr.install_and_import(None, spec(server, tmp_path, uv_bin, expected_version="2.0.0"), opts(USER, PASSWORD))
    assert res["installed_version"] == "2.0.0"
    assert PASSWORD not in repr(res)
    with pytest.raises(install.InstallError) as err:
        uvr.install_and_import(None, spec(server, tmp_path, uv_bin), opts())
    assert "wants credentials (HTTP 401)" in err.value.msg
    assert PASSWORD not in err.value.msg and PASSWORD not in "\n".join(err.value.output_tail)


def test_install_wrong_version_is_an_error(pypiserver, dists, uv_bin, tmp_path):
    put(pypiserver, dists["1.0.0"], dists["2.0.0"])
    with pytest.raises(install.InstallError) as err:  # the latest (2.0.0) is resolved, 1.0.0 was expected
        uvr.install_and_import(None, spec(pypiserver, tmp_path, uv_bin, expected_version="1.0.0"), opts())
    assert "uv resolved pypi-ops-uv-probe 2.0.0, expected 1.0.0" in err.value.msg
    with pytest.raises(install.InstallError) as err:
        uvr.install_and_import(
            None, spec(pypiserver, tmp_path, uv_bin, version="1.0.0", expected_sha256="0" * 64), opts()
        )
    assert "expected " + "0" * 64 in err.value.msg


def test_install_absent_version_and_project(pypiserver, dists, uv_bin, tmp_path):
    put(pypiserver, dists["1.0.0"])
    with pytest.raises(install.InstallError) as err:
        uvr.install_and_import(None, spec(pypiserver, tmp_path, uv_bin, version="3.0.0"), opts())
    assert f"{NAME}==3.0.0 is not on the index" in err.value.msg
    with pytest.raises(install.InstallError) as err:
        uvr.install_and_import(None, spec(pypiserver, tmp_path, uv_bin, name="pypi-ops-not-there"), opts())
    assert "is not on the index" in err.value.msg and "404" in err.value.msg


def test_install_ignores_inherited_uv_index_settings(pypiserver_factory, dists, uv_bin, tmp_path, monkeypatch):
    elsewhere = pypiserver_factory()
    put(elsewhere, dists["2.0.0"])
    server = pypiserver_factory()
    put(server, dists["1.0.0"])
    # A developer's shell could carry these; without scrubbing uv would find 2.0.0 on the other index.
    monkeypatch.setenv("UV_EXTRA_INDEX_URL", elsewhere.simple_url)
    monkeypatch.setenv("UV_INDEX", elsewhere.simple_url)
    monkeypatch.setenv("UV_INDEX_STRATEGY", "unsafe-best-match")
    res = uvr.install_and_import(None, spec(server, tmp_path, uv_bin, expected_version="1.0.0"), opts())
    assert res["installed_version"] == "1.0.0"
    assert all(u.startswith(server.url) for u in res["requests"])


def test_install_through_a_fallback_redirect_is_caught(pypiserver_factory, dists, uv_bin, tmp_path):
    # pypiserver redirects unknown projects to its fallback index (pypi.org by default); uv follows silently.
    other = pypiserver_factory()
    put(other, dists["2.0.0"])
    server = pypiserver_factory(fallback_url=other.simple_url)
    with pytest.raises(install.InstallError) as err:
        uvr.install_and_import(None, spec(server, tmp_path, uv_bin), opts())
    assert "sends the project page" in err.value.msg and "another origin" in err.value.msg
    assert f"127.0.0.1:{other.port}" in err.value.msg


def test_install_unreachable_index(uv_bin, tmp_path):
    with refusing_port() as port:
        s = uvr.UvInstallSpec(
            index_url=f"http://127.0.0.1:{port}/simple/", name=NAME, work_dir=str(tmp_path), uv=uv_bin
        )
        with pytest.raises(install.InstallError) as err:
            uvr.install_and_import(None, s, opts())
    assert "Connection refused" in err.value.msg or "unreachable" in err.value.msg


def test_install_without_uv_is_one_sentence(tmp_path):
    s = uvr.UvInstallSpec(index_url="http://127.0.0.1:9/simple/", name=NAME, uv=str(tmp_path / "no-uv"))
    with pytest.raises(install.InstallError) as err:
        uvr.install_and_import(None, s, opts())
    assert "uv is not at" in err.value.msg and "\n" not in err.value.msg
