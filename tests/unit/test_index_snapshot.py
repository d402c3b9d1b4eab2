"""index_snapshot and module_utils.snapshot, against a real pypiserver.

Files are put on the server by writing them into its package directory (the fixture's simple-dir backend
reads the directory on every request), so each case controls exactly what the index holds.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import snapshot
from ansible_collections.pypi_ops.pypiserver.plugins.modules import index_snapshot


def put(server, filename: str, data: bytes) -> str:
    with open(os.path.join(server.package_dir, filename), "wb") as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def args(server, **extra):
    return {"url": server.simple_url, **extra}


def clean_failure(result) -> str:
    assert result.failed, result
    assert "\n" not in result["msg"] and "Traceback" not in result["msg"]
    return result["msg"]


def test_under_prefix_never_matches_outside_the_prefix():
    assert snapshot.under_prefix("pypiops-probe-20261125t101010", "pypiops-probe")
    assert snapshot.under_prefix("PyPIOps_Probe", "pypiops-probe")
    for other in ("pypiops-probes", "my-pypiops-probe-x", "pypiops-prob", "pypiops"):
        assert not snapshot.under_prefix(other, "pypiops-probe"), other
    assert not snapshot.under_prefix("anything", "")


def test_depths_record_what_the_index_holds(pypiserver, run_module):
    sha_a = put(pypiserver, "alpha-1.0.tar.gz", b"alpha one")
    put(pypiserver, "beta-2.0.tar.gz", b"beta two")

    names = run_module(index_snapshot, args(pypiserver, depth="names"))
    assert names["snapshot"]["projects"] == {"alpha": {}, "beta": {}}

    files = run_module(index_snapshot, args(pypiserver, depth="files"))
    assert files["snapshot"]["projects"]["alpha"] == {"alpha-1.0.tar.gz": f"sha256:{sha_a}"}
    assert files["file_count"] == 2

    data = run_module(index_snapshot, args(pypiserver, depth="bytes", projects=["Alpha"]))
    assert data["snapshot"]["projects"] == {"alpha": {"alpha-1.0.tar.gz": f"sha256:{sha_a}"}}
    assert not data.get("changed")


def test_latest_version_and_limit_select(pypiserver, run_module):
    put(pypiserver, "gamma-1.0.tar.gz", b"1")
    put(pypiserver, "gamma-2.0.tar.gz", b"2")
    put(pypiserver, "gamma-3.0rc1.tar.gz", b"3")
    put(pypiserver, "zeta-1.0.tar.gz", b"z")
    latest = run_module(index_snapshot, args(pypiserver, depth="files", latest=True, projects=["gamma"]))
    assert list(latest["snapshot"]["projects"]["gamma"]) == ["gamma-2.0.tar.gz"]
    pinned = run_module(index_snapshot, args(pypiserver, depth="files", version="3.0rc1", projects=["gamma"]))
    assert list(pinned["snapshot"]["projects"]["gamma"]) == ["gamma-3.0rc1.tar.gz"]
    limited = run_module(index_snapshot, args(pypiserver, depth="names", limit=1))
    assert list(limited["snapshot"]["projects"]) == ["gamma"]


def test_a_named_project_that_is_absent_fails_clearly(pypiserver, run_module):
    put(pypiserver, "gamma-1.0.tar.gz", b"1")
    msg = clean_failure(run_module(index_snapshot, args(pypiserver, projects=["gamma"], version="9.9")))
    assert "9.9" in msg and "gamma" in msg


def test_compare_catches_loss_change_and_leftover_probes(pypiserver, run_module):
    put(pypiserver, "keep-1.0.tar.gz", b"keep")
    put(pypiserver, "gone-1.0.tar.gz", b"gone")
    before = run_module(index_snapshot, args(pypiserver, depth="bytes"))["snapshot"]

    same = run_module(index_snapshot, args(pypiserver, depth="bytes", compare_to=before))
    assert same["diff"]["equal"] is True

    os.remove(os.path.join(pypiserver.package_dir, "gone-1.0.tar.gz"))
    msg = clean_failure(run_module(index_snapshot, args(pypiserver, depth="bytes", compare_to=before)))
    assert "lost" in msg and "gone" in msg

    put(pypiserver, "gone-1.0.tar.gz", b"other bytes")
    msg = clean_failure(run_module(index_snapshot, args(pypiserver, depth="bytes", compare_to=before)))
    assert "other content" in msg and "gone-1.0.tar.gz" in msg

    put(pypiserver, "gone-1.0.tar.gz", b"gone")
    put(pypiserver, "pypiops_probe_20261125t101010-1.0.tar.gz", b"probe")
    put(pypiserver, "someone-else-1.0.tar.gz", b"foreign")
    result = run_module(
        index_snapshot, args(pypiserver, depth="bytes", compare_to=before, probe_prefix="pypiops-probe")
    )
    msg = clean_failure(result)
    assert "probe" in msg and "cleanup_probes" in msg
    assert result["diff"]["foreign"] == ["someone-else"]

    os.remove(os.path.join(pypiserver.package_dir, "pypiops_probe_20261125t101010-1.0.tar.gz"))
    tolerated = run_module(
        index_snapshot, args(pypiserver, depth="bytes", compare_to=before, probe_prefix="pypiops-probe")
    )
    assert not tolerated.get("failed"), tolerated
    assert "someone-else" in str(tolerated["warnings"])


def test_depth_mismatch_and_bad_limit_are_refused(pypiserver, run_module):
    before = {"depth": "names", "projects": {}}
    assert "same depth" in clean_failure(run_module(index_snapshot, args(pypiserver, compare_to=before)))
    assert "limit" in clean_failure(run_module(index_snapshot, args(pypiserver, limit=-1)))


def test_unreachable_server_is_one_sentence(run_module):
    from tests.unit.test_index_list import free_port

    msg = clean_failure(run_module(index_snapshot, {"url": f"http://127.0.0.1:{free_port()}/simple/"}))
    assert "127.0.0.1" in msg


def test_a_partial_record_is_compared_on_its_own_projects_and_files_only(pypiserver, run_module):
    """The drill's case: N projects recorded, a restart, then only those are read again."""
    for name in ("aa", "bb", "cc"):
        put(pypiserver, f"{name}-1.0.tar.gz", name.encode())
    before = run_module(index_snapshot, args(pypiserver, depth="bytes", limit=2, latest=True))["snapshot"]
    assert sorted(before["projects"]) == ["aa", "bb"] and before["complete"] is False

    put(pypiserver, "aa-2.0.tar.gz", b"newer")  # a newer version appears: listed, not downloaded, not a loss
    same = run_module(index_snapshot, args(pypiserver, depth="bytes", compare_to=before))
    assert not same.get("failed"), same
    assert same["diff"]["lost"] == [] and same["diff"]["foreign"] == ["aa/aa-2.0.tar.gz"]
    assert same["snapshot"]["projects"]["aa"]["aa-2.0.tar.gz"] == ""

    os.remove(os.path.join(pypiserver.package_dir, "bb-1.0.tar.gz"))  # the whole project is gone
    msg = clean_failure(run_module(index_snapshot, args(pypiserver, depth="bytes", compare_to=before)))
    assert "lost" in msg and "bb" in msg


# ------------------------------------------------------------------ the flat listing (/packages/)


def _opts():
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil

    return httputil.ClientOptions(None, None, True, None, 5.0, 30.0)


def _take(simple_url: str, **kw):
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil

    session = httputil.make_session(_opts())
    try:
        return snapshot.take(session, simple_url, _opts(), **kw)
    finally:
        session.close()


def _pages(simple_url: str, names) -> dict:
    """What the project pages say, read one by one: the reference the flat listing must equal."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

    session = httputil.make_session(_opts())
    try:
        return {n: snapshot._page_files(si.fetch_project(session, simple_url, n, _opts())["files"]) for n in names}
    finally:
        session.close()


def _big_index(server) -> None:
    # names that share prefixes (foo, foo-bar, foo-bar-baz), case and separator variants, wheels and sdists
    put(server, "foo-1.0.tar.gz", b"foo 1")
    put(server, "foo-bar-1.0.tar.gz", b"foo-bar 1")
    put(server, "foo_bar-1.1-py3-none-any.whl", b"foo-bar 1.1 wheel")
    put(server, "foo-bar-baz-2.0.tar.gz", b"foo-bar-baz 2")
    put(server, "Baz_Qux-0.1.zip", b"baz qux")
    for i in range(30):
        put(server, f"proj{i:02d}-1.{i}.tar.gz", f"proj {i}".encode())


def test_a_whole_index_read_uses_the_flat_listing_and_equals_the_pages(pypiserver):
    _big_index(pypiserver)
    for depth in ("files", "bytes"):
        snap = _take(pypiserver.simple_url, depth=depth)
        assert snap["listing"] == "flat", snap["listing"]
        assert snap["project_count"] == 34 and snap["file_count"] == 35
        assert not snap["mismatches"]
    files = _take(pypiserver.simple_url, depth="files")
    assert files["projects"] == _pages(pypiserver.simple_url, files["projects"])
    assert set(files["projects"]["foo-bar"]) == {"foo-bar-1.0.tar.gz", "foo_bar-1.1-py3-none-any.whl"}
    assert set(files["projects"]["foo"]) == {"foo-1.0.tar.gz"}


def test_a_flat_snapshot_still_shows_a_lost_file(pypiserver, run_module):
    _big_index(pypiserver)
    before = _take(pypiserver.simple_url, depth="files")
    os.remove(os.path.join(pypiserver.package_dir, "proj17-1.17.tar.gz"))
    put(pypiserver, "foo-bar-baz-2.0.tar.gz", b"changed bytes")
    known = {k: before[k] for k in ("depth", "complete", "projects")}
    after = _take(pypiserver.simple_url, depth="files", known=known)
    assert after["listing"] == "flat"
    diff = snapshot.compare(known, {k: after[k] for k in ("depth", "complete", "projects")})
    assert diff["lost"] == ["proj17"], diff
    assert diff["changed"] == ["foo-bar-baz/foo-bar-baz-2.0.tar.gz"], diff
    assert "proj17" in snapshot.verdict(diff)


def test_a_sampled_page_that_differs_from_the_flat_listing_means_the_pages_are_read(pypiserver):
    from tests.faultproxy import FaultProxy

    _big_index(pypiserver)
    with FaultProxy(pypiserver.url, hide=r"Baz_Qux-0\.1\.zip") as proxy:  # baz-qux is sampled (the first name)
        snap = _take(f"{proxy.url}simple/", depth="files")
    assert snap["listing"] == "pages"
    assert snap["projects"]["baz-qux"] == {}, "the pages are what clients see: the hidden file must not be listed"


def test_small_indexes_and_named_projects_read_the_pages(pypiserver):
    put(pypiserver, "alpha-1.0.tar.gz", b"alpha")
    assert _take(pypiserver.simple_url, depth="files")["listing"] == "pages"
    _big_index(pypiserver)
    assert _take(pypiserver.simple_url, depth="files", projects=["foo"])["listing"] == "pages"
    assert _take(pypiserver.simple_url, depth="names")["listing"] == "names"


def test_flat_listing_url_and_project_grouping():
    assert snapshot.flat_listing_url("http://h:1/simple/") == "http://h:1/packages/"
    assert snapshot.flat_listing_url("https://h/pypi/simple") == "https://h/pypi/packages/"
    assert snapshot.flat_listing_url("https://h/api/index/") is None
    names = {"foo", "foo-bar", "baz-qux"}
    assert snapshot._project_of("foo-bar-1.0.tar.gz", names) == "foo-bar"
    assert snapshot._project_of("foo_bar-1.1-py3-none-any.whl", names) == "foo-bar"
    assert snapshot._project_of("foo-1.0.tar.gz", names) == "foo"
    assert snapshot._project_of("Baz.Qux-2.zip", names) == "baz-qux"
    assert snapshot._project_of("other-1.0.tar.gz", names) is None
