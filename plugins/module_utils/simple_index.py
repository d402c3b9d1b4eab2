# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a simple repository index (PEP 503 HTML, PEP 691 JSON), in one place.

Fetching negotiates the format, follows redirects (pypiserver answers 301 for a
project name that is not normalized), resolves every link to an absolute URL
and splits the ``#<algo>=<digest>`` fragment off. The parsers are pure
functions of (text, page URL), so they can be tested without a server.
Every failure is an ``IndexReadError`` whose message is one sentence naming
the cause and the next step.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import typing as t
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import bounds, digest
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import progress as progressutil

try:
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )
    from packaging.version import InvalidVersion, Version

    HAS_PACKAGING = True
    PACKAGING_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - ansible-core depends on packaging
    HAS_PACKAGING = False
    PACKAGING_IMPORT_ERROR = exc

try:
    import requests
except ImportError:  # pragma: no cover - reported by the module through http.HAS_REQUESTS
    requests = None  # type: ignore[assignment]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"
_JSON_TYPES = (JSON_TYPE, "application/vnd.pypi.simple.latest+json", "application/json")
_NORMALIZE = re.compile(r"[-_.]+")
_HASH_FRAGMENT = re.compile(r"^(?P<algo>[A-Za-z0-9_-]+)=(?P<digest>[0-9A-Fa-f]+)$")
SDIST_SUFFIXES = (".tar.gz", ".zip")
NOT_JSON_HINT = "; check the server or the proxy in front of it"


class IndexReadError(Exception):
    """A failure to read the index: one sentence (cause and next step), plus the HTTP status if there was one."""

    def __init__(self, msg: str, status: int | None = None, url: str | None = None):
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.url = url


# --------------------------------------------------------------------------- names, files, hashes


def normalize(name: str) -> str:
    """PEP 503 normalized project name (``Foo.Bar_baz`` -> ``foo-bar-baz``): the collection's one definition."""
    return _NORMALIZE.sub("-", name).lower()


def split_hash(url: str) -> tuple[str, str | None, str | None]:
    """Split ``...#sha256=abc`` into (URL without fragment, algo, digest); algo/digest are None without one."""
    bare, fragment = urldefrag(url)
    match = _HASH_FRAGMENT.match(fragment or "")
    if not match or match.group("algo").lower() not in hashlib.algorithms_guaranteed:
        return bare, None, None  # no fragment, or one that is not a hash (``#egg=name``)
    return bare, match.group("algo").lower(), match.group("digest").lower()


def file_kind(filename: str) -> str:
    """``wheel``, ``sdist`` or ``other``, from the file name."""
    low = filename.lower()
    if low.endswith(".whl"):
        return "wheel"
    if low.endswith(SDIST_SUFFIXES):
        return "sdist"
    return "other"


def file_version(filename: str) -> str | None:
    """Normalized version of a wheel or sdist file name; None when it cannot be parsed."""
    kind = file_kind(filename)
    try:
        if kind == "wheel":
            return str(parse_wheel_filename(filename)[1])
        if kind == "sdist":
            return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def sort_versions(versions: t.Iterable[str | None]) -> list[str]:
    """Unique versions in PEP 440 order (oldest first); None and unparseable strings are left out."""
    parsed: set[Version] = set()
    for value in versions:
        if not value:
            continue
        try:
            parsed.add(Version(value))
        except InvalidVersion:
            continue
    return [str(v) for v in sorted(parsed)]


def same_version(a: str, b: str) -> bool:
    """Whether two version strings name the same release: the same text, or PEP 440 equal (``1.0`` == ``1.0.0``)."""
    if a == b:
        return True
    if not HAS_PACKAGING:  # pragma: no cover - ansible-core depends on packaging
        return False
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return False


def _pick_hash(hashes: dict[str, str]) -> tuple[str | None, str | None]:
    if not hashes:
        return None, None
    algo = "sha256" if "sha256" in hashes else min(hashes)
    return algo, hashes[algo]


def _file_record(
    url: str,
    filename: str,
    hashes: dict[str, str],
    requires_python: str | None,
    yanked: bool,
    yanked_reason: str | None,
    core_metadata: bool,
    core_metadata_hashes: dict[str, str],
) -> dict[str, t.Any]:
    algo, value = _pick_hash(hashes)
    return {
        "filename": filename,
        "version": file_version(filename),
        "kind": file_kind(filename),
        "url": url,
        "hash_algo": algo,
        "hash_digest": value,
        "hashes": hashes,
        "requires_python": requires_python or None,
        "yanked": yanked,
        "yanked_reason": (yanked_reason or None) if yanked else None,
        "core_metadata": core_metadata or bool(core_metadata_hashes),
        "core_metadata_hashes": core_metadata_hashes,
    }


def _core_metadata(value: t.Any) -> tuple[bool, dict[str, str]]:
    """PEP 658/714 value (HTML ``true`` / ``sha256=...``, JSON bool / hash dict) as (available, hashes)."""
    if isinstance(value, dict):
        hashes = {str(k).lower(): str(v).lower() for k, v in value.items()}
        return True, hashes
    if isinstance(value, str):
        match = _HASH_FRAGMENT.match(value.strip())
        if match:
            return True, {match.group("algo").lower(): match.group("digest").lower()}
        return value.strip().lower() != "false", {}
    return bool(value), {}


def _filename_of(url: str, text: str) -> str:
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name or text.strip()


# --------------------------------------------------------------------------- HTML (PEP 503)


class _LinkParser(HTMLParser):
    """Collects every ``<a href>`` with its data-* attributes and text, and the first ``<base href>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[dict[str, t.Any]] = []
        self._open: dict[str, t.Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # html.parser has already unescaped attribute values (&gt;=3.8 arrives as >=3.8).
        found = dict(attrs)
        if tag == "base" and self.base is None and found.get("href"):
            self.base = (found["href"] or "").strip()
        elif tag == "a":
            self._close()
            if found.get("href") is not None:
                self._open = {"href": (found["href"] or "").strip(), "attrs": found, "text": []}

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close()

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"].append(data)

    def _close(self) -> None:
        if self._open is not None:
            self._open["text"] = "".join(self._open["text"]).strip()
            self.anchors.append(self._open)
            self._open = None

    def close(self) -> None:
        super().close()
        self._close()


def anchors(text: str) -> list[dict[str, t.Any]]:
    """Every ``<a href>`` of an HTML page, raw and in page order: {href (fragment kept), attrs (all of them), text}.

    ``parse_html_links`` reads the same anchors in the same order, so ``anchors(text)[i]`` is its link ``i``.
    """
    return _parse_anchors(text).anchors


def _parse_anchors(text: str) -> _LinkParser:
    parser = _LinkParser()
    parser.feed(text)
    parser.close()
    return parser


def parse_html_links(text: str, page_url: str) -> list[dict[str, t.Any]]:
    """Every ``<a href>`` of a page: absolute ``url`` (no fragment), ``hash_algo``/``hash_digest``, ``text``, data-*.

    Relative hrefs resolve against ``<base href>`` when the page has one (itself resolved against the page URL),
    else against ``page_url``, which must be the URL the page was finally served from.
    """
    parser = _parse_anchors(text)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    links = []
    for anchor in parser.anchors:
        attrs = anchor["attrs"]
        url, algo, value = split_hash(urljoin(base, anchor["href"]))
        core = None
        for key in ("data-core-metadata", "data-dist-info-metadata"):
            if key in attrs:
                core = attrs[key] or "true"  # a bare attribute means "available"
                break
        links.append(
            {
                "url": url,
                "text": anchor["text"],
                "hash_algo": algo,
                "hash_digest": value,
                "requires_python": attrs.get("data-requires-python") or None,
                # PEP 592: the attribute's presence (even empty) means yanked; its value is the reason.
                "yanked": "data-yanked" in attrs,
                "yanked_reason": attrs.get("data-yanked") or None,
                "core_metadata": core,
            }
        )
    return links


def parse_html_projects(text: str, page_url: str) -> tuple[list[str], int]:
    """(sorted unique normalized project names, number of links) of a PEP 503 root page."""
    links = parse_html_links(text, page_url)
    names = set()
    for link in links:
        name = link["text"] or unquote(urlsplit(link["url"]).path.rstrip("/").rsplit("/", 1)[-1])
        if name:
            names.add(normalize(name))
    return sorted(names), len(links)


def parse_html_files(text: str, page_url: str) -> tuple[list[dict[str, t.Any]], int]:
    """(file records, number of links) of a PEP 503 project page."""
    links = parse_html_links(text, page_url)
    files = []
    for link in links:
        hashes = {link["hash_algo"]: link["hash_digest"]} if link["hash_algo"] else {}
        files.append(
            _file_record(
                link["url"],
                _filename_of(link["url"], link["text"]),
                hashes,
                link["requires_python"],
                link["yanked"],
                link["yanked_reason"],
                *_core_metadata(link["core_metadata"]),
            )
        )
    return files, len(links)


# --------------------------------------------------------------------------- JSON (PEP 691)


def api_version(doc: t.Any) -> str | None:
    """``meta.api-version`` of a PEP 691 document; None when it has none."""
    meta = doc.get("meta") if isinstance(doc, dict) else None
    version = meta.get("api-version") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def _check_meta(doc: t.Any, url: str) -> None:
    version = api_version(doc)
    if version is None:
        raise IndexReadError(
            f"{httputil.redact_url(url)} answered JSON that is not a PEP 691 simple index (no meta.api-version); "
            "check that the URL is the simple index (usually ending in /simple/)."
        )
    if version.split(".", 1)[0] != "1":
        raise IndexReadError(
            f"{httputil.redact_url(url)} speaks simple API version {version}, which this collection does not read; "
            "point the URL at an index that offers API version 1."
        )


def parse_json_projects(doc: t.Any, page_url: str) -> tuple[list[str], int]:
    """(sorted unique normalized project names, number of entries) of a PEP 691 root document."""
    _check_meta(doc, page_url)
    projects = doc.get("projects")
    if not isinstance(projects, list) or not all(
        isinstance(p, dict) and isinstance(p.get("name"), str) for p in projects
    ):
        raise IndexReadError(
            f"{httputil.redact_url(page_url)} answered a PEP 691 document without a valid projects list; "
            "check the server or proxy in front of it."
        )
    return sorted({normalize(p["name"]) for p in projects}), len(projects)


def parse_json_files(doc: t.Any, page_url: str) -> tuple[list[dict[str, t.Any]], int]:
    """(file records, number of entries) of a PEP 691 project document; relative URLs resolve against page_url."""
    _check_meta(doc, page_url)
    entries = doc.get("files")
    valid = isinstance(entries, list) and all(
        isinstance(f, dict) and isinstance(f.get("filename"), str) and isinstance(f.get("url"), str) for f in entries
    )
    if not valid:
        raise IndexReadError(
            f"{httputil.redact_url(page_url)} answered a PEP 691 document without a valid files list; "
            "check the server or proxy in front of it."
        )
    files = []
    for entry in entries:
        url, frag_algo, frag_digest = split_hash(urljoin(page_url, entry["url"]))
        raw = entry.get("hashes") if isinstance(entry.get("hashes"), dict) else {}
        hashes = {str(k).lower(): str(v).lower() for k, v in raw.items()}
        if not hashes and frag_algo and frag_digest:  # split_hash gives both or neither
            hashes = {frag_algo: frag_digest}
        core = entry.get("core-metadata", entry.get("dist-info-metadata"))
        yanked = entry.get("yanked", False)
        requires = entry.get("requires-python")
        files.append(
            _file_record(
                url,
                entry["filename"],
                hashes,
                requires if isinstance(requires, str) else None,
                yanked is True or isinstance(yanked, str),
                yanked if isinstance(yanked, str) else None,
                *_core_metadata(core if isinstance(core, (bool, dict)) else None),
            )
        )
    return files, len(entries)


# --------------------------------------------------------------------------- fetching


def dir_url(url: str) -> str:
    """``url`` with a trailing slash on its path (the index root as clients ask for it)."""
    parts = urlsplit(url)
    if parts.path.endswith("/"):
        return url
    return parts._replace(path=(parts.path or "") + "/").geturl()


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header, lower case, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    """Whether a media type (``media_type``) is one the clients read as PEP 691 JSON."""
    return media in _JSON_TYPES or media.endswith("+json")


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _sep, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return "utf-8"


def decode(body: bytes, content_type: str) -> str:
    """A page's text, by the Content-Type's charset (UTF-8 without one or with an unknown one; bad bytes replaced)."""
    try:
        return body.decode(_charset(content_type), errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _get_page(session: t.Any, url: str, opts: httputil.ClientOptions) -> t.Any:
    try:
        return session.get(url, headers={"Accept": ACCEPT}, timeout=opts.timeout)
    except requests.RequestException as exc:
        raise IndexReadError(httputil.describe_error(exc, url, opts), url=url) from None


def _status_error(resp: t.Any, url: str) -> IndexReadError:
    status = resp.status_code
    return IndexReadError(
        f"{httputil.redact_url(url)} answered HTTP {status}: {httputil.http_status_hint(status)}.",
        status=status,
        url=url,
    )


def read_page(body: bytes, content_type: str, url: str, hint: str = NOT_JSON_HINT) -> tuple[str, t.Any]:
    """(format, parsed body) of a page's bytes, by its Content-Type: ``json`` and the decoded document, or ``html``
    and the text. A JSON type whose body does not parse is an IndexReadError (``hint`` ends its sentence)."""
    media = media_type(content_type)
    if is_json(media):
        try:
            return "json", json.loads(decode(body, content_type))
        except ValueError:
            raise IndexReadError(f"{httputil.redact_url(url)} answered {media} that is not valid JSON{hint}.") from None
    return "html", decode(body, content_type)


def _read(resp: t.Any, url: str) -> tuple[str, t.Any]:
    """(format, parsed body) of a 200 answer (``read_page``)."""
    return read_page(resp.content, resp.headers.get("Content-Type", ""), url)


def _envelope(url: str, resp: t.Any, fmt: str) -> dict[str, t.Any]:
    return {
        "url": httputil.redact_url(url),
        "final_url": httputil.redact_url(resp.url or url),
        "status": resp.status_code,
        "content_type": resp.headers.get("Content-Type", ""),
        "format": fmt,
        "redirected": bool(resp.history),
    }


def fetch_projects(session: t.Any, simple_url: str, opts: httputil.ClientOptions) -> dict[str, t.Any]:
    """List the projects of the index root: url, final_url, format, content_type, projects, links_found.

    An empty index is legitimate: ``links_found`` is 0 and the caller decides whether that is an error
    (it also is what a 200 page that is not an index at all looks like; ``content_type`` helps tell them apart).
    """
    url = dir_url(simple_url)
    resp = _get_page(session, url, opts)
    if resp.status_code != 200:
        raise _status_error(resp, url)
    fmt, body = _read(resp, url)
    result = _envelope(url, resp, fmt)
    if fmt == "json":
        result["projects"], result["links_found"] = parse_json_projects(body, resp.url or url)
    else:
        result["projects"], result["links_found"] = parse_html_projects(body, resp.url or url)
    return result


def project_url(simple_url: str, project: str) -> str:
    """URL of a project's page under the index root, with the name exactly as given (quoted)."""
    return urljoin(dir_url(simple_url), quote(project.strip(), safe="") + "/")


def missing_project_status(session: t.Any, simple_url: str, opts: httputil.ClientOptions) -> tuple[str, int | None]:
    """(URL, status) of the page of a project that cannot exist; None when no answer came.

    A simple index answers 404 (or, with a fallback index, a redirect: not followed here); a page that answers
    200 to every path (a web server's default page, a login page, a single-page app) answers 200.
    """
    url = project_url(simple_url, f"pypi-ops-no-such-project-{secrets.token_hex(4)}")
    try:
        resp = session.get(url, headers={"Accept": ACCEPT}, timeout=opts.timeout, allow_redirects=False, stream=True)
        resp.close()
    except requests.RequestException:
        return url, None
    return url, resp.status_code


def fetch_project(session: t.Any, simple_url: str, project: str, opts: httputil.ClientOptions) -> dict[str, t.Any]:
    """List one project's files: url, final_url, format, content_type, project, files, versions, links_found.

    The name is requested as given and redirects are followed (pypiserver answers 301 towards the normalized
    name); a server that answers 404 to a non-normalized name is asked again with the normalized one.
    """
    name = normalize(project)
    url = project_url(simple_url, project)
    resp = _get_page(session, url, opts)
    if resp.status_code == 404 and project.strip() != name:
        url = project_url(simple_url, name)
        resp = _get_page(session, url, opts)
    if resp.status_code == 404:
        raise IndexReadError(
            f"Project {project!r} is not on the index {httputil.redact_url(dir_url(simple_url))} (HTTP 404 for {name}/); "
            "check the project name, that it was uploaded, and that the URL is the simple index.",
            status=404,
            url=url,
        )
    if resp.status_code != 200:
        raise _status_error(resp, url)
    fmt, body = _read(resp, url)
    result = _envelope(url, resp, fmt)
    if fmt == "json":
        files, found = parse_json_files(body, resp.url or url)
    else:
        files, found = parse_html_files(body, resp.url or url)
    result.update(project=name, files=files, links_found=found, versions=sort_versions(f["version"] for f in files))
    return result


# --------------------------------------------------------------------------- downloads


def _stream(
    session: t.Any,
    url: str,
    opts: httputil.ClientOptions,
    extra: t.Any = None,
    progress: progressutil.Callback | None = None,
) -> tuple[str, int]:
    what = f"download of {unquote(urlsplit(url).path.rsplit('/', 1)[-1]) or httputil.redact_url(url)}"

    def chunks(resp: t.Any) -> t.Iterator[bytes]:
        length = resp.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        received = 0
        for block in bounds.read_body(resp, what, opts.read_timeout, opts.op_timeout, opts.deadline, digest.CHUNK):
            if progress is not None:
                received += len(block)
                progressutil.notify(progress, received, total)
            yield block

    try:
        opts.deadline.check(f"before the {what}")
        with session.get(url, stream=True, timeout=opts.timeout) as resp:
            if resp.status_code != 200:
                raise _status_error(resp, url)
            return digest.sha256_chunks(chunks(resp), extra)
    except bounds.BoundError as exc:
        raise IndexReadError(exc.msg, url=url) from None
    except requests.RequestException as exc:
        raise IndexReadError(httputil.describe_error(exc, url, opts), url=url) from None


def download_and_hash(
    session: t.Any, url: str, opts: httputil.ClientOptions, progress: progressutil.Callback | None = None
) -> tuple[str, int]:
    """Stream ``url`` in 1 MiB chunks (never held whole in memory) and return (sha256 hex digest, size).

    ``progress(bytes_received, total=Content-Length or None)`` is called after each chunk.
    """
    return _stream(session, url, opts, progress=progress)


def compare_download(file: dict[str, t.Any], digests: dict[str, str], size: int) -> dict[str, t.Any]:
    """Pure check of downloaded digests against a file record's index hash.

    ``match`` is True/False when the index gave a hash that was computed, None when there is nothing to compare.
    """
    algo, expected = file.get("hash_algo"), file.get("hash_digest")
    actual = digests.get(algo) if algo else None
    match = None
    if expected and actual:
        match = hmac.compare_digest(actual.lower(), expected.lower())
    return {
        "filename": file.get("filename"),
        "url": file.get("url"),
        "sha256": digests.get("sha256"),
        "size": size,
        "hash_algo": algo,
        "expected": expected,
        "actual": actual,
        "match": match,
    }


def verify_file(
    session: t.Any,
    file: dict[str, t.Any],
    opts: httputil.ClientOptions,
    progress: progressutil.Callback | None = None,
) -> dict[str, t.Any]:
    """Download one file record's URL and compare it with its index hash (sha256, or any algo hashlib knows)."""
    algo = file.get("hash_algo")
    extra = None
    if algo and algo != "sha256" and algo in hashlib.algorithms_available:
        extra = hashlib.new(algo)
    start = time.monotonic()
    sha, size = _stream(session, file["url"], opts, extra, progress)
    seconds = time.monotonic() - start
    digests = {"sha256": sha}
    if extra is not None and algo:
        digests[algo] = extra.hexdigest()
    return dict(compare_download(file, digests, size), seconds=round(seconds, 3))


def verify_files(
    session: t.Any,
    files: t.Iterable[dict[str, t.Any]],
    opts: httputil.ClientOptions,
    progress: progressutil.Callback | None = None,
) -> list[dict[str, t.Any]]:
    """``verify_file`` for each record, in order.

    ``progress(bytes_received, total=size or None, detail="file <i>/<n> <filename>")`` follows each download.
    """
    records = list(files)
    return [
        verify_file(session, record, opts, _labelled(progress, f"file {i}/{len(records)} {record.get('filename')}"))
        for i, record in enumerate(records, 1)
    ]


def _labelled(progress: progressutil.Callback | None, label: str) -> progressutil.Callback | None:
    """``progress`` with ``detail`` always set to ``label``; None without a callback."""
    if progress is None:
        return None

    def callback(done: int | None, total: int | None = None, detail: str = "") -> None:
        progress(done, total=total, detail=label)

    return callback
