# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every install from the index under test shares, whichever client makes it (pip in ``pip_runner``, uv in
``uv_runner``, and the resolution and fallback checks that run them):

- the spec (``InstallSpec``) and the error (``InstallError``: one sentence, and the client's output tail);
- the preamble (``index_of``): the index URL without ``user:password@`` (those become the credentials, unless some
  were given), redacted for messages, its host, and why it is no index to install from (not http(s));
- the throwaway work directory (``work_dir``, a context manager removed on the way out, failure or not) with its
  private ``.auth`` directory, and the netrc there that keeps ``~/.netrc`` out;
- the wording of what both clients meet: a timeout, the output tail, a download that stalled, a cut-off, a direct
  look at the index when the client's own words do not tell, the import check, the bytes' sha256.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import typing as t
from urllib.parse import unquote, urlsplit, urlunsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import bounds, digest, http, provenance, runner
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

IMPORT_SCRIPT = (
    "import importlib, json, sys\n"
    "m = importlib.import_module(sys.argv[1])\n"
    "print(json.dumps({'version': getattr(m, '__version__', None), 'file': getattr(m, '__file__', None)}))\n"
)
NETRC_SPECIAL = re.compile(r'[\s"\\#]')
UNREACHABLE = "The index is unreachable: "


class InstallError(Exception):
    """An install/import failure with one clear message and, when the client ran, its output's tail."""

    def __init__(self, msg: str, output_tail: list[str] | None = None, **details: t.Any):
        super().__init__(msg)
        self.msg = msg
        self.output_tail = output_tail or []
        self.details = details


def default_import_name(name: str) -> str:
    """The module a project installs by default: its normalized name with ``_`` for ``-``."""
    return si.normalize(name).replace("-", "_")


def requirement(name: str, version: str | None) -> str:
    return f"{name}=={version}" if version else name


class InstallSpec(t.NamedTuple):
    index_url: str
    name: str
    version: str | None = None
    pre: bool = False
    import_name: str | None = None
    expected_version: str | None = None
    expected_sha256: str | None = None
    keep_venv: bool = False
    work_dir: str | None = None
    timeout: float = 300
    retries: int = 1
    python: str | None = None
    uv: str | None = None  # uv_runner only: the uv binary (None: found next to python or on PATH)
    uploaded_prior_to: str | None = None  # a cut-off (ISO 8601): pip --uploaded-prior-to, uv --exclude-newer

    @property
    def requirement(self) -> str:
        return requirement(self.name, self.version)

    @property
    def module_name(self) -> str:
        return self.import_name or default_import_name(self.name)


# ---------------------------------------------------------------- the preamble: index URL, credentials, origin


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """Strip ``user:password@`` from a URL: (clean URL, user, password)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    netloc = parts.hostname or ""
    if ":" in netloc:  # IPv6 literal
        netloc = f"[{netloc}]"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return clean, user, password


class Index(t.NamedTuple):
    """The index an install asks (``index_of``)."""

    url: str  # without user:password@
    safe: str  # the same, redacted for messages
    scheme: str
    host: str
    opts: http.ClientOptions  # with the URL's credentials where none were given

    @property
    def problem(self) -> str | None:
        """Why this is no index to install from (not an http(s) URL), in one sentence; None when it is one."""
        if self.scheme in ("http", "https") and self.host:
            return None
        return f"index_url {self.safe!r} is not an http(s) URL; give the simple index, e.g. http://host:8080/simple/."


def index_of(index_url: str, opts: http.ClientOptions, blank_is_unset: bool = False) -> Index:
    """The index of ``index_url``: credentials in the URL apply where ``opts`` has none (None; with
    ``blank_is_unset`` an empty string counts as none too)."""
    clean, user, password = split_credentials(index_url)
    if user is not None or password is not None:
        if blank_is_unset:
            opts = opts._replace(username=opts.username or user, password=opts.password or password)
        else:
            opts = opts._replace(
                username=opts.username if opts.username is not None else user,
                password=opts.password if opts.password is not None else password,
            )
    scheme, host, _port = provenance.origin(clean)
    return Index(clean, http.redact_url(clean), scheme, host, opts)


# ---------------------------------------------------------------- the throwaway work directory, the netrc


class WorkDir(t.NamedTuple):
    path: str  # the throwaway directory (mode 0700)
    auth: str  # its private .auth directory (mode 0700): the netrc, a client's credentials directory

    @property
    def venv(self) -> str:
        return os.path.join(self.path, "venv")


@contextlib.contextmanager
def work_dir(prefix: str, parent: str | None = None, keep: bool = False) -> t.Iterator[WorkDir]:
    """A throwaway directory (under ``parent`` when given, which is made if missing) with a private ``.auth``.

    Removed on the way out, whether the body failed or not; with ``keep`` only ``.auth`` goes (a kept venv).
    """
    if parent:
        os.makedirs(parent, exist_ok=True)
    path = tempfile.mkdtemp(prefix=prefix, dir=parent or None)  # mode 0700
    auth = os.path.join(path, ".auth")
    try:
        os.mkdir(auth, 0o700)
        yield WorkDir(path, auth)
    finally:
        shutil.rmtree(auth, ignore_errors=True)
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def venv_python(venv_dir: str) -> str:
    return os.path.join(venv_dir, "bin", "python")


def netrc_token(value: str) -> str:
    """A netrc token; quoted (Python >= 3.11 netrc syntax) only when it holds blanks, quotes, # or backslashes."""
    if value and not NETRC_SPECIAL.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_netrc(directory: str, host: str | None, username: str | None, password: str | None) -> str:
    """Write a netrc (mode 0600) in ``directory``; empty without credentials, so no ~/.netrc is ever read."""
    path = os.path.join(directory, "netrc")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        if host and (username is not None or password is not None):
            login, secret = netrc_token(username or ""), netrc_token(password or "")
            handle.write(f"machine {netrc_token(host)} login {login} password {secret}\n")
    os.chmod(path, 0o600)
    return path


def netrc_for(directory: str, host: str, opts: http.ClientOptions) -> str:
    """The netrc of an install: ``opts``' credentials for ``host`` when there is a password, else an empty one."""
    if opts.has_credentials:
        return write_netrc(directory, host, opts.username, opts.password)
    return write_netrc(directory, None, None, None)


# ---------------------------------------------------------------- the wording both clients share


def timed_out(command: str, req: str, safe_index: str, timeout: float, opts: http.ClientOptions, note: str = "") -> str:
    """``<command> <req> from <index> did not finish within <timeout>s<note>.``, naming the deadline if it cut."""
    return opts.deadline.explain_timeout(
        f"{command} {req} from {safe_index} did not finish within {timeout:g}s{note}.", f"during {command} {req}"
    )


def with_tail(msg: str, client: str, tail: list[str]) -> str:
    """The failure sentence followed by the client's last lines."""
    return msg + f" Last lines of {client}'s output:\n" + "\n".join(tail)


# What pip and uv answer to a cut-off (pip 26.3 --uploaded-prior-to, uv 0.13.9 --exclude-newer), measured against
# pypiserver 2.4.2 (HTML, no PEP 700 upload-time) and a PEP 700 JSON index.
CUTOFF_NO_UPLOAD_TIME = (
    "does not provide upload-time metadata",  # pip: the whole install stops
    "is missing an upload date",  # uv: a warning per file, which it then drops
)
CUTOFF_EXCLUDED = (
    "was filtered by `exclude-newer`",  # uv's hint when the cut-off removed every version
    "from versions: none",  # pip: no file left before the cut-off
    "no matching distribution found",
)
CUTOFF_UNSUPPORTED = ("no such option: --uploaded-prior-to", "unexpected argument '--exclude-newer'")


def cutoff_outcome(text: str) -> str | None:
    """Why an install with a cut-off failed, from the client's output: ``no_upload_time`` (the index gives none),
    ``unsupported`` (the client has no such option), ``excluded`` (the cut-off left no file), or None (other)."""
    low = (text or "").lower()
    if any(mark.lower() in low for mark in CUTOFF_UNSUPPORTED):
        return "unsupported"
    if any(mark.lower() in low for mark in CUTOFF_NO_UPLOAD_TIME):
        return "no_upload_time"
    if any(mark.lower() in low for mark in CUTOFF_EXCLUDED):
        return "excluded"
    return None


def cutoff_message(client: str, cutoff: str | None, spec: InstallSpec, safe_index: str) -> str | None:
    """One sentence for an install that a cut-off stopped (see ``cutoff_outcome``); None for other failures."""
    option = "--uploaded-prior-to" if client == "pip" else "--exclude-newer"
    at = spec.uploaded_prior_to
    if cutoff == "no_upload_time":
        if client == "pip":
            return (
                f"pip {option} {at} refused the index {safe_index}: it does not provide upload-time metadata "
                "(PEP 700), so pip installs nothing with a cut-off."
            )
        return (
            f"uv {option} {at} found no file of {spec.requirement} on {safe_index} it could install: the index gives "
            "no upload date (PEP 700 upload-time), and uv drops every file without one."
        )
    if cutoff == "excluded":
        return f"{client} {option} {at} left no file of {spec.requirement} on {safe_index} to install."
    if cutoff == "unsupported":
        return f"this {client} has no {option} option" + (" (pip 26.0 or later has it)." if client == "pip" else ".")
    return None


def cutoff_failure(client: str, text: str, spec: InstallSpec, safe_index: str) -> tuple[str | None, str | None]:
    """(``cutoff_outcome``, ``cutoff_message``) of a failed install; (None, None) without a cut-off."""
    cutoff = cutoff_outcome(text) if spec.uploaded_prior_to else None
    return cutoff, cutoff_message(client, cutoff, spec, safe_index)


_STALL_MARKS = (
    "incomplete-download",
    "not enough bytes were received",
    "connection interrupted while downloading",
    "read timed out",
    "operation timed out",
    "error decoding response body",
)


def stalled_download(client: str, text: str, req: str, opts: http.ClientOptions) -> str | None:
    """The stall sentence when an installer's output shows a file download that stopped mid-body, else None.

    pip says "Download failed because not enough bytes were received (1.0 MB/4.2 MB)" and the URL; uv says
    "Failed to download ..." with "operation timed out" among the causes.
    """
    low = text.lower()
    if not any(mark in low for mark in _STALL_MARKS):
        return None
    if "download" not in low or (
        "downloading" not in low and "failed to download" not in low and "download failed" not in low
    ):
        return None
    got = re.search(r"not enough bytes were received \(([^)]*)\)", text)
    url = re.search(r"URL: (\S+)", text) or re.search(r"Failed to download `?([^`\s]+)`?", text)
    what = f" of {http.redact_url(url.group(1)).split('#')[0].rsplit('/', 1)[-1]}" if url else f" for {req}"
    progress = f" after {got.group(1)}" if got else ""
    return (
        f"{client}'s download{what} stopped{progress}; no byte for {opts.read_timeout:g} s (pypi_read_timeout): the "
        "server, or a proxy in front of it, hangs in the middle of a transfer (a wedged proxy, a dying disk, a "
        "stalled S3 backend); check its log and storage."
    )


def diagnose_index(index_url: str, name: str, opts: http.ClientOptions) -> str | None:
    """Ask the project page directly why the client saw no versions: unreachable, credentials, absent. None if it
    looks fine.

    pip logs connection errors and 401s on the index page only at debug level and then reports
    "(from versions: none)", so its output alone cannot tell these apart.
    """
    if not http.HAS_REQUESTS:  # pragma: no cover
        return None
    page = index_url.rstrip("/") + "/" + si.normalize(name) + "/"
    session = http.make_session(opts)
    try:
        resp = session.get(page, timeout=opts.timeout, allow_redirects=True)
        status = resp.status_code
    except http.requests.exceptions.RequestException as exc:
        return UNREACHABLE + http.describe_error(exc, page, opts)
    finally:
        session.close()
    safe = http.redact_url(index_url)
    if status == 401:
        if not opts.has_credentials:
            return f"The index {safe} wants credentials (HTTP 401) and none were given; set username and password."
        return f"The index {safe} refused the credentials for user {opts.username!r} (HTTP 401); check the password."
    if status == 403:
        if not opts.has_credentials:
            return (
                f"The index {safe} refused access (HTTP 403) and no credentials were given; set username and password."
            )
        return f"The index {safe} refused the credentials for user {opts.username!r} (HTTP 403); check the password."
    if status == 404:
        return f"{name} is not on the index {safe} at all (HTTP 404 for its project page; pip looked only there)."
    if status >= 400:
        return f"The index {safe} answered HTTP {status} for {name}'s project page: {http.http_status_hint(status)}."
    return None


_URL_IN_TEXT = re.compile(r"https?://[^\s'\"()<>`]+")


def dropped_credentials(
    client: str, text: str, index_url: str, opts: http.ClientOptions, name: str | None = None
) -> str | None:
    """The diagnosis of a client that read the project page with the credentials but sent none on the file download:
    its output names an HTTP 401 for a file URL (not a project page) that answers with the credentials; else None.

    The words measured: pip "HTTP error 401 while getting <url>", uv "HTTP status client error (401 Unauthorized) for
    url (<url>)", poetry "401 Client Error: Unauthorized for url: <url>", pdm "Client error '401 Unauthorized' for url
    '<url>'". The file URL is asked again here with the credentials (and, when that is refused too, the project page
    of ``name`` with and without them), so a refused password is not taken for this.
    """
    if not opts.has_credentials or not http.HAS_REQUESTS:
        return None
    pages = index_url.rstrip("/") + "/"
    files = []
    for mark in re.finditer(r"\b401\b", text or ""):
        # the URL follows the status on its line, or on the next when the client wraps its message (uv does)
        for url in _URL_IN_TEXT.findall((text or "")[mark.start() : mark.start() + 400]):
            bare = urlsplit(url.rstrip(".,;:'"))._replace(fragment="").geturl()
            dist = unquote(urlsplit(bare).path).lower().endswith((".whl", ".tar.gz", ".zip"))
            if dist and not bare.startswith(pages) and bare not in files:
                files.append(bare)
    if not files:
        return None
    url = files[-1]
    session, anonymous = http.make_session(opts), http.make_session(opts._replace(username=None, password=None))
    try:
        with session.get(url, stream=True, timeout=opts.timeout, allow_redirects=True) as resp:
            status = resp.status_code
        if status == 200:
            why = "the same URL answers 200 with them"
        else:  # the page needs the credentials and takes them: the file's 401 means they did not arrive
            page = pages + (si.normalize(name) + "/" if name else "")
            with session.get(page, stream=True, timeout=opts.timeout) as resp:
                with_creds = resp.status_code
            with anonymous.get(page, stream=True, timeout=opts.timeout) as resp:
                without = resp.status_code
            if not (with_creds == 200 and without == 401):
                return None
            why = "the index takes the same credentials for the project page, which it refuses without them"
    except http.requests.exceptions.RequestException:
        return None
    finally:
        session.close()
        anonymous.close()
    filename = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    return (
        f"{client} read the project page with the credentials but its download of {filename} got HTTP 401: it did not send "
        f"the credentials on the file download ({why}); a proxy in front of the index "
        f"may strip the Authorization header on file paths, or this {client} version drops it there: fix the proxy, "
        "or serve files without authentication, or use another client."
    )


# ---------------------------------------------------------------- the installed bytes, the import


def fetch_sha256(url: str, opts: http.ClientOptions) -> str:
    """Download ``url`` (streamed) and return its sha256."""
    if not http.HAS_REQUESTS:  # pragma: no cover
        raise InstallError(
            f"pip's report has no sha256 for {http.redact_url(url)} and 'requests' is missing to fetch it."
        )
    session = http.make_session(opts)
    try:
        with session.get(url, stream=True, timeout=opts.timeout) as resp:
            if resp.status_code != 200:
                raise InstallError(
                    f"Fetching {http.redact_url(url)} to hash it answered HTTP {resp.status_code}: "
                    f"{http.http_status_hint(resp.status_code)}."
                )
            what = f"download of {http.redact_url(url).rsplit('/', 1)[-1].split('#')[0]}"
            body = bounds.read_body(resp, what, opts.read_timeout, opts.op_timeout, opts.deadline, digest.CHUNK)
            sha, _size = digest.sha256_chunks(body)
    except bounds.BoundError as exc:
        raise InstallError(exc.msg) from None
    except http.requests.exceptions.RequestException as exc:
        raise InstallError(http.describe_error(exc, url, opts)) from None
    finally:
        session.close()
    return sha


def import_check(
    module: t.Any | None, venv_python: str, import_name: str, cwd: str, timeout: float
) -> dict[str, t.Any]:
    """Import ``import_name`` with the venv's interpreter (isolated mode); return its __version__ and __file__."""
    res = runner.run(module, [venv_python, "-I", "-c", IMPORT_SCRIPT, import_name], timeout, cwd=cwd)
    lines = [line for line in res.out.splitlines() if line.strip()]
    if res.rc != 0 or not lines:
        why = f"timed out after {timeout:g}s" if res.timed_out else runner.tail(res.err, 1) or f"rc={res.rc}"
        raise InstallError(
            f"The package installed but 'import {import_name}' failed in the throwaway venv: {why}. "
            "Set import_name if the importable package is named differently.",
            runner.tail(res.text).splitlines(),
        )
    try:
        imported: dict[str, t.Any] = json.loads(lines[-1])
    except ValueError:
        raise InstallError(f"'import {import_name}' printed no JSON: {lines[-1]!r}.") from None
    return imported


def version_mismatch(client: str, name: str, resolved: str, expected: str, safe_index: str) -> str:
    """The sentence for an install (or a lock) that resolved another release than the one uploaded."""
    return (
        f"{client} resolved {name} {resolved}, expected {expected}: the index {safe_index} offers another release than "
        "the one uploaded (a newer one is the latest), so the client picked it; remove the other release or pin the "
        "version."
    )


def check_resolved(client: str, spec: InstallSpec, resolved: str, safe_index: str, **details: t.Any) -> None:
    """Before the origin and sha256 checks: an unpinned install that resolved another version than ``expected_version``
    fails naming both (its bytes are another file's, so the sha256 would only say "other bytes"). A pinned one is left
    to the import check, which compares ``__version__``."""
    if spec.version or spec.expected_version is None or si.same_version(str(resolved), spec.expected_version):
        return
    raise InstallError(
        version_mismatch(client, spec.name, resolved, spec.expected_version, safe_index),
        installed_version=resolved,
        **details,
    )


def check_import(
    spec: InstallSpec, imported: dict[str, t.Any], venv_dir: str, client: str, result: dict[str, t.Any]
) -> None:
    """After an install by ``client`` (pip or uv): the import must come from the throwaway venv, with the expected
    ``__version__``; raises InstallError (carrying ``result``) otherwise."""
    import_file = imported.get("file") or ""
    if not import_file or not _inside(import_file, venv_dir):
        raise InstallError(
            f"'import {spec.module_name}' loaded {import_file or 'a module without __file__'}, which is not inside "
            f"the throwaway venv {venv_dir}: it imported something else, not the package {client} installed.",
            **result,
        )
    if spec.expected_version is not None and not si.same_version(str(imported.get("version")), spec.expected_version):
        raise InstallError(
            f"{spec.module_name}.__version__ is {imported.get('version')!r}, expected {spec.expected_version!r}: "
            "the index served a different release than the one built.",
            **result,
        )


def _inside(path: str, directory: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(directory)
    return real == base or real.startswith(base + os.sep)
