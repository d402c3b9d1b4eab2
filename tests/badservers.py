"""Real servers on 127.0.0.1 that fail the way broken or wrong deployments do, for the bad-input tests.

Nothing here stands in for pypiserver: each helper is either a real server with a real fault (a port
that accepts and never answers, one that answers too late, a 5xx, a page that is not an index, a
redirect loop) or a real TLS-terminating reverse proxy in front of a real pypiserver, with
certificates made by the test (``make_certs``): a private CA, a server certificate it signed, an
expired one, one for another host name.

Every server is a context manager; ``stop()`` ends its accept loop, shuts down every connection it
holds and joins every thread it started (the handler threads included), so nothing outlives a test.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from tests.helpers import relay_body

# A host name that can never resolve (RFC 6761 reserves .invalid).
UNRESOLVABLE_HOST = "pypi-ops-no-such-host.invalid"
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}
# What a web server's default page looks like: HTML, a title, no links at all.
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>\n"
# JSON, but not a PEP 691 document (no meta.api-version): a health or status API at the URL.
JSON_DOC = json.dumps({"status": "ok", "service": "something-else", "version": "3.2.1"}).encode()


class _Server(ThreadingHTTPServer):
    """A threading HTTP(S) server on 127.0.0.1 that can be stopped completely.

    Handler threads are not daemons and are joined at close; every accepted connection is tracked so
    that ``stop`` can shut it down and wake a handler blocked on it. With ``tls`` the TLS handshake
    happens in the handler thread (a client that never finishes it cannot block the accept loop).
    """

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None):
        self.tls = tls
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(sock)
            else:
                self._conns.discard(sock)

    def finish_request(self, request: t.Any, client_address: t.Any) -> None:
        self._track(request, True)
        conn = request
        try:
            if self.tls is not None:
                request.settimeout(10)
                try:
                    conn = self.tls.wrap_socket(request, server_side=True)
                except OSError:  # the client refused our certificate, or went away: nothing to serve
                    return
                self._track(conn, True)
                conn.settimeout(None)
            if self.stopping.is_set():
                return
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            self._track(request, False)
            if conn is not request:
                self._track(conn, False)
                with contextlib.suppress(OSError):
                    conn.close()

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        pass  # a client that hung up is normal here; never print a traceback into the test output

    def shutdown_all(self) -> None:
        self.stopping.set()
        with self._conns_lock:
            conns = list(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Managed:
    """Start/stop of a ``_Server`` in its own thread; a context manager."""

    scheme = "http"

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None, host: str = ""):
        self.server = _Server(handler, tls)
        self.server.owner = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://{host or '127.0.0.1'}:{self.port}/"
        self.requests = 0
        self._count_lock = threading.Lock()
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._started = False

    def count(self) -> int:
        with self._count_lock:
            self.requests += 1
            return self.requests

    def start(self) -> _Managed:
        self._thread.start()
        self._started = True
        return self

    def __enter__(self) -> t.Any:
        return self.start()

    def __exit__(self, *_exc: t.Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self._started:
            self.server.shutdown()  # the accept loop ends
            self._thread.join(10)
            self._started = False
        self.server.shutdown_all()  # wake every handler blocked on a connection
        self.server.server_close()  # joins the handler threads


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection does not hold a thread for long

    def log_message(self, *_args: t.Any) -> None:
        pass

    @property
    def owner(self) -> t.Any:
        return self.server.owner  # type: ignore[attr-defined]

    def _drain(self) -> None:
        relay_body(self, None, int(self.headers.get("Content-Length") or 0))

    def _answer(
        self, status: int, body: bytes, ctype: str = "text/html", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class BadServer(_Managed):
    """A real HTTP server with one fault, for every path and method.

    - ``silent``: accepts connections, reads nothing, never answers (a hung server);
    - ``slow``: reads the request, answers 200 only after ``delay`` seconds (past any small read timeout);
    - ``status``: answers ``status`` (default 503) with a small HTML error page;
    - ``html``: GET answers 200 with an HTML page without a single link, POST 405 (a web server's default page);
    - ``json``: GET answers 200 with JSON that is not a PEP 691 document, POST 405 (a status API);
    - ``redirect_loop``: answers 302 from ``/loop-a`` to ``/loop-b`` and back, from any other path to ``/loop-a``;
    - ``trickle``: answers 200 with a Content-Length of 1 MiB and sends 1 KiB every ``delay`` seconds (a link that
      is slow but moving: never a stall);
    - ``flood``: GET answers 200 text/html, chunked, with links without end (up to 1 GiB) as fast as the client
      reads; ``sent`` counts the bytes it got rid of.

    ``tls`` (an ``ssl.SSLContext`` from ``Certs.server_context``) serves the same over HTTPS.
    """

    BEHAVIOURS = ("silent", "slow", "status", "html", "json", "redirect_loop", "trickle", "flood")

    def __init__(
        self,
        behaviour: str,
        status: int = 503,
        delay: float = 30.0,
        tls: ssl.SSLContext | None = None,
        host: str = "",
    ):
        if behaviour not in self.BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; one of {self.BEHAVIOURS}")
        self.behaviour = behaviour
        self.status = status
        self.delay = delay
        self.sent = 0

        class Handler(_Handler):
            def handle(self) -> None:
                if self.owner.behaviour == "silent":
                    self.owner.count()
                    self.server.stopping.wait(120)  # hold the connection, answer nothing
                    return
                super().handle()

            def do_GET(self) -> None:
                self.owner.respond(self)

            do_POST = do_GET
            do_HEAD = do_GET
            do_PUT = do_GET

        super().__init__(Handler, tls, host)

    def respond(self, req: _Handler) -> None:
        self.count()
        req._drain()
        if self.behaviour == "slow":
            if req.server.stopping.wait(self.delay):
                req.close_connection = True
                return
            req._answer(200, HTML_PAGE)
        elif self.behaviour == "trickle":
            req.send_response(200)
            req.send_header("Content-Type", "application/octet-stream")
            req.send_header("Content-Length", str(1 << 20))
            req.end_headers()
            sent = 0
            while sent < (1 << 20) and not req.server.stopping.wait(self.delay):
                try:
                    req.wfile.write(b"x" * 1024)
                    req.wfile.flush()
                except OSError:
                    break
                sent += 1024
            req.close_connection = True
        elif self.behaviour == "flood":
            req.send_response(200)
            req.send_header("Content-Type", "text/html")
            req.send_header("Transfer-Encoding", "chunked")
            req.end_headers()
            line = b'<a href="/packages/flood-1.0.tar.gz#sha256=' + b"0" * 64 + b'">flood-1.0.tar.gz</a><br>\n'
            block = line * (65536 // len(line))
            chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
            while self.sent < (1 << 30) and not req.server.stopping.is_set():
                try:
                    req.wfile.write(chunk)
                except OSError:
                    break
                self.sent += len(block)
            req.close_connection = True
        elif self.behaviour == "status":
            req._answer(self.status, f"<html><body><h1>{self.status} Server Error</h1></body></html>".encode())
        elif self.behaviour in ("html", "json"):
            if req.command not in ("GET", "HEAD"):
                req._answer(405, b"<html><body><h1>405 Not Allowed</h1></body></html>", headers={"Allow": "GET, HEAD"})
            elif self.behaviour == "html":
                req._answer(200, HTML_PAGE)
            else:
                req._answer(200, JSON_DOC, "application/json")
        else:  # redirect_loop
            target = "/loop-b" if req.path.startswith("/loop-a") else "/loop-a"
            req._answer(302, b"", headers={"Location": target})


@contextlib.contextmanager
def refusing_port() -> t.Iterator[int]:
    """A 127.0.0.1 port that refuses connections: bound (so no one else takes it) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


class TLSProxy(_Managed):
    """A TLS-terminating reverse proxy on 127.0.0.1 in front of a real (plain HTTP) server.

    Requests and responses are passed through unchanged, streamed both ways; the upstream is told the
    original scheme and host (``X-Forwarded-Proto``/``X-Forwarded-Host``) as an ingress does. ``host``
    is the name the URL uses (``localhost`` matches the certificates of ``make_certs``).
    """

    def __init__(self, upstream: str, tls: ssl.SSLContext, host: str = "localhost"):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)

        class Handler(_Handler):
            def do_GET(self) -> None:
                self.owner.forward(self)

            do_POST = do_GET
            do_HEAD = do_GET

        super().__init__(Handler, tls, host)

    def forward(self, req: _Handler) -> None:
        self.count()
        length = int(req.headers.get("Content-Length") or 0)
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.putrequest(req.command, req.path, skip_host=True, skip_accept_encoding=True)
            for key, value in req.headers.items():
                if key.lower() not in HOP | {"x-forwarded-proto", "x-forwarded-host"}:
                    conn.putheader(key, value)
            conn.putheader("X-Forwarded-Proto", "https")
            conn.putheader("X-Forwarded-Host", req.headers.get("Host", ""))
            conn.endheaders()
            relay_body(req, conn, length)
            resp = conn.getresponse()
            size = resp.getheader("Content-Length")
            req.send_response(resp.status, resp.reason)
            for key, value in resp.getheaders():
                if key.lower() not in HOP:
                    req.send_header(key, value)
            if size is None:
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
        except OSError:
            req.close_connection = True  # upstream gone: drop the connection, the client reports it
        finally:
            conn.close()


# ---------------------------------------------------------------- certificates


class Certs(t.NamedTuple):
    """PEM files: a private CA, and server certificates (each with its key) for the cases to test."""

    ca: Path  # the CA certificate: what ca_path / pypi_ca_path is given
    good: tuple[Path, Path]  # signed by the CA, for localhost and 127.0.0.1, valid now
    expired: tuple[Path, Path]  # signed by the CA, for localhost and 127.0.0.1, expired yesterday
    other_host: tuple[Path, Path]  # signed by the CA, valid now, for another host name only
    self_signed: tuple[Path, Path]  # a leaf that signed itself, for localhost and 127.0.0.1

    @staticmethod
    def server_context(pair: tuple[Path, Path]) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pair[0]), str(pair[1]))
        return ctx


def make_certs(directory: Path) -> Certs:
    """Generate the CA and the server certificates into ``directory`` with the ``cryptography`` package."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pypi_ops tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, common),
            ]
        )

    def write(stem: str, cert: x509.Certificate, key: t.Any = None) -> tuple[Path, Path]:
        cert_path = directory / f"{stem}.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = directory / f"{stem}.key"
        if key is not None:
            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
            key_path.chmod(0o600)
        return cert_path, key_path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("pypi_ops test CA"))
        .issuer_name(name("pypi_ops test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + 30 * day)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, _ = write("ca", ca_cert)

    def leaf(stem: str, hosts: list[str], start: datetime.datetime, end: datetime.datetime, self_signed: bool = False):
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        issuer_key, issuer_name = (key, name(hosts[0])) if self_signed else (ca_key, ca_cert.subject)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(hosts[0]))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        )
        return write(stem, builder.sign(issuer_key, hashes.SHA256()), key)

    local = ["localhost", "127.0.0.1"]
    return Certs(
        ca=ca_path,
        good=leaf("server", local, now - day, now + 30 * day),
        expired=leaf("expired", local, now - 30 * day, now - day),
        other_host=leaf("other-host", ["pypi.other-host.invalid"], now - day, now + 30 * day),
        self_signed=leaf("self-signed", local, now - day, now + 30 * day, self_signed=True),
    )


# ---------------------------------------------------------------- real index layouts (issue 16, part 6)


def _relay(req: _Handler, upstream: tuple[str, int], path: str) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """Send ``req`` (method, headers, body streamed) to ``upstream`` at ``path``; (status, reason, headers, body)."""
    length = int(req.headers.get("Content-Length") or 0)
    conn = http.client.HTTPConnection(*upstream, timeout=60)
    try:
        conn.putrequest(req.command, path, skip_host=True, skip_accept_encoding=True)
        for key, value in req.headers.items():
            if key.lower() not in HOP | {"content-length"}:
                conn.putheader(key, value)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        relay_body(req, conn, length)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.reason, resp.getheaders(), data
    finally:
        conn.close()


def _send(req: _Handler, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
    req.send_response(status, reason)
    head = req.command == "HEAD"  # keeps the upstream's Content-Length: the size of the body a GET gets
    for key, value in headers:
        if head or key.lower() not in HOP | {"content-length"}:
            req.send_header(key, value)
    if not head:
        req.send_header("Content-Length", str(len(data)))
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(data)


class FileHost(_Managed):
    """Another origin (``localhost`` on its own port) that serves a real pypiserver's files, as a CDN or object store.

    ``GET /files/<file>`` answers the bytes of the upstream's ``/packages/<file>``; with ``corrupt`` the bytes are
    altered (one byte flipped: the wrong file behind an advertised URL). Every other path is relayed unchanged, so
    that ``/simple/<name>/`` here is a real project page served by a foreign origin (a foreign index). ``served``
    lists the paths it answered.
    """

    def __init__(self, upstream: str, corrupt: bool = False, host: str = "localhost"):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.corrupt = corrupt
        self.served: list[str] = []

        class Handler(_Handler):
            def do_GET(self) -> None:
                self.owner.respond(self)

            do_HEAD = do_GET

        super().__init__(Handler, None, host)

    def respond(self, req: _Handler) -> None:
        self.count()
        path = req.path
        self.served.append(path)
        is_file = path.startswith("/files/")
        status, reason, headers, data = _relay(req, self.upstream, "/packages/" + path[7:] if is_file else path)
        if is_file and status == 200 and self.corrupt and data:
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0xFF
            data = bytes(flipped)
        _send(req, status, reason, headers, data)


_HREF_ATTR = re.compile(r'href="([^"]*)"')


class LayoutIndex(_Managed):
    """A real pypiserver behind a front that lays the index out the way other real indexes do.

    - ``absolute``: project pages link every file by an absolute URL on ``files`` (another origin), as PyPI links
      files.pythonhosted.org;
    - ``redirect``: project pages are unchanged, and a file URL answers 302 to the same file on ``files``, as
      Artifactory redirects to object storage;
    - ``foreign_page``: a project page answers 302 to the same page on ``files`` (another index: a fallback);
    - ``api_root``: ``GET /`` answers JSON (an API-only server without a web page);
    - ``root_500``: ``GET /`` answers 500.

    Everything else (uploads to ``/``, ``/simple/``, ``/health``) is relayed to the pypiserver unchanged.
    """

    LAYOUTS = ("absolute", "redirect", "foreign_page", "api_root", "root_500")

    def __init__(self, upstream: str, layout: str, files: FileHost | None = None):
        if layout not in self.LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; one of {self.LAYOUTS}")
        if layout in ("absolute", "redirect", "foreign_page") and files is None:
            raise ValueError(f"layout {layout!r} needs a FileHost")
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.layout = layout
        self.files = files

        class Handler(_Handler):
            def do_GET(self) -> None:
                self.owner.respond(self)

            do_POST = do_GET
            do_HEAD = do_GET

        super().__init__(Handler, None, "")

    def respond(self, req: _Handler) -> None:
        self.count()
        path = req.path.split("?")[0]
        segments = [s for s in path.split("/") if s]
        project_page = len(segments) == 2 and segments[0] == "simple"
        is_file = len(segments) == 2 and segments[0] == "packages"
        if path == "/" and req.command in ("GET", "HEAD") and self.layout in ("api_root", "root_500"):
            req._drain()
            if self.layout == "api_root":
                req._answer(200, JSON_DOC, "application/json")
            else:
                req._answer(500, b"<html><body><h1>500 Internal Server Error</h1></body></html>")
            return
        if self.files is not None and req.command in ("GET", "HEAD"):
            if self.layout == "foreign_page" and project_page:
                req._answer(302, b"", headers={"Location": self.files.url.rstrip("/") + req.path})
                return
            if self.layout == "redirect" and is_file:
                req._answer(302, b"", headers={"Location": self.files.url + "files/" + segments[1]})
                return
        status, reason, headers, data = _relay(req, self.upstream, req.path)
        if self.layout == "absolute" and project_page and status == 200:
            data = _HREF_ATTR.sub(lambda m: f'href="{self._absolute(req.path, m.group(1))}"', data.decode()).encode()
        _send(req, status, reason, headers, data)

    def _absolute(self, page_path: str, href: str) -> str:
        target = urljoin(f"http://index{page_path}", href)
        parts = urlsplit(target)
        if not parts.path.startswith("/packages/") or self.files is None:
            return href
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        return f"{self.files.url}files/{parts.path[len('/packages/') :]}{fragment}"


# ---------------------------------------------------------------- a PEP 700 JSON front on a real pypiserver

PEP691_JSON = "application/vnd.pypi.simple.v1+json"
_HREF = re.compile(r"""<a\s[^>]*href\s*=\s*["']([^"']+)["'][^>]*>""", re.I)


class Pep700Front(_Managed):
    """A real HTTP front of a real pypiserver that serves PEP 691 JSON with PEP 700 fields (pypiserver 2.4.2 has none).

    Everything is passed through to the pypiserver unchanged (uploads, files, HTML pages) except a project page
    asked for with the JSON media type in ``Accept`` (as pip and uv ask): that is answered with a PEP 691 document
    built from pypiserver's own page for it, with ``meta.api-version`` 1.1, ``versions`` and, per file, its
    ``hashes`` (the page's fragment), ``size`` and ``upload-time`` taken from a HEAD request for the file
    (``Content-Length``, and ``Last-Modified``, which pypiserver sets from the stored file's mtime: the upload).

    ``variant`` serves one field wrong, for the tests that must catch it: ``api_1_0`` (api-version 1.0),
    ``wrong_size`` (size + 1), ``future_time`` (upload-time a day ahead), ``stale_time`` (upload-time in 2001),
    ``no_versions`` (an empty ``versions``), ``no_upload_time`` (api-version 1.1 without upload-time).
    """

    VARIANTS = ("good", "api_1_0", "wrong_size", "future_time", "stale_time", "no_versions", "no_upload_time")

    def __init__(self, upstream: str, variant: str = "good"):
        if variant not in self.VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; one of {self.VARIANTS}")
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.variant = variant
        self.json_pages = 0

        class Handler(_Handler):
            def do_GET(self) -> None:
                accept = self.headers.get("Accept", "")
                if self.command == "GET" and PEP691_JSON in accept and self.path.startswith("/simple/"):
                    if self.path.rstrip("/") != "/simple" and self.owner.json_page(self):
                        return
                self.owner.forward(self)

            do_POST = do_GET
            do_HEAD = do_GET

        super().__init__(Handler, None, "")

    def _upstream(self, method: str, path: str, accept: str = "*/*") -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            conn.request(method, path, headers={"Accept": accept})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def document(self, path: str, html: str) -> dict[str, t.Any]:
        """The PEP 691/700 document for pypiserver's project page ``html`` at ``path``."""
        from email.utils import parsedate_to_datetime

        now = datetime.datetime.now(datetime.UTC)
        files, versions = [], []
        for href in _HREF.findall(html):
            url, _, fragment = href.partition("#")
            filename = url.rsplit("/", 1)[-1]
            if filename.endswith(".whl"):
                version = filename.split("-")[1]
            else:
                version = filename.rsplit("-", 1)[-1].removesuffix(".tar.gz").removesuffix(".zip")
            versions.append(version)
            algo, _, digest = fragment.partition("=")
            status, headers, _ = self._upstream("HEAD", url)
            entry: dict[str, t.Any] = {"filename": filename, "url": url, "hashes": {algo: digest} if digest else {}}
            if status == 200:
                entry["size"] = int(headers.get("content-length", "0"))
                uploaded = parsedate_to_datetime(headers["last-modified"]).astimezone(datetime.UTC)
                if self.variant == "wrong_size":
                    entry["size"] += 1
                if self.variant == "future_time":
                    uploaded = now + datetime.timedelta(days=1)
                if self.variant == "stale_time":
                    uploaded = datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)
                if self.variant != "no_upload_time":
                    entry["upload-time"] = uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            files.append(entry)
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return {
            "meta": {"api-version": "1.0" if self.variant == "api_1_0" else "1.1"},
            "name": name,
            "versions": [] if self.variant == "no_versions" else sorted(set(versions)),
            "files": files,
        }

    def json_page(self, req: _Handler) -> bool:
        """Answer ``req`` with JSON when pypiserver has the page; False to pass it through as it is."""
        self.count()
        try:
            status, _headers, body = self._upstream("GET", req.path, "text/html")
            if status != 200:
                return False
            doc = self.document(req.path, body.decode("utf-8", "replace"))
        except (OSError, KeyError, ValueError):
            return False
        self.json_pages += 1
        req._answer(200, json.dumps(doc).encode(), PEP691_JSON)
        return True

    def forward(self, req: _Handler) -> None:
        self.count()
        length = int(req.headers.get("Content-Length") or 0)
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            conn.putrequest(req.command, req.path, skip_host=True, skip_accept_encoding=True)
            for key, value in req.headers.items():
                if key.lower() not in HOP:
                    conn.putheader(key, value)
            conn.endheaders()
            relay_body(req, conn, length)
            resp = conn.getresponse()
            body = resp.read()
            req.send_response(resp.status, resp.reason)
            for key, value in resp.getheaders():
                if key.lower() not in HOP | {"content-length"}:
                    req.send_header(key, value)
            size = resp.getheader("Content-Length") if req.command == "HEAD" else None  # HEAD: the file's size
            req.send_header("Content-Length", size or str(len(body)))
            req.end_headers()
            if req.command != "HEAD":
                req.wfile.write(body)
        except OSError:
            req.close_connection = True
        finally:
            conn.close()
