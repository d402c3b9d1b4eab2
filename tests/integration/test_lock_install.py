"""Lock-based installs (uv lock + uv sync, poetry lock + install, pdm lock + install) from a real pypiserver.

Each client installs the probe from an open server and from one that authenticates reads (-a
update,download,list), with no password in any argv (ProcSampler) or result; an unpinned lock that resolves
another version than the one uploaded fails naming both; a proxy that strips the Authorization header on
/packages/ gives the dropped-credentials diagnosis naming the client (pip and uv pip install too).
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import (
    client_tools,
    http,
    install,
    pip_runner,
    traffic,
    uv_runner,
)
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import lock_install as li
from tests.faultproxy import FaultProxy
from tests.helpers import ROOT
from tests.integration.test_secrets import ProcSampler

USER, PASSWORD = "ci-lock", "L0ck-s3cr3t-Pa55"
NAME = "pypiops-lockprobe"


def _tool(client: str) -> str:
    override = os.environ.get(f"PYPI_OPS_{li.PROGRAM[client].upper()}")  # e.g. PYPI_OPS_PDM for another pdm
    try:
        if client == "uv-lock":
            return uv_runner.find_uv(override, str(ROOT / ".venv" / "bin" / "python"))
        return client_tools.find_tool(client, override, str(ROOT / ".venv" / "bin" / "python"))
    except (uv_runner.UvNotFound, client_tools.ToolNotFound) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(exc.msg)
        pytest.skip(exc.msg)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """An open server with the probe 1.0.0, and one that authenticates reads with 1.0.0 and 1.0.1."""
    base = tmp_path_factory.mktemp("lock")
    started, wheels = [], {}
    try:
        for kind in ("open", "auth"):
            pkg = base / kind / "packages"
            pkg.mkdir(parents=True)
            for version in ("1.0.0", "1.0.1") if kind == "auth" else ("1.0.0",):
                if version not in wheels:  # built once: the same bytes on both servers (a zip records its mtime)
                    wheels[version] = traffic.synthetic_wheel(str(base / "dist"), NAME, version)
                shutil.copy(wheels[version]["path"], pkg / wheels[version]["filename"])
            htpasswd = None
            if kind == "auth":
                htpasswd = str(base / "htpasswd")
                ls.write_htpasswd(htpasswd, {USER: PASSWORD})
            spec = ls.Spec(package_dir=str(pkg), auth_actions=("update", "download", "list") if kind == "auth" else (),
                           htpasswd=htpasswd, backend="simple-dir")  # fmt: skip
            state = str(base / kind / "state")
            _, info = ls.start(spec, state, timeout=30)
            started.append(state)
            wheels[kind] = info["url"]
        yield wheels
    finally:
        for state in started:
            ls.stop(state)


def _install(client, index_url, wheel, creds=True, version="1.0.0", tmp=None):
    opts = http.ClientOptions(USER if creds else None, PASSWORD if creds else None, True, None, 5, 30)
    spec = install.InstallSpec(index_url=index_url, name=NAME, version=version, expected_version="1.0.0",
                               expected_sha256=wheel["sha256"], python=str(ROOT / ".venv" / "bin" / "python"),
                               timeout=120, work_dir=tmp)  # fmt: skip
    if client == "pip":
        return pip_runner.install_and_import(None, spec, opts)
    if client == "uv":
        return uv_runner.install_and_import(None, spec._replace(uv=_tool("uv-lock")), opts)
    return li.install_and_import(None, client, _tool(client), spec, opts)


@pytest.mark.parametrize("client", li.CLIENTS)
def test_installs_from_an_open_index_and_checks_the_lock(client, servers, tmp_path):
    started = time.monotonic()
    got = _install(client, servers["open"] + "simple/", servers["1.0.0"], creds=False, tmp=str(tmp_path))
    print(f"{client}: {time.monotonic() - started:.2f} s per install (open index)")
    assert got["installed_version"] == "1.0.0" and got["imported_version"] == "1.0.0"
    assert got["sha256"] == servers["1.0.0"]["sha256"] == got["lock"]["sha256"]
    assert got["lock"]["url"] == servers["open"] + "packages/" + servers["1.0.0"]["filename"]
    assert got["provenance"][0]["sha256_checked_against"] == "expected" and not got["provenance"][0]["off_origin"]
    assert all(u.startswith(servers["open"]) for u in got["requests"]), got["requests"]


@pytest.mark.parametrize("client", li.CLIENTS)
def test_installs_from_an_index_that_authenticates_reads_without_a_password_in_argv(client, servers, tmp_path):
    with ProcSampler([PASSWORD], watch=[tmp_path]) as sampler:
        started = time.monotonic()
        got = _install(client, servers["auth"] + "simple/", servers["1.0.0"], tmp=str(tmp_path))
        print(f"{client}: {time.monotonic() - started:.2f} s per install (authenticated reads)")
    assert got["imported_version"] == "1.0.0" and got["filename"] == servers["1.0.0"]["filename"]
    tool = os.path.basename(_tool(client))
    assert sampler.matching(lambda argv: any(os.path.basename(a) == tool for a in argv)), "the tool never ran"
    argv_leaks = [leak for leak in sampler.leaks if leak.startswith("argv")]
    assert not argv_leaks, argv_leaks
    assert PASSWORD not in json.dumps(got)


@pytest.mark.parametrize("client", li.CLIENTS)
def test_a_lock_of_another_version_fails_naming_both(client, servers, tmp_path):
    with pytest.raises(install.InstallError) as caught:
        _install(client, servers["auth"] + "simple/", servers["1.0.0"], version=None, tmp=str(tmp_path))
    assert caught.value.msg.startswith(f"{client} resolved {NAME} 1.0.1, expected 1.0.0"), caught.value.msg


@pytest.mark.parametrize("client", ("pip", "uv", *li.CLIENTS))
def test_credentials_dropped_on_file_downloads_are_named(client, servers, tmp_path):
    with FaultProxy(servers["auth"], strip_auth=r"^/packages/") as proxy:
        with pytest.raises(install.InstallError) as caught:
            _install(client, proxy.url + "simple/", servers["1.0.0"], tmp=str(tmp_path))
    assert proxy.stripped, "no download reached the proxy"
    msg = caught.value.msg
    assert msg.startswith(f"{client} read the project page with the credentials but its download of "), msg
    assert servers["1.0.0"]["filename"] + " got HTTP 401: it did not send the credentials" in msg, msg
    assert PASSWORD not in msg and PASSWORD not in "\n".join(caught.value.output_tail)
