"""package_build with real `python -m build --no-isolation` runs (no mocks)."""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe as pb
from ansible_collections.pypi_ops.pypiserver.plugins.modules import package_build

MiB = 1024 * 1024


def _sha256(path: str) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _dists(dest) -> list[str]:
    if not os.path.isdir(dest):
        return []
    return sorted(f for f in os.listdir(dest) if f.endswith((".whl", ".tar.gz")))


def test_probe_builds_wheel_and_sdist(tmp_path, run_module):
    dest = tmp_path / "dist"
    res = run_module(package_build, {"dest": str(dest), "probe": {"name": "Pypi_Ops.Probe", "version": "1.0.0"}})
    assert not res.failed, res
    assert res["changed"] is True
    assert res["name"] == "pypi-ops-probe"
    assert res["version"] == "1.0.0"
    assert res["import_name"] == "pypi_ops_probe"
    assert res["expected_version"] == "1.0.0"
    assert [f["kind"] for f in res["files"]] == ["wheel", "sdist"]
    for record in res["files"]:
        assert os.path.isfile(record["path"])
        assert os.path.dirname(record["path"]) == str(dest)
        assert record["sha256"] == _sha256(record["path"])
        assert record["size"] == os.path.getsize(record["path"])
    assert res["wheel"]["filename"] == "pypi_ops_probe-1.0.0-py3-none-any.whl"
    assert res["sdist"]["filename"] == "pypi_ops_probe-1.0.0.tar.gz"
    with zipfile.ZipFile(res["wheel"]["path"]) as whl:
        init = whl.read("pypi_ops_probe/__init__.py").decode()
        assert '__version__ = "1.0.0"' in init
        assert not any(n.endswith("payload.bin") for n in whl.namelist())
        metadata = whl.read("pypi_ops_probe-1.0.0.dist-info/METADATA").decode()
        assert "Requires-Python: >=3.8" in metadata
    with tarfile.open(res["sdist"]["path"]) as sdist:
        member = sdist.extractfile("pypi_ops_probe-1.0.0/pypi_ops_probe/__init__.py")
        assert '__version__ = "1.0.0"' in member.read().decode()
    # Only the two dists are visible to pypiserver; the stamp and source live in a dot-directory.
    assert sorted(os.listdir(dest)) == sorted([pb.STATE_DIR] + _dists(dest))


def test_payload_makes_an_incompressible_wheel(tmp_path, run_module):
    res = run_module(
        package_build,
        {
            "dest": str(tmp_path / "dist"),
            "probe": {"name": "payload-probe", "version": "0.1", "payload_size": 3 * MiB},
            "formats": ["wheel"],
        },
    )
    assert not res.failed, res
    assert res["sdist"] is None
    assert [f["kind"] for f in res["files"]] == ["wheel"]
    assert res["wheel"]["size"] > 3 * MiB
    with zipfile.ZipFile(res["wheel"]["path"]) as whl:
        assert whl.getinfo("payload_probe/payload.bin").file_size == 3 * MiB
        # random bytes are stored, not deflated (deflating them only costs time), and the archive is sound
        assert whl.getinfo("payload_probe/payload.bin").compress_type == zipfile.ZIP_STORED
        assert whl.testzip() is None


def test_idempotent_and_force(tmp_path, run_module):
    args = {"dest": str(tmp_path / "dist"), "probe": {"name": "idem-probe", "version": "2.0", "payload_size": 1000}}
    first = run_module(package_build, args)
    assert first["changed"] is True
    mtime = os.path.getmtime(first["wheel"]["path"])

    again = run_module(package_build, args)
    assert not again.failed, again
    assert again["changed"] is False
    assert again["files"] == first["files"]
    assert os.path.getmtime(first["wheel"]["path"]) == mtime

    # Asking for a subset of what is there is still a no-op.
    subset = run_module(package_build, dict(args, formats=["wheel"]))
    assert subset["changed"] is False and subset["sdist"] is None

    # Other probe parameters are another build.
    forced = run_module(package_build, dict(args, force=True))
    assert forced["changed"] is True
    assert forced["wheel"]["sha256"] != first["wheel"]["sha256"]  # new random payload
    assert forced["wheel"]["sha256"] == _sha256(forced["wheel"]["path"])

    bigger = run_module(package_build, dict(args, probe=dict(args["probe"], payload_size=2000), formats=["wheel"]))
    assert bigger["changed"] is True
    # The previous build's sdist (other payload) is stale and removed.
    assert _dists(args["dest"]) == ["idem_probe-2.0-py3-none-any.whl"]


def test_check_mode_builds_nothing(tmp_path, run_module):
    dest = tmp_path / "dist"
    res = run_module(
        package_build, {"dest": str(dest), "probe": {"name": "cm-probe", "version": "1.0"}}, check_mode=True
    )
    assert not res.failed, res
    assert res["changed"] is True
    assert res["files"] == []
    assert "Would build" in res["msg"]
    assert not dest.exists()


@pytest.mark.parametrize(
    "probe, needle, example",
    [
        ({"name": "good-name", "version": "1.0.0-not a version!"}, "'1.0.0-not a version!'", "'1.0.0'"),
        ({"name": "bad name!", "version": "1.0"}, "'bad name!'", "'pypi-ops-probe'"),
        ({"name": "-leading", "version": "1.0"}, "'-leading'", "'pypi-ops-probe'"),
        (
            {"name": "ok", "version": "1.0", "import_name": "not-an-identifier"},
            "'not-an-identifier'",
            "'pypi_ops_probe'",
        ),
    ],
)
def test_invalid_probe_fails_before_building(tmp_path, run_module, probe, needle, example):
    dest = tmp_path / "dist"
    res = run_module(package_build, {"dest": str(dest), "probe": probe})
    assert res.failed
    assert needle in res["msg"]
    assert example in res["msg"]
    assert "Traceback" not in res["msg"] and "exception" not in res
    assert not dest.exists()


def test_missing_source_dir_fails(tmp_path, run_module):
    res = run_module(package_build, {"dest": str(tmp_path / "dist"), "source_dir": str(tmp_path / "nope")})
    assert res.failed
    assert "does not exist" in res["msg"] and str(tmp_path / "nope") in res["msg"]

    empty = tmp_path / "empty"
    empty.mkdir()
    res = run_module(package_build, {"dest": str(tmp_path / "dist"), "source_dir": str(empty)})
    assert res.failed
    assert "neither pyproject.toml nor setup.py" in res["msg"]


def test_probe_and_source_dir_are_exclusive(tmp_path, run_module):
    res = run_module(
        package_build,
        {"dest": str(tmp_path), "source_dir": str(tmp_path), "probe": {"name": "x", "version": "1"}},
    )
    assert res.failed and "mutually exclusive" in res["msg"]


def test_source_dir_build_and_fingerprint(tmp_path, run_module):
    src = tmp_path / "project"
    pb.write_probe_project(pb.probe_spec("src-project", "3.1.4"), str(src))
    args = {"dest": str(tmp_path / "dist"), "source_dir": str(src), "formats": ["wheel"]}
    res = run_module(package_build, args)
    assert not res.failed, res
    assert res["changed"] is True
    assert (res["name"], res["version"], res["import_name"]) == ("src-project", "3.1.4", "src_project")
    assert res["source_dir"] == str(src)
    assert res["wheel"]["filename"] == "src_project-3.1.4-py3-none-any.whl"

    # The build left build/ and *.egg-info in the tree; they are not part of the fingerprint.
    assert run_module(package_build, args)["changed"] is False

    (src / "src_project" / "extra.py").write_text("X = 1\n")
    changed = run_module(package_build, args)
    assert changed["changed"] is True
    with zipfile.ZipFile(changed["wheel"]["path"]) as whl:
        assert "src_project/extra.py" in whl.namelist()


def test_sdist_only_and_build_failure_tail(tmp_path, run_module):
    src = tmp_path / "broken"
    src.mkdir()
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "no_such_backend_xyz"\n\n'
        '[project]\nname = "broken"\nversion = "1"\n'
    )
    res = run_module(package_build, {"dest": str(tmp_path / "dist"), "source_dir": str(src), "formats": ["sdist"]})
    assert res.failed
    assert "python -m build failed" in res["msg"]
    assert "no_such_backend_xyz" in "\n".join(res["build_output"])
    assert not _dists(tmp_path / "dist")

    ok = tmp_path / "ok"
    pb.write_probe_project(pb.probe_spec("sdist-only", "1.0"), str(ok))
    res = run_module(package_build, {"dest": str(tmp_path / "dist"), "source_dir": str(ok), "formats": ["sdist"]})
    assert not res.failed, res
    assert res["wheel"] is None
    assert _dists(tmp_path / "dist") == ["sdist_only-1.0.tar.gz"]


def test_probe_spec_normalizes():
    spec = pb.probe_spec("My.Probe__X", "1.0.0-RC1")
    assert spec == pb.ProbeSpec("my-probe-x", "1.0.0rc1", "my_probe_x", 0)
    assert pb.build_argv("py", "src", "out", ["wheel"]) == [
        "py", "-m", "build", "--no-isolation", "--wheel", "--outdir", "out", "src"
    ]  # fmt: skip
    assert "-C--build-option=--compression=stored" in pb.build_argv("py", "src", "out", ["wheel"], stored=True)
    assert not any("compression" in a for a in pb.build_argv("py", "src", "out", ["sdist", "wheel"], stored=True))
