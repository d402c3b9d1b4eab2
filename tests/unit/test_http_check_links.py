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
