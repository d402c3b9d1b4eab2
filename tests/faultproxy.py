"""A real HTTP reverse proxy on 127.0.0.1 that breaks a real pypiserver behind it, on purpose.

It is not a mock of the server under test: every request reaches the real pypiserver, and the
proxy then misbehaves the way broken deployments do, so the tests can prove the verifier notices:

- ``hide``: drop index links whose href matches a regex (a version missing from /simple/);
- ``corrupt``: flip bytes in file downloads whose path matches (the wrong bytes served);
- ``swap``: ``(pattern, replacement)``: a file download whose path matches gets another stored
  file's bytes under its own name (``re.sub`` on the path: the wrong file served for a version);
- ``max_body``: answer 413 to request bodies larger than N bytes (an ingress body-size limit);
- ``die_after``: stop listening after N requests (the server dying in the middle of a run);
- ``refuse_agent``: answer 403 to uploads (POST) whose User-Agent matches a regex, after reading the body
  (a web application firewall that blocks one client);
- ``stall_body``: ``(pattern, nbytes)``: a file download whose path matches sends its headers and its first
  ``nbytes`` bytes (at most half the file), then nothing more, holding the connection open (a wedged proxy, a dying disk);
- ``stall_upload``: read only the first N bytes of an upload's body, then stop reading, holding the connection;
- ``hang_after``: from request N+1 on, read the request and never answer, holding the connection (a server
  that stopped answering but still accepts connections);
- ``strip_auth``: drop the Authorization header of requests whose path matches a regex (a client, or a proxy in
  between, that does not send the credentials on file downloads); the paths it stripped are in ``stripped``;
- ``swallow_uploads``: read every upload (POST) and answer 200 without forwarding it (a proxy or cache that
  acknowledges uploads the index never stores); ``swallowed`` counts them.

Held connections are released when the proxy stops.
"""

from __future__ import annotations

import http.client
import re
import socket
import sys
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.helpers import relay_body

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        hide: str | None = None,
        corrupt: str | None = None,
        max_body: int | None = None,
        die_after: int | None = None,
        swap: tuple[str, str] | None = None,
        refuse_agent: str | None = None,
        stall_body: tuple[str, int] | None = None,
        stall_upload: int | None = None,
        hang_after: int | None = None,
        strip_auth: str | None = None,
        swallow_uploads: bool = False,
    ):
        self.swallow_uploads = swallow_uploads
        self.swallowed = 0
        self.strip_auth = re.compile(strip_auth) if strip_auth else None
        self.stripped: list[str] = []
        self.stall_body = (re.compile(stall_body[0]), stall_body[1]) if stall_body else None
        self.stall_upload = stall_upload
        self.hang_after = hang_after
        self.stalled: list[str] = []
        self.stopping = threading.Event()
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.hide = re.compile(hide) if hide else None
        self.corrupt = re.compile(corrupt) if corrupt else None
        self.max_body = max_body
        self.die_after = die_after
        self.swap = (re.compile(swap[0]), swap[1]) if swap else None
        self.swapped: list[str] = []
        self.refuse_agent = re.compile(refuse_agent, re.I) if refuse_agent else None
        self.refused: list[str] = []
        self.requests = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: t.Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.handle(self)

            do_POST = do_GET
            do_HEAD = do_GET

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: t.Any, client_address: t.Any) -> None:
                # a client that hangs up (or a dying proxy) is part of the game; anything else is a proxy bug
                if not isinstance(sys.exc_info()[1], OSError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *_exc: t.Any) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()  # releases the held connections
        try:
            self.server.shutdown()
        finally:
            self.server.server_close()

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.requests += 1
            count = self.requests
        if self.die_after is not None and count > self.die_after:
            req.close_connection = True
            threading.Thread(target=self.stop, daemon=True).start()
            try:
                req.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        length = int(req.headers.get("Content-Length") or 0)
        if self.hang_after is not None and count > self.hang_after:
            relay_body(req, None, length)
            self._hold(req)
            return
        if self.stall_upload is not None and req.command == "POST" and length > self.stall_upload:
            relay_body(req, None, self.stall_upload)
            self._hold(req)
            return
        if self.max_body is not None and length > self.max_body:
            body = b"<html><body><h1>413 Request Entity Too Large</h1></body></html>"
            req.send_response(413)
            req.send_header("Content-Type", "text/html")
            req.send_header("Content-Length", str(len(body)))
            req.send_header("Connection", "close")
            req.end_headers()
            req.wfile.write(body)
            req.close_connection = True
            return
        agent = req.headers.get("User-Agent", "")
        if self.refuse_agent is not None and req.command == "POST" and self.refuse_agent.search(agent):
            relay_body(req, None, length)
            with self.lock:
                self.refused.append(agent)
            body = b"<html><body><h1>403 Forbidden</h1><pre>Request blocked by policy</pre></body></html>"
            req.send_response(403)
            req.send_header("Content-Type", "text/html")
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body)
            return
        if self.swallow_uploads and req.command == "POST":
            relay_body(req, None, length)
            with self.lock:
                self.swallowed += 1
            req.send_response(200)
            req.send_header("Content-Type", "text/plain")
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP}
        if self.strip_auth is not None and self.strip_auth.search(req.path.split("?")[0]):
            auth = [k for k in headers if k.lower() == "authorization"]
            for key in auth:
                del headers[key]
            if auth:
                with self.lock:
                    self.stripped.append(req.path)
        upstream_path = req.path
        if self.swap is not None and req.path.startswith("/packages/") and self.swap[0].search(req.path):
            upstream_path = self.swap[0].sub(self.swap[1], req.path)
            with self.lock:
                self.swapped.append(req.path)
        conn.putrequest(req.command, upstream_path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        relay_body(req, conn, length)
        resp = conn.getresponse()
        path = req.path.split("?")[0]
        rewrite = self.hide is not None and path.startswith("/simple/") and resp.status == 200
        if rewrite:
            text = resp.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(True) if not (self.hide.search(line) and "<a " in line)]
            data = "".join(kept).encode()
            self._send(req, resp, data)
        elif self.stall_body is not None and path.startswith("/packages/") and self.stall_body[0].search(path):
            self._headers(req, resp, set())
            req.end_headers()
            size = int(resp.getheader("Content-Length") or 0)
            req.wfile.write(resp.read(min(self.stall_body[1], size // 2)))  # never the whole file
            req.wfile.flush()
            with self.lock:
                self.stalled.append(path)
            self._hold(req)
        elif self.corrupt is not None and path.startswith("/packages/") and self.corrupt.search(path):
            data = bytearray(resp.read())
            if data:
                data[len(data) // 2] ^= 0xFF
            self._send(req, resp, bytes(data))
        else:
            self._send_stream(req, resp)
        conn.close()

    def _hold(self, req: BaseHTTPRequestHandler) -> None:
        """Keep the connection open, sending nothing, until the proxy stops."""
        self.stopping.wait()
        req.close_connection = True
        try:
            req.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @staticmethod
    def _headers(req: BaseHTTPRequestHandler, resp: http.client.HTTPResponse, skip: set[str]) -> None:
        req.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in HOP | skip:
                req.send_header(key, value)

    def _send(self, req: BaseHTTPRequestHandler, resp: http.client.HTTPResponse, data: bytes) -> None:
        self._headers(req, resp, {"content-length"})
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if req.command != "HEAD":
            req.wfile.write(data)

    def _send_stream(self, req: BaseHTTPRequestHandler, resp: http.client.HTTPResponse) -> None:
        length = resp.getheader("Content-Length")
        self._headers(req, resp, set())
        if length is None:
            req.send_header("Connection", "close")
            req.close_connection = True
        req.end_headers()
        if req.command == "HEAD":
            return
        while True:
            block = resp.read(1 << 20)
            if not block:
                break
            req.wfile.write(block)
