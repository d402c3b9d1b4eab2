# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP client plumbing shared by every module that talks to an index.

One session factory (timeouts, auth, TLS) and one translation of transport
errors into a single sentence that names the cause and the next step.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import bounds

try:
    import requests
    from requests.adapters import HTTPAdapter

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the controller
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

USER_AGENT = "pypi_ops.pypiserver"

# Options every HTTP-speaking module accepts; spread into each module's argument_spec.
CLIENT_ARGS: dict[str, dict[str, t.Any]] = {
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "connect_timeout": {"type": "float", "default": 5.0},
    "read_timeout": {"type": "float", "default": 30.0},
    "deadline": {"type": "float", "default": 0.0},
    "deadline_name": {"type": "str"},
}


def client_args(read_timeout: float | None = None) -> dict[str, dict[str, t.Any]]:
    """CLIENT_ARGS, with another read_timeout default for modules that move big bodies."""
    args = {k: dict(v) for k, v in CLIENT_ARGS.items()}
    if read_timeout is not None:
        args["read_timeout"]["default"] = read_timeout
    return args


class ClientOptions(t.NamedTuple):
    username: str | None
    password: str | None
    validate_certs: bool
    ca_path: str | None
    connect_timeout: float
    read_timeout: float  # the stall limit: no byte for this long fails a request or a transfer
    op_timeout: float = 300.0  # the whole of one operation (a big download or upload)
    deadline: bounds.Deadline = bounds.Deadline()  # the test's deadline; every wait is cut to what is left

    @classmethod
    def from_params(cls, params: dict[str, t.Any]) -> ClientOptions:
        return cls(
            params.get("username"),
            params.get("password"),
            bool(params.get("validate_certs", True)),
            params.get("ca_path"),
            float(params.get("connect_timeout") or 5.0),
            float(params.get("read_timeout") or 30.0),
            float(params.get("timeout") or 300.0),
            bounds.Deadline.from_params(params),
        )

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) for requests, each cut to what is left of the deadline."""
        return (self.deadline.cap(self.connect_timeout), self.deadline.cap(self.read_timeout))

    @property
    def send_timeout(self) -> tuple[float, float]:
        """For a request with a body: urllib3 sends the body under the *connect* timeout, so both are the stall
        limit, read_timeout (connecting may then take that long too)."""
        stall = self.deadline.cap(self.read_timeout)
        return (stall, stall)

    @property
    def has_credentials(self) -> bool:
        """Whether there is a password (or token) to authenticate with; a user name alone is no credential."""
        return bool(self.password)

    @property
    def verify(self) -> bool | str:
        if not self.validate_certs:
            return False
        return self.ca_path or True


# The most one answer read whole (not streamed) may hold: an index page, a listing, an error page. A project page
# with ten thousand files is about 2 MiB; anything larger is not an index page, and reading it all could exhaust
# the controller's memory. Package files are always streamed (bounds.read_body), never capped by this.
BODY_CAP = 64 * 1024 * 1024


if HAS_REQUESTS:

    class BodyTooLarge(requests.exceptions.RequestException):
        """An answer read whole was larger than BODY_CAP; ``str()`` is the one sentence to show. A RequestException,
        so every handler of a failed request handles it too."""

    class CappedSession(requests.Session):
        """A Session whose answers read whole stop at ``body_cap`` bytes (BodyTooLarge); streamed ones are the
        caller's to bound."""

        body_cap = BODY_CAP

        def request(self, method: str, url: str, *args: t.Any, **kwargs: t.Any) -> t.Any:  # type: ignore[override]
            if kwargs.get("stream"):
                return super().request(method, url, *args, **kwargs)
            kwargs["stream"] = True
            resp = super().request(method, url, *args, **kwargs)
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in resp.iter_content(1024 * 1024):
                    size += len(chunk)
                    if size > self.body_cap:
                        raise BodyTooLarge(
                            f"{redact_url(resp.url or url)} sent more than {self.body_cap // 1048576} MiB in one "
                            "answer, far more than any index page; it is not an index page or the server misbehaves: "
                            "check the URL and the server."
                        )
                    chunks.append(chunk)
            except BaseException:
                resp.close()
                raise
            resp._content = b"".join(chunks)
            resp._content_consumed = True  # type: ignore[attr-defined]
            resp.close()  # the body is read: the connection goes back to the pool
            return resp


def make_session(opts: ClientOptions, pool: int = 4, max_redirects: int = 10) -> requests.Session:
    """A requests session with auth, TLS settings and no proxy/netrc surprises; an answer read whole is capped
    at BODY_CAP (BodyTooLarge)."""
    session = CappedSession()
    session.trust_env = False  # no ~/.netrc, no proxy env: talk to the server under test only
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = max_redirects
    if opts.has_credentials:  # no password means an anonymous request (a user name alone would only be refused)
        session.auth = (opts.username or "", opts.password or "")
    session.verify = opts.verify
    adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def warn_insecure(module: t.Any, opts: ClientOptions) -> None:
    if not opts.validate_certs:
        module.warn("validate_certs is false: TLS certificates are NOT verified; use ca_path for a private CA instead.")


def describe_error(exc: BaseException, url: str, opts: ClientOptions | None = None) -> str:
    """One sentence: what failed, why, and what to do next. Never includes credentials.

    The option names are the modules' (``ca_path``); the verify.yml variable follows in parentheses.
    """
    if isinstance(exc, BodyTooLarge):
        return str(exc)
    safe = redact_url(url)
    text = str(exc)
    low = text.lower()
    host = urlsplit(url).hostname
    ct, rt = (opts.connect_timeout, opts.read_timeout) if opts else (None, None)
    if opts is not None and opts.deadline.passed() and bounds.is_timeout(exc):  # the wait was cut to the deadline
        return opts.deadline.error(f"while waiting for {safe}").msg
    if HAS_REQUESTS and isinstance(exc, requests.exceptions.SSLError):
        if "self-signed" in low or "self signed" in low or "unable to get local issuer" in low:
            return (
                f"TLS verification failed for {safe}: the certificate is self-signed or from an unknown CA; "
                "pass the CA bundle that signed it as ca_path (pypi_ca_path), or set validate_certs: false "
                "(pypi_validate_certs) for a throwaway test."
            )
        if "expired" in low:
            return (
                f"TLS verification failed for {safe}: the server certificate has expired; renew it on the server "
                "(validate_certs: false only for a throwaway test)."
            )
        if "hostname" in low or "doesn't match" in low or "not valid for" in low:
            return (
                f"TLS verification failed for {safe}: the certificate is not issued for the host name {host!r}; "
                "use the name it was issued for in the URL, or reissue it with this name in its subjectAltName."
            )
        if "wrong version number" in low or "record layer failure" in low or "unknown protocol" in low:
            return f"{safe} does not speak TLS on that port (plain HTTP?); use http:// in the URL or the server's TLS port."
        return f"TLS error talking to {safe}: {_short(text)}; check the certificate and ca_path (pypi_ca_path)."
    if HAS_REQUESTS and isinstance(exc, requests.exceptions.TooManyRedirects):
        return f"Too many redirects from {safe} (a redirect loop); check the URL and the proxy/ingress rewrite rules."
    if HAS_REQUESTS and isinstance(exc, requests.exceptions.ConnectTimeout):
        return (
            f"Timed out{f' after {ct:g}s' if ct else ''} connecting to {safe}; the host is not answering "
            "(firewall, wrong address, or server down); check the URL and network path."
        )
    if (HAS_REQUESTS and isinstance(exc, requests.exceptions.ReadTimeout)) or "timed out" in low:
        within = f" within {rt:g}s" if rt else " in time"
        return (
            f"{safe} accepted the connection but sent no answer{within}; the server is hung or overloaded; "
            "check its logs, or raise read_timeout (pypi_read_timeout)."
        )
    if (
        "name or service not known" in low
        or "nodename nor servname" in low
        or "name resolution" in low
        or "failed to resolve" in low
        or ("getaddrinfo" in low)
    ):
        return f"Host name {host!r} does not resolve (DNS); check the URL's host name."
    if "connection refused" in low:
        return f"Connection refused by {safe}: nothing listens there; check the port and that the server is running."
    if "connection reset" in low or "remotedisconnected" in low or "connection aborted" in low:
        tls_hint = " (if it speaks HTTPS, use https:// in the URL)" if url.lower().startswith("http:") else ""
        return f"{safe} closed the connection without an answer{tls_hint}; check the server log and any proxy in front of it."
    return f"Request to {safe} failed: {_short(text)}; check the URL and that the server is running."


def redact_url(url: str) -> str:
    """Drop any user:password@ part from a URL before it is shown."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def _short(text: str, limit: int = 240) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def http_status_hint(status: int) -> str:
    """The usual cause of an HTTP status when an index answers it."""
    return {
        401: "the server wants credentials: set username/password (pypi_username/pypi_password)",
        403: "the credentials were refused: check the username/password or the htpasswd file",
        404: "not found: check the URL path (simple index usually at /simple/)",
        405: "the URL does not take this method: it is not the endpoint of a package index; check the URL",
        413: (
            "a body-size limit refused the request: raise the ingress nginx.ingress.kubernetes.io/proxy-body-size "
            "annotation or the reverse proxy's client_max_body_size"
        ),
        502: "the proxy in front of the server got no valid answer from it: check that the server runs and read its log",
        503: "the server, or the proxy in front of it, is unavailable: check that the server runs and read its log",
        504: "the proxy in front of the server timed out waiting for it: check that the server runs and read its log",
    }.get(status, "the server failed: read its log" if status >= 500 else "unexpected answer")
