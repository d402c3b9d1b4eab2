"""index_list and module_utils.simple_index.

Server paths run against a real pypiserver (fixtures in tests/conftest.py); packages are put on it by writing
files into its package directory (the fixture uses the simple-dir backend, so nothing is cached).
What pypiserver cannot produce -- a PEP 691 JSON answer, a link whose hash does not match the file, a 200 page
that is not an index, a 500 -- is served by ``crafted_index``: a real stdlib HTTP server on 127.0.0.1 returning
fixed documents. The parsers are also tested as pure functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible.module_utils.common import warnings as ansible_warnings

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.modules import index_list

JSON_CT = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(autouse=True)
def _fresh_module_warnings():
    """Module warnings are process-global in ansible-core; in-process runs would see earlier tests' warnings."""
    ansible_warnings._global_warnings.clear()
    yield
    ansible_warnings._global_warnings.clear()


def warning_texts(result: dict[str, t.Any]) -> str:
    return json.dumps(result.get("warnings", []))


def put(server: t.Any, filename: str, data: bytes) -> str:
    """Drop a file into the server's package directory; return its sha256."""
    with open(os.path.join(server.package_dir, filename), "wb") as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_clean_failure(result: dict[str, t.Any]) -> str:
    assert result.failed, result
    msg = result["msg"]
    assert "Traceback" not in msg and "\n" not in msg
    assert "exception" not in result
    return msg


# --------------------------------------------------------------------------- a real pypiserver


def test_empty_index_is_listed_and_not_an_error(pypiserver, run_module):
    result = run_module(index_list, {"url": pypiserver.simple_url})
    assert not result.failed, result
    assert result["projects"] == []
    assert result["links_found"] == 0
    assert result["format"] == "html"  # pypiserver does not speak PEP 691
    assert result["changed"] is False
    assert result["final_url"] == pypiserver.simple_url


def test_empty_index_fails_with_require_links(pypiserver, run_module):
    result = run_module(index_list, {"url": pypiserver.simple_url, "require_links": True})
    msg = assert_clean_failure(result)
    assert "no links" in msg and "text/html" in msg


def test_projects_are_normalized_and_sorted(pypiserver, run_module):
    put(pypiserver, "Foo.Bar-1.0.tar.gz", b"sdist")
    put(pypiserver, "foo_bar-2.0-py3-none-any.whl", b"wheel")
    put(pypiserver, "Zope_Interface-5.0.zip", b"zip")
    put(pypiserver, "alpha-0.1-py3-none-any.whl", b"a")
    # no trailing slash: the module adds it
    result = run_module(index_list, {"url": pypiserver.simple_url.rstrip("/"), "require_links": True})
    assert not result.failed, result
    assert result["projects"] == ["alpha", "foo-bar", "zope-interface"]
    assert result["links_found"] == 3
    assert "files" not in result and "versions" not in result


def test_project_files_versions_and_hashes(pypiserver, run_module):
    written = {
        "pkg_one-1.10.0-py3-none-any.whl": b"ten" * 100,
        "pkg_one-1.2.0-py3-none-any.whl": b"two",
        "pkg-one-1.2.0.tar.gz": b"two-sdist",
        "pkg_one-1.0.0rc1-py3-none-any.whl": b"rc",
    }
    sums = {name: put(pypiserver, name, data) for name, data in written.items()}
    result = run_module(index_list, {"url": pypiserver.simple_url, "project": "pkg-one"})
    assert not result.failed, result
    assert result["project"] == "pkg-one"
    # PEP 440 order, not string order; duplicates collapsed
    assert result["versions"] == ["1.0.0rc1", "1.2.0", "1.10.0"]
    files = {f["filename"]: f for f in result["files"]}
    assert set(files) == set(written)
    assert result["links_found"] == 4
    for name, f in files.items():
        assert f["hash_algo"] == "sha256"
        assert f["hash_digest"] == sums[name], name
        assert f["url"] == f"{pypiserver.url}packages/{name}"  # absolute, fragment split off
        assert "#" not in f["url"]
    assert files["pkg-one-1.2.0.tar.gz"]["kind"] == "sdist"
    assert files["pkg-one-1.2.0.tar.gz"]["version"] == "1.2.0"
    assert files["pkg_one-1.10.0-py3-none-any.whl"]["kind"] == "wheel"
    assert files["pkg_one-1.10.0-py3-none-any.whl"]["yanked"] is False


def test_verify_hashes_downloads_every_file_with_a_matching_hash(pypiserver, run_module):
    big = os.urandom(3 * 1024 * 1024 + 17)  # more than one 1 MiB chunk
    sums = {
        "big_pkg-1.0-py3-none-any.whl": put(pypiserver, "big_pkg-1.0-py3-none-any.whl", big),
        "big-pkg-1.0.tar.gz": put(pypiserver, "big-pkg-1.0.tar.gz", b"small"),
    }
    result = run_module(index_list, {"url": pypiserver.simple_url, "project": "big-pkg", "verify_hashes": True})
    assert not result.failed, result
    downloads = {d["filename"]: d for d in result["downloads"]}
    assert set(downloads) == set(sums)
    for name, d in downloads.items():
        assert d["match"] is True
        assert d["sha256"] == sums[name] == d["expected"] == d["actual"]
    assert downloads["big_pkg-1.0-py3-none-any.whl"]["size"] == len(big)
    assert result["mismatches"] == []


def test_verify_hashes_with_a_non_sha256_index_hash(pypiserver_factory, run_module):
    server = pypiserver_factory(hash_algo="md5")
    data = b"md5 hashed"
    sha = put(server, "mdfive-1.0-py3-none-any.whl", data)
    result = run_module(index_list, {"url": server.simple_url, "project": "mdfive", "verify_hashes": True})
    assert not result.failed, result
    (f,) = result["files"]
    assert f["hash_algo"] == "md5" and f["hash_digest"] == hashlib.md5(data).hexdigest()
    (d,) = result["downloads"]
    assert d["match"] is True and d["hash_algo"] == "md5" and d["sha256"] == sha


def test_download_and_hash_streams_a_file(pypiserver):
    data = os.urandom(2 * 1024 * 1024 + 5)
    sha = put(pypiserver, "stream-1.0.tar.gz", data)
    opts = httputil.ClientOptions.from_params({})
    session = httputil.make_session(opts)
    try:
        assert si.download_and_hash(session, f"{pypiserver.url}packages/stream-1.0.tar.gz", opts) == (sha, len(data))
        with pytest.raises(si.IndexReadError) as err:
            si.download_and_hash(session, f"{pypiserver.url}packages/absent-1.0.tar.gz", opts)
    finally:
        session.close()
    assert err.value.status == 404


def test_non_normalized_project_name_follows_the_redirect(pypiserver, run_module):
    sha = put(pypiserver, "foo_bar-1.0-py3-none-any.whl", b"payload")
    result = run_module(index_list, {"url": pypiserver.simple_url, "project": "Foo.Bar"})
    assert not result.failed, result
    assert result["url"] == pypiserver.simple_url + "Foo.Bar/"
    assert result["final_url"] == pypiserver.simple_url + "foo-bar/"
    assert result["project"] == "foo-bar"
    (f,) = result["files"]
    assert f["hash_digest"] == sha
    assert f["url"] == pypiserver.url + "packages/foo_bar-1.0-py3-none-any.whl"
    assert result["versions"] == ["1.0"]


def test_project_not_found_is_one_clear_message(pypiserver, run_module):
    put(pypiserver, "present-1.0.tar.gz", b"x")
    result = run_module(index_list, {"url": pypiserver.simple_url, "project": "Absent_Thing"})
    msg = assert_clean_failure(result)
    assert "'Absent_Thing' is not on the index" in msg
    assert "404" in msg
    assert result["status"] == 404


def test_check_mode_reads_the_same_and_changes_nothing(pypiserver, run_module):
    put(pypiserver, "ro-1.0.tar.gz", b"x")
    normal = run_module(index_list, {"url": pypiserver.simple_url, "project": "ro"})
    checked = run_module(index_list, {"url": pypiserver.simple_url, "project": "ro"}, check_mode=True)
    assert not checked.failed, checked
    assert checked["changed"] is False
    assert checked["files"] == normal["files"]
    assert sorted(os.listdir(pypiserver.package_dir)) == ["ro-1.0.tar.gz"]


def test_verify_hashes_needs_project(pypiserver, run_module):
    result = run_module(index_list, {"url": pypiserver.simple_url, "verify_hashes": True})
    msg = assert_clean_failure(result)
    assert "verify_hashes needs project" in msg


def test_validate_certs_false_warns(pypiserver, run_module):
    result = run_module(index_list, {"url": pypiserver.simple_url, "validate_certs": False})
    assert not result.failed, result
    assert "validate_certs is false" in warning_texts(result)
    ansible_warnings._global_warnings.clear()
    assert "validate_certs is false" not in warning_texts(run_module(index_list, {"url": pypiserver.simple_url}))


# --------------------------------------------------------------------------- authentication


@pytest.fixture
def reader_server(pypiserver_factory):
    server = pypiserver_factory(auth_actions=("list", "download"), username="reader", password="r3ad-Pa55")
    put(server, "secret_pkg-1.0-py3-none-any.whl", b"secret bytes")
    return server


def test_auth_without_credentials_says_401_and_credentials(reader_server, run_module):
    result = run_module(index_list, {"url": reader_server.simple_url})
    msg = assert_clean_failure(result)
    assert "401" in msg and "credentials" in msg
    assert result["status"] == 401


def test_auth_with_the_right_credentials_lists_and_downloads(reader_server, run_module):
    args = {"url": reader_server.simple_url, "username": "reader", "password": "r3ad-Pa55"}
    listing = run_module(index_list, args)
    assert not listing.failed, listing
    assert listing["projects"] == ["secret-pkg"]
    files = run_module(index_list, {**args, "project": "secret-pkg", "verify_hashes": True})
    assert not files.failed, files
    assert [d["match"] for d in files["downloads"]] == [True]
    assert files["downloads"][0]["sha256"] == hashlib.sha256(b"secret bytes").hexdigest()


def test_auth_with_wrong_credentials_says_403(reader_server, run_module):
    result = run_module(index_list, {"url": reader_server.simple_url, "username": "reader", "password": "wrong-pw"})
    msg = assert_clean_failure(result)
    assert "403" in msg and "refused" in msg
    assert "wrong-pw" not in json.dumps(result)


# --------------------------------------------------------------------------- transport failures


def test_connection_refused_is_one_clear_message(run_module):
    url = f"http://127.0.0.1:{free_port()}/simple/"
    result = run_module(index_list, {"url": url, "connect_timeout": 3})
    msg = assert_clean_failure(result)
    assert "Connection refused" in msg and url in msg


def test_unresolvable_host_is_a_dns_message(run_module):
    result = run_module(index_list, {"url": "http://no-such-host.invalid/simple/", "connect_timeout": 5})
    msg = assert_clean_failure(result)
    assert "'no-such-host.invalid' does not resolve (DNS)" in msg


# --------------------------------------------------------------------------- crafted documents on a stdlib server


class _Crafted(t.NamedTuple):
    url: str
    routes: dict[str, tuple[int, str, bytes]]
    accepts: list[str]


@pytest.fixture
def crafted_index():
    routes: dict[str, tuple[int, str, bytes]] = {}
    accepts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            accepts.append(self.headers.get("Accept", ""))
            status, ctype, body = routes.get(self.path, (404, "text/plain", b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: t.Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield _Crafted(f"http://127.0.0.1:{httpd.server_address[1]}/", routes, accepts)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def _json(doc: t.Any) -> tuple[int, str, bytes]:
    return 200, JSON_CT, json.dumps(doc).encode()


def test_pep691_json_is_negotiated_and_parsed(crafted_index, run_module):
    good, bad = b"good wheel", b"tampered sdist"
    crafted_index.routes.update(
        {
            "/simple/": _json({"meta": {"api-version": "1.1"}, "projects": [{"name": "Json_Proj"}, {"name": "b.c"}]}),
            "/simple/json-proj/": _json(
                {
                    "meta": {"api-version": "1.0"},
                    "name": "json-proj",
                    "files": [
                        {
                            "filename": "json_proj-1.0-py3-none-any.whl",
                            "url": "../../files/json_proj-1.0-py3-none-any.whl",
                            "hashes": {"sha256": hashlib.sha256(good).hexdigest()},
                            "requires-python": ">=3.8",
                        },
                        {
                            "filename": "json-proj-0.9.tar.gz",
                            "url": "/files/json-proj-0.9.tar.gz",
                            "hashes": {"sha256": hashlib.sha256(b"original").hexdigest()},
                            "yanked": "broken",
                        },
                    ],
                }
            ),
            "/files/json_proj-1.0-py3-none-any.whl": (200, "application/octet-stream", good),
            "/files/json-proj-0.9.tar.gz": (200, "application/octet-stream", bad),
        }
    )
    root = run_module(index_list, {"url": crafted_index.url + "simple/"})
    assert not root.failed, root
    assert root["format"] == "json"
    assert root["projects"] == ["b-c", "json-proj"]
    assert crafted_index.accepts[0] == si.ACCEPT

    listing = run_module(index_list, {"url": crafted_index.url + "simple/", "project": "json-proj"})
    assert not listing.failed, listing
    files = {f["filename"]: f for f in listing["files"]}
    whl = files["json_proj-1.0-py3-none-any.whl"]
    assert whl["url"] == crafted_index.url + "files/json_proj-1.0-py3-none-any.whl"
    assert whl["requires_python"] == ">=3.8" and whl["yanked"] is False
    assert files["json-proj-0.9.tar.gz"]["yanked"] is True
    assert files["json-proj-0.9.tar.gz"]["yanked_reason"] == "broken"
    assert listing["versions"] == ["0.9", "1.0"]

    verified = run_module(
        index_list, {"url": crafted_index.url + "simple/", "project": "json-proj", "verify_hashes": True}
    )
    msg = assert_clean_failure(verified)
    assert "json-proj-0.9.tar.gz" in msg and "do not match" in msg
    assert verified["mismatches"] == ["json-proj-0.9.tar.gz"]
    matches = {d["filename"]: d["match"] for d in verified["downloads"]}
    assert matches == {"json_proj-1.0-py3-none-any.whl": True, "json-proj-0.9.tar.gz": False}


def test_verify_hashes_warns_about_a_file_without_a_hash(crafted_index, run_module):
    crafted_index.routes.update(
        {
            "/simple/nohash/": (200, "text/html", b'<a href="/f/nohash-1.0.tar.gz">nohash-1.0.tar.gz</a>'),
            "/f/nohash-1.0.tar.gz": (200, "application/gzip", b"abc"),
        }
    )
    result = run_module(index_list, {"url": crafted_index.url + "simple/", "project": "nohash", "verify_hashes": True})
    assert not result.failed, result
    (d,) = result["downloads"]
    assert d["match"] is None and d["sha256"] == hashlib.sha256(b"abc").hexdigest() and d["size"] == 3
    assert "No hash in the index for nohash-1.0.tar.gz" in warning_texts(result)


def test_a_200_page_that_is_not_an_index(crafted_index, run_module):
    crafted_index.routes["/simple/"] = (200, "text/html", b"<html><body>Welcome to nginx!</body></html>")
    lenient = run_module(index_list, {"url": crafted_index.url + "simple/"})
    assert not lenient.failed, lenient
    assert lenient["links_found"] == 0 and lenient["content_type"] == "text/html"
    strict = run_module(index_list, {"url": crafted_index.url + "simple/", "require_links": True})
    msg = assert_clean_failure(strict)
    assert "no links" in msg and "text/html" in msg


def test_json_that_is_not_pep691(crafted_index, run_module):
    crafted_index.routes["/simple/"] = (200, "application/json", b'{"status": "ok"}')
    msg = assert_clean_failure(run_module(index_list, {"url": crafted_index.url + "simple/"}))
    assert "not a PEP 691 simple index" in msg


def test_server_error_names_the_status(crafted_index, run_module):
    crafted_index.routes["/simple/"] = (502, "text/html", b"bad gateway")
    result = run_module(index_list, {"url": crafted_index.url + "simple/"})
    msg = assert_clean_failure(result)
    assert "HTTP 502" in msg and "read its log" in msg


# --------------------------------------------------------------------------- pure parsers


def test_html_relative_hrefs_resolve_against_the_page_and_split_the_hash():
    page = """<html><body>
      <a href="../../packages/foo-1.0.tar.gz#sha256=ABCDEF01">foo-1.0.tar.gz</a>
      <a href="foo-1.1-py3-none-any.whl">foo-1.1-py3-none-any.whl</a>
      <a href="https://cdn.example/x/foo-2.0.zip#md5=0123">foo-2.0.zip</a>
      <a href="foo-3.0.tar.gz#egg=beef">foo-3.0.tar.gz</a>
      <a name="no-href">anchor without href</a>
    </body></html>"""
    files, found = si.parse_html_files(page, "http://idx.example/simple/foo/")
    assert found == 4
    by_name = {f["filename"]: f for f in files}
    sdist = by_name["foo-1.0.tar.gz"]
    assert sdist["url"] == "http://idx.example/packages/foo-1.0.tar.gz"
    assert (sdist["hash_algo"], sdist["hash_digest"]) == ("sha256", "abcdef01")
    wheel = by_name["foo-1.1-py3-none-any.whl"]
    assert wheel["url"] == "http://idx.example/simple/foo/foo-1.1-py3-none-any.whl"
    assert wheel["hash_algo"] is None and wheel["hash_digest"] is None
    assert by_name["foo-2.0.zip"]["url"] == "https://cdn.example/x/foo-2.0.zip"
    assert by_name["foo-2.0.zip"]["hash_algo"] == "md5"
    assert by_name["foo-3.0.tar.gz"]["hash_algo"] is None  # not a hash fragment
    assert by_name["foo-3.0.tar.gz"]["url"] == "http://idx.example/simple/foo/foo-3.0.tar.gz"


def test_html_base_href_wins_over_the_page_url():
    page = """<html><head><base href="../../mirror/files/"></head><body>
      <a href="foo-1.0.tar.gz#sha256=aa">foo-1.0.tar.gz</a></body></html>"""
    (link,) = si.parse_html_links(page, "http://idx.example/simple/foo/")
    assert link["url"] == "http://idx.example/mirror/files/foo-1.0.tar.gz"
    absolute = '<base href="https://dl.example/a/"><a href="b/foo-1.0.tar.gz">x</a>'
    (link,) = si.parse_html_links(absolute, "http://idx.example/simple/foo/")
    assert link["url"] == "https://dl.example/a/b/foo-1.0.tar.gz"


def test_html_data_attributes_are_unescaped_and_kept():
    page = """
      <a href="/p/foo-1.0-py3-none-any.whl" data-requires-python="&gt;=3.8,&lt;4"
         data-core-metadata="sha256=BEEF">foo-1.0-py3-none-any.whl</a>
      <a href="/p/foo-0.9.tar.gz" data-yanked="bad build" data-dist-info-metadata="true">foo-0.9.tar.gz</a>
      <a href="/p/foo-0.8.tar.gz" data-yanked>foo-0.8.tar.gz</a>
      <a href="/p/foo-weird.egg">foo-weird.egg</a>
    """
    files, _ = si.parse_html_files(page, "http://idx.example/simple/foo/")
    by_name = {f["filename"]: f for f in files}
    whl = by_name["foo-1.0-py3-none-any.whl"]
    assert whl["requires_python"] == ">=3.8,<4"
    assert whl["core_metadata"] is True and whl["core_metadata_hashes"] == {"sha256": "beef"}
    assert whl["yanked"] is False and whl["yanked_reason"] is None
    old = by_name["foo-0.9.tar.gz"]
    assert old["yanked"] is True and old["yanked_reason"] == "bad build"
    assert old["core_metadata"] is True and old["requires_python"] is None
    assert by_name["foo-0.8.tar.gz"]["yanked"] is True and by_name["foo-0.8.tar.gz"]["yanked_reason"] is None
    other = by_name["foo-weird.egg"]
    assert other["kind"] == "other" and other["version"] is None
    assert si.sort_versions(f["version"] for f in files) == ["0.8", "0.9", "1.0"]


def test_html_projects_page_normalizes_names():
    page = '<a href="Foo.Bar/">Foo.Bar</a><a href="zope_interface/">zope_interface</a><a href="foo-bar/">foo-bar</a>'
    assert si.parse_html_projects(page, "http://idx.example/simple/") == (["foo-bar", "zope-interface"], 3)


def test_pep691_documents_parse_to_the_same_records():
    doc = {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [
            {
                "filename": "demo-2.0-py3-none-any.whl",
                "url": "https://files.example/demo-2.0-py3-none-any.whl",
                "hashes": {"sha256": "AB", "md5": "cd"},
                "requires-python": ">=3.9",
                "core-metadata": {"sha256": "ef"},
                "yanked": False,
            },
            {"filename": "demo-1.0.tar.gz", "url": "../../f/demo-1.0.tar.gz", "hashes": {}, "yanked": True},
        ],
    }
    files, found = si.parse_json_files(doc, "https://idx.example/simple/demo/")
    assert found == 2
    first, second = files
    assert (first["hash_algo"], first["hash_digest"]) == ("sha256", "ab")
    assert first["hashes"] == {"sha256": "ab", "md5": "cd"}
    assert first["requires_python"] == ">=3.9" and first["core_metadata_hashes"] == {"sha256": "ef"}
    assert second["url"] == "https://idx.example/f/demo-1.0.tar.gz"
    assert second["hash_algo"] is None and second["yanked"] is True and second["yanked_reason"] is None
    assert si.parse_json_projects(
        {"meta": {"api-version": "1.0"}, "projects": [{"name": "Demo_X"}]}, "https://idx.example/simple/"
    ) == (["demo-x"], 1)
    with pytest.raises(si.IndexReadError, match="not a PEP 691"):
        si.parse_json_projects({"projects": []}, "https://idx.example/simple/")
    with pytest.raises(si.IndexReadError, match="API version 2.0"):
        si.parse_json_files({"meta": {"api-version": "2.0"}, "files": []}, "https://idx.example/simple/demo/")


def test_compare_download_detects_a_mismatch_from_a_crafted_fragment():
    data = b"the bytes that were actually served"
    real = hashlib.sha256(data).hexdigest()
    page = f'<a href="/p/x-1.0.tar.gz#sha256={"0" * 64}">x</a><a href="/p/x-1.1.tar.gz#sha256={real.upper()}">y</a>'
    (wrong, right), _ = si.parse_html_files(page, "http://idx.example/simple/x/")
    bad = si.compare_download(wrong, {"sha256": real}, len(data))
    assert bad["match"] is False and bad["expected"] == "0" * 64 and bad["actual"] == real
    good = si.compare_download(right, {"sha256": real}, len(data))
    assert good["match"] is True and good["size"] == len(data)
    unhashed = si.compare_download({"filename": "z", "url": "u", "hash_algo": None}, {"sha256": real}, 1)
    assert unhashed["match"] is None


def test_normalize_and_project_url():
    assert si.normalize("Foo.Bar__Baz") == "foo-bar-baz"
    assert si.project_url("http://h:1/simple", "Foo.Bar") == "http://h:1/simple/Foo.Bar/"
    assert si.split_hash("http://h/p/a.whl#SHA256=Ab") == ("http://h/p/a.whl", "sha256", "ab")


def test_expected_sha256_is_checked_against_the_bytes_even_with_md5_links(pypiserver_factory, run_module, tmp_path):
    """A server hashing links with md5 (pypiserver's default) must not let altered bytes pass as the upload."""
    server = pypiserver_factory(hash_algo="md5")
    data = b"original wheel bytes"
    name = "md5probe-1.0.0-py3-none-any.whl"
    with open(f"{server.package_dir}/{name}", "wb") as handle:
        handle.write(b"altered after upload")
    expect = [{"filename": name, "sha256": hashlib.sha256(data).hexdigest()}]
    res = run_module(
        index_list, {"url": server.simple_url, "project": "md5probe", "verify_hashes": True, "expect": expect}
    )
    assert res.failed
    assert "sha256 other than the uploaded" in res["msg"] and name in res["msg"]
    ok = run_module(
        index_list,
        {
            "url": server.simple_url,
            "project": "md5probe",
            "verify_hashes": True,
            "expect": [{"filename": name, "sha256": hashlib.sha256(b"altered after upload").hexdigest()}],
        },
    )
    assert not ok.failed, ok
