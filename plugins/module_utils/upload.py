# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Uploads to an index, and the one classification of their outcomes.

Two paths share the classification:
- ``twine`` (what users run), driven as a subprocess with credentials in its
  environment (TWINE_USERNAME / TWINE_PASSWORD), never in argv;
- a direct POST to the legacy upload API (``:action=file_upload``), its multipart
  body streamed from disk in 1 MiB chunks (``MultipartBody``), used where a subprocess per file would measure the harness
  instead of the server (load tests) and to send a request with no credentials
  at all, which twine cannot do.
"""

from __future__ import annotations

import html
import os
import re
import sys
import time
import typing as t
import uuid

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import bounds, runner
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import progress as progressutil

OUTCOMES = (
    "uploaded",
    "exists",
    "unauthorized",
    "forbidden",
    "too_large",
    "rejected",
    "server_error",
    "unreachable",
    "invalid_dist",
    "stalled",
    "unlisted",
    "error",
)

# Body pieces handed to one sendall: small enough that a slow link moves one well within the stall limit.
SEND_CHUNK = 256 * 1024

DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".egg")

HINTS = {
    "exists": "the file is already on the index and the server does not overwrite; bump the version "
    "(or start the server with --overwrite if replacing releases is intended)",
    "unauthorized": "the server wants credentials for uploads: set username/password (pypi_username/pypi_password)",
    "forbidden": "the credentials were refused: check username/password (pypi_username/pypi_password) or the server's "
    "htpasswd file",
    "too_large": "a body-size limit refused the upload: raise the ingress annotation "
    "nginx.ingress.kubernetes.io/proxy-body-size or the reverse proxy's client_max_body_size",
    "rejected": "the server refused the request as malformed: read the server's message below",
    "server_error": "the server failed while storing the file: read its log (disk full, unwritable package dir?)",
    "unreachable": "nothing answered at the repository URL: check the URL, the port and that the server runs",
    "invalid_dist": "the file is not a Python distribution (wheel or sdist)",
    "stalled": "the transfer stalled or ran out of time",
    "unlisted": "the upload client reported success for a file the index does not serve: a proxy that answers "
    "uploads itself, a server that drops files, or another index behind the URL; check repository_url and index_url",
    "error": "the upload client failed: read its output below",
}


class Outcome(t.NamedTuple):
    outcome: str
    status: int | None
    detail: str


def classify(status: int | None, body: str = "") -> str:
    """Map an HTTP answer to an upload outcome."""
    if status is None:
        return "unreachable"
    text = " ".join((body or "").lower().split())  # twine wraps at 80 columns: "already\nexists" is one phrase
    if 200 <= status < 300:
        return "uploaded"
    if status == 409 or (status == 400 and "already exists" in text):
        return "exists"
    if status == 401:
        return "unauthorized"
    if status == 403:
        return "forbidden"
    if status == 413:
        return "too_large"
    if status >= 500:
        return "server_error"
    return "rejected"


def server_message(body: str, limit: int = 300) -> str:
    """The human part of an HTML/text error page (pypiserver puts it in <pre>)."""
    if not body:
        return ""
    match = re.search(r"<pre>(.*?)</pre>", body, re.S | re.I)
    text = match.group(1) if match else re.sub(r"<[^>]+>", " ", body)
    text = " ".join(html.unescape(text).split())
    return "" if text in ("None", "") else text[:limit]  # bottle renders an empty error body as "None"


def is_dist(path: str) -> bool:
    return path.endswith(DIST_SUFFIXES)


def check_files(paths: list[str]) -> str | None:
    """An error sentence for the first unusable file, else None."""
    for path in paths:
        if not os.path.exists(path):
            return (
                f"Dist file {path} does not exist; build it first (pypi_ops.pypiserver.package_build) or fix the path."
            )
        if not os.path.isfile(path):
            return f"Dist file {path} is not a regular file."
        if not is_dist(path):
            return f"{path} is not a Python distribution (expected one of {', '.join(DIST_SUFFIXES)})."
        problem = _archive_problem(path)
        if problem:
            return (
                f"Dist file {path} is not a {problem}, though its name says so; rebuild it "
                "(pypi_ops.pypiserver.package_build) instead of uploading a damaged or misnamed file."
            )
    return None


def _archive_problem(path: str) -> str | None:
    """What archive ``path`` should be and is not (wheels and .zip: zip; .tar.gz: gzip'd tar), else None."""
    import tarfile
    import zipfile

    lower = path.lower()
    if lower.endswith((".whl", ".zip")):
        return None if zipfile.is_zipfile(path) else "zip archive"
    if lower.endswith((".tar.gz", ".tgz")):
        with open(path, "rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                return "gzip-compressed tar archive"
        try:
            with tarfile.open(path, "r:gz") as tar:
                tar.next()
        except (tarfile.TarError, OSError, EOFError):
            return "gzip-compressed tar archive"
    return None


# ---------------------------------------------------------------- twine


# twine with TLS verification off (validate_certs: false): its upload session gets verify=False, where twine would set
# its --cert CA; the rest of twine runs unchanged. A twine without that hook fails loudly instead of verifying.
TWINE_NO_VERIFY = (
    "import os, sys, warnings\n"
    "import twine.repository as r\n"
    "for name in ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE'):\n"
    "    os.environ.pop(name, None)  # requests would verify against them after all\n"
    "if not hasattr(r.Repository, 'set_certificate_authority'):\n"
    "    sys.exit('this twine cannot be run with TLS verification off; give ca_path instead of validate_certs: false')\n"
    "def no_verify(self, cacert):\n"
    "    self.session.verify = False\n"
    "r.Repository.set_certificate_authority = no_verify\n"
    "warnings.filterwarnings('ignore', message='Unverified HTTPS request')\n"
    "from twine.__main__ import main\n"
    "sys.exit(main())\n"
)
_TWINE_HTTP = re.compile(r"HTTPError:\s+(\d{3})")
_CONTENT = re.compile(r"Content received from server:\s*(.*?)(?:\n\S*ERROR|\Z)", re.S)


def parse_twine(rc: int, text: str) -> Outcome:
    """Classify one twine run (one file) from its exit code and output."""
    clean = re.sub(r"\x1b\[[0-9;]*m", "", text or "")
    if rc == 0:
        return Outcome("uploaded", 200, "")
    match = _TWINE_HTTP.search(clean)
    if match:
        status = int(match.group(1))
        content = _CONTENT.search(clean)
        body = content.group(1) if content else clean
        pre = re.search(r"<pre>.*?</pre>", clean, re.S | re.I)  # pypiserver's message, wherever twine printed it
        said = server_message(body) if content else server_message(pre.group(0)) if pre else ""
        if not said:  # an empty error page (or none): twine's own lines from "HTTPError: ..." on say it
            said = " ".join(clean[match.start() :].split())[:300]
        return Outcome(classify(status, body), status, said)
    if "InvalidDistribution" in clean:
        return Outcome("invalid_dist", None, runner.tail(clean, 2))
    low = clean.lower()
    if any(s in low for s in ("connectionerror", "max retries exceeded", "connection refused", "failed to resolve")):
        return Outcome("unreachable", None, "twine: " + runner.tail(clean, 1))
    return Outcome("error", None, runner.tail(clean, 6))


def twine_upload(
    module: t.Any | None,
    repository_url: str,
    path: str,
    opts: httputil.ClientOptions,
    timeout: float,
    python: str | None = None,
) -> Outcome:
    twine = ["-c", TWINE_NO_VERIFY] if not opts.validate_certs else ["-m", "twine"]
    argv = [
        python or sys.executable,
        *twine,
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--verbose",
        "--repository-url",
        repository_url,
    ]
    if opts.ca_path and opts.validate_certs:
        argv += ["--cert", opts.ca_path]
    argv.append(path)
    env = {  # no password means no credentials: a user name alone would only be refused (403 instead of 401)
        "TWINE_USERNAME": (opts.username or "") if opts.has_credentials else "",
        "TWINE_PASSWORD": opts.password or "",
        "TWINE_NON_INTERACTIVE": "1",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "NO_COLOR": "1",
    }
    if opts.ca_path and opts.validate_certs:
        # requests lets these variables override the session's CA (twine's --cert) when they are set, as on many CI
        # machines; point them at the same bundle so that --cert is what twine verifies with.
        env.update(REQUESTS_CA_BUNDLE=opts.ca_path, CURL_CA_BUNDLE=opts.ca_path)
    res = runner.run(module, argv, timeout, env=env)
    if res.timed_out:
        return Outcome(
            "error",
            None,
            opts.deadline.explain_timeout(f"twine did not finish within {timeout:g}s", "during twine upload"),
        )
    return parse_twine(res.rc, res.text)


# ---------------------------------------------------------------- direct HTTP (legacy upload API)


def _filetype(filename: str) -> str:
    return "bdist_wheel" if filename.endswith(".whl") else "sdist"


def form_fields(filename: str, name: str, version: str, sha256: str | None = None) -> list[tuple[str, str]]:
    """The legacy upload API's text fields for one file (the file itself goes in the ``content`` part)."""
    fields = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", name),
        ("version", version),
        ("filetype", _filetype(filename)),
        ("pyversion", "py3" if filename.endswith(".whl") else "source"),
    ]
    if sha256:
        fields.append(("sha256_digest", sha256))
    return fields


class MultipartBody:
    """A multipart/form-data body whose file part is read from disk while it is sent, never held in memory.

    Iterating yields the text fields, then the file in ``digest.CHUNK`` pieces, then the closing boundary; ``len()``
    is the exact body size, so requests sends a Content-Length (servers such as pypiserver's do not take chunked
    bodies) and hands urllib3 the large chunks as they are (one ``sendall`` per MiB, no per-16-KiB Python work).
    ``progress(bytes_sent, total)`` is called after each chunk. Iterating again starts over (a retried request).
    """

    def __init__(
        self,
        fields: list[tuple[str, str]],
        file_field: str,
        path: str,
        progress: progressutil.Callback | None = None,
        total_s: float = 0.0,
        deadline: bounds.Deadline | None = None,
    ):
        self.total_s = total_s  # the whole upload's allowance (0: none); checked between chunks
        self.deadline = deadline or bounds.Deadline()
        self.sent = 0  # bytes handed to the socket so far, for the stall message
        self.boundary = uuid.uuid4().hex
        self.path = path
        self.progress = progress
        head = b"".join(self._part(name, value.encode()) for name, value in fields)
        filename = os.path.basename(path).replace('"', "%22")
        head += (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.head = head
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.file_size = os.path.getsize(path)

    def _part(self, name: str, value: bytes) -> bytes:
        return f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self.head) + self.file_size + len(self.tail)

    def __iter__(self) -> t.Iterator[bytes]:
        total = len(self)
        start = time.monotonic()
        self.sent = 0
        yield self.head
        self.sent = len(self.head)
        with open(self.path, "rb") as handle:
            while block := handle.read(SEND_CHUNK):
                if self.total_s and time.monotonic() - start > self.total_s:
                    raise bounds.BoundError(
                        f"upload of {os.path.basename(self.path)} was still sending after {self.total_s:g} s, the time "
                        f"allowed for one operation (pypi_op_timeout), with {bounds.of(self.sent, total)} sent; "
                        "the link or the server is too slow: check the network path, "
                        "or raise pypi_op_timeout.",
                        "op_timeout",
                        f"over {self.total_s:g} s",
                    )
                self.deadline.check(
                    f"during the upload of {os.path.basename(self.path)} ({bounds.of(self.sent, total)} sent)"
                )
                yield block
                self.sent += len(block)
                progressutil.notify(self.progress, self.sent, total)
        yield self.tail
        self.sent = total
        progressutil.notify(self.progress, total, total)


def http_upload(
    session: t.Any,
    repository_url: str,
    path: str,
    name: str,
    version: str,
    sha256: str | None,
    opts: httputil.ClientOptions,
    auth: bool = True,
    progress: progressutil.Callback | None = None,
) -> Outcome:
    """POST one file to the legacy upload API, streaming the body from disk (``MultipartBody``).

    ``progress(bytes_sent, total=body_size)`` is called as the body is sent (the caller rate-limits).
    """
    try:
        body = MultipartBody(
            form_fields(os.path.basename(path), name, version, sha256),
            "content",
            path,
            progress,
            total_s=opts.op_timeout,
            deadline=opts.deadline,
        )
    except OSError as exc:
        return Outcome("error", None, f"cannot read {path}: {exc.strerror or exc}")
    kwargs: dict[str, t.Any] = {
        "data": body,
        "headers": {"Content-Type": body.content_type},
        "timeout": opts.send_timeout,
        "allow_redirects": False,
    }
    if not auth:
        kwargs["auth"] = _NoAuth()
    if opts.deadline.passed():
        return Outcome("stalled", None, opts.deadline.error(f"before the upload of {os.path.basename(path)}").msg)
    try:
        resp = session.post(repository_url, **kwargs)
    except bounds.BoundError as exc:
        return Outcome("stalled", None, exc.msg)
    except Exception as exc:  # noqa: BLE001 - transport errors become one sentence
        if bounds.is_timeout(exc) and opts.deadline.passed():  # the socket wait was cut to the deadline
            where = f"during the upload of {os.path.basename(path)} ({bounds.of(body.sent, len(body))} sent)"
            return Outcome("stalled", None, opts.deadline.error(where).msg)
        return _transport_outcome(exc, body, repository_url, opts)
    text = resp.text if resp.status_code >= 300 else ""
    return Outcome(classify(resp.status_code, text), resp.status_code, server_message(text))


def _transport_outcome(exc: BaseException, body: MultipartBody, url: str, opts: httputil.ClientOptions) -> Outcome:
    """A failed POST: a stall while sending, no answer after the whole body, or no connection at all."""
    name = os.path.basename(body.path)
    stall = opts.read_timeout
    if bounds.is_timeout(exc) and 0 < body.sent < len(body):
        return Outcome(
            "stalled",
            None,
            f"upload of {name} stopped after {bounds.of(body.sent, len(body))}; the server took "
            f"no byte for {stall:g} s (pypi_read_timeout): it, or a proxy in front of it, hangs in the middle of a "
            "transfer (a wedged proxy, a full or dying disk, a stalled S3 backend); check its log and storage.",
        )
    if bounds.is_timeout(exc) and body.sent >= len(body):
        return Outcome(
            "stalled",
            None,
            f"upload of {name}: all {bounds.of(len(body), len(body)).split(' of ')[1]} were sent, then no answer within "
            f"{opts.read_timeout:g} s (pypi_read_timeout); the server hangs while storing the file (check its log "
            "and storage), or needs longer for big files on slow storage: raise pypi_read_timeout.",
        )
    return Outcome("unreachable", None, httputil.describe_error(exc, url, opts))


class _NoAuth:
    """A requests auth hook that strips any Authorization header (an anonymous request)."""

    def __call__(self, request: t.Any) -> t.Any:
        request.headers.pop("Authorization", None)
        return request


def preflight(session: t.Any, url: str, opts: httputil.ClientOptions) -> str | None:
    """Cheap reachability check before spawning a client; a sentence on failure, else None."""
    try:
        session.get(url, timeout=opts.timeout, allow_redirects=False, stream=True).close()
    except Exception as exc:  # noqa: BLE001 - transport errors become one sentence
        return httputil.describe_error(exc, url, opts)
    return None


def explain(filename: str, got: Outcome, expected: t.Iterable[str], client: str | None = None) -> str:
    """The one failure sentence for an unexpected outcome (``client``: the upload client, named for ``unlisted``)."""
    want = " or ".join(expected)
    if got.outcome == "unlisted":
        said = " ".join((got.detail or "").split())
        return (
            f"Upload of {filename}: expected {want}, got unlisted: {client or 'the upload client'} said it uploaded "
            f"{filename}, but the index does not list it (or lists other bytes); {HINTS['unlisted']}."
            + (f" Index said: {said}" if said else "")
        )
    if got.outcome == "stalled":  # the bound's sentence names the transfer, the bytes, the limit and the next step
        return f"Upload of {filename}: expected {want}, got no answer: {' '.join(got.detail.split())}"
    if got.outcome == "unreachable" and got.detail:  # the transport sentence already names cause and next step
        return f"Upload of {filename}: expected {want}, got no answer: {' '.join(got.detail.split())}"
    status = f" (HTTP {got.status})" if got.status else ""
    hint = HINTS.get(got.outcome, "")
    if got.status in (502, 503, 504):
        hint = httputil.http_status_hint(got.status)
    if got.status == 405:
        hint = (
            "the URL does not take uploads (405 Method Not Allowed), so it is not a package index's upload endpoint: "
            "check repository_url (pypi_url / pypi_upload_url)"
        )
    said = " ".join((got.detail or "").split())  # one line, whatever the client printed
    detail = f" Server/client said: {said}" if said else ""
    return f"Upload of {filename}: expected {want}, got {got.outcome}{status}; {hint}.{detail}".replace(";.", ".")


def timed(fn: t.Callable[[], Outcome]) -> tuple[Outcome, float]:
    start = time.monotonic()
    out = fn()
    return out, time.monotonic() - start
