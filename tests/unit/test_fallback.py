"""module_utils.fallback (the dependency-confusion check) against real pypiserver processes and the real pip and uv.

The public index is never contacted: a redirect to pypi.org is stopped by the module's blocking proxy, which these
tests read to prove the clients were sent there. "Another index holding the name" is a second local pypiserver.
"""

from __future__ import annotations

import os
import shutil
import typing as t

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import fallback as fb
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe as pb
from tests.badservers import BadServer, _Handler, _Managed

NAME = "pypi-ops-fallback-probe-absent"


def opts() -> http.ClientOptions:
    return http.ClientOptions(None, None, True, None, 5.0, 30.0)


def check(simple_url: str, tmp_path, uv_bin: str, expected: bool = False) -> tuple[bool, str, dict, dict]:
    session = http.make_session(opts())
    try:
        direct = fb.ask_index(session, simple_url, NAME, opts())
    finally:
        session.close()
    clients = fb.run_clients(None, simple_url, NAME, opts(), uv=uv_bin, timeout=60, work_dir=str(tmp_path))
    ok, reason = fb.verdict(direct, clients, simple_url, NAME, expected)
    return ok, reason, direct, clients


def test_an_index_without_fallback_answers_404_and_the_clients_find_nothing(pypiserver, uv_bin, tmp_path):
    ok, reason, direct, clients = check(pypiserver.simple_url, tmp_path, uv_bin)
    assert ok, reason
    assert direct["status"] == 404 and not direct["location"]
    for client in ("pip", "uv"):
        assert clients[client]["not_found"] and not clients[client]["elsewhere"] and not clients[client]["resolved"]
    assert "HTTP 404" in reason and "went nowhere else" in reason
    # the outcome keeps the clients' verdict lines, not pip -vv's exception info or uv's DEBUG log
    assert "No matching distribution found" in clients["pip"]["tail"] and "Traceback" not in clients["pip"]["tail"]
    assert "No solution found" in clients["uv"]["tail"] and "DEBUG" not in clients["uv"]["tail"]
    assert not os.listdir(tmp_path)  # the clients' work dir is gone


def test_the_default_fallback_to_pypi_fails_and_no_client_reaches_pypi(pypiserver_factory, uv_bin, tmp_path):
    server = pypiserver_factory(fallback_url="https://pypi.org/simple/")
    ok, reason, direct, clients = check(server.simple_url, tmp_path, uv_bin)
    assert not ok
    assert direct["status"] == 303 and direct["location"] == f"https://pypi.org/simple/{NAME}/"
    for client in ("pip", "uv"):
        # the blocking proxy took the client's connection to pypi.org: it never left this machine
        assert any("pypi.org:443 (stopped at the blocking proxy)" in e for e in clients[client]["elsewhere"]), clients
        assert not clients[client]["resolved"]
    assert f"to https://pypi.org/simple/{NAME}/ (HTTP 303)" in reason
    assert "--disable-fallback" in reason and 'fallbackUrl: ""' in reason and "pypi_fallback_expected" in reason
    assert "\n" not in reason


def test_a_wanted_fallback_passes_when_expected(pypiserver_factory, uv_bin, tmp_path):
    server = pypiserver_factory(fallback_url="https://pypi.org/simple/")
    ok, reason, _direct, _clients = check(server.simple_url, tmp_path, uv_bin, expected=True)
    assert ok, reason
    assert "as pypi_fallback_expected says" in reason


@pytest.fixture(scope="module")
def absent_wheel(tmp_path_factory) -> dict[str, t.Any]:
    """A wheel of the very name the index under test must not hold: what an attacker publishes elsewhere."""
    dest = str(tmp_path_factory.mktemp("absent-dist"))
    return pb.build(None, dest, probe=pb.probe_spec(NAME, "99.0"), formats=["wheel"])["wheel"]


def test_a_fallback_to_an_index_that_holds_the_name_is_caught(pypiserver_factory, absent_wheel, uv_bin, tmp_path):
    # Another host on this machine is not behind the blocking proxy (NO_PROXY is the index's host): the clients reach
    # it and resolve the name there, the dependency confusion itself. Their logs name that origin.
    public = pypiserver_factory()
    os.makedirs(public.package_dir, exist_ok=True)
    shutil.copy(absent_wheel["path"], public.package_dir)
    server = pypiserver_factory(fallback_url=public.simple_url)
    ok, reason, direct, clients = check(server.simple_url, tmp_path, uv_bin)
    assert not ok
    assert direct["location"].startswith(public.simple_url)
    origin = f"http://127.0.0.1:{public.port}"
    assert clients["pip"]["resolved"] and origin in clients["pip"]["elsewhere"]
    assert clients["uv"]["resolved"] and origin in clients["uv"]["elsewhere"]
    assert "dependency confusion" in reason and public.simple_url in reason


class _ClientOnlyRedirect(_Managed):
    """404 to a plain request; a 303 to pypi.org when the User-Agent is pip's or uv's (a front that sniffs clients)."""

    def __init__(self) -> None:
        class Handler(_Handler):
            def do_GET(self) -> None:
                agent = self.headers.get("User-Agent", "")
                if agent.startswith(("pip/", "uv/")):
                    self._answer(303, b"", headers={"Location": "https://pypi.org" + self.path})
                else:
                    self._answer(404, b"<html><body>404 Not Found</body></html>")

        super().__init__(Handler)


def test_a_redirect_only_the_clients_get_is_caught(uv_bin, tmp_path):
    with _ClientOnlyRedirect() as front:
        ok, reason, direct, clients = check(front.url + "simple/", tmp_path, uv_bin)
    assert not ok
    assert direct["status"] == 404
    assert "pip was sent to" in reason and "uv was sent to" in reason and "pypi.org:443" in reason
    assert "check what sits in front of the index" in reason


@pytest.mark.parametrize(
    ("behaviour", "status", "words"),
    [
        ("html", 200, "serves a page (HTTP 200, text/html)"),
        ("status", 500, "answered HTTP 500"),
        ("status", 401, "credentials"),
    ],
)
def test_a_page_or_an_error_for_the_unknown_name_fails(behaviour, status, words, tmp_path):
    with BadServer(behaviour, status=status) as bad:
        session = http.make_session(opts())
        try:
            direct = fb.ask_index(session, bad.url + "simple/", NAME, opts())
        finally:
            session.close()
        clients = fb.run_clients(
            None, bad.url + "simple/", NAME, opts(), clients=["pip"], timeout=60, work_dir=str(tmp_path)
        )
    ok, reason = fb.verdict(direct, clients, bad.url + "simple/", NAME, False)
    assert not ok and words in reason, reason
    assert "\n" not in reason


def test_no_answer_is_one_sentence(tmp_path):
    from tests.badservers import refusing_port

    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}/simple/"
        session = http.make_session(opts())
        try:
            direct = fb.ask_index(session, url, NAME, opts())
        finally:
            session.close()
    ok, reason = fb.verdict(direct, {}, url, NAME, False)
    assert not ok and "did not answer" in reason and "\n" not in reason


def test_request_targets_and_proxy_environment():
    assert fb.request_target("CONNECT pypi.org:443 HTTP/1.1") == "pypi.org:443"
    assert fb.request_target("GET http://files.example:8080/x.whl HTTP/1.1") == "files.example:8080"
    assert fb.request_target("GET http://files.example/x HTTP/1.1") == "files.example:80"
    assert fb.request_target("garbage") == ""
    env = fb.proxy_env("http://127.0.0.1:1", "https://user:pw@index.example:8443/simple/")
    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://127.0.0.1:1"
    assert env["NO_PROXY"] == env["no_proxy"] == "index.example"
    assert fb.name_for("PyPIOps_Probe", "Run.1") == "pypiops-probe-run-1-absent"


def test_the_blocking_proxy_records_and_refuses():
    import socket

    with fb.BlockingProxy() as proxy:
        port = int(proxy.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n")
            answer = conn.recv(100)
    assert answer.startswith(b"HTTP/1.1 403") and proxy.attempts == ["pypi.org:443"]
