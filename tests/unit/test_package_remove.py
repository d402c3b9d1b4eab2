"""package_remove against real pypiserver processes: files really uploaded, really removed, and proven gone."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import tarfile

import pytest
from pypiserver.pkg_helpers import guess_pkgname_and_version

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import remove, traffic, upload
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import free_port
from ansible_collections.pypi_ops.pypiserver.plugins.modules import package_remove
from tests.faultproxy import FaultProxy

PREFIX = "pypiops-probe"


# ---------------------------------------------------------------- helpers


def _opts(server, password=None):
    return httputil.ClientOptions(server.username, password or server.password, True, None, 5.0, 30.0)


def _sdist(dest, filename, name, version):
    """A minimal sdist (a tar.gz with PKG-INFO) under an exact file name."""
    path = os.path.join(dest, filename)
    data = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(f"{filename[: -len('.tar.gz')]}/PKG-INFO")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def _upload(server, tmp_path, name, version, sdist_name=None):
    """Upload a real wheel (and optionally an sdist with that exact file name) over the legacy API."""
    dest = str(tmp_path / "dists" / f"{name}-{version}")
    paths = [traffic.synthetic_wheel(dest, name, version)["path"]]
    if sdist_name:
        paths.append(_sdist(dest, sdist_name, name, version))
    opts = _opts(server)
    session = httputil.make_session(opts)
    try:
        for path in paths:
            got = upload.http_upload(session, server.url, path, name, version, None, opts)
            assert got.outcome == "uploaded", got
    finally:
        session.close()
    return [os.path.basename(p) for p in paths]


def _snapshot(package_dir):
    """{file name: sha256} of everything in the package directory."""
    out = {}
    for entry in sorted(os.listdir(package_dir)):
        with open(os.path.join(package_dir, entry), "rb") as handle:
            out[entry] = hashlib.sha256(handle.read()).hexdigest()
    return out


def _args(server, **kw):
    args = {"url": server.url, "simple_url": server.simple_url}
    if server.username:
        args.update(username=server.username, password=server.password)
    args.update(kw)
    return args


def _stamp(hours_ago):
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)).strftime("%Y%m%dt%H%M%S")


# ---------------------------------------------------------------- pure logic


@pytest.mark.parametrize(
    "name, expected",
    [
        ("pypiops-probe", True),
        ("pypiops-probe-20261125t153012345", True),
        ("pypiops-probe-20261125t153012345-ow", True),
        ("Pypiops_Probe.20261125t153012", True),  # normalized, it is the prefix's
        ("pypiops-probes", False),
        ("pypiops-probes-20261125t153012", False),
        ("my-pypiops-probe-x", False),
        ("pypiopsprobe-20261125t153012", False),
        ("pypiops-prob", False),
        ("pypiops", False),
    ],
)
def test_prefix_never_matches_outside_the_prefix(name, expected):
    assert remove.prefix_matches(name, PREFIX) is expected
    assert remove.prefix_matches(name, "Pypiops_Probe") is expected


@pytest.mark.parametrize(
    "name, stamp",
    [
        ("pypiops-probe-20261125t153012345", "2026-11-25 15:30:12"),
        ("pypiops-probe-20261125t153012-ow", "2026-11-25 15:30:12"),
        ("pypiops-probe-20261125t15301299999-load", "2026-11-25 15:30:12"),
        ("pypiops-probe-20261125t153012", "2026-11-25 15:30:12"),
        ("pypiops-probe", None),
        ("pypiops-probe-myrun", None),
        ("pypiops-probe-20261125t153012999999", None),  # 6 digits after the stamp: not a run id of ours
        ("pypiops-probe-20261325t153012", None),  # month 13
        ("pypiops-probe-20261125t153012abc", None),
        ("pypiops-probe-x-20261125t153012", None),  # not right after the prefix
    ],
)
def test_probe_timestamp(name, stamp):
    got = remove.probe_timestamp(name, PREFIX)
    assert (got.strftime("%Y-%m-%d %H:%M:%S") if got else None) == stamp
    if got:
        assert got.tzinfo is not None


def test_select_projects_by_age():
    now = dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC)
    projects = [
        "pypiops-probe-20261125t120000123",  # 48 h
        "pypiops-probe-20261127t100000-ow",  # 2 h
        "pypiops-probe-custom",
        "pypiops-probes-20261101t000000",
        "other",
    ]
    matched, chosen, kept, undated = remove.select_projects(projects, PREFIX, 24, now)
    assert matched == sorted(projects[:3])
    assert chosen == ["pypiops-probe-20261125t120000123"]
    assert kept == [{"name": projects[1], "age_hours": 2.0, "timestamp": "2026-11-27T10:00:00Z"}]
    assert undated == ["pypiops-probe-custom"]
    _, chosen, _, _ = remove.select_projects(projects, PREFIX, 0, now)
    assert chosen == sorted(projects[:3])


@pytest.mark.parametrize("bad", ["", "  ", "-", "*", "pypiops-probe-", "-probe", "pypiops probe", "probe*"])
def test_garbage_prefix_is_refused(bad):
    with pytest.raises(remove.RemoveError, match="not a valid project name"):
        remove.check_name(bad, "prefix")


@pytest.mark.parametrize(
    "filename",
    [
        "foo_bar-1.0.0-py3-none-any.whl",
        "Foo_Bar-1.0.0.tar.gz",
        "foo-1.0.zip",
        "pypiops_probe_20261125t153012345-1.0.0.tar.gz",
        "pypiops_probe_20261125t153012345-2.1.0rc1-py3-none-any.whl",
        "pypiops-probe-20261125t153012345-1.0.0.tar.gz",  # legacy sdist name: pypiserver parses it its own way
        "foo-1.0-1-py3-none-any.whl",  # build tag
        "foo-1.0.tar.gz.asc",
        "README.txt",
    ],
)
def test_server_key_is_pypiservers_own_parse(filename):
    """remove_pkg needs pypiserver's (name, version) of each file: compare with pypiserver's own function."""
    assert remove.server_key(filename) == guess_pkgname_and_version(filename)


# ---------------------------------------------------------------- against real servers


def test_remove_one_version_then_idempotent(pypiserver, tmp_path, run_module):
    one = _upload(pypiserver, tmp_path, "rmpkg", "1.0.0", sdist_name="rmpkg-1.0.0.tar.gz")
    two = _upload(pypiserver, tmp_path, "rmpkg", "2.0.0")
    before = _snapshot(pypiserver.package_dir)
    assert set(before) == set(one + two)

    res = run_module(package_remove, _args(pypiserver, name="RmPkg", versions=["1.0.0"]))
    assert not res.failed, res
    assert res["changed"] is True
    assert [(r["name"], r["version"], sorted(r["files"])) for r in res["removed"]] == [("rmpkg", "1.0.0", sorted(one))]
    assert res["matched"] == ["rmpkg"] and res["absent"] == []
    assert _snapshot(pypiserver.package_dir) == {f: before[f] for f in two}  # 2.0.0 untouched, byte for byte

    again = run_module(package_remove, _args(pypiserver, name="rmpkg", versions=["1.0.0"]))
    assert not again.failed, again
    assert again["changed"] is False and again["removed"] == [] and again["absent"] == ["1.0.0"]
    assert _snapshot(pypiserver.package_dir) == {f: before[f] for f in two}


def test_remove_every_version(pypiserver, tmp_path, run_module):
    for version in ("1.0.0", "1.0.1", "2.0.0rc1"):
        _upload(pypiserver, tmp_path, "allgone", version)
    keep = _upload(pypiserver, tmp_path, "allgone2", "1.0.0")  # a name that merely starts the same
    res = run_module(package_remove, _args(pypiserver, name="allgone"))
    assert not res.failed, res
    assert [r["version"] for r in res["removed"]] == ["1.0.0", "1.0.1", "2.0.0rc1"]
    assert sorted(os.listdir(pypiserver.package_dir)) == keep

    again = run_module(package_remove, _args(pypiserver, name="allgone"))
    assert not again.failed, again
    assert again["changed"] is False and again["matched"] == [] and again["removed"] == []


def test_every_spelling_of_the_name_is_removed(pypiserver, tmp_path, run_module):
    """pypiserver removes by the exact name in the file name: Foo_Bar's sdist and foo_bar's wheel need two POSTs."""
    files = _upload(pypiserver, tmp_path, "foo.bar", "1.0", sdist_name="Foo_Bar-1.0.tar.gz")
    assert sorted(files) == ["Foo_Bar-1.0.tar.gz", "foo_bar-1.0-py3-none-any.whl"]
    res = run_module(package_remove, _args(pypiserver, name="Foo.Bar"))
    assert not res.failed, res
    assert sorted(res["removed"][0]["files"]) == sorted(files)
    assert os.listdir(pypiserver.package_dir) == []


def test_prefix_by_age_never_touches_lookalikes(pypiserver, tmp_path, run_module):
    old, new = _stamp(72), _stamp(0.5)
    probes_old = [f"{PREFIX}-{old}12345", f"{PREFIX}-{old}12345-ow", f"Pypiops_Probe.{old}7-load"]
    probe_new = f"{PREFIX}-{new}99"
    probe_undated = f"{PREFIX}-customrun"
    lookalikes = [f"pypiops-probes-{old}", f"my-{PREFIX}-{old}", f"pypiopsprobe-{old}", f"pypiops-prob-{old}", "other"]
    for name in [*probes_old, probe_new, probe_undated, *lookalikes]:
        _upload(pypiserver, tmp_path, name, "1.0.0")
    _upload(pypiserver, tmp_path, probes_old[0], "2.0.0")
    lookalike_files = {f for f in os.listdir(pypiserver.package_dir) if not si.normalize(f).startswith(PREFIX + "-")}
    assert len(lookalike_files) == len(lookalikes)
    before = _snapshot(pypiserver.package_dir)

    res = run_module(package_remove, _args(pypiserver, prefix=PREFIX, older_than=24))
    assert not res.failed, res
    assert res["changed"] is True
    normalized_old = sorted(si.normalize(n) for n in probes_old)
    assert sorted({r["name"] for r in res["removed"]}) == normalized_old
    assert len(res["removed"]) == 4  # 3 projects, one with two versions
    assert sorted(res["matched"]) == sorted([*normalized_old, si.normalize(probe_new), probe_undated])
    assert [k["name"] for k in res["kept"]] == [si.normalize(probe_new)]
    assert 0 < res["kept"][0]["age_hours"] < 24
    assert res["undated"] == [probe_undated]
    after = _snapshot(pypiserver.package_dir)
    assert {f: before[f] for f in lookalike_files} == {f: after[f] for f in lookalike_files}
    listed = set(
        si.fetch_projects(httputil.make_session(_opts(pypiserver)), pypiserver.simple_url, _opts(pypiserver))[
            "projects"
        ]
    )
    assert not listed & set(normalized_old)

    again = run_module(package_remove, _args(pypiserver, prefix=PREFIX, older_than=24))
    assert not again.failed and again["changed"] is False and again["removed"] == []

    everything = run_module(package_remove, _args(pypiserver, prefix=PREFIX, older_than=0))
    assert not everything.failed, everything
    assert sorted(r["name"] for r in everything["removed"]) == sorted([si.normalize(probe_new), probe_undated])
    assert _snapshot(pypiserver.package_dir) == {f: before[f] for f in lookalike_files}  # byte for byte


def test_check_mode_removes_nothing(pypiserver, tmp_path, run_module):
    stamp = _stamp(48)
    _upload(pypiserver, tmp_path, f"{PREFIX}-{stamp}1", "1.0.0", sdist_name=f"pypiops_probe_{stamp}1-1.0.0.tar.gz")
    _upload(pypiserver, tmp_path, "keepme", "1.0.0")
    before = _snapshot(pypiserver.package_dir)
    res = run_module(package_remove, _args(pypiserver, prefix=PREFIX), check_mode=True)
    assert not res.failed, res
    assert res["changed"] is True and res["removed"] == []
    assert len(res["would_remove"]) == 1 and len(res["would_remove"][0]["files"]) == 2
    assert _snapshot(pypiserver.package_dir) == before
    named = run_module(package_remove, _args(pypiserver, name="keepme"), check_mode=True)
    assert named["would_remove"][0]["files"] == ["keepme-1.0.0-py3-none-any.whl"]
    assert _snapshot(pypiserver.package_dir) == before


def test_wrong_or_missing_credentials_fail_clearly_and_remove_nothing(auth_pypiserver, tmp_path, run_module):
    _upload(auth_pypiserver, tmp_path, "guarded", "1.0.0")
    before = _snapshot(auth_pypiserver.package_dir)
    wrong = run_module(package_remove, _args(auth_pypiserver, name="guarded", password="not-the-password"))
    assert wrong.failed
    assert "refused removal (HTTP 403)" in wrong["msg"] and "htpasswd" in wrong["msg"]
    assert wrong["status"] == 403 and wrong["removed"] == [] and wrong["changed"] is False
    assert "not-the-password" not in str(wrong)
    anonymous = run_module(package_remove, {"url": auth_pypiserver.url, "name": "guarded"})
    assert anonymous.failed and "(HTTP 401)" in anonymous["msg"] and "username/password" in anonymous["msg"]
    assert _snapshot(auth_pypiserver.package_dir) == before
    ok = run_module(package_remove, _args(auth_pypiserver, name="guarded"))  # simple_url defaulted from url
    assert not ok.failed and ok["changed"] is True
    assert os.listdir(auth_pypiserver.package_dir) == []


def test_a_200_that_left_the_files_fails(pypiserver_factory, tmp_path, run_module):
    """Two replicas without shared storage: the POST removes the file on one, the index reads the other."""
    read_here, post_there = pypiserver_factory(), pypiserver_factory()
    _upload(read_here, tmp_path / "a", "replicated", "1.0.0")
    _upload(post_there, tmp_path / "b", "replicated", "1.0.0")
    before = _snapshot(read_here.package_dir)
    res = run_module(
        package_remove,
        {"url": post_there.url, "simple_url": read_here.simple_url, "name": "replicated", "verify_timeout": 0.5},
    )
    assert res.failed
    assert "did not happen" in res["msg"] and "answered 200" in res["msg"] and "still lists" in res["msg"]
    assert res["removed"] == []
    assert _snapshot(read_here.package_dir) == before
    assert os.listdir(post_there.package_dir) == []  # the 200 was real: it removed the other replica's copy


def test_files_still_served_are_not_a_pass(pypiserver_factory, tmp_path):
    """The page stops listing the file (a proxy hides it) but its URL still serves it: removal is not proven."""
    server, other = pypiserver_factory(), pypiserver_factory()
    for target in (server, other):
        _upload(target, tmp_path / str(target.port), "hidden", "1.0.0")
    opts = _opts(server)
    session = httputil.make_session(opts)
    try:
        listing = si.fetch_project(session, server.simple_url, "hidden", opts)
        group = remove.plan_project("hidden", listing["files"], ())[0]
        with FaultProxy(server.url, hide="hidden") as proxy:
            with pytest.raises(remove.RemoveError, match="is not proven.*still served"):
                remove.remove_group(session, other.url, proxy.url + "simple/", group, opts, 0)
    finally:
        session.close()
    assert os.listdir(server.package_dir) == ["hidden-1.0.0-py3-none-any.whl"]


def test_url_that_is_not_the_upload_url(pypiserver, tmp_path, run_module):
    _upload(pypiserver, tmp_path, "wrongurl", "1.0.0")
    res = run_module(
        package_remove, {"url": pypiserver.simple_url, "simple_url": pypiserver.simple_url, "name": "wrongurl"}
    )
    assert res.failed and "(HTTP 405)" in res["msg"] and "base URL" in res["msg"]
    res = run_module(
        package_remove, {"url": pypiserver.url + "a/b/", "simple_url": pypiserver.simple_url, "name": "wrongurl"}
    )
    assert res.failed and "HTTP 404" in res["msg"] and "base URL" in res["msg"]
    assert os.listdir(pypiserver.package_dir) == ["wrongurl-1.0.0-py3-none-any.whl"]


def test_a_wrong_simple_url_is_not_already_gone(pypiserver, run_module):
    res = run_module(package_remove, {"url": pypiserver.url, "simple_url": pypiserver.url + "nothing/", "name": "x"})
    assert res.failed and "HTTP 404" in res["msg"]


def test_bad_arguments_fail_before_any_request(run_module):
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens: any request would fail with another message
    res = run_module(package_remove, {"url": url, "prefix": "pypiops-probe-"})
    assert res.failed and "not a valid project name" in res["msg"] and "trailing '-'" in res["msg"]
    res = run_module(package_remove, {"url": url, "prefix": ""})
    assert res.failed and "not a valid project name" in res["msg"]
    res = run_module(package_remove, {"url": url, "prefix": PREFIX, "versions": ["1.0"]})
    assert res.failed and "versions needs name" in res["msg"]
    res = run_module(package_remove, {"url": url, "prefix": PREFIX, "name": "x"})
    assert res.failed and "mutually exclusive" in res["msg"]
    res = run_module(package_remove, {"url": url})
    assert res.failed and "one of the following is required" in res["msg"]
    res = run_module(package_remove, {"url": url, "name": "x"})
    assert res.failed and "Connection refused" in res["msg"]
