"""load_test module and traffic helpers against a real pypiserver."""

from __future__ import annotations

import zipfile

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import traffic
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import free_port
from ansible_collections.pypi_ops.pypiserver.plugins.modules import load_test


def _args(server, tmp_path, **kw):
    args = {
        "repository_url": server.url,
        "simple_url": server.simple_url,
        "project": "loadprobe",
        "work_dir": str(tmp_path / "work"),
    }
    if server.username:
        args.update(username=server.username, password=server.password)
    args.update(kw)
    return args


def test_sequential_uploads_and_downloads_are_counted_and_timed(auth_pypiserver, tmp_path, run_module):
    res = run_module(load_test, _args(auth_pypiserver, tmp_path, uploads=12, downloads=20))
    assert not res.failed, res
    assert res["upload"]["ok"] == 12 and res["download"]["ok"] == 20
    assert res["success_rate"] == 100.0
    assert 0 < res["upload"]["p50_ms"] <= res["upload"]["p95_ms"] <= res["upload"]["p99_ms"] <= res["upload"]["max_ms"]
    assert len(res["operations"]) == 32
    assert list((tmp_path / "work").iterdir()) == []  # generated wheels were removed
    names = {f["filename"] for f in res["files"]}
    assert len(names) == 12


def test_parallel_distinct_projects(pypiserver, tmp_path, run_module):
    res = run_module(load_test, _args(pypiserver, tmp_path, uploads=4, parallel=4, distinct_projects=True))
    assert not res.failed, res
    assert {f["name"] for f in res["files"]} == {f"loadprobe-{i}" for i in range(4)}


def test_refused_uploads_fail_below_the_rate(auth_pypiserver, tmp_path, run_module):
    res = run_module(load_test, _args(auth_pypiserver, tmp_path, uploads=3, password="wrong"))
    assert res.failed
    assert res["upload"]["failed"] == 3 and res["download"]["failed"] == 3
    assert "operations failed" in res["msg"] and "forbidden" in res["msg"]
    ok = run_module(load_test, _args(auth_pypiserver, tmp_path, uploads=3, password="wrong", min_success_rate=0))
    assert not ok.failed


def test_unreachable_server(tmp_path, run_module):
    url = f"http://127.0.0.1:{free_port()}/"
    res = run_module(
        load_test,
        {"repository_url": url, "simple_url": url + "simple/", "project": "x", "uploads": 2, "work_dir": str(tmp_path)},
    )
    assert res.failed and "Connection refused" in res["msg"]


def test_check_mode_and_bad_name(pypiserver, tmp_path, run_module):
    res = run_module(load_test, _args(pypiserver, tmp_path), check_mode=True)
    assert not res.failed and res.get("skipped")
    bad = run_module(load_test, _args(pypiserver, tmp_path, project="not a name!"))
    assert bad.failed and "not a name!" in bad["msg"]


def test_synthetic_wheel_is_a_valid_wheel(tmp_path):
    rec = traffic.synthetic_wheel(str(tmp_path), "My.Probe", "1.2.3", payload_size=1000)
    assert rec["filename"] == "my_probe-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(rec["path"]) as whl:
        names = set(whl.namelist())
        assert {"my_probe/__init__.py", "my_probe-1.2.3.dist-info/METADATA", "my_probe-1.2.3.dist-info/RECORD"} <= names
        assert b'__version__ = "1.2.3"' in whl.read("my_probe/__init__.py")
        assert len(whl.read("my_probe/payload.bin")) == 1000


def test_percentiles_nearest_rank():
    values = [i / 1000 for i in range(1, 101)]
    assert traffic.percentile(values, 50) == 0.05
    assert traffic.percentile(values, 95) == 0.095
    assert traffic.percentile(values, 99) == 0.099
    assert traffic.percentile([], 50) == 0.0
