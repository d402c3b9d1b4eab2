"""The bad-input matrix, network side, at module level: every case fails with one sentence naming the cause and
the next step, within its configured timeouts, and the cases that must work do.

Real servers only: bad servers from tests/badservers.py (a port that refuses, one that accepts and never answers,
one that answers too late, a 5xx, pages that are not an index, a redirect loop), a TLS-terminating reverse proxy
with certificates made here (private CA, expired, another host name, self-signed) in front of a real pypiserver,
real twine and real pip. A hang fails the test (pytest-timeout), it never blocks the run.
"""

from __future__ import annotations

import json
import os
import typing as t

import pytest
from ansible.module_utils.common import warnings as ansible_warnings

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe
from ansible_collections.pypi_ops.pypiserver.plugins.modules import (
    http_check,
    index_list,
    package_install,
    package_upload,
)
from tests.badservers import UNRESOLVABLE_HOST, BadServer, Certs, TLSProxy, make_certs, refusing_port
from tests.faultproxy import FaultProxy

# Small timeouts, so that every case ends fast; each test's own deadline (pytest-timeout) is far above them.
FAST = {"connect_timeout": 1.0, "read_timeout": 0.5}
NAME = "pypi-ops-badnet-probe"
IMPORT = "pypi_ops_badnet_probe"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _fresh_module_warnings():
    ansible_warnings._global_warnings.clear()
    yield
    ansible_warnings._global_warnings.clear()


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> dict[str, t.Any]:
    dest = str(tmp_path_factory.mktemp("badnet-dists"))
    return probe.build(None, dest, probe=probe.probe_spec(NAME, "1.0.0", payload_size=2048), formats=["wheel"])["wheel"]


@pytest.fixture(scope="module")
def big_wheel(tmp_path_factory) -> dict[str, t.Any]:
    dest = str(tmp_path_factory.mktemp("badnet-big"))
    spec = probe.probe_spec(NAME + "-big", "1.0.0", payload_size=2 * 1024 * 1024)
    return probe.build(None, dest, probe=spec, formats=["wheel"])["wheel"]


def one_sentence(result: dict[str, t.Any]) -> str:
    """The failure message: present, a single line, no traceback, no exception dump."""
    assert result.get("failed"), result
    msg = result["msg"]
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    assert "exception" not in result, result
    return msg


def warnings_of(result: dict[str, t.Any]) -> str:
    return json.dumps(result.get("warnings", []))


def upload_args(url: str, path: str, **extra: t.Any) -> dict[str, t.Any]:
    return {"repository_url": url, "files": [path], "timeout": 60, **FAST, **extra}


def install_args(index_url: str, work_dir: t.Any, **extra: t.Any) -> dict[str, t.Any]:
    return {"index_url": index_url, "name": NAME, "work_dir": str(work_dir), "retries": 0, "timeout": 60, **extra}


# --------------------------------------------------------------------------- reaching the server


def test_a_host_that_does_not_resolve(wheel, run_module):
    url = f"http://{UNRESOLVABLE_HOST}:8080/"
    for module, args in (
        (http_check, {"url": url}),
        (index_list, {"url": url + "simple/"}),
        (package_upload, upload_args(url, wheel["path"])),
    ):
        msg = one_sentence(run_module(module, {**FAST, **args}))
        assert f"Host name '{UNRESOLVABLE_HOST}' does not resolve (DNS)" in msg, (module.__name__, msg)
        assert "check the URL's host name" in msg


def test_connection_refused(wheel, run_module, tmp_path):
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}/"
        for module, args in (
            (http_check, {"url": url}),
            (index_list, {"url": url + "simple/"}),
            (package_upload, upload_args(url, wheel["path"])),
        ):
            msg = one_sentence(run_module(module, {**FAST, **args}))
            assert f"Connection refused by {url}" in msg and "nothing listens there" in msg, (module.__name__, msg)
        res = run_module(package_install, install_args(url + "simple/", tmp_path, **FAST))
        msg = one_sentence_or_pip(res)
        assert "Connection refused" in msg and "nothing listens there" in msg, msg


def one_sentence_or_pip(result: dict[str, t.Any]) -> str:
    """package_install's message: its first line is the sentence; pip's last lines may follow it."""
    assert result.get("failed"), result
    first = result["msg"].splitlines()[0]
    assert "Traceback" not in result["msg"] and "exception" not in result
    return first


def test_waiting_for_a_refusing_port_retries_with_backoff_until_its_deadline(run_module):
    with refusing_port() as port:
        res = run_module(http_check, {"url": f"http://127.0.0.1:{port}/", "wait": 1.5, **FAST})
    msg = one_sentence(res)
    assert res["attempts"] > 1  # retried (0.2 s, 0.4 s, 0.8 s ...), not a single try
    assert f"(gave up after {res['attempts']} attempt(s) over 1.5s)" in msg and "Connection refused" in msg


@pytest.mark.parametrize("behaviour", ["silent", "slow"])
def test_a_server_that_does_not_answer_within_the_read_timeout(behaviour, wheel, run_module, tmp_path):
    with BadServer(behaviour, delay=30) as server:
        for module, args in (
            (http_check, {"url": server.url}),
            (index_list, {"url": server.url + "simple/"}),
            (package_upload, upload_args(server.url, wheel["path"])),
        ):
            msg = one_sentence(run_module(module, {**FAST, **args}))
            assert server.url in msg and "accepted the connection but sent no answer within 0.5s" in msg, msg
            assert "raise read_timeout (pypi_read_timeout)" in msg
        # pip gets the larger of the two timeouts as --timeout; its message comes from the same direct request
        res = run_module(package_install, install_args(server.url + "simple/", tmp_path, **FAST))
        msg = one_sentence_or_pip(res)
        assert "sent no answer within" in msg or "did not answer in time" in msg, msg


def test_a_5xx(wheel, run_module):
    with BadServer("status", status=503) as server:
        msg = one_sentence(run_module(http_check, {"url": server.url, "wait": 0.5, **FAST}))
        assert f"{server.url} answered HTTP 503, expected [200]" in msg and "unavailable" in msg
        assert "gave up after" in msg
        msg = one_sentence(run_module(index_list, {"url": server.url + "simple/", **FAST}))
        assert "answered HTTP 503" in msg and "read its log" in msg
        res = run_module(package_upload, upload_args(server.url, wheel["path"]))
        msg = one_sentence(res)
        assert res["results"][0]["outcome"] == "server_error" and "(HTTP 503)" in msg, msg
        assert "unavailable" in msg


def test_an_html_page_with_no_links_is_not_an_index(wheel, run_module):
    with BadServer("html") as server:
        msg = one_sentence(run_module(index_list, {"url": server.url + "simple/", **FAST}))
        assert "is not a PyPI simple index" in msg and "with no links" in msg, msg
        assert "a project that cannot exist" in msg and "pypi_simple_url" in msg
        res = run_module(package_upload, upload_args(server.url, wheel["path"]))
        msg = one_sentence(res)
        assert "(HTTP 405)" in msg and "not a package index's upload endpoint" in msg, msg


def test_an_empty_pypiserver_is_still_an_index(pypiserver, run_module):
    """The check above must not turn an empty index into a failure (a false alarm is a bug too)."""
    res = run_module(index_list, {"url": pypiserver.simple_url, **FAST})
    assert not res.get("failed"), res
    assert res["links_found"] == 0 and res["missing_project_status"] in (404, 303)


def test_json_that_is_not_pep691(run_module):
    with BadServer("json") as server:
        msg = one_sentence(run_module(index_list, {"url": server.url + "simple/", **FAST}))
        assert "answered JSON that is not a PEP 691 simple index (no meta.api-version)" in msg, msg
        msg = one_sentence(run_module(http_check, {"url": server.url + "simple/", "expect_html": True, **FAST}))
        assert "'application/json', not HTML; this is not a PyPI index page" in msg, msg


def test_an_endless_page_is_cut_at_the_body_cap_not_read_into_memory(run_module):
    """A "page" without end (a misrouted URL serving a stream, a broken server) fails in one sentence once it passes
    http.BODY_CAP; the client stops reading there instead of filling the controller's memory."""
    with BadServer("flood") as server:
        msg = one_sentence(run_module(index_list, {"url": server.url + "simple/", **FAST}))
        assert (
            f"sent more than {httputil.BODY_CAP // 1048576} MiB in one answer" in msg and "not an index page" in msg
        ), msg
        assert server.sent < httputil.BODY_CAP + 16 * 1048576, server.sent  # the cap, plus what the socket buffers held


def test_a_redirect_loop(wheel, run_module):
    with BadServer("redirect_loop") as server:
        for module, args in ((http_check, {"url": server.url}), (index_list, {"url": server.url + "simple/"})):
            msg = one_sentence(run_module(module, {**FAST, **args}))
            assert "Too many redirects" in msg and "a redirect loop" in msg and "rewrite rules" in msg, msg
        assert server.requests <= 2 * 11  # bounded: at most 10 redirects followed per request


# --------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_proxy(pypiserver, certs):
    """A TLS-terminating proxy (certificate: ``certs.good``) in front of a real pypiserver: (proxy, server)."""
    with TLSProxy(pypiserver.url, Certs.server_context(certs.good)) as proxy:
        yield proxy, pypiserver


def test_tls_with_a_private_ca_fails_without_ca_path_and_says_how_to_fix(tls_proxy, wheel, run_module, tmp_path):
    proxy, server = tls_proxy
    for module, args in (
        (http_check, {"url": proxy.url}),
        (index_list, {"url": proxy.url + "simple/"}),
        (package_upload, upload_args(proxy.url, wheel["path"])),
    ):
        msg = one_sentence(run_module(module, {**FAST, **args}))
        assert f"TLS verification failed for {proxy.url}" in msg and "self-signed or from an unknown CA" in msg, msg
        assert "ca_path (pypi_ca_path)" in msg
    assert os.listdir(server.package_dir) == []  # nothing went through
    # pip: the same cause, found by asking the index directly
    res = run_module(package_install, install_args(proxy.url + "simple/", tmp_path))
    msg = one_sentence_or_pip(res)
    assert "self-signed or from an unknown CA" in msg and "ca_path" in msg, msg


def test_a_self_signed_certificate_fails_the_same_way(pypiserver, certs, run_module):
    with TLSProxy(pypiserver.url, Certs.server_context(certs.self_signed)) as proxy:
        msg = one_sentence(run_module(http_check, {"url": proxy.url, **FAST}))
    assert "self-signed or from an unknown CA" in msg and "ca_path" in msg


@pytest.fixture
def ca_bundle_env(monkeypatch):
    """REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE set to a public bundle, as on many CI machines: requests (in twine and pip)
    lets them override a session's CA, so --cert alone would be ignored."""
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())


def test_tls_with_ca_path_works_end_to_end_with_twine_and_pip(
    tls_proxy, certs, wheel, run_module, tmp_path, ca_bundle_env
):
    proxy, server = tls_proxy
    tls = {"ca_path": str(certs.ca), "connect_timeout": 5.0, "read_timeout": 30.0}
    res = run_module(http_check, {"url": proxy.url, **tls})
    assert not res.get("failed"), res
    res = run_module(package_upload, {"repository_url": proxy.url, "files": [wheel["path"]], **tls})
    assert not res.get("failed"), res
    assert res["results"][0]["outcome"] == "uploaded"
    assert os.path.exists(os.path.join(server.package_dir, wheel["filename"]))
    res = run_module(index_list, {"url": proxy.url + "simple/", "project": NAME, "verify_hashes": True, **tls})
    assert not res.get("failed"), res
    assert res["final_url"].startswith("https://localhost:")
    assert [d["sha256"] for d in res["downloads"]] == [wheel["sha256"]]
    res = run_module(
        package_install, install_args(proxy.url + "simple/", tmp_path, expected_sha256=wheel["sha256"], **tls)
    )
    assert not res.get("failed"), res
    assert res["resolved_url"].startswith(proxy.url) and res["sha256"] == wheel["sha256"]
    assert "--cert" in res["cmd"] and str(certs.ca) in res["cmd"]
    assert res.get("warnings") in (None, [])


def test_an_expired_certificate(pypiserver, certs, wheel, run_module):
    with TLSProxy(pypiserver.url, Certs.server_context(certs.expired)) as proxy:
        for module, args in (
            (http_check, {"url": proxy.url}),
            (index_list, {"url": proxy.url + "simple/"}),
            (package_upload, upload_args(proxy.url, wheel["path"])),
        ):
            msg = one_sentence(run_module(module, {**FAST, "ca_path": str(certs.ca), **args}))
            assert (
                proxy.url in msg and "TLS verification failed" in msg and "the server certificate has expired" in msg
            ), msg
            assert "renew it on the server" in msg


def test_a_certificate_for_another_host_name(pypiserver, certs, wheel, run_module):
    with TLSProxy(pypiserver.url, Certs.server_context(certs.other_host)) as proxy:
        for module, args in (
            (http_check, {"url": proxy.url}),
            (index_list, {"url": proxy.url + "simple/"}),
            (package_upload, upload_args(proxy.url, wheel["path"])),
        ):
            msg = one_sentence(run_module(module, {**FAST, "ca_path": str(certs.ca), **args}))
            assert "the certificate is not issued for the host name 'localhost'" in msg, msg
            assert "subjectAltName" in msg


def test_validate_certs_false_works_and_warns(tls_proxy, wheel, run_module, tmp_path, ca_bundle_env):
    proxy, server = tls_proxy
    insecure = {"validate_certs": False, "connect_timeout": 5.0, "read_timeout": 30.0}
    warning = "TLS certificates are NOT verified"
    res = run_module(http_check, {"url": proxy.url, **insecure})
    assert not res.get("failed") and warning in warnings_of(res), res
    res = run_module(package_upload, {"repository_url": proxy.url, "files": [wheel["path"]], **insecure})
    assert not res.get("failed"), res  # real twine, its session's verification off
    assert res["results"][0]["outcome"] == "uploaded" and warning in warnings_of(res)
    assert os.path.exists(os.path.join(server.package_dir, wheel["filename"]))
    res = run_module(index_list, {"url": proxy.url + "simple/", "project": NAME, **insecure})
    assert not res.get("failed") and warning in warnings_of(res), res
    res = run_module(package_install, install_args(proxy.url + "simple/", tmp_path, **insecure))
    assert not res.get("failed"), res
    assert "--trusted-host" in res["cmd"] and warning in warnings_of(res)


def test_plain_http_to_a_tls_port_and_tls_to_a_plain_port(tls_proxy, run_module):
    proxy, server = tls_proxy
    msg = one_sentence(run_module(http_check, {"url": proxy.url.replace("https://", "http://"), **FAST}))
    assert "closed the connection without an answer (if it speaks HTTPS, use https:// in the URL)" in msg, msg
    msg = one_sentence(run_module(http_check, {"url": server.url.replace("http://", "https://"), **FAST}))
    assert "does not speak TLS on that port" in msg, msg


# --------------------------------------------------------------------------- credentials


def test_wrong_credentials(auth_pypiserver, wheel, run_module):
    res = run_module(
        package_upload, upload_args(auth_pypiserver.url, wheel["path"], username="ci-user", password="not-it")
    )
    msg = one_sentence(res)
    assert res["results"][0]["outcome"] == "forbidden" and "(HTTP 403)" in msg
    assert "the credentials were refused" in msg and "pypi_password" in msg


def test_wrong_credentials_for_reading(pypiserver_factory, wheel, run_module, tmp_path):
    server = pypiserver_factory(auth_actions=("update", "list", "download"), username="ci-user", password="right-Pa55")
    msg = one_sentence(run_module(index_list, {"url": server.simple_url, "username": "ci-user", "password": "x"}))
    assert "answered HTTP 403" in msg and "the credentials were refused" in msg
    res = run_module(package_install, install_args(server.simple_url, tmp_path, username="ci-user", password="not-it"))
    msg = one_sentence_or_pip(res)
    assert "refused the credentials for user 'ci-user' (HTTP 403)" in msg, msg


def test_missing_credentials_where_auth_is_expected(pypiserver_factory, wheel, run_module, tmp_path):
    server = pypiserver_factory(auth_actions=("update", "list", "download"), username="ci-user", password="right-Pa55")
    # a user name without a password is no credential: the server must say 401 (wants credentials), not 403
    for creds in ({}, {"username": "ci-user", "password": ""}):
        res = run_module(package_upload, upload_args(server.url, wheel["path"], **creds))
        msg = one_sentence(res)
        assert res["results"][0]["outcome"] == "unauthorized" and "(HTTP 401)" in msg, msg
        assert "the server wants credentials for uploads" in msg and "pypi_username/pypi_password" in msg
        msg = one_sentence(run_module(index_list, {"url": server.simple_url, **creds}))
        assert "answered HTTP 401" in msg and "the server wants credentials" in msg
    res = run_module(package_install, install_args(server.simple_url, tmp_path, username="ci-user"))
    msg = one_sentence_or_pip(res)
    assert "wants credentials (HTTP 401) and none were given" in msg, msg


VERIFY = {"method": "POST", "form": {":action": "verify"}, "follow_redirects": False, "compare_anonymous": True}


def test_credentials_against_a_server_without_auth_are_a_warning(pypiserver, wheel, run_module):
    res = run_module(http_check, {"url": pypiserver.url, "username": "ci", "password": "unneeded-Pa55", **VERIFY})
    assert not res.get("failed"), res
    assert res["credentials_needed"] is False and res["anonymous_status"] == 200
    assert "Credentials were given, but" in warnings_of(res) and "does not authenticate" in warnings_of(res)
    # and the upload itself still works with them (a warning, not a failure)
    res = run_module(package_upload, upload_args(pypiserver.url, wheel["path"], username="ci", password="unneeded"))
    assert not res.get("failed"), res


def test_credentials_that_are_needed_give_no_warning(auth_pypiserver, run_module):
    creds = {"username": auth_pypiserver.username, "password": auth_pypiserver.password}
    res = run_module(http_check, {"url": auth_pypiserver.url, **creds, **VERIFY})
    assert not res.get("failed"), res
    assert res["credentials_needed"] is True and res["anonymous_status"] == 401
    assert res.get("warnings") in (None, [])
    # wrong ones: the check itself reports the refusal (the connection test records it without failing)
    res = run_module(http_check, {"url": auth_pypiserver.url, "username": "ci-user", "password": "x", **VERIFY})
    assert "answered HTTP 403" in one_sentence(res) and res["status"] == 403
    # no password: nothing to compare
    res = run_module(http_check, {"url": auth_pypiserver.url, "status": [401], **VERIFY})
    assert not res.get("failed") and "credentials_needed" not in res, res


# --------------------------------------------------------------------------- 413


@pytest.mark.parametrize("client", ["twine", "http"])
def test_an_upload_refused_for_its_body_size_names_the_limit(client, pypiserver, big_wheel, run_module):
    with FaultProxy(pypiserver.url, max_body=512 * 1024) as proxy:
        res = run_module(package_upload, upload_args(proxy.url, big_wheel["path"], client=client))
    msg = one_sentence(res)
    assert res["results"][0]["outcome"] == "too_large" and "(HTTP 413)" in msg, msg
    assert "nginx.ingress.kubernetes.io/proxy-body-size" in msg and "client_max_body_size" in msg


# --------------------------------------------------------------------------- the sentences themselves


def test_describe_error_never_shows_credentials():
    import requests

    exc = requests.exceptions.ConnectionError("Failed to establish a new connection: [Errno 111] Connection refused")
    msg = httputil.describe_error(exc, "http://user:s3cret@127.0.0.1:1/")
    assert "s3cret" not in msg and "user" not in msg and "http://127.0.0.1:1/" in msg
