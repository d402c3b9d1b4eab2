"""http_check follow_links: the web_ui test's check that a root page leads to /simple/ and /packages/."""

from __future__ import annotations

import http.server
import threading

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.modules import http_check

LINKS = ["/simple/", "/packages/"]


def test_pypiserver_root_page_leads_to_simple_and_packages(auth_pypiserver, run_module):
    creds = {"username": auth_pypiserver.username, "password": auth_pypiserver.password}
    res = run_module(http_check, {"url": auth_pypiserver.url, "expect_html": True, "follow_links": LINKS, **creds})
    assert not res.failed, res
    assert [(f["path"], f["status"]) for f in res["followed"]] == [("/simple/", 200), ("/packages/", 200)]
    assert res["followed"][0]["url"] == auth_pypiserver.url + "simple/"


def test_links_that_need_credentials_fail_without_them(pypiserver_factory, run_module):
    # pypiserver serves / to anyone, but /simple/ and /packages/ need the credentials when listing is protected
    server = pypiserver_factory(auth_actions=("update", "download", "list"), username="ci-user", password="pw-123456")
    res = run_module(http_check, {"url": server.url, "follow_links": LINKS})
    assert res.failed and "answered HTTP 401" in res["msg"] and "does not lead where it should" in res["msg"], res
    creds = {"username": server.username, "password": server.password}
    assert not run_module(http_check, {"url": server.url, "follow_links": LINKS, **creds}).failed


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/":
            body = b'<html><a href="/simple/">simple</a> <a href="/gone/packages/">here</a></html>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
        else:
            body = b"nope"
            self.send_response(404 if self.path.startswith("/gone/") else 200)
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def page_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_broken_or_missing_link_fails_naming_it(page_server, run_module):
    res = run_module(http_check, {"url": page_server, "follow_links": [*LINKS, "/docs/"]})
    assert res.failed
    assert "/gone/packages/ answered HTTP 404" in res["msg"] and "no link to /docs/" in res["msg"]
    assert [f["status"] for f in res["followed"]] == [200, 404, None]


# skip_non_html (the web_ui test's view of a root): real servers from tests/badservers.py
WEB_UI = {"expect_html": True, "skip_non_html": True, "follow_links": LINKS}


def test_json_root_is_a_named_skip_not_a_failure(run_module):
    from tests.badservers import BadServer

    with BadServer("json") as server:
        res = run_module(http_check, {"url": server.url, **WEB_UI})
        assert not res.failed, res
        assert res["html"] is False and "followed" not in res
        assert "Content-Type 'application/json'" in res["skip_reason"] and "no web page" in res["skip_reason"]
        # without skip_non_html the same root still fails, as before
        res = run_module(http_check, {"url": server.url, "expect_html": True, "follow_links": LINKS})
        assert res.failed and "not HTML" in res["msg"], res


@pytest.mark.parametrize("status", [404, 500])
def test_error_root_still_fails_with_skip_non_html(run_module, status):
    from tests.badservers import BadServer

    with BadServer("status", status=status) as server:
        res = run_module(http_check, {"url": server.url, **WEB_UI})
        assert res.failed and f"answered HTTP {status}" in res["msg"], res


def test_broken_link_on_html_root_still_fails_with_skip_non_html(page_server, run_module):
    res = run_module(http_check, {"url": page_server, **WEB_UI})
    assert res.failed and "does not lead where it should" in res["msg"] and "/gone/packages/" in res["msg"], res


def test_html_root_is_checked_as_before_with_skip_non_html(pypiserver, run_module):
    res = run_module(http_check, {"url": pypiserver.url, **WEB_UI})
    assert not res.failed and res["html"] is True and "skip_reason" not in res, res
    assert [f["status"] for f in res["followed"]] == [200, 200]
