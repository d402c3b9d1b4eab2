# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""uv as an index client: ``uv publish`` (upload) and ``uv venv`` + ``uv pip install`` (install), both isolated.

Mirrors ``upload.twine_upload`` and ``pip_runner.install_and_import``: the caller passes the module (or None in tests
and benchmarks) and every command goes through ``runner.run`` with an argv list and a deadline.

Isolation (measured with uv 0.13.9): ``UV_NO_CONFIG`` drops uv's config files only, so

- every ``UV_*`` variable the controller's environment holds is removed from the child (``env -u NAME``): an
  inherited ``UV_EXTRA_INDEX_URL`` alone made ``uv pip install --no-config`` install from PyPI, and an inherited
  ``UV_PUBLISH_CHECK_URL`` turns a duplicate upload into "already exists, skipping" with rc 0;
- ``UV_CREDENTIALS_DIR`` names an empty private directory and ``NETRC`` an empty private file, so neither credentials
  stored with ``uv auth login`` nor a ``~/.netrc`` are sent;
- credentials travel in the environment only: ``UV_PUBLISH_USERNAME``/``UV_PUBLISH_PASSWORD`` for publish, and
  ``UV_INDEX_PYPIOPS_USERNAME``/``_PASSWORD`` for the install's one named index (``--default-index pypiops=URL``);
- ``--trusted-publishing never`` (the default ``automatic`` spends 8.5 s trying ``https://<host>/_/oidc/audience``
  when no credentials are given), never ``--check-url``, ``UV_HTTP_RETRIES=0``;
- install: ``--no-build`` (wheels only, like pip's ``--only-binary :all:``), ``--no-cache``, ``--python`` into a
  throwaway ``uv venv`` made from an explicit interpreter with ``--no-python-downloads``.

uv follows redirects silently (pypiserver's default fallback sends unknown projects to pypi.org with a 303); uv's
``-v`` log names every page and file it requests. ``provenance.judge`` accepts the install only when the index under
test served every project page (read back here, redirects followed), every request off its origin is a file it
advertised, and the installed file is an advertised one with the uploaded sha256.
"""

from __future__ import annotations

import os
import re
import sys
import typing as t
from urllib.parse import unquote, urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import (
    client_tools,
    http,
    install,
    provenance,
    runner,
    upload,
)
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

INDEX_NAME = "pypiops"  # the install's one named index; its credentials are UV_INDEX_PYPIOPS_USERNAME/_PASSWORD
# uv publish sends nothing without credentials (measured: "Missing credentials for: <url>"), even to a server whose
# uploads are open; this placeholder lets it upload there, and an authenticating server refuses it (403).
ANONYMOUS_USER = "pypi-ops-no-credentials"
INSTALL_HINT = (
    "install it on the controller (pip install uv, pinned in requirements.txt) or drop uv from the client set"
)

# uv publish, measured failure texts.
_STATUS = re.compile(r"Server returned status code (\d{3})")
_SAYS = re.compile(r"Server says:\s*(.*)\Z", re.S)
_NOT_POST = "POST requests are not supported by the endpoint"
_TRANSPORT = (
    "error sending request",
    "tcp connect error",
    "connection refused",
    "dns error",
    "failed to lookup address",
    "invalid peer certificate",
    "certificate",
    "timed out",
    "operation timed out",
    "connection reset",
)
# uv -v (DEBUG) lines naming the requests and the selected file.
_REQUEST = re.compile(r"request for: (\S+)")
_SELECTING = re.compile(r"Selecting: (\S+?)==(\S+) \[[^\]]*\] \(([^)]+)\)")
LOG_PREFIXES = ("DEBUG", "TRACE")  # uv -v's log lines; the rest of its output is what it says went wrong


class UvNotFound(client_tools.ToolNotFound):
    """No uv binary: one sentence naming where it was looked for (the clients test turns it into a named skip)."""


# ---------------------------------------------------------------- finding uv


def find_uv(explicit: str | None = None, python: str | None = None) -> str:
    """The uv binary: ``explicit`` if given (it must be executable), else next to ``python`` (or the running
    interpreter: the uv wheel installs ``bin/uv`` beside ``bin/python``), else the first ``uv`` on PATH."""
    return client_tools.find_tool("uv", explicit, python, hint=INSTALL_HINT, error=UvNotFound)


def uv_version(module: t.Any | None, uv: str, timeout: float = 30) -> str | None:
    """``0.13.9`` from ``uv --version``; None when it does not answer."""
    res = runner.run(module, [uv, "--version"], timeout)
    match = re.search(r"\buv (\S+)", res.out)
    return match.group(1) if res.rc == 0 and match else None


# ---------------------------------------------------------------- environment


def scrubbed(argv: list[str], keep: t.Iterable[str] = (), environ: t.Mapping[str, str] | None = None) -> list[str]:
    """``argv`` behind ``env -u NAME`` for every inherited ``UV_*`` variable not in ``keep`` (ours)."""
    keep = set(keep)
    names = sorted(k for k in (os.environ if environ is None else environ) if k.startswith("UV_") and k not in keep)
    unset = [arg for name in names for arg in ("-u", name)]
    return (["env", *unset, "--"] + argv) if unset else argv


def isolation_env(private_dir: str, opts: http.ClientOptions, retries: int = 0) -> dict[str, str]:
    """What every uv child gets: no config, no stored credentials, no netrc, no retries, our timeouts and CA."""
    creds = os.path.join(private_dir, "credentials")
    os.makedirs(creds, mode=0o700, exist_ok=True)
    netrc = install.write_netrc(private_dir, None, None, None)  # empty, mode 0600: no ~/.netrc either
    env = {
        "UV_NO_CONFIG": "1",
        "UV_CREDENTIALS_DIR": creds,
        "NETRC": netrc,
        "UV_KEYRING_PROVIDER": "disabled",
        "UV_HTTP_RETRIES": str(max(0, int(retries))),
        "UV_HTTP_CONNECT_TIMEOUT": f"{max(1, round(opts.connect_timeout))}",
        "UV_HTTP_TIMEOUT": f"{max(1, round(opts.read_timeout))}",
        "UV_NO_PROGRESS": "1",
        "NO_COLOR": "1",
    }
    if opts.ca_path and opts.validate_certs:
        env["SSL_CERT_FILE"] = opts.ca_path  # uv publish has no --cert; both commands honour SSL_CERT_FILE
    return env


def _insecure_host(url: str) -> list[str]:
    _scheme, host, port = provenance.origin(url)
    return ["--allow-insecure-host", f"{host}:{port}" if port else host]


def tls_args(index_url: str, opts: http.ClientOptions) -> list[str]:
    """uv's TLS options for the index: ``--allow-insecure-host`` without verification, ``--cert`` with a CA bundle."""
    if not opts.validate_certs:
        return _insecure_host(index_url)
    if opts.ca_path:
        return ["--cert", opts.ca_path]
    return []


def default_index(index_url: str) -> list[str]:
    """The one index uv may use, named so that its credentials can come from the environment (``install_env``)."""
    return ["--default-index", f"{INDEX_NAME}={index_url}"]


def quiet(text: str) -> str:
    """uv's output without its ``-v`` log (the DEBUG and TRACE lines): its error, causes and hints."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(LOG_PREFIXES))


# ---------------------------------------------------------------- publish


def publish_argv(uv: str, repository_url: str, path: str, opts: http.ClientOptions) -> list[str]:
    argv = [uv, "publish", "--no-config", "--trusted-publishing", "never", "--publish-url", repository_url]
    if not opts.validate_certs:
        argv += _insecure_host(repository_url)
    return argv + [path]


def publish_env(private_dir: str, opts: http.ClientOptions) -> dict[str, str]:
    env = isolation_env(private_dir, opts)
    if opts.has_credentials:
        env.update(UV_PUBLISH_USERNAME=opts.username or "", UV_PUBLISH_PASSWORD=opts.password or "")
    else:
        env.update(UV_PUBLISH_USERNAME=ANONYMOUS_USER, UV_PUBLISH_PASSWORD=ANONYMOUS_USER)
    return env


def _causes(text: str) -> str:
    """uv's ``error:``/``cause:`` lines, on one line (what it says went wrong)."""
    keep = [line.strip() for line in text.splitlines() if line.strip().startswith(("error:", "cause:", "warning:"))]
    return " ".join(" ".join(keep).split())[:400]


def parse_publish(rc: int, text: str, anonymous: bool = False) -> upload.Outcome:
    """Classify one ``uv publish`` run (one file) from its exit code and output, with upload.classify."""
    clean = re.sub(r"\x1b\[[0-9;]*m", "", text or "")
    low = clean.lower()
    if rc == 0:
        if "already exists, skipping" in low:  # only with --check-url, which publish_argv never passes
            return upload.Outcome("exists", None, "uv skipped the file: it is already on the index")
        return upload.Outcome("uploaded", 200, "")
    note = (
        f" (no credentials were given; uv publish cannot upload without any, so it sent the placeholder user "
        f"{ANONYMOUS_USER!r})"
        if anonymous
        else ""
    )
    match = _STATUS.search(clean)
    status = int(match.group(1)) if match else (405 if _NOT_POST in clean else None)
    if status is not None:
        says = _SAYS.search(clean)
        body = says.group(1) if says else ""
        said = upload.server_message(body) or _causes(clean)
        return upload.Outcome(upload.classify(status, body), status, said + note)
    if "missing credentials for" in low:
        return upload.Outcome("unauthorized", None, "uv publish sent nothing: it has no credentials for the URL" + note)
    if (
        "no files found to publish" in low
        or "not a valid distribution filename" in low
        or "failed to read metadata" in low
    ):
        return upload.Outcome("invalid_dist", None, _causes(clean))
    if any(s in low for s in _TRANSPORT):
        return upload.Outcome("unreachable", None, "uv: " + _causes(clean))
    return upload.Outcome("error", None, _causes(clean) or runner.tail(clean, 6))


def _cut_off(text: str) -> bool:
    """uv lost the connection while sending the file: a server that refuses before reading the body closes it."""
    low = text.lower()
    return "error writing a body" in low or "broken pipe" in low or "connection reset" in low


def ask_without_file(repository_url: str, opts: http.ClientOptions) -> upload.Outcome:
    """POST ``:action=file_upload`` with uv's credentials and no file: the server's verdict on them, nothing stored.

    Measured: pypiserver checks credentials before it reads the body and closes the connection after a 401/403, so
    uv (unlike twine) often reports "error writing a body to connection: Broken pipe" instead of the status for a
    refused upload of a file of a few hundred KiB or more. This small request gets the status itself.
    """
    if opts.has_credentials:
        creds = opts
    else:
        creds = opts._replace(username=ANONYMOUS_USER, password=ANONYMOUS_USER)
    session = http.make_session(creds)
    try:
        resp = session.post(
            repository_url, files={":action": (None, "file_upload")}, timeout=opts.timeout, allow_redirects=False
        )
    except Exception as exc:  # noqa: BLE001 - transport errors become one sentence
        return upload.Outcome("unreachable", None, http.describe_error(exc, repository_url, opts))
    finally:
        session.close()
    body = resp.text if resp.status_code >= 300 else ""
    return upload.Outcome(upload.classify(resp.status_code, body), resp.status_code, upload.server_message(body))


def uv_publish(
    module: t.Any | None,
    repository_url: str,
    path: str,
    opts: http.ClientOptions,
    timeout: float,
    uv: str,
) -> upload.Outcome:
    """Upload one file with ``uv publish``; credentials in its environment, never argv (like upload.twine_upload)."""
    with install.work_dir("pypi_ops-uv-") as work:
        env = publish_env(work.auth, opts)
        res = runner.run(module, scrubbed(publish_argv(uv, repository_url, path, opts), env), timeout, env=env)
    if res.timed_out:
        msg = f"uv publish did not finish within {timeout:g}s"
        return upload.Outcome("error", None, opts.deadline.explain_timeout(msg, "during uv publish"))
    got = parse_publish(res.rc, res.text, anonymous=not opts.has_credentials)
    if got.outcome == "unreachable" and _cut_off(res.text):
        verdict = ask_without_file(repository_url, opts)
        if verdict.outcome in ("unauthorized", "forbidden"):
            note = " (uv's upload was cut off while sending the file; asked again without the file"
            note += "" if opts.has_credentials else f", with the placeholder user {ANONYMOUS_USER!r} uv sent"
            return verdict._replace(detail=(verdict.detail + note + ")").strip())
    return got


# ---------------------------------------------------------------- venv + pip install


# The same spec as pip's; its ``uv`` field names the uv binary (None: found by ``find_uv``).
UvInstallSpec = install.InstallSpec


def venv_argv(uv: str, python: str, path: str) -> list[str]:
    return [uv, "venv", "--no-config", "--no-python-downloads", "--quiet", "--python", python, path]


def install_argv(
    uv: str,
    venv_python: str,
    index_url: str,
    req: str,
    opts: http.ClientOptions,
    pre: bool,
    exclude_newer: str | None = None,
) -> list[str]:
    argv = [
        uv, "-v", "pip", "install", "--no-config", "--no-cache", "--no-build",
        "--python", venv_python, *default_index(index_url),
    ]  # fmt: skip
    if pre:
        argv += ["--prerelease", "allow"]
    if exclude_newer:
        argv += ["--exclude-newer", exclude_newer]
    return argv + tls_args(index_url, opts) + [req]


def install_env(private_dir: str, opts: http.ClientOptions, retries: int = 0) -> dict[str, str]:
    env = isolation_env(private_dir, opts, retries)
    if opts.has_credentials:
        prefix = f"UV_INDEX_{INDEX_NAME.upper()}_"
        env.update({prefix + "USERNAME": opts.username or "", prefix + "PASSWORD": opts.password or ""})
    return env


def parse_verbose(text: str) -> dict[str, t.Any]:
    """From uv's ``-v`` log: every URL it requested, and the files it selected as {normalized name: (version, file)}."""
    requests = [m.group(1) for m in _REQUEST.finditer(text or "")]
    selected = {si.normalize(m.group(1)): (m.group(2), m.group(3)) for m in _SELECTING.finditer(text or "")}
    return {"requests": requests, "selected": selected}


def explain_uv_failure(text: str, spec: UvInstallSpec, index_url: str, opts: http.ClientOptions) -> str:
    """One sentence for a failed ``uv pip install`` (and a direct look at the index when uv's words are not enough)."""
    safe = http.redact_url(index_url)
    req = spec.requirement
    low = text.lower()
    if "hash mismatch" in low or ("hash" in low and "expected" in low and "computed" in low):
        return (
            f"The server under test served {req} with bytes whose hash differs from the one in its own index page "
            "(#sha256= fragment): the stored file is corrupt or was replaced behind the index's back."
        )
    if "401 unauthorized" in low or "lack of valid authentication credentials" in low:
        dropped = install.dropped_credentials("uv", text, index_url, opts, spec.name)
        if dropped:
            return dropped
        if not opts.has_credentials:
            return f"The index {safe} wants credentials (HTTP 401) for {req} and none were given; set username and password."
        return f"The index {safe} refused the credentials for user {opts.username!r} (HTTP 401) for {req}; check the password."
    if "403 forbidden" in low:
        return f"The index {safe} refused access (HTTP 403) for {req}; check the credentials."
    if "invalid peer certificate" in low or ("certificate" in low and "error" in low):
        return (
            f"uv could not verify the TLS certificate of {safe}; pass the CA bundle that signed it as ca_path "
            "(pypi_ca_path), which uv gets as --cert and SSL_CERT_FILE."
        )
    stall = install.stalled_download("uv", text, req, opts)
    if stall:
        return stall
    if any(s in low for s in ("connection refused", "tcp connect error", "dns error", "timed out", "error sending")):
        diagnosis = install.diagnose_index(index_url, spec.name, opts)
        if diagnosis:
            return diagnosis
        return f"The index {safe} is unreachable for uv; check the URL and that the server is running."
    if "not found in the package registry" in low or "no version of" in low or "no solution found" in low:
        diagnosis = install.diagnose_index(index_url, spec.name, opts)
        if diagnosis:
            return diagnosis
        return f"{req} is not on the index {safe} (uv looked only there, wheels only)."
    return f"uv pip install {req} from {safe} failed: {_causes(text) or runner.tail(text, 3)}"


def _installs(seen: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The files uv installed, from its -v log: {name, version, url (the last request for the file)}; a selected
    package uv did not download (already there) is left out."""
    found = []
    for name, (version, filename) in seen["selected"].items():
        urls = [u for u in seen["requests"] if unquote(urlsplit(u).path).endswith("/" + filename)]
        if urls:
            found.append({"name": name, "version": version, "url": urls[-1], "sha256": None})
    return found


def install_and_import(module: t.Any | None, spec: UvInstallSpec, opts: http.ClientOptions) -> dict[str, t.Any]:
    """``uv venv`` + ``uv pip install`` ``spec`` from its index only, import it, and check where it came from.

    Raises ``install.InstallError`` (one sentence, uv's output tail) like ``pip_runner.install_and_import``.
    """
    index = install.index_of(spec.index_url, opts)
    if index.problem:
        raise install.InstallError(index.problem)
    index_url, safe_index, opts = index.url, index.safe, index.opts
    try:
        uv = find_uv(spec.uv, spec.python)
    except UvNotFound as exc:
        raise install.InstallError(exc.msg) from None
    python = spec.python or sys.executable
    result: dict[str, t.Any] = {"changed": False, "requirement": spec.requirement, "index_url": safe_index, "uv": uv}
    with install.work_dir("pypi_ops-uv-install-", spec.work_dir, spec.keep_venv) as work:
        env = install_env(work.auth, opts, spec.retries)
        res = runner.run(module, scrubbed(venv_argv(uv, python, work.venv), env), spec.timeout, env=env, cwd=work.path)
        venv_python = install.venv_python(work.venv)
        if res.rc != 0 or not os.path.exists(venv_python):
            why = "timed out" if res.timed_out else f"rc={res.rc}"
            raise install.InstallError(
                f"uv venv could not create the throwaway venv {work.venv} ({why}): {_causes(res.text) or 'no output'}.",
                runner.tail(res.text).splitlines(),
            )
        argv = install_argv(uv, venv_python, index_url, spec.requirement, opts, spec.pre, spec.uploaded_prior_to)
        result["cmd"] = argv
        res = runner.run(module, scrubbed(argv, env), spec.timeout, env=env, cwd=work.path)
        text = quiet(res.text)
        tail = runner.tail(text, 20).splitlines()
        if res.timed_out:
            raise install.InstallError(
                install.timed_out("uv pip install", spec.requirement, safe_index, spec.timeout, opts), tail
            )
        if res.rc != 0:
            cutoff, msg = install.cutoff_failure("uv", text, spec, safe_index)
            msg = msg or explain_uv_failure(text, spec, index_url, opts)
            raise install.InstallError(install.with_tail(msg, "uv", tail), tail, cutoff=cutoff)

        seen = parse_verbose(res.text)
        chosen = seen["selected"].get(si.normalize(spec.name))
        downloads = [u for u in seen["requests"] if chosen and unquote(urlsplit(u).path).endswith("/" + chosen[1])]
        if not chosen or not downloads:
            raise install.InstallError(
                f"uv installed {spec.requirement} but its -v log names no file of {spec.name} it downloaded, so where "
                "it came from cannot be proven; this uv's log format may have changed (check the pinned uv version).",
                tail,
            )
        version, filename = chosen
        result.update(
            resolved_url=http.redact_url(downloads[-1]),
            filename=filename,
            installed_version=version,
            requests=[http.redact_url(u) for u in seen["requests"]],
            import_name=spec.module_name,
        )
        # Always a sha256, like pip_runner: the index's, which uv checked the download against, or (an index without
        # sha256 fragments, pypiserver --hash-algo off/md5) the served file's own, fetched and hashed here.
        installs = _installs(seen)
        pages = provenance.read_pages(index_url, [item["name"] for item in installs], opts)
        for item in installs:
            files = pages[item["name"]]["files"]
            key = provenance.file_key(item["url"])
            item["sha256"] = files.get(key)
            if key in files and not item["sha256"] and item["name"] == si.normalize(spec.name):
                item["sha256"] = install.fetch_sha256(item["url"], opts)
                result["sha256_source"] = "download"
        main = next(item for item in installs if item["name"] == si.normalize(spec.name))
        result.update(sha256=main["sha256"], sha256_source=result.get("sha256_source", "index-hash-checked-by-uv"))
        install.check_resolved("uv", spec, version, safe_index, resolved_url=http.redact_url(main["url"]))
        # provenance: every page from the index under test, every file one it advertised, with the uploaded bytes
        expected = {main["name"]: spec.expected_sha256} if spec.expected_sha256 else None
        try:
            result["provenance"] = provenance.judge(index_url, "uv", pages, installs, expected, seen["requests"])
        except provenance.ProvenanceError as exc:
            raise install.InstallError(exc.msg, tail, resolved_url=http.redact_url(exc.url or main["url"])) from None
        expected_sha = (spec.expected_sha256 or "").strip().lower()
        if expected_sha and result["sha256"] != expected_sha:
            raise install.InstallError(
                f"{filename} on the index has sha256 {result['sha256']}, expected {expected_sha}: the served bytes "
                "differ from the built file.",
                **result,
            )
        imported = install.import_check(module, venv_python, spec.module_name, work.path, spec.timeout)
        import_file = imported.get("file") or ""
        result.update(imported_version=imported.get("version"), import_file=import_file)
        install.check_import(spec, imported, work.venv, "uv", result)
        if spec.keep_venv:
            result["venv_dir"] = work.venv
        return result
