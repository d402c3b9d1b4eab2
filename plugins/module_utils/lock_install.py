# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lock-based installs from the index under test: ``uv lock`` + ``uv sync``, ``poetry lock`` + ``poetry install``,
``pdm lock`` + ``pdm install``.

One throwaway project per install (``install.work_dir``): a ``pyproject.toml`` that depends on the probe only and
names the index under test as its ONLY index, a venv made from the given interpreter (``python -m venv
--without-pip``, ``<project>/.venv``), the lock, the install into that venv, then the import check that pip and uv
share (``install.import_check`` / ``install.check_import``).

Isolation and credentials, as found in the tools' own sources (uv 0.13.9, poetry 2.5.1, pdm 2.29.4):

- every tool runs behind ``client_tools.scrubbed`` (``env -u`` every inherited ``UV_``/``POETRY_``/``PDM_``/``PIP_``
  variable) in ``client_tools.isolated_env`` (throwaway HOME, XDG dirs, empty netrc, keyring's null backend);
- uv: the index lives in a throwaway ``uv.toml`` named by ``UV_CONFIG_FILE`` (one ``[[index]]`` named ``pypiops``,
  ``default = true``). Measured: ``UV_NO_CONFIG``/``--no-config`` also drops the project's ``[tool.uv]`` (uv then
  locks from pypi.org), and without either uv merges ``$XDG_CONFIG_DIRS/uv/uv.toml`` or ``/etc/uv/uv.toml``, whose
  ``[[index]]`` it even asks first; ``UV_CONFIG_FILE`` reads that one file and nothing else. Credentials:
  ``UV_INDEX_PYPIOPS_USERNAME``/``_PASSWORD``; ``UV_NO_CACHE``, ``UV_PROJECT_ENVIRONMENT``, ``--no-python-downloads``;
- poetry: ``[tool.poetry] package-mode = false`` beside ``[project]``, one ``[[tool.poetry.source]]`` named
  ``pypiops`` with ``priority = "primary"``: poetry's ``Factory.create_pool`` adds PyPI only when no primary source
  is configured (its ``-vvv`` log says "Deactivating the PyPI repository"). Credentials:
  ``POETRY_HTTP_BASIC_PYPIOPS_USERNAME``/``_PASSWORD`` (``Config.get`` maps ``http-basic.pypiops.username``);
  ``POETRY_CONFIG_DIR``/``POETRY_CACHE_DIR``/``POETRY_DATA_DIR`` in the throwaway home, ``POETRY_KEYRING_ENABLED=false``,
  ``POETRY_VIRTUALENVS_IN_PROJECT=true`` (it takes the ``.venv`` made here), ``--no-cache``, ``--no-interaction``;
- pdm: ``[tool.pdm] distribution = false``, one ``[[tool.pdm.source]]`` named ``pypi`` (a source named pypi replaces
  the default one; ``Project.get_sources``), ``PDM_IGNORE_STORED_INDEX=1`` (no source from a config file).
  Credentials: ``PDM_PYPI_USERNAME``/``PDM_PYPI_PASSWORD`` (the pypi source takes them from the ``pypi.username``/
  ``pypi.password`` config). ``PDM_CONFIG_FILE`` is a throwaway file, ``XDG_CONFIG_DIRS`` an empty directory (pdm's
  site config), ``PDM_CACHE_DIR`` in the throwaway home, ``PDM_CHECK_UPDATE=false``, ``PDM_PYTHON`` the venv's
  interpreter, ``PDM_NON_INTERACTIVE=1``, ``PDM_USE_UV=false``; ``pdm lock -S static_urls`` records file URLs.

Origin (``provenance.judge``, as for pip and uv): the project page comes from the index under test, the installed
file is one it advertised, with the uploaded sha256. The lock file is checked too: its entry for the probe must
name the index (uv's ``source.registry``, poetry's ``[package.source] url``, pdm's file URLs), the installed file
must be one it records, and the hash it records is the upload's. Each client checks the downloaded bytes against
the lock's hash on install.
"""

from __future__ import annotations

import json
import os
import re
import sys
import typing as t
from urllib.parse import unquote, urldefrag, urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import (
    client_tools,
    http,
    install,
    provenance,
    runner,
    uv_runner,
)
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

try:
    import tomllib

    HAS_TOMLLIB = True
except ImportError:  # pragma: no cover - Python < 3.11
    HAS_TOMLLIB = False

CLIENTS = ("uv-lock", "poetry", "pdm")
PROGRAM = {"uv-lock": "uv", "poetry": "poetry", "pdm": "pdm"}
LOCK_FILE = {"uv-lock": "uv.lock", "poetry": "poetry.lock", "pdm": "pdm.lock"}
INDEX_NAME = "pypiops"  # uv's index and poetry's source; pdm's source is "pypi" (it replaces pdm's default)
PROJECT_NAME = "pypi-ops-lock-probe"
VENV = ".venv"

_URL = re.compile(r"https?://[^\s'\"()<>`]+")
# poetry -vvv: urllib3's debug line per request: http://host:port "GET /path HTTP/1.1" 200 1447
_URLLIB3 = re.compile(r'(https?://\S+?) "(?:GET|HEAD) (\S+) HTTP/[\d.]+" (\d{3})')
# pdm -v: unearth.preparer: Downloading <Link http://host/packages/f.whl (from http://host/simple/p/)>
_PDM_DOWNLOAD = re.compile(r"Downloading <Link (\S+)")


def step_names(client: str) -> tuple[str, str]:
    """The two commands, as the messages name them."""
    return {
        "uv-lock": ("uv lock", "uv sync"),
        "poetry": ("poetry lock", "poetry install"),
        "pdm": ("pdm lock", "pdm install"),
    }[client]


# ---------------------------------------------------------------- the throwaway project


def toml_str(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value)


def dependency(spec: install.InstallSpec) -> str:
    return install.requirement(si.normalize(spec.name), spec.version)


def pyproject(
    client: str, spec: install.InstallSpec, index_url: str, python_version: str, opts: http.ClientOptions
) -> str:
    """The throwaway project's pyproject.toml: the probe its only dependency, the index its only index (none for
    uv-lock, whose index is in ``uv_toml``). Holds no credentials."""
    lines = [
        "[project]",
        f"name = {toml_str(PROJECT_NAME)}",
        'version = "0.0.0"',
        f"requires-python = {toml_str('>=' + python_version)}",
        f"dependencies = [{toml_str(dependency(spec))}]",
        "",
    ]
    if client == "uv-lock":
        lines += ["[tool.uv]", "package = false", ""]
    elif client == "poetry":
        lines += ["[tool.poetry]", "package-mode = false", ""]
        if spec.pre:
            lines += ["[tool.poetry.dependencies]", f"{si.normalize(spec.name)} = {{ allow-prereleases = true }}", ""]
        lines += [
            "[[tool.poetry.source]]",
            f"name = {toml_str(INDEX_NAME)}",
            f"url = {toml_str(index_url)}",
            'priority = "primary"',
            "",
        ]
    elif client == "pdm":
        lines += ["[tool.pdm]", "distribution = false", ""]
        if spec.pre:
            lines += ["[tool.pdm.resolution]", "allow-prereleases = true", ""]
        lines += [
            "[[tool.pdm.source]]",
            'name = "pypi"',
            f"url = {toml_str(index_url)}",
            f"verify_ssl = {'true' if opts.validate_certs else 'false'}",
            "",
        ]
    return "\n".join(lines)


def uv_toml(index_url: str) -> str:
    """uv's one config file (``UV_CONFIG_FILE``): the index under test as the only, default index."""
    return "\n".join(
        ["[[index]]", f"name = {toml_str(INDEX_NAME)}", f"url = {toml_str(index_url)}", "default = true", ""]
    )


def pdm_config(opts: http.ClientOptions) -> str:
    """pdm's throwaway global config (``PDM_CONFIG_FILE``): the CA bundle only (``pypi.ca_certs`` is global-only)."""
    if opts.ca_path and opts.validate_certs:
        return f"[pypi]\nca_certs = {toml_str(opts.ca_path)}\n"
    return ""


def client_env(
    client: str, project: str, private_dir: str, opts: http.ClientOptions, venv_python: str, retries: int = 0
) -> dict[str, str]:
    """The whole environment ``client`` gets (on top of the scrubbed one): isolation, and the credentials the way
    the client documents them. ``private_dir`` is the work dir's ``.auth`` (mode 0700)."""
    env = client_tools.isolated_env(private_dir)  # with an empty XDG_CONFIG_DIRS: no /etc/xdg site config
    home = env["HOME"]
    if opts.ca_path and opts.validate_certs:
        env.update(SSL_CERT_FILE=opts.ca_path, REQUESTS_CA_BUNDLE=opts.ca_path)
    user, password = (opts.username or "", opts.password or "") if opts.has_credentials else (None, None)
    if client == "uv-lock":
        config = os.path.join(private_dir, "uv.toml")
        env.update(uv_runner.isolation_env(private_dir, opts, retries))
        env.pop("UV_NO_CONFIG", None)  # UV_CONFIG_FILE instead: UV_NO_CONFIG would drop the project's settings too
        env.update(UV_CONFIG_FILE=config, UV_NO_CACHE="1", UV_PROJECT_ENVIRONMENT=os.path.join(project, VENV))
        env["UV_PYTHON_DOWNLOADS"] = "never"
        if user is not None:
            prefix = f"UV_INDEX_{INDEX_NAME.upper()}_"
            env.update({prefix + "USERNAME": user, prefix + "PASSWORD": password or ""})
    elif client == "poetry":
        env.update(
            POETRY_CONFIG_DIR=os.path.join(home, "poetry-config"),
            POETRY_CACHE_DIR=os.path.join(home, "poetry-cache"),
            POETRY_DATA_DIR=os.path.join(home, "poetry-data"),
            POETRY_VIRTUALENVS_IN_PROJECT="true",
            POETRY_KEYRING_ENABLED="false",
            POETRY_INSTALLER_PARALLEL="false",
            POETRY_REQUESTS_MAX_RETRIES=str(max(0, int(retries))),
            POETRY_REQUESTS_TIMEOUT=f"{max(1, round(opts.read_timeout))}",
        )
        if not opts.validate_certs:
            env[f"POETRY_CERTIFICATES_{INDEX_NAME.upper()}_CERT"] = "false"
        elif opts.ca_path:
            env[f"POETRY_CERTIFICATES_{INDEX_NAME.upper()}_CERT"] = opts.ca_path
        if user is not None:
            prefix = f"POETRY_HTTP_BASIC_{INDEX_NAME.upper()}_"
            env.update({prefix + "USERNAME": user, prefix + "PASSWORD": password or ""})
    elif client == "pdm":
        env.update(
            PDM_CONFIG_FILE=os.path.join(private_dir, "pdm-config.toml"),
            PDM_CACHE_DIR=os.path.join(home, "pdm-cache"),
            PDM_LOG_DIR=os.path.join(home, "pdm-log"),
            PDM_CHECK_UPDATE="false",
            PDM_PYTHON=venv_python,
            PDM_NON_INTERACTIVE="1",
            PDM_IGNORE_STORED_INDEX="1",
            PDM_IGNORE_SAVED_PYTHON="1",
            PDM_USE_UV="false",
            PDM_REQUEST_TIMEOUT=f"{max(1, round(opts.read_timeout))}",
        )
        if user is not None:
            env.update(PDM_PYPI_USERNAME=user, PDM_PYPI_PASSWORD=password or "")
    return env


def write_project(client: str, project: str, private_dir: str, spec: install.InstallSpec, index_url: str,
                  python_version: str, opts: http.ClientOptions) -> None:  # fmt: skip
    """Write the pyproject.toml (and uv's or pdm's throwaway config); none of them holds a credential."""
    with open(os.path.join(project, "pyproject.toml"), "w", encoding="utf-8") as handle:
        handle.write(pyproject(client, spec, index_url, python_version, opts))
    if client == "uv-lock":
        with open(os.path.join(private_dir, "uv.toml"), "w", encoding="utf-8") as handle:
            handle.write(uv_toml(index_url))
    elif client == "pdm":
        with open(os.path.join(private_dir, "pdm-config.toml"), "w", encoding="utf-8") as handle:
            handle.write(pdm_config(opts))


# ---------------------------------------------------------------- the commands


def lock_argv(client: str, tool: str, python: str, index_url: str, spec: install.InstallSpec,
              opts: http.ClientOptions) -> list[str]:  # fmt: skip
    if client == "uv-lock":
        argv = [tool, "-v", "lock", "--no-python-downloads", "--python", python]
        if spec.pre:
            argv += ["--prerelease", "allow"]
        if spec.uploaded_prior_to:
            argv += ["--exclude-newer", spec.uploaded_prior_to]
        return argv + uv_runner.tls_args(index_url, opts)
    if client == "poetry":
        return [tool, "--no-cache", "--no-interaction", "--no-ansi", "-vvv", "lock"]
    argv = [tool, "lock", "-v", "-S", "static_urls"]
    if spec.uploaded_prior_to:
        argv += ["--exclude-newer", spec.uploaded_prior_to]
    return argv


def install_argv(client: str, tool: str, python: str, index_url: str, opts: http.ClientOptions) -> list[str]:
    if client == "uv-lock":
        argv = [tool, "-v", "sync", "--locked", "--no-install-project", "--no-python-downloads", "--python", python]
        return argv + uv_runner.tls_args(index_url, opts)
    if client == "poetry":
        return [tool, "--no-cache", "--no-interaction", "--no-ansi", "-vvv", "install", "--no-root"]
    return [tool, "install", "-v", "--frozen-lockfile", "--no-self"]


# ---------------------------------------------------------------- reading the lock and the logs


class LockError(Exception):
    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg


def parse_lock(client: str, text: str) -> dict[str, dict[str, t.Any]]:
    """{normalized name: {version, source (the index URL recorded, or None), files: [{url, filename, sha256}]}} from
    a uv.lock, poetry.lock or pdm.lock. ``url`` is None where the lock records only file names (poetry)."""
    if not HAS_TOMLLIB:  # pragma: no cover
        raise LockError("Reading a lock file needs Python 3.11 or later on the controller (tomllib).")
    try:
        doc = tomllib.loads(text)
    except ValueError as exc:
        raise LockError(f"the lock file is not valid TOML: {exc}") from None
    found: dict[str, dict[str, t.Any]] = {}
    for package in doc.get("package") or []:
        if not isinstance(package, dict) or "name" not in package:
            continue
        name = si.normalize(str(package["name"]))
        files: list[dict[str, t.Any]] = []
        source = None
        if client == "uv-lock":
            src = package.get("source") or {}
            source = src.get("registry")
            entries = list(package.get("wheels") or []) + ([package["sdist"]] if package.get("sdist") else [])
            for entry in entries:
                url = entry.get("url")
                files.append(
                    {"url": url, "filename": _basename(url) if url else None, "sha256": _sha(entry.get("hash"))}
                )
        elif client == "poetry":
            src = package.get("source") or {}
            source = src.get("url")
            for entry in package.get("files") or []:
                files.append({"url": None, "filename": entry.get("file"), "sha256": _sha(entry.get("hash"))})
        else:
            for entry in package.get("files") or []:
                url = entry.get("url")
                name_ = entry.get("file") or (_basename(url) if url else None)
                files.append({"url": url, "filename": name_, "sha256": _sha(entry.get("hash"))})
        found[name] = {"version": str(package.get("version") or ""), "source": source, "files": files}
    return found


def _sha(value: t.Any) -> str | None:
    text = str(value or "")
    return text.split(":", 1)[1].lower() if text.startswith("sha256:") else None


def _basename(url: str) -> str:
    return unquote(urlsplit(urldefrag(url)[0]).path).rsplit("/", 1)[-1]


def requests_of(client: str, text: str) -> list[str]:
    """Every URL the client says it requested: uv's ``-v`` log, poetry's urllib3 debug lines (``-vvv``); pdm's ``-v``
    names the files it downloads only."""
    if client == "uv-lock":
        return uv_runner.parse_verbose(text)["requests"]
    if client == "poetry":
        return [m.group(1) + m.group(2) for m in _URLLIB3.finditer(text or "")]
    return [m.group(1) for m in _PDM_DOWNLOAD.finditer(text or "")]


def downloads_of(client: str, text: str, filenames: t.Iterable[str]) -> list[str]:
    """The install step's requests for one of ``filenames`` (the lock's files of the probe), in order."""
    wanted = set(filenames)
    return [u for u in requests_of(client, text) if _basename(u) in wanted]


def quiet(client: str, text: str) -> str:
    """The client's output without its debug log: what it says went wrong."""
    if client == "uv-lock":
        return uv_runner.quiet(text)
    # poetry -vvv and pdm -v: their log lines, and the indented lines of the traceback they print on failure
    log = r"^(\[|pdm\.\w+:|unearth\.\w+:|\s)"
    return "\n".join(line for line in text.splitlines() if not re.match(log, line))


# ---------------------------------------------------------------- the wording


def explain_failure(client: str, step: str, text: str, spec: install.InstallSpec, index_url: str,
                    opts: http.ClientOptions) -> str:  # fmt: skip
    """One sentence for a failed lock or install step."""
    safe = http.redact_url(index_url)
    req = spec.requirement
    low = text.lower()
    dropped = install.dropped_credentials(client, text, index_url, opts, spec.name)
    if dropped:
        return dropped
    if "hash" in low and ("mismatch" in low or "does not match" in low or "expected" in low and "computed" in low):
        return (
            f"{step} got {req} from {safe} with bytes whose hash differs from the one recorded (the index's "
            "#sha256= fragment, or the lock): the stored file is corrupt or was replaced behind the index's back."
        )
    if re.search(r"\b401\b", text) or "unauthorized" in low:
        if not opts.has_credentials:
            return f"The index {safe} wants credentials (HTTP 401) for {req} and none were given to {client}; set username and password."
        return (
            f"The index {safe} refused the credentials for user {opts.username!r} (HTTP 401) that {client} sent for "
            f"{req}; check the password."
        )
    if re.search(r"\b403\b", text) or "forbidden" in low:
        return f"The index {safe} refused access (HTTP 403) to {client} for {req}; check the credentials."
    if "certificate" in low and ("verify" in low or "error" in low or "invalid" in low):
        return (
            f"{client} could not verify the TLS certificate of {safe}; pass the CA bundle that signed it as ca_path "
            "(pypi_ca_path)."
        )
    stall = install.stalled_download(client, text, req, opts)
    if stall:
        return stall
    if any(s in low for s in ("connection refused", "tcp connect error", "dns error", "timed out", "connecterror",
                              "all attempts to connect", "max retries exceeded", "error sending")):  # fmt: skip
        return install.diagnose_index(index_url, spec.name, opts) or (
            f"The index {safe} is unreachable for {client}; check the URL and that the server is running."
        )
    if any(s in low for s in ("not found in the package registry", "no solution found", "doesn't match any versions",
                              "could not find a version", "unable to find candidates", "resolutionimpossible",
                              "no matching distribution", "not found")):  # fmt: skip
        return install.diagnose_index(index_url, spec.name, opts) or (
            f"{req} is not on the index {safe} ({client} looked only there)."
        )
    return f"{step} {req} from {safe} failed: {runner.tail(quiet(client, text), 3) or 'no output'}"


# ---------------------------------------------------------------- the install


def _python_version(module: t.Any | None, python: str, timeout: float) -> str:
    res = runner.run(module, [python, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout)
    version = res.out.strip()
    if res.rc != 0 or not re.fullmatch(r"\d+\.\d+", version):
        why = "timed out" if res.timed_out else runner.tail(res.text, 1) or f"rc={res.rc}"
        raise install.InstallError(
            f"The interpreter {python} did not tell its version ({why}); set python to a working one."
        )
    return version


def _run_step(module: t.Any | None, client: str, step: str, argv: list[str], env: dict[str, str], cwd: str,
              spec: install.InstallSpec, index_url: str, opts: http.ClientOptions) -> runner.RunResult:  # fmt: skip
    res = runner.run(module, client_tools.scrubbed(argv, env), spec.timeout, env=env, cwd=cwd)
    safe = http.redact_url(index_url)
    tail = runner.tail(quiet(client, res.text), 20).splitlines()
    if res.timed_out:
        raise install.InstallError(install.timed_out(step, spec.requirement, safe, spec.timeout, opts), tail)
    if res.rc != 0:
        cutoff, msg = (None, None)
        if spec.uploaded_prior_to:
            cutoff = install.cutoff_outcome(res.text)
        msg = explain_failure(client, step, res.text, spec, index_url, opts)
        raise install.InstallError(install.with_tail(msg, client, tail), tail, cutoff=cutoff)
    return res


def install_and_import(
    module: t.Any | None, client: str, tool: str, spec: install.InstallSpec, opts: http.ClientOptions
) -> dict[str, t.Any]:
    """Lock and install ``spec`` with ``client`` (uv-lock, poetry, pdm; ``tool`` its program) from its index only,
    import it, and check where it came from, in the lock and in the install. Raises ``install.InstallError``."""
    if client not in CLIENTS:
        raise install.InstallError(f"client {client!r} is not a lock-based client ({', '.join(CLIENTS)}).")
    index = install.index_of(spec.index_url, opts)
    if index.problem:
        raise install.InstallError(index.problem)
    index_url, safe_index, opts = index.url, index.safe, index.opts
    if client == "poetry" and spec.uploaded_prior_to:
        raise install.InstallError(
            "poetry has no cut-off option (uploaded_prior_to); use pip, uv, uv-lock or pdm for it.",
            cutoff="unsupported",
        )
    lock_step, install_step = step_names(client)
    python = spec.python or sys.executable
    name = si.normalize(spec.name)
    result: dict[str, t.Any] = {
        "changed": False, "requirement": spec.requirement, "index_url": safe_index, PROGRAM[client]: tool,
    }  # fmt: skip
    with install.work_dir(f"pypi_ops-{client}-", spec.work_dir, spec.keep_venv) as work:
        project = work.path
        venv = os.path.join(project, VENV)
        from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import pip_runner

        venv_python = pip_runner.create_venv(module, python, venv, spec.timeout)
        python_version = _python_version(module, venv_python, spec.timeout)
        write_project(client, project, work.auth, spec, index_url, python_version, opts)
        env = client_env(client, project, work.auth, opts, venv_python, spec.retries)

        lock_res = _run_step(module, client, lock_step, lock_argv(client, tool, python, index_url, spec, opts), env,
                             project, spec, index_url, opts)  # fmt: skip
        lock_path = os.path.join(project, LOCK_FILE[client])
        try:
            with open(lock_path, encoding="utf-8") as handle:
                locked = parse_lock(client, handle.read())
        except OSError as exc:
            raise install.InstallError(
                f"{lock_step} ended without error but wrote no {LOCK_FILE[client]} ({exc.strerror})."
            ) from None
        except LockError as exc:
            raise install.InstallError(
                f"{lock_step} wrote a {LOCK_FILE[client]} that cannot be read: {exc.msg}."
            ) from None
        entry = locked.get(name)
        if not entry or not entry["files"]:
            raise install.InstallError(
                f"{lock_step} wrote a {LOCK_FILE[client]} without {name} or without its files, so what it would install "
                "cannot be checked; this client's lock format may have changed (check the pinned version)."
            )
        result["locked_version"] = entry["version"]
        if spec.expected_version is not None and not si.same_version(entry["version"], spec.expected_version):
            raise install.InstallError(
                install.version_mismatch(client, name, entry["version"], spec.expected_version, safe_index), **result
            )

        argv = install_argv(client, tool, python, index_url, opts)
        result["cmd"] = argv
        res = _run_step(module, client, install_step, argv, env, project, spec, index_url, opts)
        tail = runner.tail(quiet(client, res.text), 20).splitlines()
        filenames = [f["filename"] for f in entry["files"] if f["filename"]]
        downloads = downloads_of(client, res.text, filenames)
        if not downloads:
            raise install.InstallError(
                f"{install_step} installed {spec.requirement} but its log names no file of {name} it downloaded, so "
                "where it came from cannot be proven; this client's log format may have changed (check the pinned "
                "version).",
                tail,
                **result,
            )
        url = downloads[-1]
        filename = _basename(url)
        recorded = next(f for f in entry["files"] if f["filename"] == filename)
        lock_url = recorded["url"]  # poetry records the source URL and the file name only: filled in by _check_lock
        result.update(
            resolved_url=http.redact_url(urldefrag(url)[0]),
            filename=filename,
            installed_version=entry["version"],
            sha256=recorded["sha256"],
            sha256_source=f"lock-hash-checked-by-{PROGRAM[client]}",
            lock={
                "file": LOCK_FILE[client],
                "url": http.redact_url(lock_url) if lock_url else None,
                "source": http.redact_url(entry["source"]) if entry.get("source") else None,
                "sha256": recorded["sha256"],
            },  # fmt: skip
            import_name=spec.module_name,
        )
        requests = requests_of(client, lock_res.text) + requests_of(client, res.text)
        result["requests"] = [http.redact_url(u) for u in requests]
        pages = provenance.read_pages(index_url, [name], opts)
        _check_lock(client, lock_step, entry, recorded, index_url, pages[name], tail, result)
        installs = [{"name": name, "version": entry["version"], "url": urldefrag(url)[0], "sha256": recorded["sha256"]}]
        expected = {name: spec.expected_sha256} if spec.expected_sha256 else None
        try:
            result["provenance"] = provenance.judge(index_url, client, pages, installs, expected, requests)
        except provenance.ProvenanceError as exc:
            raise install.InstallError(
                exc.msg, tail, **dict(result, resolved_url=http.redact_url(exc.url or url))
            ) from None
        if not recorded["sha256"]:
            raise install.InstallError(
                f"{LOCK_FILE[client]} records no sha256 for {filename}, so the installed bytes cannot be tied to the "
                "upload; make the index advertise #sha256= fragments.",
                tail,
                **result,
            )
        imported = install.import_check(module, venv_python, spec.module_name, project, spec.timeout)
        result.update(imported_version=imported.get("version"), import_file=imported.get("file") or "")
        install.check_import(spec, imported, venv, client, result)
        if spec.keep_venv:
            result["venv_dir"] = venv
        return result


def _check_lock(client: str, lock_step: str, entry: dict[str, t.Any], recorded: dict[str, t.Any], index_url: str,
                page: dict[str, t.Any], tail: list[str], result: dict[str, t.Any]) -> None:  # fmt: skip
    """The lock's entry for the probe must name the index under test, and its file must be one the index advertises
    with the hash the index advertises."""
    lock = LOCK_FILE[client]
    source = entry.get("source")
    if client in ("uv-lock", "poetry"):
        if not source or provenance.file_key(source.rstrip("/") + "/") != provenance.file_key(
            index_url.rstrip("/") + "/"
        ):
            raise install.InstallError(
                f"{lock_step} recorded {result['requirement']} in {lock} from {http.redact_url(source or 'no index')}, "
                f"not from the index under test {http.redact_url(index_url)}: {client} resolved it elsewhere; "
                f"{provenance.FIX_ISOLATION}.",
                tail,
                **result,
            )
    files = page.get("files") or {}
    if recorded["url"]:
        key = provenance.file_key(recorded["url"])
        matches = [key] if key in files else []
    else:
        matches = [k for k in files if k.rsplit("/", 1)[-1] == recorded["filename"]]
    if not matches:
        raise install.InstallError(
            f"{lock_step} recorded {recorded['url'] or recorded['filename']} in {lock}, a file the index under test "
            f"never advertised on {http.redact_url(page.get('url') or index_url)}: {client} locked a file from "
            f"elsewhere; {provenance.FIX_ISOLATION}.",
            tail,
            **result,
        )
    advertised = files[matches[0]]
    if advertised and recorded["sha256"] and advertised != recorded["sha256"]:
        raise install.InstallError(
            f"{lock_step} recorded sha256 {recorded['sha256']} for {recorded['filename']} in {lock}, but the index "
            f"advertises {advertised}: the lock does not hold the file the index serves.",
            tail,
            **result,
        )
    if not recorded["url"]:
        result["lock"]["url"] = http.redact_url(matches[0])
