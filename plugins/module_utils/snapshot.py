# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an index holds, as seen by a client, and whether two such views are the same.

A snapshot maps each normalized project name to ``{filename: digest}``. Its depth
says how much was read:

- ``names``: the root ``/simple/`` listing only (digests empty);
- ``files``: every project page, with the hash each link advertises (``algo:hex``);
- ``bytes``: every listed file downloaded and hashed (``sha256:hex``), and checked
  against the advertised hash on the way.

Runbooks use it to prove they left an index as they found it (production mode),
and that a restart kept what was stored (persistence drill).
"""

from __future__ import annotations

import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import remove
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

DEPTHS = ("names", "files", "bytes")


class SnapshotError(Exception):
    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg


def under_prefix(name: str, prefix: str) -> bool:
    """Whether project ``name`` is ``prefix`` itself or ``prefix-<anything>`` (the rule package_remove uses)."""
    return remove.prefix_matches(name, prefix)


def _select_files(files: list[dict[str, t.Any]], version: str | None, latest: bool) -> list[dict[str, t.Any]]:
    if version:
        wanted = remove.normalize_version(version)
        return [f for f in files if f.get("version") == wanted]
    if latest:
        versions = si.sort_versions(f.get("version") for f in files)
        if versions:
            # the newest final release if there is one, else the newest pre-release
            finals = [v for v in versions if not si.Version(v).is_prerelease]
            top = (finals or versions)[-1]
            return [f for f in files if f.get("version") == top]
    return list(files)


def take(
    session: t.Any,
    simple_url: str,
    opts: httputil.ClientOptions,
    depth: str = "files",
    projects: list[str] | None = None,
    limit: int = 0,
    exclude_prefixes: t.Iterable[str] = (),
    version: str | None = None,
    latest: bool = False,
    known: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """Read the index to ``depth``. Raises si.IndexReadError (server) or SnapshotError (what was asked is absent).

    ``known`` is an earlier snapshot to be compared with: the same projects are read again (the whole index
    when that one was complete), a project whose page is gone is left out (so it shows as lost instead of
    failing the read), and at depth ``bytes`` only files recorded before are downloaded again; others are
    listed with an empty digest (they count as additions).
    """
    if depth not in DEPTHS:
        raise SnapshotError(f"depth must be one of {', '.join(DEPTHS)}, not {depth!r}.")
    excluded = [p for p in exclude_prefixes if p]
    before = (known or {}).get("projects")
    if known is not None and not known.get("complete"):
        names = sorted(before or {})
    elif projects:
        names = sorted({si.normalize(p) for p in projects})
    else:
        names = si.fetch_projects(session, simple_url, opts)["projects"]
    if known is None:
        names = [n for n in names if not any(under_prefix(n, p) for p in excluded)]
        if limit > 0:
            names = names[:limit]
    snap: dict[str, dict[str, str]] = {}
    mismatches: list[str] = []
    unhashed: list[str] = []
    for name in names:
        if depth == "names":
            snap[name] = {}
            continue
        try:
            page = si.fetch_project(session, simple_url, name, opts)
        except si.IndexReadError as exc:
            if known is not None and exc.status == 404:
                continue  # gone: compare() reports it as lost
            raise
        recorded = (before or {}).get(name)
        if recorded is not None:
            files = page["files"]
        else:
            files = _select_files(page["files"], version, latest)
        if projects and known is None and not files:
            what = f"version {version} of " if version else ""
            raise SnapshotError(
                f"{what}project {name!r} lists no files at {page['final_url']}; check the name (and version) "
                "or upload it first."
            )
        entry: dict[str, str] = {}
        for f in files:
            if depth == "files":
                entry[f["filename"]] = f"{f['hash_algo']}:{f['hash_digest']}" if f.get("hash_digest") else ""
                continue
            if recorded is not None and f["filename"] not in recorded:
                entry[f["filename"]] = ""  # new since the record: listed, not downloaded
                continue
            got = si.verify_file(session, f, opts)
            entry[f["filename"]] = f"sha256:{got['sha256']}"
            if got["match"] is False:
                mismatches.append(f["filename"])
            elif got["match"] is None:
                unhashed.append(f["filename"])
        snap[name] = entry
    complete = not (projects or limit > 0 or excluded or version or latest)
    if known is not None:
        complete = bool(known.get("complete"))
    return {
        "depth": depth,
        "complete": complete,
        "projects": snap,
        "project_count": len(snap),
        "file_count": sum(len(v) for v in snap.values()),
        "mismatches": mismatches,
        "unhashed": unhashed,
    }


def compare(before: dict[str, t.Any], after: dict[str, t.Any], probe_prefix: str = "") -> dict[str, t.Any]:
    """What changed between two snapshots of the same depth.

    ``lost`` (projects or files that were there and are gone) and ``changed`` (a digest
    differs) are never acceptable; ``leftover`` are added projects under ``probe_prefix``;
    ``foreign`` are other added projects or files (someone else's uploads during the run).
    """
    b, a = before.get("projects") or {}, after.get("projects") or {}
    lost_projects = sorted(set(b) - set(a))
    added_projects = sorted(set(a) - set(b))
    lost_files, added_files, changed = [], [], []
    for name in sorted(set(b) & set(a)):
        bf, af = b[name], a[name]
        lost_files += [f"{name}/{fn}" for fn in sorted(set(bf) - set(af))]
        added_files += [f"{name}/{fn}" for fn in sorted(set(af) - set(bf))]
        changed += [f"{name}/{fn}" for fn in sorted(set(bf) & set(af)) if bf[fn] != af[fn]]
    leftover = [n for n in added_projects if under_prefix(n, probe_prefix)]
    leftover += [f for f in added_files if under_prefix(f.split("/", 1)[0], probe_prefix)]
    foreign = [n for n in added_projects + added_files if n not in leftover]
    return {
        "equal": not (lost_projects or added_projects or lost_files or added_files or changed),
        "lost": lost_projects + lost_files,
        "changed": changed,
        "leftover": leftover,
        "foreign": foreign,
    }


def _few(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def verdict(diff: dict[str, t.Any], what: str = "the index") -> str:
    """'' when ``diff`` is acceptable, else one sentence naming what went wrong first and what to do."""
    if diff["lost"]:
        return (
            f"{what} lost {len(diff['lost'])} item(s) it held before: {_few(diff['lost'])}; "
            "check the server's storage and log now (and restore from backup if they are really gone)."
        )
    if diff["changed"]:
        return (
            f"{what} serves {len(diff['changed'])} file(s) with other content than before: {_few(diff['changed'])}; "
            "the stored files were altered, check the storage backend."
        )
    if diff["leftover"]:
        return (
            f"{what} still lists {len(diff['leftover'])} probe item(s) after the run: {_few(diff['leftover'])}; "
            "remove them with playbooks/cleanup_probes.yml."
        )
    return ""
