"""package_upload with client=poetry, pdm and hatch: the real tools (.venv/bin/poetry, pdm, hatch, installed by
``make clients``) against real pypiserver processes, one open for uploads and one that authenticates them.

Per tool: an upload without credentials to the open server and with credentials to the authenticating one; a
duplicate is ``exists``, a wrong password ``forbidden``, no password refused; a 413 from a real proxy in front is
``too_large``; no password in any process's argv (the /proc sampler of test_secrets); nothing written under HOME;
and a proxy that answers 200 to uploads without storing them is caught by ``confirm_listed`` (``unlisted``, naming
the client), for twine too. A missing program is ``client_missing``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import client_tools
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe as pb
from ansible_collections.pypi_ops.pypiserver.plugins.modules import package_upload
from tests.faultproxy import FaultProxy
from tests.integration.test_secrets import ProcSampler

TOOLS = ("poetry", "pdm", "hatch")
USER, PASSWORD = "pub-user", "pub-S3cret-Pa55-9f2c"
BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def _program(tool: str) -> str:
    try:
        return client_tools.find_tool(tool, None, str(BIN / "python"))
    except client_tools.ToolNotFound as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(exc.msg)
        pytest.skip(exc.msg)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One open pypiserver and one that authenticates uploads, for the whole module; stopped by PID."""
    base = tmp_path_factory.mktemp("publishers")
    htpasswd = str(base / "htpasswd")
    ls.write_htpasswd(htpasswd, {USER: PASSWORD})
    started = {}
    try:
        for name, extra in (("open", {}), ("auth", {"auth_actions": ("update",), "htpasswd": htpasswd})):
            spec = ls.Spec(package_dir=str(base / name / "packages"), backend="simple-dir", **extra)
            started[name] = (ls.start(spec, str(base / name / "state"), timeout=30)[1], spec.package_dir)
        yield {name: {"url": info["url"], "packages": pkg} for name, (info, pkg) in started.items()}
    finally:
        for name in started:
            ls.stop(str(base / name / "state"))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, dict[str, str]]:
    """Per tool, wheels of three releases of its own probe: {tool: {version: path}}."""
    dest = str(tmp_path_factory.mktemp("publishers-dists"))
    return {
        tool: {
            v: pb.build(None, dest, probe=pb.probe_spec(f"pypi-ops-pub-{tool}", v), formats=["wheel"])["wheel"]["path"]
            for v in ("1.0.0", "2.0.0", "3.0.0")
        }
        for tool in (*TOOLS, "twine")
    }


def _args(url: str, path: str, tool: str, **extra) -> dict:
    return dict(repository_url=url, files=[path], client=tool, timeout=120, **extra)


def _stored(server: dict) -> set[str]:
    return set(os.listdir(server["packages"])) if os.path.isdir(server["packages"]) else set()


@pytest.mark.parametrize("tool", TOOLS)
def test_each_tool_uploads_isolated_and_its_outcomes_are_classified(
    tool, servers, wheels, run_module, tmp_path, monkeypatch
):
    program = _program(tool)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # the tools must not write here: they get a throwaway home of their own
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    v1, v2, v3 = (wheels[tool][v] for v in ("1.0.0", "2.0.0", "3.0.0"))
    auth, open_ = servers["auth"], servers["open"]
    creds = {"username": USER, "password": PASSWORD}
    timings = []
    with ProcSampler([PASSWORD]) as sampler:
        start = time.monotonic()
        res = run_module(package_upload, _args(auth["url"], v1, tool, confirm_listed=True, **creds))
        timings.append(time.monotonic() - start)
        assert not res.failed, res
        assert res["results"][0]["outcome"] == "uploaded" and res["executable"] == program, res
        assert os.path.basename(v1) in _stored(auth)
        # a duplicate is exists (409), not a success
        dup = run_module(package_upload, _args(auth["url"], v1, tool, expect=["exists"], **creds))
        assert not dup.failed and dup["results"][0]["status"] == 409, dup
        # a wrong password is forbidden (403), and nothing is stored
        wrong = run_module(package_upload, _args(auth["url"], v2, tool, username=USER, password="wrong-pass"))
        assert wrong.failed and wrong["results"][0]["outcome"] == "forbidden", wrong
        assert "expected uploaded, got forbidden (HTTP 403)" in wrong["msg"], wrong["msg"]
        assert os.path.basename(v2) not in _stored(auth)
    procs = sampler.matching(lambda argv: any(os.path.basename(a) == tool for a in argv) and "publish" in argv)
    assert procs, f"the sampler saw no {tool} publish process"
    assert not sampler.leaks, sampler.leaks
    # no credentials: poetry sends none (401); pdm and hatch cannot, and send the placeholder user (403)
    anon = run_module(package_upload, _args(auth["url"], v2, tool, expect=["refused"]))
    want = ("unauthorized", 401) if tool == "poetry" else ("forbidden", 403)
    assert not anon.failed and (anon["results"][0]["outcome"], anon["results"][0]["status"]) == want, anon
    # ... while the open server takes the upload without credentials
    start = time.monotonic()
    ok = run_module(package_upload, _args(open_["url"], v2, tool, confirm_listed=True))
    timings.append(time.monotonic() - start)
    assert not ok.failed and os.path.basename(v2) in _stored(open_), ok
    # a body-size limit in front answers 413
    with FaultProxy(auth["url"], max_body=1000) as proxy:
        big = run_module(package_upload, _args(proxy.url, v3, tool, **creds))
    assert big.failed and (big["results"][0]["outcome"], big["results"][0]["status"]) == ("too_large", 413), big
    assert list(home.iterdir()) == [], f"{tool} wrote under HOME: {sorted(p.name for p in home.rglob('*'))}"
    print(f"{tool}: {', '.join(f'{s:.2f}' for s in timings)} s per upload (module run)")


@pytest.mark.parametrize("tool", (*TOOLS, "twine"))
def test_a_success_the_index_does_not_list_is_unlisted_naming_the_client(tool, servers, wheels, run_module):
    if tool != "twine":
        _program(tool)
    path = wheels[tool]["3.0.0"]
    with FaultProxy(servers["open"]["url"], swallow_uploads=True) as proxy:
        res = run_module(package_upload, _args(proxy.url, path, tool, confirm_listed=True))
        trusting = run_module(package_upload, _args(proxy.url, path, tool))  # without the check: a false success
    assert proxy.swallowed == 2, "the uploads never reached the proxy"
    assert res.failed and res["results"][0]["outcome"] == "unlisted", res
    name = package_upload.CLIENT_NAMES[tool]
    assert (
        f"got unlisted: {name} said it uploaded {os.path.basename(path)}, but the index does not list it" in res["msg"]
    )
    # the index's own words: no page for the project, or a page without this file (other tests upload other versions)
    said = res["msg"].split("Index said: ")[1]
    assert "(HTTP 404)" in said or f"not {os.path.basename(path)}" in said, said
    assert "\n" not in res["msg"], res["msg"]
    assert not trusting.failed and trusting["results"][0]["outcome"] == "uploaded"
    assert os.path.basename(path) not in _stored(servers["open"])


def test_other_bytes_under_the_same_name_are_unlisted(servers, wheels, run_module, tmp_path):
    # the index lists the file, but what it holds under that name is not the local file
    original = wheels["twine"]["1.0.0"]
    shutil.copy(original, servers["open"]["packages"])
    other = tmp_path / os.path.basename(original)
    shutil.copy(wheels["twine"]["2.0.0"], other)  # same name, other bytes
    with FaultProxy(servers["open"]["url"], swallow_uploads=True) as proxy:
        res = run_module(package_upload, _args(proxy.url, str(other), "twine", confirm_listed=True))
    assert res.failed and res["results"][0]["outcome"] == "unlisted", res
    assert "with sha256" in res["msg"] and "the local file has" in res["msg"], res["msg"]


def test_a_missing_program_is_client_missing(servers, wheels, run_module, tmp_path):
    res = run_module(
        package_upload, _args(servers["open"]["url"], wheels["pdm"]["1.0.0"], "pdm", executable=str(tmp_path / "pdm"))
    )
    assert res.failed and res["client_missing"] is True and res["results"] == [], res
    assert "pdm is not at" in res["msg"] and "make clients" in res["msg"]
