# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Index-protocol conformance: read one project of a simple index the way pip and uv do, and judge what came back.

Two halves:
- ``observe`` makes the requests (the clients' Accept header, a JSON-only Accept, a non-normalized spelling of the
  project without following redirects, the root listing, the newest wheel and its ``.metadata`` file) and keeps the
  raw answers;
- ``evaluate`` is a pure function of those answers: a list of findings ``{check, pep, status, detail}`` and a
  ``supports`` dict of what the server offers.

Status rule, measured against pip 26.3 and uv 0.13.9 (see the README's conformance table): ``fail`` only for what
breaks pip or uv (a hash that does not match, a hash algorithm uv does not know, a page content type neither reads,
advertised metadata that is missing or differs, an invalid ``data-requires-python``...), ``warn`` for what they
tolerate (no hash, unescaped ``>``, a 404 for a non-normalized name, metadata not advertised...), ``skip`` when there
is nothing to check (no yanked file, no ``data-requires-python`` anywhere), ``pass`` otherwise.

Parsing reuses ``simple_index`` (its link parser, JSON reader and file records); nothing here re-parses PEP 503.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import tempfile
import time
import typing as t
import zipfile
from email.parser import BytesParser
from email.policy import compat32
from urllib.parse import urljoin, urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import bounds
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

try:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version
except ImportError:  # pragma: no cover - ansible-core depends on packaging; reported through si.HAS_PACKAGING
    pass

try:
    import requests
except ImportError:  # pragma: no cover - reported by the module through http.HAS_REQUESTS
    requests = None  # type: ignore[assignment]

STATUSES = ("pass", "warn", "fail", "skip")
# The hash algorithms uv 0.13.9 accepts in a link fragment; any other makes uv refuse the whole page (measured:
# "Unsupported hash algorithm (expected one of: md5, sha256, sha384, sha512, or blake2b)"). pip ignores the fragment.
UV_HASH_ALGOS = ("md5", "sha256", "sha384", "sha512", "blake2b")
# Content types pip and uv read an index page as (anything else: uv "Unsupported Content-Type", pip skips the page).
CLIENT_TYPES = ("text/html", si.HTML_TYPE, si.JSON_TYPE)
JSON_ONLY_ACCEPT = si.JSON_TYPE
REDIRECTS = (301, 302, 303, 307, 308)
_NOT_HASHES = ("egg", "subdirectory")  # fragments of the old find-links syntax, not hashes
_HASH_FRAGMENT = re.compile(r"^(?P<algo>[A-Za-z0-9_-]+)=(?P<digest>.*)$")
_RAW_REQUIRES_PYTHON = re.compile(r"""data-requires-python\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
_REPOSITORY_VERSION = re.compile(
    r"""<meta\s+name\s*=\s*["']pypi:repository-version["']\s+content\s*=\s*["']([^"']+)["']""", re.I
)
# Core metadata fields whose difference changes what a resolver does (Name/Version: pip refuses the file).
_RESOLVER_FIELDS = ("Name", "Version", "Requires-Python", "Requires-Dist", "Provides-Extra")


def finding(check: str, pep: str, status: str, detail: str) -> dict[str, str]:
    return {"check": check, "pep": pep, "status": status, "detail": detail}


# --------------------------------------------------------------------------- observing (network)


def _get(session: t.Any, url: str, opts: httputil.ClientOptions, accept: str, follow: bool = True) -> dict[str, t.Any]:
    """One GET: status, headers that matter, final URL, redirect chain and (for a 200) the body; or an error."""
    record: dict[str, t.Any] = {"url": url, "accept": accept}
    try:
        resp = session.get(url, headers={"Accept": accept}, timeout=opts.timeout, allow_redirects=follow)
    except requests.RequestException as exc:
        record["error"] = httputil.describe_error(exc, url, opts)
        return record
    record.update(
        status=resp.status_code,
        final_url=resp.url or url,
        content_type=resp.headers.get("Content-Type", ""),
        location=resp.headers.get("Location"),
        history=[(r.status_code, r.headers.get("Location")) for r in resp.history],
        body=resp.content if resp.status_code == 200 else b"",
    )
    return record


def _wheel_metadata(handle: t.IO[bytes], filename: str) -> tuple[bytes | None, str | None]:
    """(METADATA bytes, None) of a wheel, or (None, why not)."""
    try:
        with zipfile.ZipFile(handle) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if not names:
                return None, f"{filename} has no top-level *.dist-info/METADATA"
            if len(names) > 1:
                stem = "-".join(filename.split("-", 2)[:2]).lower()
                names = [n for n in names if n.split(".dist-info/", 1)[0].lower() == stem] or names[:1]
            return archive.read(names[0]), None
    except (zipfile.BadZipFile, OSError, KeyError, EOFError) as exc:
        return None, f"{filename} is not a readable zip archive ({exc})"


def _download_wheel(session: t.Any, file: dict[str, t.Any], opts: httputil.ClientOptions) -> dict[str, t.Any]:
    """Stream a wheel into a spooled temp file: status, sha256 (and the link's algorithm), size, METADATA bytes."""
    url = file["url"]
    record: dict[str, t.Any] = {"filename": file["filename"], "url": httputil.redact_url(url)}
    algo = file.get("hash_algo")
    extra = hashlib.new(algo) if algo and algo != "sha256" and algo in hashlib.algorithms_available else None
    sha = hashlib.sha256()
    size = 0
    try:
        with session.get(url, stream=True, timeout=opts.timeout) as resp:
            record["status"] = resp.status_code
            record["accept_ranges"] = resp.headers.get("Accept-Ranges")
            if resp.status_code != 200:
                return record
            with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
                what = f"download of {file['filename']}"
                for block in bounds.read_body(resp, what, opts.read_timeout, opts.op_timeout, opts.deadline):
                    sha.update(block)
                    if extra is not None:
                        extra.update(block)
                    spool.write(block)
                    size += len(block)
                spool.seek(0)
                record["metadata"], record["metadata_error"] = _wheel_metadata(spool, file["filename"])
    except bounds.BoundError as exc:
        record["error"] = exc.msg
        return record
    except requests.RequestException as exc:
        record["error"] = httputil.describe_error(exc, url, opts)
        return record
    record["size"] = size
    record["digests"] = {"sha256": sha.hexdigest()}
    if extra is not None:
        record["digests"][algo] = extra.hexdigest()
    return record


def variant_name(project: str) -> str:
    """A spelling of ``project`` that is not normalized (``pypi-ops-probe`` -> ``PYPI_OPS_PROBE``)."""
    return si.normalize(project).replace("-", "_").upper()


def _page_files(page: dict[str, t.Any]) -> tuple[str, t.Any, list[dict[str, t.Any]]]:
    """(format, parsed body, file records) of a 200 project page; raises IndexReadError for invalid JSON."""
    fmt, body = read_body(page)
    if fmt == "json":
        files, _found = si.parse_json_files(_as_api_v1(body), page["final_url"])
    else:
        files, _found = si.parse_html_files(body, page["final_url"])
    return fmt, body, files


def pick_wheel(files: list[dict[str, t.Any]], filename: str | None = None) -> dict[str, t.Any] | None:
    """The file record to check: ``filename`` when given, else the wheel of the newest version (page order on ties)."""
    if filename:
        return next((f for f in files if f["filename"] == filename), None)
    best: tuple[Version, int] | None = None
    chosen = None
    for index, file in enumerate(files):
        if file["kind"] != "wheel" or not file["version"]:
            continue
        try:
            key = (Version(file["version"]), -index)
        except InvalidVersion:
            continue
        if best is None or key > best:
            best, chosen = key, file
    return chosen


class ObserveError(Exception):
    """The project page itself could not be read: one sentence, no findings possible."""

    def __init__(self, msg: str, status: int | None = None):
        super().__init__(msg)
        self.msg = msg
        self.status = status


def observe(
    session: t.Any,
    simple_url: str,
    project: str,
    opts: httputil.ClientOptions,
    filename: str | None = None,
    uploaded: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """Make every request the checks need; return the raw answers (see ``evaluate``).

    ``uploaded`` is what this run uploaded, for the PEP 700 checks: ``size`` (bytes), ``version``, ``after`` (a time,
    seconds since the epoch, known to be before the upload) and ``skew`` (the clock difference allowed, seconds).
    """
    name = si.normalize(project)
    root_url = si.dir_url(simple_url)
    page_url = si.project_url(simple_url, name)
    page = _get(session, page_url, opts, si.ACCEPT)
    if "error" in page:
        raise ObserveError(page["error"])
    if page["status"] == 404:
        raise ObserveError(
            f"Project {project!r} is not on the index {httputil.redact_url(root_url)} (HTTP 404 for {name}/); "
            "upload it first (a probe package) or check the project name and the URL.",
            404,
        )
    if page["status"] in (401, 403):
        raise ObserveError(
            f"{httputil.redact_url(page_url)} answered HTTP {page['status']}: "
            f"{httputil.http_status_hint(page['status'])}.",
            page["status"],
        )
    obs: dict[str, t.Any] = {"simple_url": root_url, "project": name, "page": page}
    obs["uploaded"] = dict(uploaded or {})
    obs["observed_at"] = time.time()
    obs["root"] = _get(session, root_url, opts, si.ACCEPT)
    obs["json_only"] = _get(session, page_url, opts, JSON_ONLY_ACCEPT)
    variant = variant_name(name)
    obs["variant"] = dict(
        _get(session, si.project_url(simple_url, variant), opts, si.ACCEPT, follow=False), name=variant
    )
    obs["expected_url"] = page.get("final_url", page_url)
    obs["wheel"] = None
    obs["metadata_file"] = None
    obs["filename"] = filename
    if page["status"] != 200:
        return obs
    try:
        _fmt, _body, files = _page_files(page)
    except si.IndexReadError:
        return obs  # evaluate reports the unreadable page
    wheel = pick_wheel(files, filename)
    if wheel is None:
        if filename:
            raise ObserveError(
                f"{filename} is not listed on {httputil.redact_url(page['final_url'])}; give a file of {name!r} "
                "that is on the index, or leave filename out to check the newest wheel."
            )
        return obs
    obs["wheel"] = dict(_download_wheel(session, wheel, opts), record=wheel)
    meta = _get(session, wheel["url"] + ".metadata", opts, "*/*")
    meta["url"] = httputil.redact_url(meta["url"])
    obs["metadata_file"] = meta
    return obs


# --------------------------------------------------------------------------- reading (pure)


def read_body(page: dict[str, t.Any]) -> tuple[str, t.Any]:
    """(``json`` and the document, or ``html`` and the text) of a fetched 200 page; IndexReadError for bad JSON."""
    return si.read_page(page.get("body") or b"", page.get("content_type", ""), page["url"], hint="")


def _as_api_v1(doc: t.Any) -> t.Any:
    """The document with a major version other than 1 relabelled 1.x, so that si's reader takes it (pip and uv do)."""
    version = si.api_version(doc)
    if version and version.split(".", 1)[0] != "1":
        return dict(doc, meta=dict(doc["meta"], **{"api-version": "1.0"}))
    return doc


def web_links(
    text: str, page_url: str, suffixes: t.Sequence[str] = ("/simple/", "/packages/")
) -> dict[str, str | None]:
    """For the web_ui test: the absolute URL of the first link on a page whose path ends in each of ``suffixes``.

    pypiserver 2.4.2's ``/`` (measured) links ``<a href="/packages/">here</a>`` and ``<a href="/simple/">simple</a>``;
    a path prefix in front is fine (a server behind a path). A suffix no link ends in maps to None.
    """
    found: dict[str, str | None] = dict.fromkeys(suffixes)
    for anchor in si.anchors(text):
        url = urljoin(page_url, anchor["href"])
        path = urlsplit(url).path
        for key in found:
            if found[key] is None and path.endswith(key):
                found[key] = url
    return found


def metadata_fields(data: bytes) -> dict[str, list[str]]:
    """Core metadata (RFC 822 style) as {field: [values]}, field names as written."""
    message = BytesParser(policy=compat32).parsebytes(data, headersonly=True)
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key.title(), []).append(" ".join(str(value).split()))
    return fields


def _same_field(field: str, a: list[str], b: list[str]) -> bool:
    if field == "Name":
        return [si.normalize(v) for v in a] == [si.normalize(v) for v in b]
    if field == "Version":
        try:
            return [Version(v) for v in a] == [Version(v) for v in b]
        except InvalidVersion:
            return a == b
    if field == "Requires-Python":
        try:
            return [SpecifierSet(v) for v in a] == [SpecifierSet(v) for v in b]
        except InvalidSpecifier:
            return a == b
    return sorted(a) == sorted(b)


# --------------------------------------------------------------------------- checks (pure)


def check_content_type(page: dict[str, t.Any]) -> dict[str, str]:
    status, ctype = page.get("status"), page.get("content_type", "")
    if status != 200:
        return finding(
            "index_content_type",
            "503/691",
            "fail",
            f"the project page answered HTTP {status} to the Accept header pip and uv send ({si.ACCEPT}); "
            "both clients then find no versions.",
        )
    media = si.media_type(ctype)
    if media not in CLIENT_TYPES:
        return finding(
            "index_content_type",
            "503/691",
            "fail",
            f"the project page is served as {ctype or 'no Content-Type'}; uv refuses it (Unsupported Content-Type) and "
            f"pip skips it: serve text/html, {si.HTML_TYPE} or {si.JSON_TYPE}.",
        )
    return finding("index_content_type", "503/691", "pass", f"project page: HTTP 200, {ctype}.")


def check_root(root: dict[str, t.Any]) -> dict[str, str]:
    """Root listing: names normalized (href's last segment), no project listed twice. pip and uv never read it."""
    if "error" in root or root.get("status") != 200:
        why = root.get("error") or f"HTTP {root.get('status')}"
        return finding(
            "names_normalized",
            "503",
            "warn",
            f"the root listing could not be read ({why}); pip and uv do not use it, but browsing tools do.",
        )
    try:
        fmt, body = read_body(root)
    except si.IndexReadError as exc:
        return finding("names_normalized", "503", "warn", f"the root listing is unreadable: {exc.msg}")
    if fmt == "json":
        projects = body.get("projects") if isinstance(body, dict) else None
        names = [p.get("name", "") for p in projects or [] if isinstance(p, dict)]
        segments = names
    else:
        links = si.anchors(body)
        names = [a["text"] or "" for a in links]
        segments = [urlsplit(urljoin(root["final_url"], a["href"])).path.rstrip("/").rsplit("/", 1)[-1] for a in links]
    if not segments:
        return finding("names_normalized", "503", "skip", "the root listing has no projects.")
    odd = sorted({s for s in segments if s and si.normalize(s) != s})
    seen: dict[str, int] = {}
    for s in segments:
        seen[si.normalize(s)] = seen.get(si.normalize(s), 0) + 1
    twice = sorted(n for n, count in seen.items() if count > 1)
    problems = []
    if odd and fmt == "html":
        problems.append(f"links to non-normalized project URLs ({', '.join(odd[:5])})")
    if twice:
        problems.append(f"lists a project more than once under different spellings ({', '.join(twice[:5])})")
    if problems:
        return finding(
            "names_normalized",
            "503",
            "warn",
            "the root listing " + " and ".join(problems) + "; pip and uv do not use it.",
        )
    return finding(
        "names_normalized",
        "503",
        "pass",
        f"{len(segments)} project(s) in the root listing, all under normalized names.",
    )


def check_variant(variant: dict[str, t.Any], expected_url: str, page_files: list[dict[str, t.Any]]) -> dict[str, str]:
    """A non-normalized project URL: a redirect to the normalized one, or the same page, passes."""
    name = variant.get("name", "")
    if "error" in variant:
        return finding("non_normalized_request", "503", "warn", f"/{name}/ got no answer: {variant['error']}")
    status = variant.get("status")
    if status in REDIRECTS:
        target = urljoin(variant["url"], variant.get("location") or "")
        want, got = urlsplit(expected_url), urlsplit(target)
        if (got.netloc or want.netloc) == want.netloc and got.path.rstrip("/") == want.path.rstrip("/"):
            return finding(
                "non_normalized_request", "503", "pass", f"/{name}/ redirects ({status}) to the normalized {got.path}."
            )
        return finding(
            "non_normalized_request",
            "503",
            "warn",
            f"/{name}/ redirects ({status}) to {httputil.redact_url(target)}, not to the normalized project page; "
            "pip and uv always request the normalized name, so they are not affected.",
        )
    if status == 200:
        try:
            _fmt, _body, files = _page_files(dict(variant, final_url=variant["url"]))
        except si.IndexReadError:
            files = []
        same = {f["filename"] for f in files} == {f["filename"] for f in page_files}
        if same:
            return finding("non_normalized_request", "503", "pass", f"/{name}/ answers 200 with the same files.")
        return finding(
            "non_normalized_request",
            "503",
            "warn",
            f"/{name}/ answers 200 with other files than the normalized page; pip and uv use the normalized name.",
        )
    return finding(
        "non_normalized_request",
        "503",
        "warn",
        f"/{name}/ answers HTTP {status} (PEP 503: a non-normalized name should redirect); pip and uv always request "
        "the normalized name, so they are not affected.",
    )


def check_hash_fragments(fmt: str, body: t.Any, files: list[dict[str, t.Any]]) -> dict[str, str]:
    if not files:
        return finding("hash_fragments", "503", "skip", "the project page lists no files.")
    unknown: list[str] = []
    missing: list[str] = []
    if fmt == "html":
        for anchor, file in zip(si.anchors(body), files, strict=False):
            match = _HASH_FRAGMENT.match(urlsplit(anchor["href"]).fragment or "")
            algo = match.group("algo").lower() if match else None
            if algo is None or algo in _NOT_HASHES:
                missing.append(file["filename"])
            elif algo not in UV_HASH_ALGOS:
                unknown.append(f"{file['filename']} (#{match.group('algo')}=)")  # type: ignore[union-attr]
    else:  # JSON: uv ignores hash keys it does not know, so a file with only those has no usable hash
        missing = [f["filename"] for f in files if not set(f["hashes"]) & set(UV_HASH_ALGOS)]
    if unknown:
        return finding(
            "hash_fragments",
            "503",
            "fail",
            f"hash algorithm(s) uv does not know on {', '.join(unknown[:5])}; uv refuses the whole page "
            f"(it accepts {', '.join(UV_HASH_ALGOS)}).",
        )
    if missing:
        return finding(
            "hash_fragments",
            "503",
            "warn",
            f"{len(missing)} of {len(files)} link(s) carry no hash ({', '.join(missing[:5])}); pip and uv install "
            "them unchecked (pypiserver: --hash-algo off).",
        )
    algos = sorted({f["hash_algo"] for f in files if f["hash_algo"]})
    return finding("hash_fragments", "503", "pass", f"all {len(files)} link(s) carry a hash ({', '.join(algos)}).")


def check_hash_matches(wheel: dict[str, t.Any] | None) -> dict[str, str]:
    if not wheel:
        return finding("hash_matches", "503", "skip", "no wheel on the project page to download.")
    record = wheel["record"]
    if "error" in wheel or wheel.get("status") != 200:
        why = wheel.get("error") or f"HTTP {wheel.get('status')}"
        return finding("hash_matches", "503", "fail", f"{record['filename']} could not be downloaded ({why}).")
    algo, expected = record.get("hash_algo"), record.get("hash_digest")
    if not algo or not expected:
        return finding("hash_matches", "503", "skip", f"{record['filename']} has no hash in its link to compare with.")
    actual = wheel["digests"].get(algo)
    if actual is None:
        return finding("hash_matches", "503", "skip", f"{algo} is not available here to check {record['filename']}.")
    if not hmac.compare_digest(actual.lower(), expected.lower()):
        return finding(
            "hash_matches",
            "503",
            "fail",
            f"{record['filename']} downloads with {algo} {actual}, its link says {expected}; pip and uv refuse it "
            "(hash mismatch): the stored file or the index's hash is wrong.",
        )
    return finding("hash_matches", "503", "pass", f"{record['filename']} matches its link's {algo}.")


def check_requires_python_escaped(fmt: str, body: t.Any, files: list[dict[str, t.Any]]) -> dict[str, str]:
    values = [f["requires_python"] for f in files if f["requires_python"]]
    if not values:
        return finding("requires_python_escaped", "503", "skip", "no link carries data-requires-python.")
    invalid = []
    for value in sorted(set(values)):
        try:
            SpecifierSet(value)
        except InvalidSpecifier:
            invalid.append(value)
    if invalid:
        return finding(
            "requires_python_escaped",
            "503",
            "fail",
            f"data-requires-python is not a valid version specifier ({', '.join(map(repr, invalid[:3]))}); "
            "uv then finds no version of the file.",
        )
    if fmt == "html":
        raw = [a or b for a, b in _RAW_REQUIRES_PYTHON.findall(body)]
        unescaped = sorted({v for v in raw if "<" in v or ">" in v})
        if unescaped:
            return finding(
                "requires_python_escaped",
                "503",
                "warn",
                f"data-requires-python is not HTML-escaped ({', '.join(map(repr, unescaped[:3]))}; PEP 503 wants "
                "&lt; and &gt;); pip and uv read it anyway.",
            )
        return finding(
            "requires_python_escaped",
            "503",
            "pass",
            f"{len(values)} link(s) carry an escaped, valid data-requires-python.",
        )
    return finding("requires_python_escaped", "691", "pass", f"{len(values)} file(s) carry a valid requires-python.")


def _wheel_fields(wheel: dict[str, t.Any] | None) -> dict[str, list[str]] | None:
    if not wheel or not wheel.get("metadata"):
        return None
    return metadata_fields(wheel["metadata"])


def check_requires_python_advertised(wheel: dict[str, t.Any] | None) -> dict[str, str]:
    fields = _wheel_fields(wheel)
    if fields is None:
        why = (wheel or {}).get("metadata_error") or "no wheel on the page, or it could not be downloaded"
        return finding("requires_python_advertised", "503", "skip", f"no wheel METADATA to compare with ({why}).")
    record = wheel["record"]  # type: ignore[index]
    declared = next(iter(fields.get("Requires-Python") or []), None)
    advertised = record.get("requires_python")
    if not declared and not advertised:
        return finding(
            "requires_python_advertised", "503", "skip", f"{record['filename']} declares no Requires-Python."
        )
    if declared and not advertised:
        return finding(
            "requires_python_advertised",
            "503",
            "warn",
            f"{record['filename']} declares Requires-Python {declared!r} but its link has no data-requires-python; "
            "pip and uv find out only after downloading it (pip on an unsupported Python then fails instead of "
            "picking an older release).",
        )
    if not _same_field("Requires-Python", [advertised], [declared or ""]):
        return finding(
            "requires_python_advertised",
            "503",
            "fail",
            f"the index advertises data-requires-python {advertised!r} for {record['filename']}, whose METADATA "
            f"declares {declared!r}; pip selects files by the index's value and skips or picks the wrong ones.",
        )
    return finding(
        "requires_python_advertised", "503", "pass", f"{record['filename']}: {advertised!r} as in its METADATA."
    )


def check_negotiation(page: dict[str, t.Any], fmt: str, body: t.Any, json_only: dict[str, t.Any]) -> dict[str, str]:
    """PEP 691: JSON under content negotiation, or HTML served cleanly to a JSON-preferring Accept. Which one."""
    only = f"HTTP {json_only.get('status')} {json_only.get('content_type', '')}".strip()
    if "error" in json_only:
        only = "no answer"
    if fmt == "json":
        version = si.api_version(body) or "?"
        if version.split(".", 1)[0] != "1":
            return finding(
                "pep691_negotiation",
                "691",
                "warn",
                f"JSON offered with meta.api-version {version}; pip and uv read it today, PEP 691 lets them refuse "
                "a major version they do not know.",
            )
        return finding(
            "pep691_negotiation",
            "691",
            "pass",
            f"JSON offered under content negotiation (api-version {version}); a JSON-only Accept gets {only}.",
        )
    return finding(
        "pep691_negotiation",
        "691",
        "pass",
        f"no JSON: HTML ({page.get('content_type')}) is served to the JSON-preferring Accept pip and uv send, "
        f"which both read; a JSON-only Accept gets {only}.",
    )


def _raw_core_attrs(fmt: str, body: t.Any, files: list[dict[str, t.Any]], record: dict[str, t.Any]) -> set[str]:
    """Which metadata attribute names (PEP 658 / 714) the checked file's link or entry carries."""
    index = next((i for i, f in enumerate(files) if f["filename"] == record["filename"]), None)
    if index is None:
        return set()
    if fmt == "html":
        links = si.anchors(body)
        attrs = links[index]["attrs"] if index < len(links) else {}
        return {k for k in ("data-core-metadata", "data-dist-info-metadata") if k in attrs}
    entries = body.get("files") or []
    entry = entries[index] if index < len(entries) and isinstance(entries[index], dict) else {}
    return {k for k in ("core-metadata", "dist-info-metadata") if k in entry}


def check_core_metadata(
    wheel: dict[str, t.Any] | None, meta: dict[str, t.Any] | None
) -> tuple[dict[str, str], dict[str, t.Any]]:
    """PEP 658/714: advertised metadata must exist, match its hash and the wheel's METADATA."""
    if not wheel:
        return finding("core_metadata", "658/714", "skip", "no wheel on the project page."), {}
    meta = meta or {}  # no request made: like one with no answer
    record = wheel["record"]
    name = record["filename"]
    served = bool(meta) and meta.get("status") == 200 and "error" not in meta
    info = {"advertised": bool(record.get("core_metadata")), "served": served}
    if wheel.get("metadata") is None and served:
        why = wheel.get("metadata_error") or wheel.get("error") or f"HTTP {wheel.get('status')}"
        return finding("core_metadata", "658/714", "fail", f"{name}: no METADATA to compare with ({why})."), info
    if not record.get("core_metadata"):
        if not served:
            return finding(
                "core_metadata",
                "658/714",
                "skip",
                f"no metadata file advertised for {name} (and {name}.metadata answers "
                f"{(meta or {}).get('status', 'nothing')}); pip and uv read METADATA from the wheel instead.",
            ), info
        status = "pass" if meta["body"] == wheel["metadata"] else "warn"
        return finding(
            "core_metadata",
            "658/714",
            status,
            f"{name}.metadata is served but not advertised, so clients do not use it"
            + ("." if status == "pass" else "; it differs from the wheel's METADATA."),
        ), info
    if not served:
        why = (meta or {}).get("error") or f"HTTP {(meta or {}).get('status')}"
        return finding(
            "core_metadata",
            "658/714",
            "fail",
            f"{name} advertises a metadata file, but {name}.metadata answers {why}; pip and uv both fail to install.",
        ), info
    body = meta["body"]
    for algo, expected in sorted(record.get("core_metadata_hashes", {}).items()):
        if algo in hashlib.algorithms_available:
            actual = hashlib.new(algo, body).hexdigest()
            if not hmac.compare_digest(actual, expected.lower()):
                return finding(
                    "core_metadata",
                    "658/714",
                    "fail",
                    f"{name}.metadata has {algo} {actual}, the index advertises {expected}; pip and uv refuse it.",
                ), info
    if body == wheel["metadata"]:
        return finding(
            "core_metadata", "658/714", "pass", f"{name}.metadata is byte-identical to the wheel's METADATA."
        ), info
    ours, theirs = metadata_fields(body), metadata_fields(wheel["metadata"])
    differ = [f for f in _RESOLVER_FIELDS if not _same_field(f, ours.get(f, []), theirs.get(f, []))]
    if differ:
        return finding(
            "core_metadata",
            "658/714",
            "fail",
            f"{name}.metadata differs from the wheel's METADATA in {', '.join(differ)}; resolvers decide on the "
            "metadata file (pip refuses the file when Name or Version differ).",
        ), info
    return finding(
        "core_metadata",
        "658/714",
        "warn",
        f"{name}.metadata is not byte-identical to the wheel's METADATA (PEP 658 wants it verbatim), but the "
        "fields a resolver uses agree.",
    ), info


def check_core_metadata_attribute(attrs: set[str], advertised: bool, fmt: str) -> dict[str, str]:
    new, old = (
        ("data-core-metadata", "data-dist-info-metadata") if fmt == "html" else ("core-metadata", "dist-info-metadata")
    )
    if not advertised:
        return finding("core_metadata_attribute", "714", "skip", "no metadata file advertised.")
    if new in attrs:
        return finding("core_metadata_attribute", "714", "pass", f"advertised as {new}.")
    return finding(
        "core_metadata_attribute",
        "714",
        "warn",
        f"advertised only under the old name {old}; PEP 714 wants {new} (pip and uv read both today).",
    )


def check_yanked(fmt: str, body: t.Any, files: list[dict[str, t.Any]]) -> dict[str, str]:
    if fmt == "json":
        bad = [
            str(e.get("filename"))
            for e in (body.get("files") or [])
            if isinstance(e, dict) and "yanked" in e and not isinstance(e["yanked"], bool | str)
        ]
        if bad:
            return finding(
                "yanked",
                "592",
                "fail",
                f"'yanked' is neither a boolean nor a string for {', '.join(bad[:5])}; uv refuses the whole page.",
            )
    yanked = [f["filename"] + (f" ({f['yanked_reason']})" if f["yanked_reason"] else "") for f in files if f["yanked"]]
    if not yanked:
        return finding("yanked", "592", "skip", "no file on the page is yanked, so there is nothing to report.")
    return finding("yanked", "592", "pass", f"{len(yanked)} yanked file(s) reported: {', '.join(yanked[:5])}.")


# --------------------------------------------------------------------------- PEP 700 (pure)

DEFAULT_SKEW = 120.0  # seconds of clock difference allowed between the index and the controller
_ISO_8601 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2})$")


def parse_upload_time(value: t.Any) -> datetime.datetime | None:
    """A PEP 700 ``upload-time`` (ISO 8601 with a time zone, ``Z`` as PyPI writes it) as an aware datetime, else None."""
    if not isinstance(value, str):
        return None
    match = _ISO_8601.match(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zone in ("Z", "z"):
        tz = datetime.UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz)
    except ValueError:
        return None


def utc_text(ts: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC (``2026-12-05T03:10:00Z``), the form pip and uv take as a cut-off."""
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_entry(body: t.Any, filename: str) -> dict[str, t.Any] | None:
    for entry in body.get("files") or []:
        if isinstance(entry, dict) and entry.get("filename") == filename:
            return entry
    return None


def check_pep700(
    fmt: str,
    body: t.Any,
    wheel: dict[str, t.Any] | None,
    uploaded: dict[str, t.Any] | None = None,
    now: float | None = None,
) -> list[dict[str, str]]:
    """PEP 700 where the index serves PEP 691 JSON: api-version >= 1.1, ``versions``, and the checked file's ``size``
    and ``upload-time`` against what was uploaded (``uploaded``: size, version, after, skew; see ``observe``).

    Not applicable (skip) on an HTML page: PEP 700 is JSON only (pypiserver 2.4.2 serves none)."""
    names = ("pep700_api_version", "pep700_versions", "pep700_size", "pep700_upload_time")
    if fmt != "json":
        why = "not applicable: the index serves no PEP 691 JSON (HTML only), and PEP 700 is JSON only."
        return [finding(name, "700", "skip", why) for name in names]
    uploaded = uploaded or {}
    out = []
    version = si.api_version(body) or "?"
    try:
        parsed = Version(version)
    except InvalidVersion:
        parsed = None
    entries = [e for e in body.get("files") or [] if isinstance(e, dict)]
    fields = [k for k in ("size", "upload-time") if any(k in e for e in entries)]
    fields = (["versions"] if "versions" in body else []) + fields
    if parsed is not None and parsed.major > 1:
        why = f"not applicable: api-version {version}; PEP 700 defines its fields for 1.1 and later 1.x versions."
        return [finding(name, "700", "skip", why) for name in names]
    if parsed is None or parsed < Version("1.1"):
        if not fields:  # a plain PEP 691 1.0 index: valid, but release cooldowns cannot work against it
            why = f"not served: api-version {version} has no PEP 700 fields."
            return [
                finding(
                    names[0],
                    "700",
                    "warn",
                    f"meta.api-version is {version}, without PEP 700's versions, size and upload-time (1.1); "
                    "pip --uploaded-prior-to and uv --exclude-newer cannot work against this index.",
                )
            ] + [finding(name, "700", "skip", why) for name in names[1:]]
        out.append(
            finding(
                names[0],
                "700",
                "fail",
                f"meta.api-version is {version}, but the document carries PEP 700 fields ({', '.join(fields)}), "
                "which need api-version 1.1 or later; serve api-version 1.1.",
            )
        )
    else:
        out.append(finding(names[0], "700", "pass", f"meta.api-version is {version}."))
    record = (wheel or {}).get("record")
    want_version = uploaded.get("version") or (record or {}).get("version")
    versions = body.get("versions")
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        out.append(finding(names[1], "700", "fail", "the project document has no list of strings 'versions'."))
    elif want_version and not any(si.same_version(v, str(want_version)) for v in versions):
        out.append(
            finding(
                names[1],
                "700",
                "fail",
                f"'versions' ({', '.join(versions[:5]) or 'empty'}) lacks the uploaded version {want_version}.",
            )
        )
    else:
        out.append(
            finding(names[1], "700", "pass", f"'versions' lists {len(versions)} version(s), {want_version} too.")
        )
    entry = _json_entry(body, record["filename"]) if record else None
    if entry is None:
        why = "no wheel on the project page to check."
        return out + [finding(names[2], "700", "skip", why), finding(names[3], "700", "skip", why)]
    name = record["filename"]  # type: ignore[index]
    want_size = uploaded.get("size")
    if want_size is None and wheel and wheel.get("size") is not None:
        want_size = wheel["size"]
    size = entry.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        out.append(finding(names[2], "700", "fail", f"{name} has no integer 'size'."))
    elif want_size is not None and size != int(want_size):
        out.append(
            finding(
                names[2],
                "700",
                "fail",
                f"the index says {name} has size {size}, the uploaded file has {want_size} bytes.",
            )
        )
    else:
        out.append(finding(names[2], "700", "pass", f"{name}: size {size} as uploaded."))
    raw = entry.get("upload-time")
    when = parse_upload_time(raw)
    given_skew = uploaded.get("skew")
    skew = float(given_skew if given_skew is not None else DEFAULT_SKEW)
    now = time.time() if now is None else now
    after = uploaded.get("after")
    if raw is None:
        out.append(
            finding(
                names[3],
                "700",
                "fail",
                f"{name} has no 'upload-time'; pip --uploaded-prior-to and uv --exclude-newer cannot place it.",
            )
        )
    elif when is None:
        out.append(
            finding(
                names[3], "700", "fail", f"{name} has 'upload-time' {raw!r}, which is not an ISO 8601 date and time."
            )
        )
    elif when.timestamp() > now + skew:
        out.append(
            finding(
                names[3],
                "700",
                "fail",
                f"{name} has 'upload-time' {raw}, in the future (now {utc_text(now)}, {skew:g} s of clock skew "
                "allowed); cooldown clients hold the file back.",
            )
        )
    elif after is not None and when.timestamp() < float(after) - skew:
        out.append(
            finding(
                names[3],
                "700",
                "fail",
                f"{name} has 'upload-time' {raw}, before this run started ({utc_text(float(after))}, {skew:g} s of "
                "clock skew allowed), yet it was uploaded in this run; cooldown clients let it through too early.",
            )
        )
    else:
        out.append(finding(names[3], "700", "pass", f"{name}: upload-time {raw}, during this run."))
    return out


# --------------------------------------------------------------------------- evaluation (pure)


def evaluate(obs: dict[str, t.Any]) -> tuple[list[dict[str, str]], dict[str, t.Any]]:
    """(findings, supports) from ``observe``'s answers."""
    page = obs["page"]
    findings = [check_content_type(page)]
    supports: dict[str, t.Any] = {
        "pep503_html": False,
        "pep691_json": False,
        "json_only_accept": None,
        "pep658_metadata": False,
        "pep714_core_metadata": False,
        "metadata_file_served": False,
        "pep592_yanked": None,
        "requires_python": False,
        "hash_algos": [],
        "non_normalized_request": None,
        "range_requests": None,
        "pep629_repository_version": None,
        "pep700_upload_time": False,
    }
    variant = obs.get("variant") or {}
    if "error" not in variant and variant.get("status") is not None:
        supports["non_normalized_request"] = (
            f"redirect {variant['status']}" if variant["status"] in REDIRECTS else f"answer {variant['status']}"
        )
    json_only = obs.get("json_only") or {}
    if "error" not in json_only:
        supports["json_only_accept"] = f"{json_only.get('status')} {si.media_type(json_only.get('content_type', ''))}"
    if findings[0]["status"] == "fail":
        return findings, supports
    try:
        fmt, body, files = _page_files(page)
    except si.IndexReadError as exc:
        findings.append(finding("pep691_negotiation", "691", "fail", f"{exc.msg} pip and uv both fail on it."))
        return findings, supports
    supports["pep503_html"] = fmt == "html"
    supports["pep691_json"] = fmt == "json"
    supports["requires_python"] = any(f["requires_python"] for f in files)
    supports["hash_algos"] = sorted({a for f in files for a in f["hashes"]})
    supports["pep658_metadata"] = any(f["core_metadata"] for f in files)
    if any(f["yanked"] for f in files):
        supports["pep592_yanked"] = True
    if fmt == "html":
        match = _REPOSITORY_VERSION.search(body)
        supports["pep629_repository_version"] = match.group(1) if match else None
    else:
        supports["pep629_repository_version"] = si.api_version(body)

    wheel = obs.get("wheel")
    if wheel and wheel.get("status") == 200:
        supports["range_requests"] = (wheel.get("accept_ranges") or "").lower() == "bytes"
    findings.append(check_root(obs.get("root") or {}))
    findings.append(check_variant(variant, obs.get("expected_url") or page.get("final_url", ""), files))
    findings.append(check_hash_fragments(fmt, body, files))
    findings.append(check_hash_matches(wheel))
    findings.append(check_requires_python_escaped(fmt, body, files))
    findings.append(check_requires_python_advertised(wheel))
    findings.append(check_negotiation(page, fmt, body, json_only))
    meta_finding, info = check_core_metadata(wheel, obs.get("metadata_file"))
    findings.append(meta_finding)
    supports["metadata_file_served"] = bool(info.get("served"))
    attrs = _raw_core_attrs(fmt, body, files, wheel["record"]) if wheel else set()
    supports["pep714_core_metadata"] = bool(attrs & {"data-core-metadata", "core-metadata"})
    findings.append(check_core_metadata_attribute(attrs, bool(info.get("advertised")), fmt))
    findings.append(check_yanked(fmt, body, files))
    pep700 = check_pep700(fmt, body, wheel, obs.get("uploaded"), obs.get("observed_at"))
    findings.extend(pep700)
    if fmt == "json":
        supports["pep700_upload_time"] = any(
            isinstance(e, dict) and "upload-time" in e for e in (body.get("files") or [])
        )
    return findings, supports


def summarize(findings: list[dict[str, str]], strict: bool = False) -> dict[str, t.Any]:
    """Counts per status and the checks that fail the task (``warn`` too with ``strict``)."""
    counts = {status: sum(1 for f in findings if f["status"] == status) for status in STATUSES}
    failing = [f for f in findings if f["status"] == "fail" or (strict and f["status"] == "warn")]
    return {"counts": counts, "failing": [f["check"] for f in failing]}


def failure_message(findings: list[dict[str, str]], project: str, url: str, strict: bool = False) -> str | None:
    """The one failure sentence, or None when nothing fails."""
    failing = [f for f in findings if f["status"] == "fail" or (strict and f["status"] == "warn")]
    if not failing:
        return None
    parts = "; ".join(f"{f['check']} (PEP {f['pep']}): {f['detail'].rstrip('.')}" for f in failing)
    what = "break pip or uv" if not strict else "fail (strict: warnings count)"
    return (
        f"{len(failing)} index conformance finding(s) for {project!r} at {httputil.redact_url(url)} {what}: {parts}; "
        "fix the server or the proxy in front of it."
    )
