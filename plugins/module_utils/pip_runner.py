# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install a package from the index under test, and only from it, into a throwaway venv; then import it.

The venv is created without pip (fast) and filled by the controller's pip via
``pip --python``. pip is cut off from every other source of packages:
``--isolated`` drops PIP_* variables and the user config, ``PIP_CONFIG_FILE``
set to the null device drops the global and site config files (``--isolated``
alone still reads /etc/pip.conf and $XDG_CONFIG_DIRS/pip/pip.conf), and the
only index is the one given. Credentials go through a private netrc file
named by ``NETRC``, never through argv or the URL.

pip's ``--report`` tells which file was resolved; ``provenance.judge`` accepts it
only when the index under test served the project page and advertised that file
URL (which may be on another origin, as PyPI's and Artifactory's are), with the
uploaded sha256; and the imported module must live inside the throwaway venv.
Either failing means the test proved nothing and is an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import typing as t
from urllib.parse import unquote, urlsplit, urlunsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import bounds, digest, http, provenance, runner

IMPORT_SCRIPT = (
    "import importlib, json, sys\n"
    "m = importlib.import_module(sys.argv[1])\n"
    "print(json.dumps({'version': getattr(m, '__version__', None), 'file': getattr(m, '__file__', None)}))\n"
)
NETRC_SPECIAL = re.compile(r'[\s"\\#]')
DEFAULT_PORTS = provenance.DEFAULT_PORTS
UNREACHABLE = "The index is unreachable: "


class InstallError(Exception):
    """An install/import failure with one clear message and, when pip ran, its output's tail."""

    def __init__(self, msg: str, output_tail: list[str] | None = None, **details: t.Any):
        super().__init__(msg)
        self.msg = msg
        self.output_tail = output_tail or []
        self.details = details


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


def normalize_name(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def default_import_name(name: str) -> str:
    return normalize_name(name).replace("-", "_")


def requirement(name: str, version: str | None) -> str:
    return f"{name}=={version}" if version else name


origin = provenance.origin  # (scheme, host, port) with the scheme's default port filled in
origin_text = provenance.origin_text


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


def pip_env(netrc_path: str, ca_path: str | None = None) -> dict[str, str]:
    """Environment for pip: no config file at all, credentials only from our netrc.

    With a CA bundle, REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE name it too: set (as on many CI machines), they would
    override pip's --cert (``--isolated`` does not drop them; requests reads them).
    """
    env = {"PIP_CONFIG_FILE": os.devnull, "NETRC": netrc_path, "PYTHONNOUSERSITE": "1"}
    if ca_path:
        env.update(REQUESTS_CA_BUNDLE=ca_path, CURL_CA_BUNDLE=ca_path)
    return env


def pip_argv(
    python: str,
    venv_python: str,
    index_url: str,
    req: str,
    report_path: str,
    opts: http.ClientOptions,
    pre: bool = False,
    retries: int = 1,
    uploaded_prior_to: str | None = None,
) -> list[str]:
    argv = [
        python, "-m", "pip", "--python", venv_python, "install",
        "--isolated", "--no-cache-dir", "--disable-pip-version-check", "--no-input",
        "--keyring-provider", "disabled", "--progress-bar", "off",
        "--index-url", index_url, "--only-binary", ":all:",
        "--timeout", f"{max(opts.connect_timeout, opts.read_timeout):g}", "--retries", str(max(0, int(retries))),
        "--report", report_path,
    ]  # fmt: skip
    if pip_resumes(python):  # pip >= 25.1 resumes a cut download 5 times (each a new stall): not against a test server
        argv += ["--resume-retries", "0"]
    if pre:
        argv.append("--pre")
    if uploaded_prior_to:
        argv += ["--uploaded-prior-to", uploaded_prior_to]
    if not opts.validate_certs:
        _scheme, host, port = origin(index_url)
        argv += ["--trusted-host", f"{host}:{port}" if port else host]
    elif opts.ca_path:
        argv += ["--cert", opts.ca_path]
    argv.append(req)
    return argv


def create_venv(module: t.Any | None, python: str, path: str, timeout: float) -> str:
    """``python -m venv --without-pip path``; return the venv's interpreter."""
    res = runner.run(module, [python, "-m", "venv", "--without-pip", path], timeout)
    venv_python = os.path.join(path, "bin", "python")
    if res.rc != 0 or not os.path.exists(venv_python):
        why = "timed out" if res.timed_out else f"rc={res.rc}"
        raise InstallError(f"Could not create the throwaway venv {path} ({why}).", runner.tail(res.text).splitlines())
    return venv_python


def parse_report(path: str, name: str) -> dict[str, t.Any]:
    """The resolved file of ``name`` and every other install item from pip's ``--report`` JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError) as exc:
        raise InstallError(f"pip succeeded but its --report {path} is unreadable: {exc}.") from None
    items = []
    for item in report.get("install") or []:
        info = item.get("download_info") or {}
        archive = info.get("archive_info") or {}
        sha = (archive.get("hashes") or {}).get("sha256")
        if not sha and str(archive.get("hash", "")).startswith("sha256="):
            sha = archive["hash"].split("=", 1)[1]
        meta = item.get("metadata") or {}
        items.append(
            {
                "name": normalize_name(str(meta.get("name", ""))),
                "version": meta.get("version"),
                "url": info.get("url") or "",
                "sha256": sha,
            }
        )
    wanted = normalize_name(name)
    main = [i for i in items if i["name"] == wanted]
    if not main:
        raise InstallError(
            f"pip succeeded but its report lists no install of {name} (it lists {[i['name'] for i in items]})."
        )
    return {"main": main[0], "items": items}


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


def pip_version(python: str) -> str | None:
    """The version of the pip that ``python -m pip`` runs; only known for this interpreter (None otherwise)."""
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        return None
    try:
        from importlib.metadata import version

        return version("pip")
    except Exception:  # noqa: BLE001 - no pip metadata
        return None


def pip_has_uploaded_prior_to(python: str) -> bool | None:
    """Whether that pip has --uploaded-prior-to (26.0+); None when its version is not known."""
    found = pip_version(python)
    try:
        return tuple(int(x) for x in (found or "").split(".")[:2]) >= (26, 0) if found else None
    except ValueError:
        return None


def pip_resumes(python: str) -> bool:
    """Whether the pip that ``python -m pip`` runs has --resume-retries (25.1+); only known for this interpreter."""
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        return False
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("pip").split(".")[:2])
    except Exception:  # noqa: BLE001 - no pip metadata, or an odd version string: leave pip's default
        return False
    return (major, minor) >= (25, 1)


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


def diagnose_index(index_url: str, name: str, opts: http.ClientOptions) -> str | None:
    """Ask the project page directly why pip saw no versions: unreachable, credentials, absent. None if it looks fine.

    pip logs connection errors and 401s on the index page only at debug level and then reports
    "(from versions: none)", so its output alone cannot tell these apart.
    """
    if not http.HAS_REQUESTS:  # pragma: no cover
        return None
    page = index_url.rstrip("/") + "/" + normalize_name(name) + "/"
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


def explain_pip_failure(text: str, spec: InstallSpec, index_url: str, opts: http.ClientOptions) -> str:
    """One sentence for a failed ``pip install``, from its output (and a direct look at the index when needed)."""
    safe = http.redact_url(index_url)
    req = spec.requirement
    low = text.lower()
    stall = stalled_download("pip", text, req, opts)
    if stall:
        return stall
    if "these packages do not match the hashes" in low:
        return (
            f"The server under test served {req} with bytes whose sha256 differs from the hash in its own index "
            f"page (#sha256= fragment): the stored file is corrupt or was replaced behind the index's back."
        )
    if re.search(r"\b401\b", text) and ("unauthorized" in low or "credentials" in low):
        return f"The index {safe} wants valid credentials (HTTP 401) for {req}; set username and password."
    if re.search(r"\b403\b", text) and "forbidden" in low:
        return f"The index {safe} refused access (HTTP 403) for {req}; check the credentials."
    tls = "certificate verify failed" in low or "sslerror" in low or "ssl:" in low
    timeout = "read timed out" in low or "connecttimeout" in low or "timed out" in low
    refused = "connection refused" in low or "newconnectionerror" in low or "max retries exceeded" in low
    if tls or timeout or refused:
        # pip's output shows the transport error only among its retries; the same request made directly names it
        diagnosis = diagnose_index(index_url, spec.name, opts)
        if diagnosis and diagnosis.startswith(UNREACHABLE):
            return diagnosis
    if tls:
        return (
            f"pip could not verify the TLS certificate of {safe}; pass the CA bundle that signed it as ca_path "
            "(pypi_ca_path), which pip gets as --cert."
        )
    if refused and not timeout:
        return f"The index {safe} is unreachable (connection failed); check the URL and that the server is running."
    if timeout:
        return f"The index {safe} did not answer in time; check the server or raise read_timeout (pypi_read_timeout)."
    if "no matching distribution found" in low or "could not find a version" in low:
        diagnosis = None
        seen = re.search(r"\(from versions: ([^)]*)\)", text)
        if seen is None or seen.group(1).strip() == "none":
            diagnosis = diagnose_index(index_url, spec.name, opts)
        if diagnosis:
            return diagnosis
        versions = f"; versions it offers as wheels for this Python: {seen.group(1)}" if seen else ""
        return f"{req} is not on the index {safe} (pip looked only there, wheels only){versions}."
    altered = _advertised_differs(spec, index_url, opts)
    if altered:
        return altered
    return f"pip install {req} from {safe} failed."


def _advertised_differs(spec: InstallSpec, index_url: str, opts: http.ClientOptions) -> str | None:
    """When the uploaded file's sha256 is known: does the index now advertise other bytes for that version?"""
    if not spec.expected_sha256 or not spec.version:
        return None
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

    session = http.make_session(opts)
    try:
        page = si.fetch_project(session, index_url, spec.name, opts)
    except si.IndexReadError:
        return None
    finally:
        session.close()
    for entry in page["files"]:
        if entry["kind"] == "wheel" and entry["version"] == spec.version and entry["hash_algo"] == "sha256":
            if entry["hash_digest"] != spec.expected_sha256:
                return (
                    f"The server's copy of {entry['filename']} is not the uploaded file: the index advertises sha256 "
                    f"{entry['hash_digest']}, the upload had {spec.expected_sha256}; the stored file was altered or "
                    "replaced after upload (check the package directory and the storage backend)."
                )
    return None


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
        return json.loads(lines[-1])
    except ValueError:
        raise InstallError(f"'import {import_name}' printed no JSON: {lines[-1]!r}.") from None


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
    if spec.expected_version is not None and not _same_version(str(imported.get("version")), spec.expected_version):
        raise InstallError(
            f"{spec.module_name}.__version__ is {imported.get('version')!r}, expected {spec.expected_version!r}: "
            "the index served a different release than the one built.",
            **result,
        )


def _inside(path: str, directory: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(directory)
    return real == base or real.startswith(base + os.sep)


def _same_version(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:  # pragma: no cover
        return False
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return False


def install_and_import(module: t.Any | None, spec: InstallSpec, opts: http.ClientOptions) -> dict[str, t.Any]:
    """Install ``spec`` from its index into a throwaway venv, import it and check where everything came from."""
    index_url, url_user, url_password = split_credentials(spec.index_url)
    if url_user is not None or url_password is not None:
        opts = opts._replace(
            username=opts.username if opts.username is not None else url_user,
            password=opts.password if opts.password is not None else url_password,
        )
    safe_index = http.redact_url(index_url)
    scheme, host, _port = origin(index_url)
    if scheme not in ("http", "https") or not host:
        raise InstallError(
            f"index_url {safe_index!r} is not an http(s) URL; give the simple index, e.g. http://host:8080/simple/."
        )
    python = spec.python or sys.executable
    work_parent = spec.work_dir or None
    if work_parent:
        os.makedirs(work_parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix="pypi_ops-install-", dir=work_parent)  # mode 0700
    venv_dir = os.path.join(work, "venv")
    auth_dir = os.path.join(work, ".auth")
    result: dict[str, t.Any] = {"changed": False, "requirement": spec.requirement, "index_url": safe_index}
    try:
        os.mkdir(auth_dir, 0o700)
        if opts.has_credentials:
            netrc_path = write_netrc(auth_dir, host, opts.username, opts.password)
        else:  # no password, no credentials (an empty netrc, so that no ~/.netrc is read either)
            netrc_path = write_netrc(auth_dir, None, None, None)
        venv_python = create_venv(module, python, venv_dir, spec.timeout)
        report_path = os.path.join(work, "report.json")
        argv = pip_argv(
            python,
            venv_python,
            index_url,
            spec.requirement,
            report_path,
            opts,
            spec.pre,
            spec.retries,
            spec.uploaded_prior_to,
        )
        result["cmd"] = argv
        res = runner.run(
            module, argv, spec.timeout, env=pip_env(netrc_path, opts.ca_path if opts.validate_certs else None), cwd=work
        )
        pip_tail = runner.tail(res.text, 20).splitlines()
        if res.timed_out:
            raise InstallError(
                opts.deadline.explain_timeout(
                    f"pip install {spec.requirement} from {safe_index} did not finish within {spec.timeout:g}s "
                    "(timeout).",
                    f"during pip install {spec.requirement}",
                ),
                pip_tail,
            )
        if res.rc != 0:
            cutoff = cutoff_outcome(res.text) if spec.uploaded_prior_to else None
            msg = cutoff_message("pip", cutoff, spec, safe_index)
            msg = msg or explain_pip_failure(res.text, spec, index_url, opts)
            raise InstallError(msg + " Last lines of pip's output:\n" + "\n".join(pip_tail), pip_tail, cutoff=cutoff)

        report = parse_report(report_path, spec.name)
        main = report["main"]
        # provenance: every page from the index under test, every file one it advertised, with the uploaded bytes
        pages = provenance.read_pages(index_url, [item["name"] for item in report["items"]], opts)
        sha = main["sha256"]
        sha_source = "pip-report"
        advertised = pages.get(main["name"], {}).get("files", {})
        if not sha and provenance.file_key(main["url"]) in advertised:  # never fetch a file the index did not link
            sha = fetch_sha256(main["url"], opts)
            sha_source = "download"
            main["sha256"] = sha
        expected = {normalize_name(spec.name): spec.expected_sha256} if spec.expected_sha256 else None
        try:
            verdicts = provenance.judge(index_url, "pip", pages, report["items"], expected)
        except provenance.ProvenanceError as exc:
            raise InstallError(exc.msg, pip_tail, resolved_url=http.redact_url(exc.url or main["url"])) from None
        result["provenance"] = verdicts
        imported = import_check(module, venv_python, spec.module_name, work, spec.timeout)
        import_file = imported.get("file") or ""
        result.update(
            resolved_url=http.redact_url(main["url"]),
            filename=unquote(os.path.basename(urlsplit(main["url"]).path)),
            sha256=sha,
            sha256_source=sha_source,
            installed_version=main["version"],
            import_name=spec.module_name,
            imported_version=imported.get("version"),
            import_file=import_file,
        )
        check_import(spec, imported, venv_dir, "pip", result)
        expected_sha = (spec.expected_sha256 or "").strip().lower()
        if expected_sha and expected_sha != sha.lower():
            raise InstallError(
                f"{result['filename']} from the index has sha256 {sha}, expected {expected_sha}: "
                "the served bytes differ from the built file.",
                **result,
            )
        if spec.keep_venv:
            result["venv_dir"] = venv_dir
        return result
    finally:
        shutil.rmtree(auth_dir, ignore_errors=True)
        if not spec.keep_venv:
            shutil.rmtree(work, ignore_errors=True)
