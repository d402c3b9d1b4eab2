# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolution against the index: a requirement with dependencies and extras, installed by pip or uv from the index
only, and every distribution they chose, where it came from and what they fetched on the way.

Where ``pip_runner``/``uv_runner`` prove one project (installed, imported, its bytes), this proves the resolver's
work: ``A[extra]`` pulls ``B`` and ``C`` from the index at the expected versions, and a release of ``B`` whose
``Requires-Python`` this interpreter cannot meet is passed over for the highest one it can. It also records whether
the client had to fetch that release to learn so (the index did not advertise ``data-requires-python``): pip logs
``Downloading <file>`` for each file it downloads, uv's ``-v`` log names every URL it requests (a ``HEAD`` and range
requests for metadata, a ``GET`` for what it installs).

Measured with pypiserver 2.4.2 (no ``data-requires-python``), pip 26 and uv 0.13.9: pip downloads ``B 9.0`` whole,
reads its metadata and backtracks to ``B 1.1``; uv fetches ``B 9.0``'s metadata by range requests and does the same.
"""

from __future__ import annotations

import os
import re
import sys
import typing as t
from urllib.parse import unquote, urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http, install, provenance, runner
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import pip_runner as pr
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import uv_runner as ur

CLIENTS = ("pip", "uv")
_PIP_DOWNLOADING = re.compile(r"^\s*Downloading (\S+)", re.M)
_UV_INSTALLED = re.compile(r"^ \+ (\S+?)==(\S+)", re.M)
ABSENT = ("", "absent", None)


class ResolveError(install.InstallError):
    """A resolution that failed or cannot be proven: one sentence, the client's output tail, details."""


def project_of(requirement: str) -> str:
    """The normalized project name of a requirement string (``a[extra]>=1`` -> ``a``)."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging ships with ansible-core
        return si.normalize(re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0])
    try:
        return si.normalize(Requirement(requirement).name)
    except InvalidRequirement as exc:
        raise ResolveError(
            f"requirement {requirement!r} is not PEP 508 ({exc}); write it like 'name[extra]>=1.0'."
        ) from None


def filename_of(url: str) -> str:
    return unquote(os.path.basename(urlsplit(url).path))


def _fetched(urls: t.Iterable[str], watch: t.Sequence[str]) -> dict[str, bool]:
    names = {filename_of(u) for u in urls}
    return {w: w in names for w in watch}


def _raise_on_timeout(
    res: runner.RunResult, what: str, requirement: str, index_url: str, opts: http.ClientOptions, timeout: float,
    tail: list[str],
) -> None:  # fmt: skip
    """A client cut off by its timeout (or by the deadline, which the message then names) fails in one sentence."""
    if res.timed_out:
        raise ResolveError(install.timed_out(what, requirement, http.redact_url(index_url), timeout, opts), tail)


def _install_pip(
    module: t.Any | None,
    work: install.WorkDir,
    venv_python: str,
    index_url: str,
    requirement: str,
    opts: http.ClientOptions,
    timeout: float,
    python: str,
) -> tuple[list[dict[str, t.Any]], list[str], str]:
    """(installed items, the files pip downloaded (names or URLs), pip's output)."""
    _scheme, host, _port = provenance.origin(index_url)
    env = pr.isolated_env(work.auth, host, opts)
    report = os.path.join(work.path, "report.json")
    argv = pr.pip_argv(python, venv_python, index_url, requirement, report, opts)
    res = runner.run(module, argv, timeout, env=env, cwd=work.path)
    tail = runner.tail(res.text, 20).splitlines()
    _raise_on_timeout(res, "pip install", requirement, index_url, opts, timeout, tail)
    if res.rc != 0:
        spec = install.InstallSpec(index_url=index_url, name=project_of(requirement))
        raise ResolveError(
            install.with_tail(pr.explain_pip_failure(res.text, spec, index_url, opts), "pip", tail), tail
        )
    items = pr.parse_report(report, project_of(requirement))["items"]
    for item in items:
        item["filename"] = filename_of(item["url"])
    return items, _PIP_DOWNLOADING.findall(res.text), res.text


def _install_uv(
    module: t.Any | None,
    work: install.WorkDir,
    uv: str,
    index_url: str,
    requirement: str,
    opts: http.ClientOptions,
    timeout: float,
    python: str,
) -> tuple[list[dict[str, t.Any]], list[str], str]:
    """(installed items, every URL uv requested, uv's output)."""
    env = ur.install_env(work.auth, opts)
    venv_dir = os.path.join(work.path, "uv-venv")
    res = runner.run(module, ur.scrubbed(ur.venv_argv(uv, python, venv_dir), env), timeout, env=env, cwd=work.path)
    venv_python = install.venv_python(venv_dir)
    if res.rc != 0 or not os.path.exists(venv_python):
        raise ResolveError(f"uv venv could not create {venv_dir} (rc={res.rc}): {runner.tail(res.text, 3)}")
    argv = ur.install_argv(uv, venv_python, index_url, requirement, opts, False)
    res = runner.run(module, ur.scrubbed(argv, env), timeout, env=env, cwd=work.path)
    quiet = ur.quiet(res.text)
    tail = runner.tail(quiet, 20).splitlines()
    _raise_on_timeout(res, "uv pip install", requirement, index_url, opts, timeout, tail)
    if res.rc != 0:
        spec = install.InstallSpec(index_url=index_url, name=project_of(requirement))
        raise ResolveError(install.with_tail(ur.explain_uv_failure(quiet, spec, index_url, opts), "uv", tail), tail)
    seen = ur.parse_verbose(res.text)
    items = []
    for name, version in _UV_INSTALLED.findall(res.text):
        norm = si.normalize(name)
        chosen = seen["selected"].get(norm)
        filename = chosen[1] if chosen else ""
        urls = [u for u in seen["requests"] if filename and filename_of(u) == filename]
        items.append(
            {"name": norm, "version": version, "url": urls[-1] if urls else "", "filename": filename, "sha256": None}
        )
    return items, seen["requests"], res.text


def resolve(
    module: t.Any | None,
    client: str,
    index_url: str,
    requirement: str,
    opts: http.ClientOptions,
    watch: t.Sequence[str] = (),
    uploaded: dict[str, str] | None = None,
    timeout: float = 300,
    python: str | None = None,
    uv: str | None = None,
    work_dir: str | None = None,
) -> dict[str, t.Any]:
    """Install ``requirement`` from ``index_url`` only into a throwaway venv; what was installed and fetched.

    ``uploaded`` maps file names to the uploaded sha256: an installed file of that name must carry it. Returns
    installed ({name: {version, filename, url, sha256}}), fetched ({watched file: bool}), provenance (the verdict per
    installed file) and client; raises ResolveError (one sentence) when the install fails or its provenance does.
    """
    uploaded = uploaded or {}
    if client not in CLIENTS:
        raise ResolveError(f"client {client!r} is not one of {list(CLIENTS)}.")
    project_of(requirement)  # a bad requirement fails before anything runs
    index = install.index_of(index_url, opts, blank_is_unset=True)
    if index.problem:
        raise ResolveError(index.problem)
    index_clean, opts = index.url, index.opts
    python = python or sys.executable
    uv_bin = ""
    if client == "uv":
        try:
            uv_bin = ur.find_uv(uv, python)
        except ur.UvNotFound as exc:
            raise ResolveError(exc.msg) from None
    try:
        with install.work_dir(f"pypi_ops-resolve-{client}-", work_dir) as work:
            limit = opts.deadline.cap(timeout)
            if client == "pip":
                venv_python = pr.create_venv(module, python, work.venv, limit)
                items, fetched, _text = _install_pip(
                    module, work, venv_python, index_clean, requirement, opts, limit, python
                )
            else:
                items, fetched, _text = _install_uv(module, work, uv_bin, index_clean, requirement, opts, limit, python)
    except ResolveError:
        raise
    except install.InstallError as exc:
        raise ResolveError(exc.msg, exc.output_tail) from None
    # provenance (the rule every install check uses): each page from the index under test, each file one it
    # advertised, with the uploaded bytes; uv's hashes are the index's, which uv checked each download against
    pages = provenance.read_pages(index_clean, [i["name"] for i in items], opts)
    for item in items:
        if not item.get("sha256") and item.get("url"):
            item["sha256"] = pages[item["name"]]["files"].get(provenance.file_key(item["url"]))
    by_name = {i["name"]: uploaded[i["filename"]] for i in items if i.get("filename") in uploaded}
    try:
        verdicts = provenance.judge(index_clean, client, pages, items, by_name, fetched if client == "uv" else ())
    except provenance.ProvenanceError as exc:
        raise ResolveError(exc.msg, url=http.redact_url(exc.url or "")) from None
    installed = {i["name"]: {k: i.get(k) for k in ("version", "filename", "url", "sha256")} for i in items}
    return {"client": client, "installed": installed, "fetched": _fetched(fetched, watch), "provenance": verdicts}


def judge(
    client: str, requirement: str, installed: dict[str, dict[str, t.Any]], expected: dict[str, t.Any]
) -> list[str]:
    """Every way the resolution differs from ``expected`` ({name: version, or '' for must not be installed})."""
    problems: list[str] = []
    for name, want in expected.items():
        norm = si.normalize(name)
        got = installed.get(norm)
        if want in ABSENT:
            if got:
                problems.append(
                    f"{client} installed {norm} {got['version']} for {requirement}, which does not ask for it"
                )
        elif not got:
            problems.append(f"{client} did not install {norm} for {requirement} (expected {want})")
        elif not si.same_version(str(got["version"]), str(want)):
            problems.append(f"{client} resolved {norm} to {got['version']} for {requirement}, expected {want}")
    return problems
