"""module_utils.provenance.judge: the one rule for where an install came from (pure; no server needed).

The same rule runs against real servers and real pip/uv in tests/unit/test_package_install.py,
tests/unit/test_uv_runner.py and tests/integration/test_index_layouts.py.
"""

from __future__ import annotations

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import provenance as pv
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

INDEX = "http://127.0.0.1:8080/simple/"
SHA = "a" * 64
OTHER_SHA = "b" * 64
WHEEL = "probe-1.0.0-py3-none-any.whl"


def page(html: str, requested: str = INDEX + "probe/", final: str | None = None) -> dict:
    """A page record built the way read_pages builds it: parsed by simple_index from the page's HTML."""
    files, _found = si.parse_html_files(html, final or requested)
    return pv.page_record(requested, final or requested, files)


def link(href: str) -> str:
    return f'<html><body><a href="{href}">{WHEEL}</a></body></html>'


def install(url: str, sha: str | None = SHA) -> dict:
    return {"name": "probe", "version": "1.0.0", "url": url, "sha256": sha}


def test_same_origin_relative_link_is_accepted():
    pages = {"probe": page(link(f"../../packages/{WHEEL}#sha256={SHA}"))}
    [verdict] = pv.judge(INDEX, "pip", pages, [install(f"http://127.0.0.1:8080/packages/{WHEEL}")], {"probe": SHA})
    assert verdict["off_origin"] is False
    assert verdict["sha256_checked_against"] == "expected"
    assert verdict["page"] == INDEX + "probe/"


def test_absolute_link_to_another_origin_is_accepted():
    url = f"https://files.example.org/ab/cd/{WHEEL}"
    pages = {"probe": page(link(f"{url}#sha256={SHA}"))}
    [verdict] = pv.judge(INDEX, "uv", pages, [install(url)], requests=[INDEX + "probe/", url, url + ".metadata"])
    assert verdict["off_origin"] is True
    assert verdict["sha256_checked_against"] == "index"  # no expected sha256 given: the advertised one


def test_url_compared_without_fragment_default_port_or_quoting():
    pages = {"probe": page(link(f"HTTP://Files.Example.org:80/x/probe%2Dx/{WHEEL}#sha256={SHA}"))}
    pv.judge(INDEX, "pip", pages, [install(f"http://files.example.org/x/probe-x/{WHEEL}#sha256={SHA}")])


def test_unadvertised_file_url_fails_naming_it_and_the_fix():
    pages = {"probe": page(link(f"/packages/{WHEEL}#sha256={SHA}"))}
    other = f"http://127.0.0.1:9999/packages/{WHEEL}"
    with pytest.raises(pv.ProvenanceError) as err:
        pv.judge(INDEX, "pip", pages, [install(other)], {"probe": SHA})
    assert other in err.value.msg and "never advertised" in err.value.msg
    assert "--disable-fallback" in err.value.msg and "extra-index-url" in err.value.msg
    assert err.value.url == other


def test_same_origin_but_unadvertised_file_still_fails():
    pages = {"probe": page(link(f"/packages/{WHEEL}#sha256={SHA}"))}
    with pytest.raises(pv.ProvenanceError, match="never advertised"):
        pv.judge(INDEX, "pip", pages, [install("http://127.0.0.1:8080/packages/probe-0.9-py3-none-any.whl")])


def test_project_page_served_by_another_origin_fails():
    foreign = "http://localhost:9090/simple/probe/"
    pages = {"probe": page(link(f"/packages/{WHEEL}#sha256={SHA}"), final=foreign)}
    with pytest.raises(pv.ProvenanceError) as err:
        pv.judge(INDEX, "uv", pages, [install(f"http://localhost:9090/packages/{WHEEL}")])
    assert "sends the project page" in err.value.msg and foreign in err.value.msg and "another origin" in err.value.msg
    assert "--disable-fallback" in err.value.msg


def test_same_origin_redirect_of_the_page_is_fine():
    # pypiserver answers 301 towards the normalized name: same origin, so still the index under test
    pages = {"probe": page(link(f"/packages/{WHEEL}#sha256={SHA}"), INDEX + "Probe/", INDEX + "probe/")}
    pv.judge(INDEX, "pip", pages, [install(f"http://127.0.0.1:8080/packages/{WHEEL}")])


def test_unreadable_page_fails():
    pages = {"probe": pv.page_error(INDEX + "probe/", "http://127.0.0.1:8080/simple/probe/ answered HTTP 500.")}
    with pytest.raises(pv.ProvenanceError, match="could not be read back.*HTTP 500"):
        pv.judge(INDEX, "pip", pages, [install(f"http://127.0.0.1:8080/packages/{WHEEL}")])


def test_wrong_bytes_behind_an_advertised_url_fail():
    url = f"http://localhost:9090/files/{WHEEL}"
    pages = {"probe": page(link(f"{url}#sha256={SHA}"))}
    with pytest.raises(pv.ProvenanceError) as err:
        pv.judge(INDEX, "pip", pages, [install(url, OTHER_SHA)])
    assert f"sha256 {OTHER_SHA}, expected {SHA}" in err.value.msg and "file host serves other bytes" in err.value.msg
    with pytest.raises(pv.ProvenanceError, match="uploaded file's"):  # the upload's sha256 wins over the index's
        pv.judge(INDEX, "pip", pages, [install(url, SHA)], {"probe": OTHER_SHA})


def test_off_origin_file_without_any_hash_cannot_be_proven():
    url = f"http://localhost:9090/files/{WHEEL}"
    pages = {"probe": page(link(url))}
    with pytest.raises(pv.ProvenanceError, match="no sha256 proves"):
        pv.judge(INDEX, "uv", pages, [install(url, None)])
    # with the upload's sha256 known and matching, it is proven
    [verdict] = pv.judge(INDEX, "uv", pages, [install(url, SHA)], {"probe": SHA})
    assert verdict["sha256_checked_against"] == "expected"


def test_same_origin_file_without_hash_is_accepted_as_before():
    pages = {"probe": page(link(f"/packages/{WHEEL}"))}
    [verdict] = pv.judge(INDEX, "pip", pages, [install(f"http://127.0.0.1:8080/packages/{WHEEL}", SHA)])
    assert verdict["sha256_checked_against"] is None


def test_request_to_an_unadvertised_origin_fails():
    pages = {"probe": page(link(f"/packages/{WHEEL}#sha256={SHA}"))}
    stray = "https://pypi.org/simple/probe/"
    with pytest.raises(pv.ProvenanceError) as err:
        pv.judge(INDEX, "uv", pages, [install(f"http://127.0.0.1:8080/packages/{WHEEL}")], requests=[stray])
    assert stray in err.value.msg and "neither the index under test" in err.value.msg


def test_every_installed_file_is_judged_by_its_own_page():
    dep = "dep-2.0-py3-none-any.whl"
    pages = {
        "probe": page(link(f"/packages/{WHEEL}#sha256={SHA}")),
        "dep": pv.page_record(INDEX + "dep/", INDEX + "dep/", []),
    }
    items = [install(f"http://127.0.0.1:8080/packages/{WHEEL}"), dict(install(f"https://elsewhere/{dep}"), name="dep")]
    with pytest.raises(pv.ProvenanceError, match=f"https://elsewhere/{dep}, a file URL the index under test never"):
        pv.judge(INDEX, "pip", pages, items)


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("http://H:80/a#sha256=1", "http://h:80/a"),
        ("https://h/a%2Bb", "https://h:443/a+b"),
        ("http://u:p@h:81/a?x=1", "http://h:81/a?x=1"),
    ],
)
def test_file_key(url, want):
    assert pv.file_key(url) == want


# read_pages against a real pypiserver behind the layouts of tests/badservers.py


def _opts():
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http

    return http.ClientOptions(None, None, True, None, 5.0, 30.0)


def _put_wheel(server) -> str:
    """A file pypiserver lists (simple-dir backend reads the directory): its sha256."""
    import hashlib
    import os

    data = b"not really a wheel, but listed like one"
    with open(os.path.join(server.package_dir, WHEEL), "wb") as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def test_read_pages_never_follows_a_page_to_another_origin(pypiserver):
    from tests.badservers import FileHost, LayoutIndex

    _put_wheel(pypiserver)
    with FileHost(pypiserver.url) as files, LayoutIndex(pypiserver.url, "foreign_page", files) as index:
        pages = pv.read_pages(index.url + "simple/", ["probe"], _opts())
        assert pages["probe"]["final_url"] == f"{files.url}simple/probe/"
        assert files.served == []  # the foreign index was not contacted
        with pytest.raises(pv.ProvenanceError, match="another origin"):
            pv.judge(index.url + "simple/", "pip", pages, [install(f"{files.url}packages/{WHEEL}")])


def test_read_pages_sees_files_on_another_origin(pypiserver):
    from tests.badservers import FileHost, LayoutIndex

    sha = _put_wheel(pypiserver)
    with FileHost(pypiserver.url) as files, LayoutIndex(pypiserver.url, "absolute", files) as index:
        pages = pv.read_pages(index.url + "simple/", ["probe"], _opts())
        url = f"{files.url}files/{WHEEL}"
        assert pages["probe"]["files"] == {pv.file_key(url): sha}
        [verdict] = pv.judge(index.url + "simple/", "uv", pages, [install(url, sha)], {"probe": sha})
        assert verdict["off_origin"] is True and verdict["sha256_checked_against"] == "expected"
