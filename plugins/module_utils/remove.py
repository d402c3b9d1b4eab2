# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Removing packages from a pypiserver, and proving they are gone.

pypiserver 2.4.2's contract (``_app.py`` ``update()`` / ``remove_pkg()``, ``backend.py``):

- ``POST /`` (the upload URL) with form fields ``:action=remove_pkg``, ``name``, ``version``;
- guarded by the ``update`` auth action, exactly like uploads (no separate permission): no credentials
  -> 401 with ``WWW-Authenticate``, credentials not in the htpasswd -> 403; with ``-a .`` anyone may remove;
- ``name`` and ``version`` must equal, *exactly and case-sensitively*, the (pkgname, version) pypiserver
  guesses from each file name (``pkg_helpers.guess_pkgname_and_version``), not the normalized project
  name: ``foo-bar`` or ``Foo_Bar`` do not remove ``foo_bar-1.0-py3-none-any.whl``;
- every file with that key is deleted and the answer is ``200`` with an empty body; no file with that key
  -> ``404`` "<name> (<version>) not found"; a missing field -> ``400``; POST to another route -> ``405``
  (``/simple/``, ``/packages/``) or ``404`` (no route).

A 200 proves nothing on its own (another spelling of the name, another replica's storage, a proxy that
swallows the POST), so after the POSTs the project page is read again, and every removed file must be
gone from it and its download URL must answer 404/410.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import upload

try:
    import requests
except ImportError:  # pragma: no cover - reported by the module through http.HAS_REQUESTS
    requests = None  # type: ignore[assignment]

try:
    from packaging.version import InvalidVersion, Version
except ImportError:  # pragma: no cover - reported by the module through simple_index.HAS_PACKAGING
    pass

# A valid project name (PEP 508): what a probe prefix and a project name must look like.
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.I)
# The run id right after the prefix: now(utc).strftime('%Y%m%dt%H%M%S') + up to 5 random digits, then the
# end of the name or a "-suffix" (-ow, -load, -mv...). Anything else is not a date we can trust.
_STAMP = re.compile(r"^(?P<stamp>\d{8}t\d{6})\d{0,5}(?:-|$)")
STAMP_FORMAT = "%Y%m%dt%H%M%S"
GONE = (404, 410)


class RemoveError(Exception):
    """One sentence (cause and next step), with what was done before the failure."""

    def __init__(self, msg: str, status: int | None = None):
        super().__init__(msg)
        self.msg = msg
        self.status = status


# --------------------------------------------------------------------------- names and ages (pure)


def check_name(value: str | None, what: str) -> str:
    """The normalized form of a project name or prefix; RemoveError when it is not a valid project name."""
    text = (value or "").strip()
    if not _NAME.match(text):
        raise RemoveError(
            f"{what} {value!r} is not a valid project name: give letters, digits, '.', '_' or '-', starting and "
            "ending with a letter or digit (for example pypiops-probe); a prefix is matched as <prefix> and "
            "<prefix>-*, so leave the trailing '-' out."
        )
    return si.normalize(text)


def prefix_matches(project: str, prefix: str) -> bool:
    """Whether a project belongs to a prefix: normalized equal, or normalized ``<prefix>-...``; never anything else."""
    name, pre = si.normalize(project), si.normalize(prefix)
    return bool(pre) and (name == pre or name.startswith(pre + "-"))


def probe_timestamp(project: str, prefix: str) -> dt.datetime | None:
    """The UTC time in the run id right after the prefix (``<prefix>-YYYYmmddtHHMMSS[digits][-suffix]``), or None."""
    name, pre = si.normalize(project), si.normalize(prefix)
    if not name.startswith(pre + "-"):
        return None
    match = _STAMP.match(name[len(pre) + 1 :])
    if not match:
        return None
    try:
        return dt.datetime.strptime(match.group("stamp"), STAMP_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:  # 13th month, 25th hour...
        return None


def select_projects(
    projects: t.Iterable[str], prefix: str, older_than: float, now: dt.datetime
) -> tuple[list[str], list[str], list[dict[str, t.Any]], list[str]]:
    """(matched, to remove, kept with their age, undated) for the index's projects and a prefix.

    An undated probe is removed only when ``older_than`` is 0; so is a probe dated in the future.
    """
    matched, chosen, kept, undated = [], [], [], []
    for name in sorted({si.normalize(p) for p in projects}):
        if not prefix_matches(name, prefix):
            continue
        matched.append(name)
        stamp = probe_timestamp(name, prefix)
        if stamp is None:
            undated.append(name)
            if older_than == 0:
                chosen.append(name)
            continue
        age = round((now - stamp).total_seconds() / 3600.0, 2)
        if older_than == 0 or age > older_than:
            chosen.append(name)
        else:
            kept.append({"name": name, "age_hours": age, "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return matched, chosen, kept, undated


# --------------------------------------------------------------------------- pypiserver's file keys (pure)

# pypiserver 2.4.2 pkg_helpers.guess_pkgname_and_version, which decides the (name, version) that
# remove_pkg must be sent. Kept verbatim in behaviour: it differs from packaging's parse for legacy
# sdist names (foo-2026t1-1.0.tar.gz is pkgname "foo" for pypiserver).
_ARCHIVE_SUFFIX = re.compile(
    r"(\.zip|\.tar\.gz|\.tgz|\.tar\.bz2|\.tar\.xz|-py[23]\.\d-.*|"
    r"\.win-amd64-py[23]\.\d\..*|\.win32-py[23]\.\d\..*|\.egg)$",
    re.I,
)
_WHEEL = re.compile(
    r"^(?P<namever>(?P<name>.+?)-(?P<ver>\d.*?))((-(?P<build>\d.*?))?-(?P<pyver>.+?)-(?P<abi>.+?)-(?P<plat>.+?)"
    r"\.whl|\.dist-info)$"
)
_PKGNAME = re.compile(r"-\d+[a-z_.!+]", re.I)
_PKGNAME_PARTS = re.compile(r"[\.\-](?=cp\d|py\d|macosx|linux|sunos|solaris|irix|aix|cygwin|win)", re.I)


def server_key(filename: str) -> tuple[str, str] | None:
    """(name, version) that pypiserver gives a file, i.e. the fields remove_pkg needs; None if it ignores the file."""
    path = os.path.basename(filename)
    if path.endswith(".asc"):
        path = path.rstrip(".asc")  # sic: pypiserver strips characters, not the suffix
    if path.endswith(".whl"):
        match = _WHEEL.match(path)
        if not match:
            return None
        build = match.group("build")
        return match.group("name"), match.group("ver") + ("-" + build if build else "")
    if not _ARCHIVE_SUFFIX.search(path):
        return None
    path = _ARCHIVE_SUFFIX.sub("", path)
    if "-" not in path:
        return path, ""
    if path.count("-") == 1:
        name, version = path.split("-", 1)
        return name, version
    if "." not in path:
        name, version = path.rsplit("-", 1)
        return name, version
    name = _PKGNAME.split(path)[0]
    return name, _PKGNAME_PARTS.split(path[len(name) + 1 :])[0]


_VERSION_CHARS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")


def check_versions(versions: t.Sequence[str]) -> None:
    """RemoveError for an entry that cannot be the version part of any file name (empty, spaces, '==', '/'...)."""
    for version in versions:
        text = str(version).strip()
        if not _VERSION_CHARS.match(text):
            raise RemoveError(
                f"versions entry {version!r} is not a version (letters, digits and . _ + ! - only, no operator "
                "such as '=='); give the versions as the index lists them, for example 1.0.0."
            )


def check_found(project: str, versions: t.Sequence[str], absent: t.Sequence[str], listed: t.Iterable[str]) -> None:
    """RemoveError for an absent entry that is not a PEP 440 version either: a typo, not an already removed version."""
    for version in versions:
        norm = normalize_version(version)
        if norm not in absent:
            continue
        try:
            Version(norm)
        except InvalidVersion:
            seen = ", ".join(listed) or "none"
            raise RemoveError(
                f"versions entry {version!r} is not a PEP 440 version and {project} has no file with that version "
                f"(versions on the index: {seen}); give the versions as the index lists them, for example 1.0.0."
            ) from None


def normalize_version(version: str) -> str:
    """PEP 440 normal form of a version (``1.0.0-RC1`` -> ``1.0.0rc1``); the text itself when it is not PEP 440."""
    try:
        return str(Version(version))
    except InvalidVersion:
        return version.strip()


def plan_project(project: str, files: list[dict[str, t.Any]], versions: t.Sequence[str]) -> list[dict[str, t.Any]]:
    """Groups of files to remove, one per version (oldest first): name, version, files, urls, keys.

    ``versions`` empty means every version the page lists. Versions compare in PEP 440 normal form, exactly
    (``1.0`` does not select ``1.0.0``). Files pypiserver itself would not list are left out.
    """
    wanted = {normalize_version(v) for v in versions}
    groups: dict[str, dict[str, t.Any]] = {}
    for record in files:
        key = server_key(record["filename"])
        if key is None:
            continue
        version = record.get("version") or normalize_version(key[1])
        if wanted and version not in wanted:
            continue
        group = groups.setdefault(version, {"name": project, "version": version, "files": [], "urls": [], "keys": []})
        if record["filename"] not in group["files"]:
            group["files"].append(record["filename"])
            group["urls"].append(record["url"])
        if list(key) not in group["keys"]:
            group["keys"].append(list(key))
    order = {v: i for i, v in enumerate(si.sort_versions(groups))}
    return sorted(groups.values(), key=lambda g: (order.get(g["version"], len(order)), g["version"]))


def public(group: dict[str, t.Any]) -> dict[str, t.Any]:
    """What a group looks like in the module's result."""
    return {"name": group["name"], "version": group["version"], "files": list(group["files"])}


# --------------------------------------------------------------------------- talking to the server


def post_remove(session: t.Any, url: str, name: str, version: str, opts: httputil.ClientOptions) -> str:
    """POST one remove_pkg; ``removed`` (2xx) or ``not_found`` (pypiserver's own 404); RemoveError otherwise."""
    safe = httputil.redact_url(url)
    try:
        resp = session.post(
            url,
            data={":action": "remove_pkg", "name": name, "version": version},
            timeout=opts.timeout,
            allow_redirects=False,  # a POST is not re-sent across a redirect: say so instead
        )
    except requests.RequestException as exc:
        raise RemoveError(httputil.describe_error(exc, url, opts)) from None
    status = resp.status_code
    message = upload.server_message(resp.text if status >= 300 else "")
    if 200 <= status < 300:
        return "removed"
    if status == 404 and message == f"{name} ({version}) not found":
        return "not_found"
    detail = f" Server said: {message}" if message else ""
    if 300 <= status < 400:
        target = httputil.redact_url(resp.headers.get("Location", "?"))
        msg = (
            f"{safe} answered the removal POST with a redirect (HTTP {status}) to {target}: a POST is not re-sent "
            "across redirects; set url to the final address of the server's upload URL."
        )
    elif status == 401:
        msg = (
            f"The server refused removal (HTTP 401) at {safe}: it wants credentials, and pypiserver guards "
            "remove_pkg like uploads (auth action 'update'); set username/password (pypi_username/pypi_password)."
        )
    elif status == 403:
        msg = (
            f"The server refused removal (HTTP 403) at {safe}: the credentials were rejected or lack the remove "
            "permission; pypiserver lets whoever may upload remove, so check username/password against its htpasswd "
            "(or a proxy in front of it that forbids removal)."
        )
    elif status == 405:
        msg = (
            f"{safe} does not accept POST (HTTP 405): url is not pypiserver's root/upload URL (it points at "
            "/simple/ or /packages/?); set url to the server's base URL, where twine uploads."
        )
    elif status == 404:
        msg = (
            f"{safe} answered the removal POST with HTTP 404 and not pypiserver's 'not found' for {name} {version}: "
            "nothing there takes uploads; set url to the server's base URL, where twine uploads."
        )
    elif status == 400:
        msg = f"The server rejected the removal of {name} {version} (HTTP 400); read its message.{detail}"
    elif status >= 500:
        msg = (
            f"The server failed while removing {name} {version} (HTTP {status}); read its log "
            f"(is the package directory writable by the server?).{detail}"
        )
    else:
        msg = f"{safe} answered HTTP {status} to the removal of {name} {version}; {httputil.http_status_hint(status)}."
    raise RemoveError(msg, status=status)


def list_files(session: t.Any, simple_url: str, project: str, opts: httputil.ClientOptions) -> list[dict[str, t.Any]]:
    """The project's file records; empty when the page answers 404 (no file left)."""
    try:
        return si.fetch_project(session, simple_url, project, opts)["files"]
    except si.IndexReadError as exc:
        if exc.status == 404:
            return []
        raise RemoveError(exc.msg, status=exc.status) from None


def _served(session: t.Any, url: str, opts: httputil.ClientOptions) -> int | None:
    """HTTP status of a file URL (body not read); None when no answer."""
    try:
        with session.get(url, stream=True, timeout=opts.timeout) as resp:
            return resp.status_code
    except requests.RequestException:
        return None


def still_there(
    session: t.Any, simple_url: str, group: dict[str, t.Any], opts: httputil.ClientOptions
) -> tuple[list[str], list[str]]:
    """(files of the group the project page still lists, files whose URL does not answer 404/410)."""
    listed = {f["filename"] for f in list_files(session, simple_url, group["name"], opts)}
    left = [f for f in group["files"] if f in listed]
    served = []
    for filename, url in zip(group["files"], group["urls"], strict=True):
        if filename not in listed and _served(session, url, opts) not in GONE:
            served.append(filename)
    return left, served


def prove_gone(
    session: t.Any, simple_url: str, group: dict[str, t.Any], opts: httputil.ClientOptions, wait: float
) -> tuple[list[str], list[str]]:
    """``still_there`` until both lists are empty or ``wait`` seconds passed (caches, eventually consistent storage)."""
    deadline = time.monotonic() + max(0.0, wait)
    delay = 0.1
    while True:
        left, served = still_there(session, simple_url, group, opts)
        remaining = deadline - time.monotonic()
        if (not left and not served) or remaining <= 0:
            return left, served
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 2.0)


def remove_group(
    session: t.Any, url: str, simple_url: str, group: dict[str, t.Any], opts: httputil.ClientOptions, wait: float
) -> bool:
    """Remove one version's files and prove it; True when a POST removed something, RemoveError when files stay."""
    answers = [post_remove(session, url, name, version, opts) for name, version in group["keys"]]
    left, served = prove_gone(session, simple_url, group, opts, wait)
    what = f"{group['name']} {group['version']}"
    if left:
        said = (
            "answered 200"
            if "removed" in answers
            else f"answered 'not found' for {', '.join(map(' '.join, group['keys']))}"
        )
        raise RemoveError(
            f"Removal of {what} did not happen: the server {said}, but "
            f"{httputil.redact_url(si.project_url(simple_url, group['name']))} still lists {', '.join(left)}; "
            "url and simple_url must reach the same server and storage (not another "
            "replica or a proxy that swallows the POST): check both URLs and the server's log."
        )
    if served:
        raise RemoveError(
            f"Removal of {what} is not proven: the index no longer lists {', '.join(served)}, but the file URL does "
            "not answer 404; the file is still served (a cache or proxy in front of the server?), check it and "
            "the server's package directory."
        )
    return "removed" in answers


# --------------------------------------------------------------------------- the whole run


def run(
    session: t.Any,
    opts: httputil.ClientOptions,
    url: str,
    simple_url: str,
    name: str | None = None,
    versions: t.Sequence[str] = (),
    prefix: str | None = None,
    older_than: float = 24.0,
    check_mode: bool = False,
    verify_timeout: float = 5.0,
    now: dt.datetime | None = None,
    result: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """Remove by name (+ versions) or by prefix (+ age); fill and return ``result``.

    ``result`` is filled as the run goes, so that a RemoveError leaves in it what was already removed.
    """
    out = result if result is not None else {}
    out.update(changed=False, removed=[], would_remove=[], kept=[], undated=[], matched=[])
    if name is not None and prefix is not None:
        raise RemoveError("Give either name (one project) or prefix (probe projects), not both.")
    if name is None and prefix is None:
        raise RemoveError("Give name (one project, optionally with versions) or prefix (probe projects by age).")
    if prefix is not None and versions:
        raise RemoveError("versions needs name: with prefix every version of each old enough probe is removed.")
    if older_than < 0:
        raise RemoveError(f"older_than is {older_than:g}: give hours (0 removes probes of any age).")

    if name is not None:
        project = check_name(name, "name")
        check_versions(versions)
        files = list_files(session, simple_url, project, opts)
        if not files:
            # a 404 from a wrong simple_url must not pass as "already gone": the index root has to answer
            try:
                si.fetch_projects(session, simple_url, opts)
            except si.IndexReadError as exc:
                raise RemoveError(exc.msg, status=exc.status) from None
        else:
            out["matched"] = [project]
        groups = plan_project(project, files, versions)
        found = {g["version"] for g in groups}
        out["absent"] = [v for v in (normalize_version(v) for v in versions) if v not in found]
        check_found(project, versions, out["absent"], sorted(found))
    else:
        pre = check_name(prefix, "prefix")
        try:
            projects = si.fetch_projects(session, simple_url, opts)["projects"]
        except si.IndexReadError as exc:
            raise RemoveError(exc.msg, status=exc.status) from None
        when = now or dt.datetime.now(dt.UTC)
        matched, chosen, out["kept"], out["undated"] = select_projects(projects, pre, older_than, when)
        out["matched"] = matched
        groups = []
        for project in chosen:
            groups.extend(plan_project(project, list_files(session, simple_url, project, opts), ()))

    out["would_remove"] = [public(g) for g in groups]
    if check_mode:
        out["changed"] = bool(groups)
        return out
    for group in groups:
        if remove_group(session, url, simple_url, group, opts, verify_timeout):
            out["removed"].append(public(group))
            out["changed"] = True
    return out
