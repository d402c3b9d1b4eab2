# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The project-based upload clients: ``poetry publish``, ``pdm publish`` and ``hatch publish``, one file at a time.

Each tool runs isolated, as ``uv_runner.uv_publish`` does (measured with poetry 2.5.1, pdm 2.29.4, hatch 1.18.2):

- in a throwaway directory (``install.work_dir``) with a throwaway HOME and XDG dirs, an empty netrc and keyring's
  null backend (``client_tools.isolated_env``); every inherited ``POETRY_``/``PDM_``/``HATCH_``/``UV_``/``PIP_``/
  ``TWINE_`` variable is removed (``client_tools.scrubbed``), and the tool's own config, cache and data directories
  point into the throwaway directory;
- the upload URL and the credentials reach it through its documented environment variables, never its argv:

  * poetry: a repository named ``pypiops`` defined by ``POETRY_REPOSITORIES_PYPIOPS_URL``, its credentials in
    ``POETRY_HTTP_BASIC_PYPIOPS_USERNAME``/``_PASSWORD``; ``POETRY_KEYRING_ENABLED=false``; ``POETRY_CONFIG_DIR``,
    ``POETRY_CACHE_DIR``, ``POETRY_DATA_DIR`` in the throwaway home. poetry publishes a project's ``dist/``, so
    the file is hard-linked (or copied) into the ``dist/`` of a throwaway project whose ``pyproject.toml`` has the
    file's name and version (read from its filename);
  * pdm: ``PDM_PUBLISH_REPO`` (a URL), ``PDM_PUBLISH_USERNAME``/``PDM_PUBLISH_PASSWORD``, ``PDM_PUBLISH_CA_CERTS``;
    ``pdm publish --no-build`` from the same kind of throwaway project; ``PDM_CONFIG_FILE``, ``PDM_CACHE_DIR``,
    ``PDM_LOG_DIR`` isolated, ``PDM_CHECK_UPDATE=false``, ``PDM_NON_INTERACTIVE=1``, ``PDM_USE_VENV=false`` and
    ``PDM_PYTHON`` (without them pdm makes a virtualenv in the project before it uploads anything);
  * hatch: ``hatch publish --no-prompt <file>`` with ``HATCH_INDEX_REPO`` (a URL), ``HATCH_INDEX_USER``,
    ``HATCH_INDEX_AUTH``, ``HATCH_INDEX_CA_CERT``; ``HATCH_CONFIG`` (an empty file: hatch refuses a missing one),
    ``HATCH_CACHE_DIR`` (where hatch remembers the users it prompted for), ``HATCH_DATA_DIR`` isolated. With
    ``--no-prompt`` hatch never asks, and it saves a user or password only after asking, so nothing is stored.

Without credentials (an open server): poetry sends no Authorization header at all, so an authenticating server
answers 401 (``unauthorized``). pdm (after asking the upload host for an OIDC audience) and hatch refuse to upload
without a user and a password ("Username and password are required", "Missing required option: user"), so they
get the placeholder user of ``uv_runner.ANONYMOUS_USER`` as user and password, as uv does: an open server takes
the upload and an authenticating one refuses it (403, ``forbidden``).

Outcomes use ``upload.classify`` on the status each tool prints (measured texts in ``tests/unit/test_publishers.py``).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import client_tools, http, install, runner, upload
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.uv_runner import ANONYMOUS_USER

TOOLS = client_tools.TOOLS
REPOSITORY = "pypiops"  # poetry's one named repository (POETRY_REPOSITORIES_PYPIOPS_URL)
# requests (poetry) lets these override the CA it was given; they are pointed at ca_path or removed.
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

# poetry: "HTTP Error 409: Conflict | b'<the response body, as a Python bytes literal>'"
_POETRY_HTTP = re.compile(r"HTTP Error (\d{3}): [^|\n]*\|\s*(b(['\"]).*?\3)\s*$", re.S | re.M)
# pdm and hatch (httpx's raise_for_status): "Client error '403 Forbidden' for url 'http://...'"
_HTTPX_STATUS = re.compile(r"(?:Client|Server|Redirect|Informational) error '(\d{3})[^']*' for url")
_TRANSPORT = (
    "connection refused",
    "connecterror",
    "connection reset",
    "name or service not known",
    "temporary failure in name resolution",
    "timed out",
    "timeout",
    "certificate verify failed",
    "ssl",
    "remote end closed",
    "remoteprotocolerror",
    "broken pipe",
)


class Run(t.NamedTuple):
    """One tool's command: argv (no secret), env (the secrets), cwd."""

    argv: list[str]
    env: dict[str, str]
    cwd: str


def name_version(path: str) -> tuple[str, str]:
    """The project name and version a dist file's name gives (packaging.utils); ValueError for another name."""
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    filename = os.path.basename(path)
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except Exception as exc:  # noqa: BLE001 - InvalidWheelFilename / InvalidSdistFilename
        raise ValueError(str(exc)) from None
    return str(name), str(version)


def credentials(opts: http.ClientOptions) -> tuple[str, str]:
    """(user, password) for pdm and hatch: the given ones, or the placeholder when there is no password."""
    if opts.has_credentials:
        return opts.username or "", opts.password or ""
    return ANONYMOUS_USER, ANONYMOUS_USER


def stage_project(work: str, path: str) -> str:
    """A throwaway project in ``work``: ``pyproject.toml`` with the file's name and version, the file in ``dist/``
    (hard-linked, else copied). Returns the project directory."""
    name, version = name_version(path)
    project = os.path.join(work, "project")
    dist = os.path.join(project, "dist")
    os.makedirs(dist, mode=0o700)
    with open(os.path.join(project, "pyproject.toml"), "w", encoding="utf-8") as handle:
        handle.write(f'[project]\nname = "{name}"\nversion = "{version}"\n')
    target = os.path.join(dist, os.path.basename(path))
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)
    return project


def _home(work: str) -> tuple[dict[str, str], str]:
    """``client_tools.isolated_env`` under ``work`` and that home's path."""
    env = client_tools.isolated_env(work)
    return env, env["HOME"]


def _tool_dir(home: str, *parts: str) -> str:
    path = os.path.join(home, *parts)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


# ---------------------------------------------------------------- poetry


def poetry_argv(poetry: str) -> list[str]:
    return [poetry, "publish", "--no-interaction", "--no-ansi", "--repository", REPOSITORY, "--dist-dir", "dist"]


def poetry_env(work: str, repository_url: str, opts: http.ClientOptions) -> dict[str, str]:
    env, home = _home(work)
    prefix = REPOSITORY.upper()
    config_dir = _tool_dir(home, ".config", "pypoetry")
    env.update(
        {
            "POETRY_CONFIG_DIR": config_dir,
            "POETRY_CACHE_DIR": _tool_dir(home, ".cache", "pypoetry"),
            "POETRY_DATA_DIR": _tool_dir(home, ".local", "share", "pypoetry"),
            "POETRY_KEYRING_ENABLED": "false",
            "POETRY_NO_INTERACTION": "1",
            "POETRY_REQUESTS_TIMEOUT": str(max(1, round(opts.read_timeout))),
            f"POETRY_REPOSITORIES_{prefix}_URL": repository_url,
        }
    )
    if opts.has_credentials:  # no password: no credentials at all (poetry then sends no Authorization header)
        env[f"POETRY_HTTP_BASIC_{prefix}_USERNAME"] = opts.username or ""
        env[f"POETRY_HTTP_BASIC_{prefix}_PASSWORD"] = opts.password or ""
    if not opts.validate_certs:
        # only a config file can say verify = false (an environment value is read as a CA path)
        with open(os.path.join(config_dir, "config.toml"), "w", encoding="utf-8") as handle:
            handle.write(f"[certificates.{REPOSITORY}]\nverify = false\n")
    elif opts.ca_path:
        env[f"POETRY_CERTIFICATES_{prefix}_CERT"] = opts.ca_path
        env.update(dict.fromkeys(CA_VARIABLES, opts.ca_path))
    return env


def _poetry_body(literal: str) -> str:
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return literal
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _poetry_message(body: str) -> str:
    """The server's words in the body poetry printed: its console formatter eats closing tags such as ``</pre>``."""
    pre = re.search(r"<pre>(.*)", body, re.S | re.I)
    if pre:
        return upload.server_message("<pre>" + pre.group(1).split("</pre>")[0] + "</pre>")
    return upload.server_message(body)


def parse_poetry(rc: int, text: str) -> upload.Outcome:
    """Classify one ``poetry publish`` run (one file) from its exit code and output."""
    clean = _plain(text)
    if rc == 0:
        if "file exists. skipping" in clean.lower():  # only with --skip-existing, which poetry_argv never passes
            return upload.Outcome("exists", None, "poetry skipped the file: it is already on the index")
        return upload.Outcome("uploaded", 200, "")
    match = _POETRY_HTTP.search(clean)
    if match:
        status, body = int(match.group(1)), _poetry_body(match.group(2))
        said = _poetry_message(body) or "poetry: " + clean[match.start() :].split("|")[0].strip()
        return upload.Outcome(upload.classify(status, body), status, said)
    status_only = re.search(r"HTTP Error (\d{3})", clean)
    if status_only:
        status = int(status_only.group(1))
        return upload.Outcome(upload.classify(status), status, _said(clean))
    low = clean.lower()
    if "redirects are not supported" in low:
        return upload.Outcome("rejected", None, "poetry: " + _said(clean))
    if "no files to publish" in low or "metadata not found" in low or "unknown distribution format" in low:
        return upload.Outcome("invalid_dist", None, "poetry: " + _said(clean))
    if "error connecting to repository" in low or any(s in low for s in _TRANSPORT):
        return upload.Outcome("unreachable", None, "poetry: " + _said(clean))
    return upload.Outcome("error", None, _said(clean, 6))


# ---------------------------------------------------------------- pdm


def pdm_argv(pdm: str, opts: http.ClientOptions) -> list[str]:
    argv = [pdm, "publish", "--no-build", "--dest", "dist"]
    return argv + (["--no-verify-ssl"] if not opts.validate_certs else [])


def pdm_env(work: str, repository_url: str, opts: http.ClientOptions, python: str | None = None) -> dict[str, str]:
    env, home = _home(work)
    user, password = credentials(opts)
    env.update(
        {
            "PDM_CONFIG_FILE": os.path.join(_tool_dir(home, ".config", "pdm"), "config.toml"),
            "PDM_CACHE_DIR": _tool_dir(home, ".cache", "pdm"),
            "PDM_LOG_DIR": _tool_dir(home, ".local", "state", "pdm", "log"),
            "PDM_CHECK_UPDATE": "false",
            "PDM_NON_INTERACTIVE": "1",
            "PDM_USE_VENV": "false",
            "PDM_PYTHON": python or sys.executable,
            "PDM_REQUEST_TIMEOUT": str(max(1, round(opts.read_timeout))),
            "PDM_PUBLISH_REPO": repository_url,
            "PDM_PUBLISH_USERNAME": user,
            "PDM_PUBLISH_PASSWORD": password,
        }
    )
    if opts.ca_path and opts.validate_certs:
        env["PDM_PUBLISH_CA_CERTS"] = opts.ca_path
    return env


def parse_pdm(rc: int, text: str, anonymous: bool = False) -> upload.Outcome:
    """Classify one ``pdm publish --no-build`` run (one file) from its exit code and output."""
    return _parse_httpx("pdm", rc, text, anonymous)


# ---------------------------------------------------------------- hatch


def hatch_argv(hatch: str, path: str) -> list[str]:
    return [hatch, "publish", "--no-prompt", path]


def hatch_env(work: str, repository_url: str, opts: http.ClientOptions) -> dict[str, str]:
    env, home = _home(work)
    user, password = credentials(opts)
    config = os.path.join(_tool_dir(home, ".config", "hatch"), "config.toml")
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # hatch refuses a HATCH_CONFIG that is missing
    os.close(fd)
    env.update(
        {
            "HATCH_CONFIG": config,
            "HATCH_CACHE_DIR": _tool_dir(home, ".cache", "hatch"),
            "HATCH_DATA_DIR": _tool_dir(home, ".local", "share", "hatch"),
            "HATCH_INDEX_REPO": repository_url,
            "HATCH_INDEX_USER": user,
            "HATCH_INDEX_AUTH": password,
        }
    )
    if opts.ca_path and opts.validate_certs:
        env["HATCH_INDEX_CA_CERT"] = opts.ca_path
    return env


def parse_hatch(rc: int, text: str, anonymous: bool = False) -> upload.Outcome:
    """Classify one ``hatch publish --no-prompt <file>`` run from its exit code and output."""
    clean = _plain(text)
    if "... already exists" in clean:  # hatch found the file on <repo>/+simple/<name>/ (a devpi layout), sent nothing
        return upload.Outcome("exists", None, "hatch skipped the file: its simple page already lists it")
    return _parse_httpx("hatch", rc, text, anonymous)


# ---------------------------------------------------------------- shared parsing


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text or "")


def _said(text: str, lines: int = 2) -> str:
    """The tool's last meaningful lines on one line (no progress bars, no 'see the log' pointers)."""
    keep = [
        line.strip()
        for line in text.splitlines()
        if line.strip()
        and not re.match(
            r"^(-\s+Uploading|Uploading|\d+%|See .* for detailed debug log|WARNING: Add '-v')", line.strip()
        )
        and "━" not in line
        and "developer.mozilla.org" not in line
        and not line.strip().endswith(("... failed", "... success"))
    ]
    return " ".join(" ".join(keep[-lines:]).split())[:400]


def _anonymous_note(tool: str) -> str:
    return (
        f" (no credentials were given; {tool} publish cannot upload without any, so it sent the placeholder user "
        f"{ANONYMOUS_USER!r})"
    )


def _parse_httpx(tool: str, rc: int, text: str, anonymous: bool) -> upload.Outcome:
    clean = _plain(text)
    if rc == 0:
        return upload.Outcome("uploaded", 200, "")
    note = _anonymous_note(tool) if anonymous else ""
    match = _HTTPX_STATUS.search(clean)
    if match:
        status = int(match.group(1))
        return upload.Outcome(upload.classify(status, clean), status, _said(clean) + note)
    low = clean.lower()
    if "username and password are required" in low or "missing required option" in low:
        return upload.Outcome("unauthorized", None, f"{tool} publish sent nothing: " + _said(clean) + note)
    if any(s in low for s in ("no artifacts found", "missing required field", "invalid wheel", "badzipfile")):
        return upload.Outcome("invalid_dist", None, f"{tool}: " + _said(clean))
    if any(s in low for s in _TRANSPORT):
        return upload.Outcome("unreachable", None, f"{tool}: " + _said(clean))
    return upload.Outcome("error", None, _said(clean, 6))


# ---------------------------------------------------------------- running one


def plan(tool: str, program: str, work: str, repository_url: str, path: str, opts: http.ClientOptions,
         python: str | None = None) -> Run:  # fmt: skip
    """The command for ``tool`` to upload ``path``, staged in the throwaway directory ``work``."""
    if tool == "poetry":
        return Run(poetry_argv(program), poetry_env(work, repository_url, opts), stage_project(work, path))
    if tool == "pdm":
        return Run(pdm_argv(program, opts), pdm_env(work, repository_url, opts, python), stage_project(work, path))
    if tool == "hatch":
        cwd = os.path.join(work, "project")
        os.makedirs(cwd, mode=0o700)
        return Run(hatch_argv(program, path), hatch_env(work, repository_url, opts), cwd)
    raise ValueError(f"unknown upload client {tool!r}; use one of {list(TOOLS)}")


def parse(tool: str, rc: int, text: str, opts: http.ClientOptions) -> upload.Outcome:
    if tool == "poetry":
        return parse_poetry(rc, text)
    if tool == "pdm":
        return parse_pdm(rc, text, anonymous=not opts.has_credentials)
    return parse_hatch(rc, text, anonymous=not opts.has_credentials)


def scrub(argv: list[str], env: dict[str, str], opts: http.ClientOptions) -> list[str]:
    """``client_tools.scrubbed``; without TLS verification the CA variables go too (requests would verify)."""
    prefixes = client_tools.SCRUB_PREFIXES + (CA_VARIABLES if not opts.validate_certs else ())
    return client_tools.scrubbed(argv, env, prefixes=prefixes)


def publish(
    module: t.Any | None,
    tool: str,
    repository_url: str,
    path: str,
    opts: http.ClientOptions,
    timeout: float,
    program: str,
    python: str | None = None,
) -> upload.Outcome:
    """Upload one file with ``tool`` (poetry, pdm or hatch); credentials in its environment, never its argv."""
    if tool == "hatch" and not opts.validate_certs:
        return upload.Outcome(
            "error",
            None,
            "hatch publish has no switch to turn TLS verification off; give the CA bundle as ca_path "
            "(HATCH_INDEX_CA_CERT) instead of validate_certs: false, or use another upload client.",
        )
    try:
        name_version(path)
    except ValueError as exc:
        return upload.Outcome(
            "invalid_dist", None, f"{tool} publish needs a dist file name with a name and version: {exc}"
        )
    with install.work_dir(f"pypi_ops-{tool}-publish-") as work:
        run = plan(tool, program, work.auth, repository_url, path, opts, python)
        res = runner.run(module, scrub(run.argv, run.env, opts), timeout, env=run.env, cwd=run.cwd)
    if res.timed_out:
        msg = f"{tool} publish did not finish within {timeout:g}s"
        return upload.Outcome("error", None, opts.deadline.explain_timeout(msg, f"during {tool} publish"))
    return parse(tool, res.rc, res.text, opts)


# ---------------------------------------------------------------- confirming an upload on the index


def default_index_url(repository_url: str) -> str:
    """pypiserver's simple index: ``simple/`` under the upload URL."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

    return si.dir_url(repository_url) + "simple/"


def confirm_listed(session: t.Any, index_url: str, path: str, opts: http.ClientOptions, retries: int = 1,
                   pause: float = 0.5) -> upload.Outcome:  # fmt: skip
    """After a client said it uploaded ``path``: does the index list that file, with the local file's sha256?

    ``uploaded`` when it does; ``unlisted`` (the detail says what the index lists) when the project page is missing,
    lacks the file or gives it another sha256 (an index page without sha256 fragments: the served file is hashed);
    ``error`` when the page cannot be read at all (nothing is confirmed). The page is read again ``retries`` times
    ``pause`` s apart before a missing file counts (an index that lists new files a moment later). Every request is
    bounded by opts' timeouts and deadline.
    """
    import time

    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import digest
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

    filename = os.path.basename(path)
    local, _size = digest.sha256_file(path)
    safe = http.redact_url(index_url)
    name, _version = name_version(path)
    verdict = upload.Outcome("unlisted", None, "")
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(pause)
        try:
            page = si.fetch_project(session, index_url, name, opts)
        except si.IndexReadError as exc:
            if exc.status == 404:
                verdict = upload.Outcome("unlisted", None, f"{safe} has no page for {name} (HTTP 404).")
                continue
            return upload.Outcome("error", None, f"the upload could not be confirmed on {safe}: {exc}")
        except Exception as exc:  # noqa: BLE001 - transport errors become one sentence
            return upload.Outcome(
                "error", None, f"the upload could not be confirmed: {http.describe_error(exc, index_url, opts)}"
            )
        record = next((f for f in page["files"] if f.get("filename") == filename), None)
        if record is None:
            listed = ", ".join(f["filename"] for f in page["files"][:5]) or "no file"
            verdict = upload.Outcome("unlisted", None, f"the page of {name} on {safe} lists {listed}, not {filename}.")
            continue
        served = (record.get("hashes") or {}).get("sha256")
        where = "its index page"
        if not served:
            try:
                served, _size = si.download_and_hash(session, record["url"], opts)
            except si.IndexReadError as exc:
                return upload.Outcome("error", None, f"the upload could not be confirmed: {exc}")
            where = "the file it serves"
        if served.lower() != local:
            return upload.Outcome(
                "unlisted", None, f"{safe} lists {filename} with sha256 {served} ({where}), the local file has {local}."
            )
        return upload.Outcome("uploaded", 200, f"listed on {safe} with sha256 {local}")
    return verdict
