# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where an install came from: the one rule every check of an install's origin uses (pip and uv alike).

Real indexes serve their files from other origins: PyPI links files.pythonhosted.org, Artifactory redirects to
object storage. So the origin of a file proves nothing by itself. What proves that an install came from the index
under test is:

- every project page the client read was served by the index under test (a page that the index redirects to another
  origin, or a page read from another index through a leaked extra-index-url, a fallback or a config file, fails);
- the installed file's URL is one that index advertised on the project page (relative links resolved, the
  ``#sha256=`` fragment ignored; a file URL that redirects elsewhere is judged by the URL the page advertised);
- the installed bytes carry the uploaded sha256 (``expected_sha256`` when the caller knows it, else the sha256 the
  index advertised).

``judge`` is the pure rule (a function of what the client reported and what the index's pages say);
``read_pages`` reads those pages, following redirects the way the clients do.
"""

from __future__ import annotations

import typing as t
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http

DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_SUFFIX = ".metadata"  # PEP 658: the file's metadata next to it
FIX_ISOLATION = (
    "make the client use the index under test only (no extra-index-url, no pip.conf/uv.toml, no PIP_*/UV_* "
    "settings) and turn off the index's fallback (pypiserver --disable-fallback; the chart's fallbackUrl: \"\")"
)


class ProvenanceError(Exception):
    """The install cannot be shown to come from the index under test: one sentence, and the URL at fault."""

    def __init__(self, msg: str, url: str | None = None):
        super().__init__(msg)
        self.msg = msg
        self.url = url


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


def origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def file_key(url: str) -> str:
    """A file URL compared as the clients use it: no fragment, no credentials, scheme/host lower case, the default
    port explicit, the path unquoted."""
    bare = urldefrag(url)[0]
    parts = urlsplit(bare)
    scheme, host, port = origin(bare)
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{host}:{port}{unquote(parts.path)}{query}"


def page_record(requested: str, final_url: str, files: t.Iterable[dict[str, t.Any]]) -> dict[str, t.Any]:
    """What ``judge`` needs of one project page: where it was asked for, where it was served from, its files
    ({file_key: advertised sha256 or None})."""
    advertised: dict[str, str | None] = {}
    for entry in files:
        hashes = entry.get("hashes") or {}
        advertised[file_key(entry["url"])] = (hashes.get("sha256") or "").lower() or None
    return {"url": requested, "final_url": final_url, "files": advertised}


def page_error(requested: str, msg: str) -> dict[str, t.Any]:
    return {"url": requested, "error": msg, "files": {}}


def _page_problem(index_url: str, client: str, page: dict[str, t.Any]) -> str | None:
    if page.get("error"):
        return (
            f"{client} installed from {http.redact_url(index_url)}, but its project page {http.redact_url(page['url'])} "
            f"could not be read back to prove where the install came from: {page['error']}"
        )
    final = page.get("final_url") or page["url"]
    if origin(final) != origin(index_url):
        return (
            f"The index under test ({origin_text(index_url)}) sends the project page {http.redact_url(page['url'])} to "
            f"{http.redact_url(final)}, another origin: {client} read the page from another index (a fallback or a "
            f"redirect), so this install proves nothing about the server; {FIX_ISOLATION}."
        )
    return None


def judge(
    index_url: str,
    client: str,
    pages: dict[str, dict[str, t.Any]],
    installs: list[dict[str, t.Any]],
    expected_sha256: dict[str, str] | None = None,
    requests: t.Iterable[str] = (),
) -> list[dict[str, t.Any]]:
    """Accept or refuse an install by ``client`` from ``index_url``; raise ProvenanceError naming the URL at fault.

    - ``pages``: {normalized project name: ``page_record`` or ``page_error``} of every project installed;
    - ``installs``: the files the client installed, each {name (normalized), version, url, sha256 (None: unknown)};
    - ``expected_sha256``: {normalized name: the uploaded file's sha256} where the caller knows it;
    - ``requests``: every URL the client requested (uv's log), all of which must be on the index's origin or be a
      file (or its PEP 658 metadata) one of ``pages`` advertised.

    Returns one verdict per install: url, page, off_origin, sha256, sha256_checked_against (expected, index).
    """
    expected = {k: (v or "").strip().lower() for k, v in (expected_sha256 or {}).items() if v}
    home = origin(index_url)
    for page in pages.values():
        problem = _page_problem(index_url, client, page)
        if problem:
            raise ProvenanceError(problem, page.get("final_url") or page["url"])
    advertised: dict[str, str | None] = {}
    for page in pages.values():
        advertised.update(page["files"])
    for url in requests:
        key = file_key(url)
        if origin(url) == home or key in advertised or key.removesuffix(METADATA_SUFFIX) in advertised:
            continue
        raise ProvenanceError(
            f"{client} requested {http.redact_url(url)} from {origin_text(url)}, which is neither the index under test "
            f"({origin_text(index_url)}) nor a file its project pages advertise: a leaked extra-index-url, a fallback "
            f"or a config file sent {client} elsewhere, so this install proves nothing about the server; "
            f"{FIX_ISOLATION}.",
            url,
        )
    verdicts = []
    for item in installs:
        name, url = item["name"], item["url"]
        listed = pages.get(name)
        files = listed["files"] if listed else {}
        key = file_key(url)
        if key not in files:
            where = http.redact_url(listed["url"]) if listed else f"the project page of {name}"
            raise ProvenanceError(
                f"{client} installed {name} {item.get('version')} from {http.redact_url(url)}, a file URL the index "
                f"under test never advertised on {where} (it lists {len(files)} file(s)): {client} read another "
                f"index (a leaked extra-index-url, a fallback or a config file), so this install proves nothing "
                f"about the server; {FIX_ISOLATION}.",
                url,
            )
        want, against = expected.get(name), "expected"
        if not want:
            want, against = files[key], "index"
        got = (item.get("sha256") or "").lower() or None
        off_origin = origin(url) != home
        if want and got and got != want:
            told = "the uploaded file's" if against == "expected" else "the index's #sha256= fragment"
            raise ProvenanceError(
                f"{client} installed {name} {item.get('version')} from {http.redact_url(url)} with sha256 {got}, "
                f"expected {want} ({told}): the served bytes behind the advertised URL differ from the built file "
                f"(the {'file host' if off_origin else 'server'} serves other bytes); check the stored file and the "
                "storage or file host behind the URL.",
                url,
            )
        if off_origin and not (want and got):
            raise ProvenanceError(
                f"{client} installed {name} {item.get('version')} from {http.redact_url(url)} on another origin, and "
                "no sha256 proves its bytes are the uploaded ones (the index advertises none for it); make the index "
                "advertise #sha256= fragments.",
                url,
            )
        verdicts.append(
            {
                "name": name,
                "url": http.redact_url(url),
                "page": http.redact_url(listed["final_url"]) if listed else None,
                "off_origin": off_origin,
                "sha256": got,
                "sha256_checked_against": against if want and got else None,
            }
        )
    return verdicts


def page_url(index_url: str, name: str) -> str:
    return index_url.rstrip("/") + "/" + name + "/"


REDIRECTS = (301, 302, 303, 307, 308)


def _off_origin_redirect(session: t.Any, url: str, accept: str, opts: http.ClientOptions) -> str | None:
    """The first redirect target of ``url`` on another origin (not requested), following same-origin redirects
    (pypiserver's 301 to the normalized name); None when the page stays on its origin or does not answer."""
    for _hop in range(10):
        try:
            resp = session.get(
                url, headers={"Accept": accept}, timeout=opts.timeout, allow_redirects=False, stream=True
            )
            resp.close()
        except Exception:  # noqa: BLE001 - no answer: fetch_project names the error
            return None
        location = resp.headers.get("Location")
        if resp.status_code not in REDIRECTS or not location:
            return None
        target = urljoin(url, location)
        if origin(target) != origin(url):
            return target
        url = target
    return None


def read_pages(index_url: str, names: t.Iterable[str], opts: http.ClientOptions) -> dict[str, dict[str, t.Any]]:
    """``page_record`` (or ``page_error``) of each project's page on ``index_url``, redirects followed as clients do;
    a redirect to another origin is recorded as the page's final URL and never followed (a fallback to pypi.org is
    not contacted)."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

    pages: dict[str, dict[str, t.Any]] = {}
    session = http.make_session(opts)
    try:
        for name in dict.fromkeys(names):
            requested = page_url(index_url, name)
            elsewhere = _off_origin_redirect(session, requested, si.ACCEPT, opts)
            if elsewhere:
                pages[name] = {"url": requested, "final_url": http.redact_url(elsewhere), "files": {}}
                continue
            try:
                page = si.fetch_project(session, index_url, name, opts)
            except si.IndexReadError as exc:
                pages[name] = page_error(requested, exc.msg)
                continue
            pages[name] = page_record(page["url"], page["final_url"], page["files"])
    finally:
        session.close()
    return pages
