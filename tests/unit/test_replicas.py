"""Replicas: the nginx front (module_utils/front.py, modules/local_front.py) and the read-after-write check
(module_utils/replicas.py, modules/replica_check.py).

The configuration and the messages are tested as pure functions. The front runs for real (Debian's nginx) before
two stdlib HTTP servers that say who they are; the check runs against real pypiserver processes (simple-dir, so
what is in a package directory is what is listed): one has the file, the other gets it late or never.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import front
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import replicas as rep
from ansible_collections.pypi_ops.pypiserver.plugins.modules import local_front, replica_check

WHEEL = "repprobe-1.0.0-py3-none-any.whl"
SHA = "ab" * 32


# ------------------------------------------------------------------ pure pieces


def test_conf_round_robin_over_every_replica_without_body_limit():
    conf = front.render_conf(40000, ["http://127.0.0.1:40001/", "http://127.0.0.1:40002"], "/tmp/f")
    assert "listen 127.0.0.1:40000;" in conf
    assert "server 127.0.0.1:40001 max_fails=0;" in conf and "server 127.0.0.1:40002 max_fails=0;" in conf
    # round robin is nginx's default: no other balancing method may sneak in
    for method in ("least_conn", "ip_hash", "hash ", "random"):
        assert method not in conf
    for line in ("client_max_body_size 0;", "proxy_request_buffering off;", "proxy_read_timeout 600s;", "daemon off;"):
        assert line in conf
    assert "pid /tmp/f/nginx.pid;" in conf and "client_body_temp_path /tmp/f/tmp/client_body;" in conf
    assert "user " not in conf
    assert front.render_conf(40000, ["http://127.0.0.1:1/"], "/tmp/f", user="root").startswith("# ")
    assert "\nuser root;\n" in front.render_conf(40000, ["http://127.0.0.1:1/"], "/tmp/f", user="root")


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1:1/", "http://127.0.0.1/", "http://127.0.0.1:1/simple/", "127.0.0.1:1", ""]
)
def test_conf_refuses_what_nginx_could_not_proxy_to(url):
    with pytest.raises(ls.ServerError) as err:
        front.render_conf(40000, [url], "/tmp/f")
    assert "is not of the form http://HOST:PORT/" in err.value.msg and "\n" not in err.value.msg


def test_conf_needs_replicas_and_a_port():
    with pytest.raises(ls.ServerError, match="at least one replica"):
        front.render_conf(40000, [], "/tmp/f")
    with pytest.raises(ls.ServerError, match="out of range"):
        front.render_conf(0, ["http://127.0.0.1:1/"], "/tmp/f")


def test_judge_a_project_page():
    entry = {"filename": WHEEL, "hash_algo": "sha256", "hash_digest": SHA}
    assert rep.judge([entry], WHEEL, SHA)[0] == "ok"
    assert rep.judge([entry], WHEEL, SHA.upper())[0] == "ok"
    assert rep.judge([], WHEEL, SHA) == ("missing", f"does not list {WHEEL}")
    state, detail = rep.judge([dict(entry, hash_digest="cd" * 32)], WHEEL, SHA)
    assert state == "differing" and "cdcdcdcdcdcd" in detail
    assert rep.judge([dict(entry, hash_algo="md5")], WHEEL, SHA)[0] == "differing"


def test_stale_message_names_each_stale_replica_and_the_fix():
    one = rep.stale_message([{"url": "http://h:2/", "state": "missing", "detail": "answers 404 for p"}], 2, WHEEL, 30)
    assert one.startswith("1 of 2 replicas is stale: ") and "http://h:2/ answers 404 for p" in one
    assert "after 30s" in one and "it serves a listing from before the upload" in one
    assert "--backend simple-dir" in one and "replicaCount > 1" in one and "\n" not in one
    two = rep.stale_message(
        [
            {"url": "http://h:2/", "state": "missing", "detail": "does not list x"},
            {"url": "http://h:3/", "state": "error", "detail": "Connection refused by http://h:3/simple/p/"},
        ],
        3,
        WHEEL,
        5,
    )
    assert two.startswith("2 of 3 replicas are stale: ") and "http://h:2/" in two and "http://h:3/" in two
    assert "they do not answer with the project page" in two


# ------------------------------------------------------------------ the front, for real


def _nginx():
    if front.nginx_binary():
        return
    reason = "nginx is not installed (Debian: apt-get install nginx)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class _Named(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _answer(self, body: bytes):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer(self.server.name.encode())

    def do_POST(self):
        left, got = int(self.headers.get("Content-Length", "0")), 0
        while left:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            got, left = got + len(chunk), left - len(chunk)
        self._answer(f"{self.server.name} {got}".encode())


@pytest.fixture
def named_servers():
    servers = []
    for name in ("A", "B"):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), _Named)
        srv.name = name
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    yield [f"http://127.0.0.1:{s.server_address[1]}/" for s in servers]
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_front_sends_requests_round_robin_and_streams_big_bodies(tmp_path, named_servers, run_module):
    _nginx()
    state_dir = str(tmp_path / "front")
    started = run_module(local_front, {"state_dir": state_dir, "upstreams": named_servers})
    try:
        assert not started.failed, started
        url = started["front"]["url"]
        seen = [urllib.request.urlopen(url + "simple/", timeout=10).read().decode() for _ in range(6)]
        assert sorted(seen) == ["A"] * 3 + ["B"] * 3 and seen[0] != seen[1], seen
        body = os.urandom(3 * 1024 * 1024)  # nginx's default client_max_body_size is 1m: 413 without our 0
        req = urllib.request.Request(url + "upload", data=body, method="POST")
        answer = urllib.request.urlopen(req, timeout=30).read().decode()
        assert answer.split()[1] == str(len(body)), answer
        again = run_module(local_front, {"state_dir": state_dir, "upstreams": named_servers})
        assert again["changed"] is False and again["front"]["pid"] == started["front"]["pid"]
    finally:
        stopped = run_module(local_front, {"state": "stopped", "state_dir": state_dir})
    assert stopped["changed"] is True and not ls.pid_alive(started["front"]["pid"])


def test_front_refuses_bad_upstreams_in_one_sentence(tmp_path, run_module):
    out = run_module(local_front, {"state_dir": str(tmp_path), "upstreams": ["ftp://x/"]})
    assert out.failed and "is not of the form http://HOST:PORT/" in out["msg"]
    out = run_module(local_front, {"state_dir": str(tmp_path)})
    assert out.failed and "needs upstreams" in out["msg"]


# ------------------------------------------------------------------ the check, against real pypiservers


def _wheel(directory: str, content: bytes = b"a wheel") -> str:
    with open(os.path.join(directory, WHEEL), "wb") as handle:
        handle.write(content)
    return hashlib.sha256(content).hexdigest()


def test_check_names_the_replica_that_never_lists_the_file(pypiserver_factory, run_module):
    fresh, stale = pypiserver_factory(), pypiserver_factory()
    sha = _wheel(fresh.package_dir)
    t0 = time.monotonic()
    out = run_module(
        replica_check,
        {"replicas": [fresh.url, stale.url], "project": "repprobe", "filename": WHEEL, "sha256": sha, "wait": 1},
    )
    assert out.failed and out["stale"] == [stale.url], out
    assert out["msg"].startswith("1 of 2 replicas is stale: ") and f"{stale.url} answers 404 for repprobe" in out["msg"]
    assert fresh.url not in out["msg"]
    assert 1 <= time.monotonic() - t0 < 10  # it waited, and no longer than asked
    states = {r["url"]: r["state"] for r in out["replicas"]}
    assert states == {fresh.url: "ok", stale.url: "missing"}


def test_check_names_a_replica_with_another_hash(pypiserver_factory, run_module):
    good, other = pypiserver_factory(), pypiserver_factory()
    sha = _wheel(good.package_dir)
    _wheel(other.package_dir, b"other bytes")
    out = run_module(
        replica_check,
        {"replicas": [good.url, other.url], "project": "repprobe", "filename": WHEEL, "sha256": sha, "wait": 0},
    )
    assert out.failed and out["stale"] == [other.url] and "instead of" in out["msg"], out


def test_check_waits_for_a_late_replica(pypiserver_factory, run_module):
    first, late = pypiserver_factory(), pypiserver_factory()
    sha = _wheel(first.package_dir)
    timer = threading.Timer(0.8, shutil.copy, (os.path.join(first.package_dir, WHEEL), late.package_dir))
    timer.start()
    try:
        out = run_module(
            replica_check,
            {"replicas": [first.url, late.url], "project": "repprobe", "filename": WHEEL, "sha256": sha, "wait": 20},
        )
    finally:
        timer.cancel()
    assert not out.failed and out["stale"] == [], out
    seconds = {r["url"]: r["seconds"] for r in out["replicas"]}
    assert seconds[first.url] < 0.8 <= seconds[late.url] < 20, seconds


def test_check_bad_input(run_module):
    out = run_module(replica_check, {"replicas": [" "], "project": "p", "filename": WHEEL, "sha256": SHA, "wait": 1})
    assert out.failed and "replicas is empty" in out["msg"]
    out = run_module(
        replica_check,
        {"replicas": ["http://127.0.0.1:1/"], "project": "p", "filename": WHEEL, "sha256": SHA, "wait": -1},
    )
    assert out.failed and "wait is -1" in out["msg"]
