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
import sys
import typing as t
from urllib.parse import unquote, urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http, install, provenance, runner
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

# What package_install and cooldown_check import from here (the shared install pieces live in ``install``).
InstallError = install.InstallError
InstallSpec = install.InstallSpec
split_credentials = install.split_credentials
origin_text = provenance.origin_text
ISOLATED = (
    "--isolated", "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--keyring-provider", "disabled",
    "--progress-bar", "off",
)  # fmt: skip


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
        python, "-m", "pip", "--python", venv_python, "install", *ISOLATED,
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
    argv += tls_args(index_url, opts)
    argv.append(req)
    return argv


def tls_args(index_url: str, opts: http.ClientOptions) -> list[str]:
    """pip's TLS options for the index: ``--trusted-host`` without verification, ``--cert`` with a CA bundle."""
    if not opts.validate_certs:
        _scheme, host, port = provenance.origin(index_url)
        return ["--trusted-host", f"{host}:{port}" if port else host]
    if opts.ca_path:
        return ["--cert", opts.ca_path]
    return []


def isolated_env(auth_dir: str, host: str, opts: http.ClientOptions) -> dict[str, str]:
    """``pip_env`` with a netrc in ``auth_dir`` that holds the credentials for ``host`` (empty without)."""
    netrc = install.netrc_for(auth_dir, host, opts)
    return pip_env(netrc, opts.ca_path if opts.validate_certs else None)


def create_venv(module: t.Any | None, python: str, path: str, timeout: float) -> str:
    """``python -m venv --without-pip path``; return the venv's interpreter."""
    res = runner.run(module, [python, "-m", "venv", "--without-pip", path], timeout)
    venv_python = install.venv_python(path)
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
                "name": si.normalize(str(meta.get("name", ""))),
                "version": meta.get("version"),
                "url": info.get("url") or "",
                "sha256": sha,
            }
        )
    wanted = si.normalize(name)
    main = [i for i in items if i["name"] == wanted]
    if not main:
        raise InstallError(
            f"pip succeeded but its report lists no install of {name} (it lists {[i['name'] for i in items]})."
        )
    return {"main": main[0], "items": items}


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


def explain_pip_failure(text: str, spec: InstallSpec, index_url: str, opts: http.ClientOptions) -> str:
    """One sentence for a failed ``pip install``, from its output (and a direct look at the index when needed)."""
    safe = http.redact_url(index_url)
    req = spec.requirement
    low = text.lower()
    stall = install.stalled_download("pip", text, req, opts)
    if stall:
        return stall
    if "these packages do not match the hashes" in low:
        return (
            f"The server under test served {req} with bytes whose sha256 differs from the hash in its own index "
            f"page (#sha256= fragment): the stored file is corrupt or was replaced behind the index's back."
        )
    if re.search(r"\b401\b", text):
        dropped = install.dropped_credentials("pip", text, index_url, opts, spec.name)
        if dropped:
            return dropped
    if re.search(r"\b401\b", text) and ("unauthorized" in low or "credentials" in low):
        return f"The index {safe} wants valid credentials (HTTP 401) for {req}; set username and password."
    if re.search(r"\b403\b", text) and "forbidden" in low:
        return f"The index {safe} refused access (HTTP 403) for {req}; check the credentials."
    tls = "certificate verify failed" in low or "sslerror" in low or "ssl:" in low
    timeout = "read timed out" in low or "connecttimeout" in low or "timed out" in low
    refused = "connection refused" in low or "newconnectionerror" in low or "max retries exceeded" in low
    if tls or timeout or refused:
        # pip's output shows the transport error only among its retries; the same request made directly names it
        diagnosis = install.diagnose_index(index_url, spec.name, opts)
        if diagnosis and diagnosis.startswith(install.UNREACHABLE):
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
            diagnosis = install.diagnose_index(index_url, spec.name, opts)
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


def install_and_import(module: t.Any | None, spec: InstallSpec, opts: http.ClientOptions) -> dict[str, t.Any]:
    """Install ``spec`` from its index into a throwaway venv, import it and check where everything came from."""
    index = install.index_of(spec.index_url, opts)
    if index.problem:
        raise InstallError(index.problem)
    index_url, safe_index, opts = index.url, index.safe, index.opts
    python = spec.python or sys.executable
    result: dict[str, t.Any] = {"changed": False, "requirement": spec.requirement, "index_url": safe_index}
    with install.work_dir("pypi_ops-install-", spec.work_dir, spec.keep_venv) as work:
        env = isolated_env(work.auth, index.host, opts)
        venv_python = create_venv(module, python, work.venv, spec.timeout)
        report_path = os.path.join(work.path, "report.json")
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
        res = runner.run(module, argv, spec.timeout, env=env, cwd=work.path)
        pip_tail = runner.tail(res.text, 20).splitlines()
        if res.timed_out:
            raise InstallError(
                install.timed_out("pip install", spec.requirement, safe_index, spec.timeout, opts, " (timeout)"),
                pip_tail,
            )
        if res.rc != 0:
            cutoff, msg = install.cutoff_failure("pip", res.text, spec, safe_index)
            msg = msg or explain_pip_failure(res.text, spec, index_url, opts)
            raise InstallError(install.with_tail(msg, "pip", pip_tail), pip_tail, cutoff=cutoff)

        report = parse_report(report_path, spec.name)
        main = report["main"]
        # provenance: every page from the index under test, every file one it advertised, with the uploaded bytes
        pages = provenance.read_pages(index_url, [item["name"] for item in report["items"]], opts)
        sha = main["sha256"]
        sha_source = "pip-report"
        advertised = pages.get(main["name"], {}).get("files", {})
        if not sha and provenance.file_key(main["url"]) in advertised:  # never fetch a file the index did not link
            sha = install.fetch_sha256(main["url"], opts)
            sha_source = "download"
            main["sha256"] = sha
        install.check_resolved("pip", spec, main["version"], safe_index, resolved_url=http.redact_url(main["url"]))
        expected = {si.normalize(spec.name): spec.expected_sha256} if spec.expected_sha256 else None
        try:
            verdicts = provenance.judge(index_url, "pip", pages, report["items"], expected)
        except provenance.ProvenanceError as exc:
            raise InstallError(exc.msg, pip_tail, resolved_url=http.redact_url(exc.url or main["url"])) from None
        result["provenance"] = verdicts
        imported = install.import_check(module, venv_python, spec.module_name, work.path, spec.timeout)
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
        install.check_import(spec, imported, work.venv, "pip", result)
        expected_sha = (spec.expected_sha256 or "").strip().lower()
        if expected_sha and expected_sha != sha.lower():
            raise InstallError(
                f"{result['filename']} from the index has sha256 {sha}, expected {expected_sha}: "
                "the served bytes differ from the built file.",
                **result,
            )
        if spec.keep_venv:
            result["venv_dir"] = work.venv
        return result
