"""index_conformance and module_utils.conformance.

What pypiserver does is measured on real pypiserver processes (fixtures in tests/conftest.py; packages are put on
them by writing into the package directory). What pypiserver cannot produce -- JSON, metadata files, yanked files,
a wrong hash, an unknown hash algorithm, a bad content type -- is served by ``CraftedIndex``: a real stdlib HTTP
server on 127.0.0.1 returning fixed documents, the defects whose effect on pip 26.3 and uv 0.13.9 was measured
(docs in the module). The wheel everywhere is a real probe built by package_build's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import typing as t
import zipfile

import pytest
from ansible.module_utils.common import warnings as ansible_warnings

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import conformance as cf
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe as pb
from ansible_collections.pypi_ops.pypiserver.plugins.modules import index_conformance
from tests.badservers import _Handler, _Managed

NAME = "pypi-ops-conf-probe"
JSON_CT = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(autouse=True)
def _fresh_module_warnings():
    ansible_warnings._global_warnings.clear()
    yield
    ansible_warnings._global_warnings.clear()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> dict[str, t.Any]:
    """A real probe wheel (Requires-Python >=3.8): record plus its bytes and METADATA."""
    dest = str(tmp_path_factory.mktemp("conf-dists"))
    record = pb.build(None, dest, probe=pb.probe_spec(NAME, "1.0.0"), formats=["wheel"])["wheel"]
    data = open(record["path"], "rb").read()
    with zipfile.ZipFile(record["path"]) as archive:
        (meta_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        meta = archive.read(meta_name)
    return dict(record, data=data, metadata=meta)


def statuses(result: dict[str, t.Any]) -> dict[str, str]:
    return {f["check"]: f["status"] for f in result["findings"]}


def detail(result: dict[str, t.Any], check: str) -> str:
    return next(f["detail"] for f in result["findings"] if f["check"] == check)


def assert_clean_failure(result: dict[str, t.Any]) -> str:
    assert result.failed, result
    msg = result["msg"]
    assert "Traceback" not in msg and "\n" not in msg
    return msg


# --------------------------------------------------------------------------- a real pypiserver (measured matrix)

PYPISERVER_STATUSES = {
    "index_content_type": "pass",
    "names_normalized": "pass",
    "non_normalized_request": "pass",
    "hash_fragments": "pass",
    "hash_matches": "pass",
    "requires_python_escaped": "skip",
    "requires_python_advertised": "warn",
    "pep691_negotiation": "pass",
    "core_metadata": "skip",
    "core_metadata_attribute": "skip",
    "yanked": "skip",
    # PEP 700 is JSON only: not applicable to pypiserver 2.4.2
    "pep700_api_version": "skip",
    "pep700_versions": "skip",
    "pep700_size": "skip",
    "pep700_upload_time": "skip",
}
PYPISERVER_SUPPORTS = {
    "pep503_html": True,
    "pep691_json": False,
    "json_only_accept": "200 text/html",
    "pep658_metadata": False,
    "pep714_core_metadata": False,
    "metadata_file_served": False,
    "pep592_yanked": None,
    "requires_python": False,
    "hash_algos": ["sha256"],
    "non_normalized_request": "redirect 301",
    "range_requests": True,
    "pep629_repository_version": None,
    "pep700_upload_time": False,
}


def test_pypiserver_support_matrix(pypiserver, wheel, run_module):
    shutil.copy(wheel["path"], pypiserver.package_dir)
    result = run_module(index_conformance, {"url": pypiserver.simple_url, "project": "PYPI.OPS_conf-probe"})
    assert not result.failed, result
    assert result["changed"] is False
    assert result["project"] == NAME and result["checked_file"] == wheel["filename"]
    assert statuses(result) == PYPISERVER_STATUSES
    assert result["supports"] == PYPISERVER_SUPPORTS
    assert "redirects (301) to the normalized /simple/pypi-ops-conf-probe/" in detail(result, "non_normalized_request")
    assert "no JSON: HTML" in detail(result, "pep691_negotiation")
    assert "'>=3.8'" in detail(result, "requires_python_advertised")
    assert result["summary"] == {"counts": {"pass": 6, "warn": 1, "fail": 0, "skip": 8}, "failing": []}
    assert "requires_python_advertised" in json.dumps(result.get("warnings", []))


def test_strict_fails_on_the_warning(pypiserver, wheel, run_module):
    shutil.copy(wheel["path"], pypiserver.package_dir)
    result = run_module(index_conformance, {"url": pypiserver.simple_url, "project": NAME, "strict": True})
    msg = assert_clean_failure(result)
    assert "requires_python_advertised (PEP 503)" in msg and "strict" in msg
    assert result["summary"]["failing"] == ["requires_python_advertised"]


def test_check_mode_reads_the_same(pypiserver, wheel, run_module):
    shutil.copy(wheel["path"], pypiserver.package_dir)
    result = run_module(index_conformance, {"url": pypiserver.simple_url, "project": NAME}, check_mode=True)
    assert not result.failed and result["changed"] is False
    assert statuses(result) == PYPISERVER_STATUSES


def test_pypiserver_without_hashes_warns(pypiserver_factory, wheel, run_module):
    server = pypiserver_factory(hash_algo="off")
    shutil.copy(wheel["path"], server.package_dir)
    result = run_module(index_conformance, {"url": server.simple_url, "project": NAME})
    assert not result.failed, result  # pip and uv install files without hashes (measured)
    got = statuses(result)
    assert got["hash_fragments"] == "warn" and got["hash_matches"] == "skip"
    assert "carry no hash" in detail(result, "hash_fragments")
    assert result["supports"]["hash_algos"] == []


def test_pypiserver_md5_hashes_pass(pypiserver_factory, wheel, run_module):
    server = pypiserver_factory(hash_algo="md5")
    shutil.copy(wheel["path"], server.package_dir)
    result = run_module(index_conformance, {"url": server.simple_url, "project": NAME})
    assert not result.failed, result
    assert statuses(result)["hash_fragments"] == "pass" and statuses(result)["hash_matches"] == "pass"
    assert result["supports"]["hash_algos"] == ["md5"]


def test_pypiserver_with_list_auth(pypiserver_factory, wheel, run_module):
    server = pypiserver_factory(auth_actions=("list", "download", "update"), username="ci", password="pw-123")
    shutil.copy(wheel["path"], server.package_dir)
    msg = assert_clean_failure(run_module(index_conformance, {"url": server.simple_url, "project": NAME}))
    assert "HTTP 401" in msg and "pypi_username" in msg
    result = run_module(
        index_conformance, {"url": server.simple_url, "project": NAME, "username": "ci", "password": "pw-123"}
    )
    assert not result.failed, result
    assert statuses(result) == PYPISERVER_STATUSES


def test_project_not_on_the_index(pypiserver, run_module):
    msg = assert_clean_failure(run_module(index_conformance, {"url": pypiserver.simple_url, "project": "not-there"}))
    assert "'not-there' is not on the index" in msg and "upload it first" in msg


def test_filename_not_listed(pypiserver, wheel, run_module):
    shutil.copy(wheel["path"], pypiserver.package_dir)
    msg = assert_clean_failure(
        run_module(index_conformance, {"url": pypiserver.simple_url, "project": NAME, "filename": "other-1.0.whl"})
    )
    assert "other-1.0.whl is not listed" in msg


# --------------------------------------------------------------------------- crafted indexes (what pypiserver lacks)


class CraftedIndex(_Managed):
    """A real HTTP server answering GET/HEAD from ``routes``: path -> (status, content type, body, extra headers)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str, bytes, dict[str, str]]] = {}

        class Handler(_Handler):
            def do_GET(self) -> None:
                status, ctype, body, headers = self.owner.routes.get(self.path, (404, "text/plain", b"not found", {}))
                self._answer(status, body, ctype, headers)

            do_HEAD = do_GET

        super().__init__(Handler)


@pytest.fixture
def crafted(wheel):
    """A crafted index that serves the probe wheel; a test sets the project page (and whatever else it needs)."""
    with CraftedIndex() as server:
        fn = wheel["filename"]
        server.routes.update(
            {
                "/simple/": (200, "text/html", f'<a href="{NAME}/">{NAME}</a>'.encode(), {}),
                f"/packages/{fn}": (200, "application/octet-stream", wheel["data"], {"Accept-Ranges": "bytes"}),
                f"/simple/{cf.variant_name(NAME)}/": (301, "text/html", b"", {"Location": f"/simple/{NAME}/"}),
            }
        )
        yield server


def page(crafted, wheel, attrs: str = "", fragment: str | None = None, ctype: str = "text/html") -> None:
    frag = f"sha256={wheel['sha256']}" if fragment is None else fragment
    href = f"/packages/{wheel['filename']}" + (f"#{frag}" if frag else "")
    body = f'<!DOCTYPE html><html><body><a href="{href}" {attrs}>{wheel["filename"]}</a><br></body></html>'
    crafted.routes[f"/simple/{NAME}/"] = (200, ctype, body.encode(), {})


def metadata_file(crafted, wheel, data: bytes) -> str:
    crafted.routes[f"/packages/{wheel['filename']}.metadata"] = (200, "application/octet-stream", data, {})
    return hashlib.sha256(data).hexdigest()


def check(run_module, crafted, **extra) -> dict[str, t.Any]:
    return run_module(index_conformance, dict({"url": crafted.url + "simple/", "project": NAME}, **extra))


def test_full_featured_index_passes_everything(crafted, wheel, run_module):
    sha = metadata_file(crafted, wheel, wheel["metadata"])
    page(crafted, wheel, f'data-requires-python="&gt;=3.8" data-core-metadata="sha256={sha}" '
         f'data-dist-info-metadata="sha256={sha}"')  # fmt: skip
    result = check(run_module, crafted)
    assert not result.failed, result
    got = statuses(result)
    pep700 = {"pep700_api_version", "pep700_versions", "pep700_size", "pep700_upload_time"}  # JSON only: skipped
    assert {k for k, v in got.items() if v != "pass"} == {"yanked"} | pep700, got
    assert result["supports"]["pep658_metadata"] and result["supports"]["pep714_core_metadata"]
    assert result["supports"]["requires_python"] and result["supports"]["metadata_file_served"]
    assert "warnings" not in result or not result["warnings"]


@pytest.mark.parametrize(
    ("fragment", "check_name", "words"),
    [
        ("sha256=" + "0" * 64, "hash_matches", "pip and uv refuse it"),
        ("sha999=abcd", "hash_fragments", "uv does not know"),
    ],
)
def test_hash_defects_that_break_a_client_fail(crafted, wheel, run_module, fragment, check_name, words):
    page(crafted, wheel, fragment=fragment)
    result = check(run_module, crafted)
    msg = assert_clean_failure(result)
    assert statuses(result)[check_name] == "fail"
    assert check_name in msg and words in msg


def test_egg_fragment_is_no_hash_not_an_unknown_algorithm(crafted, wheel, run_module):
    page(crafted, wheel, fragment=f"egg={NAME}")
    result = check(run_module, crafted)
    assert not result.failed, result
    assert statuses(result)["hash_fragments"] == "warn"


@pytest.mark.parametrize(
    ("status", "ctype"), [(200, "text/plain"), (200, "application/octet-stream"), (406, "text/plain")]
)
def test_page_clients_cannot_read_fails(crafted, wheel, run_module, status, ctype):
    page(crafted, wheel)
    crafted.routes[f"/simple/{NAME}/"] = (status, ctype, crafted.routes[f"/simple/{NAME}/"][2], {})
    result = check(run_module, crafted)
    msg = assert_clean_failure(result)
    assert statuses(result)["index_content_type"] == "fail" and "index_content_type" in msg


def test_vnd_html_content_type_passes(crafted, wheel, run_module):
    page(crafted, wheel, ctype="application/vnd.pypi.simple.v1+html")
    result = check(run_module, crafted)
    assert not result.failed, result
    assert statuses(result)["index_content_type"] == "pass"


@pytest.mark.parametrize(
    ("attr", "status", "words"),
    [
        ('data-requires-python=">=3.8"', "warn", "not HTML-escaped"),
        ('data-requires-python="bogus!!"', "fail", "not a valid version specifier"),
    ],
)
def test_requires_python_escaping_and_validity(crafted, wheel, run_module, attr, status, words):
    page(crafted, wheel, attr)
    result = check(run_module, crafted)
    assert statuses(result)["requires_python_escaped"] == status, result["findings"]
    assert words in detail(result, "requires_python_escaped")
    assert result.failed is (status == "fail")


def test_requires_python_that_differs_from_the_wheel_fails(crafted, wheel, run_module):
    page(crafted, wheel, 'data-requires-python="&lt;3"')  # the wheel says >=3.8; pip would skip it (measured)
    result = check(run_module, crafted)
    msg = assert_clean_failure(result)
    assert statuses(result)["requires_python_advertised"] == "fail" and "'<3'" in msg


def test_advertised_metadata_that_is_missing_fails(crafted, wheel, run_module):
    page(crafted, wheel, 'data-core-metadata="true"')
    result = check(run_module, crafted)
    msg = assert_clean_failure(result)
    assert statuses(result)["core_metadata"] == "fail" and "HTTP 404" in msg


def test_advertised_metadata_with_another_hash_fails(crafted, wheel, run_module):
    metadata_file(crafted, wheel, wheel["metadata"])
    page(crafted, wheel, f'data-core-metadata="sha256={"0" * 64}"')
    result = check(run_module, crafted)
    assert_clean_failure(result)
    assert "the index advertises " + "0" * 64 in detail(result, "core_metadata")


def test_metadata_with_another_version_fails(crafted, wheel, run_module):
    other = wheel["metadata"].replace(b"Version: 1.0.0", b"Version: 9.9.9")
    assert other != wheel["metadata"]
    sha = metadata_file(crafted, wheel, other)
    page(crafted, wheel, f'data-core-metadata="sha256={sha}"')
    result = check(run_module, crafted)
    assert_clean_failure(result)
    assert "differs from the wheel's METADATA in Version" in detail(result, "core_metadata")


def test_metadata_differing_only_in_summary_warns(crafted, wheel, run_module):
    other = wheel["metadata"].replace(b"Summary:", b"Summary: changed")
    assert other != wheel["metadata"]
    sha = metadata_file(crafted, wheel, other)
    page(crafted, wheel, f'data-core-metadata="sha256={sha}"')
    result = check(run_module, crafted)
    assert not result.failed, result
    assert statuses(result)["core_metadata"] == "warn"


def test_metadata_under_the_old_attribute_name_warns(crafted, wheel, run_module):
    sha = metadata_file(crafted, wheel, wheel["metadata"])
    page(crafted, wheel, f'data-dist-info-metadata="sha256={sha}"')
    result = check(run_module, crafted)
    assert not result.failed, result
    got = statuses(result)
    assert got["core_metadata"] == "pass" and got["core_metadata_attribute"] == "warn"
    assert result["supports"]["pep658_metadata"] and not result["supports"]["pep714_core_metadata"]


def test_yanked_files_are_reported(crafted, wheel, run_module):
    page(crafted, wheel, 'data-yanked="broken build"')
    result = check(run_module, crafted)
    assert not result.failed, result
    assert statuses(result)["yanked"] == "pass"
    assert f"{wheel['filename']} (broken build)" in detail(result, "yanked")
    assert result["supports"]["pep592_yanked"] is True


def test_non_normalized_request_answered_404_warns(crafted, wheel, run_module):
    page(crafted, wheel)
    del crafted.routes[f"/simple/{cf.variant_name(NAME)}/"]
    result = check(run_module, crafted)
    assert not result.failed, result
    assert statuses(result)["non_normalized_request"] == "warn"
    assert result["supports"]["non_normalized_request"] == "answer 404"


def test_root_listing_with_a_project_twice_warns(crafted, wheel, run_module):
    page(crafted, wheel)
    crafted.routes["/simple/"] = (200, "text/html", b'<a href="Foo_Bar/">Foo_Bar</a><a href="foo-bar/">foo-bar</a>', {})
    result = check(run_module, crafted)
    assert not result.failed, result
    assert statuses(result)["names_normalized"] == "warn"
    assert "more than once" in detail(result, "names_normalized")


def _json_page(crafted, wheel, **entry: t.Any) -> dict[str, t.Any]:
    doc = {
        "meta": {"api-version": "1.1"},  # with PEP 700's fields, which 1.1 requires
        "name": NAME,
        "versions": ["1.0.0"],
        "files": [dict({"filename": wheel["filename"], "url": f"/packages/{wheel['filename']}",
                        "hashes": {"sha256": wheel["sha256"]}, "requires-python": ">=3.8",
                        "size": wheel["size"], "upload-time": cf.utc_text(time.time())}, **entry)],
    }  # fmt: skip
    crafted.routes[f"/simple/{NAME}/"] = (200, JSON_CT, json.dumps(doc).encode(), {})
    return doc


def test_pep691_json_is_reported(crafted, wheel, run_module):
    sha = metadata_file(crafted, wheel, wheel["metadata"])
    _json_page(crafted, wheel, **{"core-metadata": {"sha256": sha}})
    result = check(run_module, crafted)
    assert not result.failed, result
    assert "JSON offered under content negotiation (api-version 1.1)" in detail(result, "pep691_negotiation")
    assert result["supports"]["pep691_json"] is True and result["supports"]["pep503_html"] is False
    assert statuses(result)["core_metadata"] == "pass" and statuses(result)["core_metadata_attribute"] == "pass"


def test_json_yanked_of_the_wrong_type_fails(crafted, wheel, run_module):
    _json_page(crafted, wheel, yanked=5)
    result = check(run_module, crafted)
    msg = assert_clean_failure(result)
    assert "yanked" in msg and "uv refuses the whole page" in msg


def test_json_api_version_2_warns(crafted, wheel, run_module):
    doc = _json_page(crafted, wheel)
    doc["meta"]["api-version"] = "2.0"
    crafted.routes[f"/simple/{NAME}/"] = (200, JSON_CT, json.dumps(doc).encode(), {})
    result = check(run_module, crafted)
    assert not result.failed, result
    assert statuses(result)["pep691_negotiation"] == "warn"


def test_json_content_type_with_a_body_that_is_not_json_fails(crafted, wheel, run_module):
    crafted.routes[f"/simple/{NAME}/"] = (200, JSON_CT, b"<html>oops</html>", {})
    result = check(run_module, crafted)
    msg = assert_clean_failure(result)
    assert "not valid JSON" in msg


# --------------------------------------------------------------------------- pure parts


def test_web_links_of_the_pypiserver_root_page(pypiserver):
    import requests

    resp = requests.get(pypiserver.url, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    links = cf.web_links(resp.text, resp.url)
    assert links == {"/simple/": pypiserver.url + "simple/", "/packages/": pypiserver.url + "packages/"}
    for url in links.values():
        assert requests.get(url, timeout=10).status_code == 200
    assert cf.web_links("<html><body>It works!</body></html>", pypiserver.url) == {"/simple/": None, "/packages/": None}


def test_variant_name_is_never_the_normalized_name():
    for name in ("pypi-ops-probe", "uvprobe", "Foo.Bar", "a1"):
        assert cf.variant_name(name) != cf.si.normalize(name)


def test_pick_wheel_takes_the_newest_version():
    files = [
        {"filename": "p-1.10.0-py3-none-any.whl", "kind": "wheel", "version": "1.10.0"},
        {"filename": "p-1.9.0-py3-none-any.whl", "kind": "wheel", "version": "1.9.0"},
        {"filename": "p-2.0.tar.gz", "kind": "sdist", "version": "2.0"},
    ]
    assert cf.pick_wheel(files)["filename"] == "p-1.10.0-py3-none-any.whl"
    assert cf.pick_wheel(files, "p-1.9.0-py3-none-any.whl")["filename"] == "p-1.9.0-py3-none-any.whl"
    assert cf.pick_wheel([files[2]]) is None


def test_metadata_fields_compare_semantically():
    a = cf.metadata_fields(b"Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 1.0\nRequires-Python: >=3.8,<4\n\nbody")
    b = cf.metadata_fields(b"Metadata-Version: 2.1\nName: foo-bar\nVersion: 1.0.0\nRequires-Python: <4,>=3.8\n")
    for field in ("Name", "Version", "Requires-Python"):
        assert cf._same_field(field, a[field], b[field]), field
    assert not cf._same_field("Version", ["1.0"], ["1.1"])


def test_failure_message_is_one_sentence():
    findings = [cf.finding("hash_matches", "503", "fail", "x.whl differs."), cf.finding("yanked", "592", "skip", "-")]
    msg = cf.failure_message(findings, "p", "http://u:pw@h/simple/")
    assert msg and "\n" not in msg and "pw" not in msg and "hash_matches (PEP 503): x.whl differs;" in msg
    assert cf.failure_message([cf.finding("a", "503", "warn", "w")], "p", "http://h/") is None
    assert os.linesep not in cf.failure_message([cf.finding("a", "503", "warn", "w")], "p", "http://h/", strict=True)


def test_simple_index_public_reading_api_that_conformance_uses():
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

    page = '<base href="/x/"><a href="a-1.0.whl#sha256=AB" data-yanked="">a</a><a href="../b-2.0.tar.gz">b</a>'
    raw, links = si.anchors(page), si.parse_html_links(page, "http://h/simple/p/")
    assert [a["href"] for a in raw] == ["a-1.0.whl#sha256=AB", "../b-2.0.tar.gz"]
    assert [link["url"] for link in links] == ["http://h/x/a-1.0.whl", "http://h/b-2.0.tar.gz"]  # same order
    assert "data-yanked" in raw[0]["attrs"] and links[0]["yanked"]
    assert si.media_type('Application/JSON; charset="latin-1"') == "application/json"
    assert si.decode("é".encode("latin-1"), "text/html; charset=latin-1") == "é"
    assert si.read_page(b'{"meta": {"api-version": "1.1"}}', JSON_CT, "http://h/")[0] == "json"
    assert si.api_version(json.loads(b'{"meta": {"api-version": "1.1"}}')) == "1.1" and si.api_version([]) is None
    assert si.read_page(b"<a href=x>x</a>", "text/html", "http://h/") == ("html", "<a href=x>x</a>")
    for hint, tail in ((si.NOT_JSON_HINT, "; check the server or the proxy in front of it."), ("", ".")):
        with pytest.raises(si.IndexReadError) as err:
            si.read_page(b"<html>", "application/vnd.pypi.simple.v1+json", "http://u:pw@h/simple/p/", hint)
        assert err.value.msg == f"http://h/simple/p/ answered {JSON_CT} that is not valid JSON{tail}"
    assert si.dir_url("http://h/simple") == "http://h/simple/" and si.normalize("Foo.Bar__baz") == "foo-bar-baz"
