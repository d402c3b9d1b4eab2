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

Reading every project page costs one request per project; on a big index that is the server's time (pypiserver
takes over 100 ms a page at 2,000 projects). Where the server also offers a flat listing of every stored file
(pypiserver's ``/packages/``), one request stands in for the pages: its files are grouped under the root listing's
names and the grouping is checked against a sample of real project pages. Anything that does not fit (no
listing, a file no project claims, a project with no file, a sampled page that differs) reads the pages instead.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import remove
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

DEPTHS = ("names", "files", "bytes")
FLAT_SAMPLE = 8  # project pages read to check that a flat listing groups files as the pages do


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


def flat_listing_url(simple_url: str) -> str | None:
    """``<root>/packages/`` beside an index at ``<root>/simple/`` (pypiserver's layout); None for other layouts."""
    parts = urlsplit(simple_url)
    path = parts.path.rstrip("/")
    if not path.endswith("/simple"):
        return None
    return parts._replace(path=path[: -len("simple")] + "packages/", query="", fragment="").geturl()


def _project_of(filename: str, names: set[str]) -> str | None:
    """The project in ``names`` that ``filename`` belongs to: its longest name prefix ending before a dash."""
    parts = filename.split("-")
    for cut in range(len(parts) - 1, 0, -1):
        candidate = si.normalize("-".join(parts[:cut]))
        if candidate in names:
            return candidate
    return None


def _sample(names: list[str], n: int) -> list[str]:
    """Up to ``n`` names spread evenly over the sorted list, first and last included."""
    if len(names) <= n:
        return list(names)
    step = (len(names) - 1) / (n - 1)
    return sorted({names[round(i * step)] for i in range(n)})


def _page_files(page_files: list[dict[str, t.Any]]) -> dict[str, str]:
    return {f["filename"]: f"{f['hash_algo']}:{f['hash_digest']}" if f.get("hash_digest") else "" for f in page_files}


def read_flat(
    session: t.Any, simple_url: str, opts: httputil.ClientOptions, names: list[str], read: list[str]
) -> dict[str, list[dict[str, t.Any]]] | None:
    """The file records of the projects ``read`` from the flat listing; None when it cannot be trusted.

    ``names`` is the whole root listing. Trusted only when every listed file belongs to one of ``names``, every
    name has a file, and a sample of the ``read`` projects' real pages lists the same files with the same hashes.
    """
    url = flat_listing_url(simple_url)
    if url is None or len(read) <= 2 * FLAT_SAMPLE:
        return None  # a few pages cost less than the listing and its sample
    try:
        resp = session.get(url, headers={"Accept": "text/html"}, timeout=opts.timeout, allow_redirects=False)
    except Exception:  # noqa: BLE001 - any failure: the pages are the fallback
        return None
    if resp.status_code != 200 or "html" not in resp.headers.get("Content-Type", "").lower():
        return None
    files, _found = si.parse_html_files(resp.text, resp.url or url)
    wanted = set(names)
    grouped: dict[str, list[dict[str, t.Any]]] = {n: [] for n in names}
    for record in files:
        project = _project_of(record["filename"], wanted)
        if project is None:
            return None
        grouped[project].append(record)
    if any(not records for records in grouped.values()):
        return None
    for name in _sample(read, FLAT_SAMPLE):
        try:
            page = si.fetch_project(session, simple_url, name, opts)
        except si.IndexReadError:
            return None
        if _page_files(page["files"]) != _page_files(grouped[name]):
            return None
    return grouped


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
    flat: bool = True,
) -> dict[str, t.Any]:
    """Read the index to ``depth``. Raises si.IndexReadError (server) or SnapshotError (what was asked is absent).

    ``known`` is an earlier snapshot to be compared with: the same projects are read again (the whole index
    when that one was complete), a project whose page is gone is left out (so it shows as lost instead of
    failing the read), and at depth ``bytes`` only files recorded before are downloaded again; others are
    listed with an empty digest (they count as additions). ``flat=False`` reads every project page even where a
    flat listing would do (the benchmark's baseline).
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
    listed = list(names)
    if known is None:
        names = [n for n in names if not any(under_prefix(n, p) for p in excluded)]
        if limit > 0:
            names = names[:limit]
    snap: dict[str, dict[str, str]] = {}
    mismatches: list[str] = []
    unhashed: list[str] = []
    # the flat listing stands in for the pages of a whole-index read (not for named projects, nor for a re-read
    # of a partial record, whose projects may since have gone)
    whole = flat and not projects and (known is None or bool(known.get("complete")))
    grouped = read_flat(session, simple_url, opts, listed, names) if depth != "names" and whole else None
    for name in names:
        if depth == "names":
            snap[name] = {}
            continue
        if grouped is not None:
            page: dict[str, t.Any] = {"files": grouped[name], "final_url": flat_listing_url(simple_url)}
        else:
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
        "listing": "names" if depth == "names" else ("flat" if grouped is not None else "pages"),
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
