"""module_utils.resolution (the dependencies test) with real probe wheels, real pypiserver processes, real pip and uv.

A depends on B>=1.0 and A[extra] pulls C; B 9.0 needs Python >=3.99, so no interpreter here can install it.
"""

from __future__ import annotations

import os
import shutil
import typing as t

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe as pb
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import resolution as rs

A, B, C = "pypi-ops-res-a", "pypi-ops-res-b", "pypi-ops-res-c"
TRAP = "pypi_ops_res_b-9.0-py3-none-any.whl"
FULL = {A: "1.0", B: "1.1", C: "1.0"}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, dict[str, t.Any]]:
    """{'a-1.0': record, ...} built once for the module."""
    dest = str(tmp_path_factory.mktemp("res-dists"))
    specs = [
        pb.probe_spec(A, "1.0", dependencies=[f"{B}>=1.0"], extras={"extra": [C]}),
        pb.probe_spec(B, "1.0"),
        pb.probe_spec(B, "1.1"),
        pb.probe_spec(B, "9.0", requires_python=">=3.99"),
        pb.probe_spec(C, "1.0"),
    ]
    return {f"{s.name}-{s.version}": pb.build(None, dest, probe=s, formats=["wheel"])["wheel"] for s in specs}


def opts() -> http.ClientOptions:
    return http.ClientOptions(None, None, True, None, 5.0, 30.0)


def put(server, wheels, *keys: str) -> None:
    os.makedirs(server.package_dir, exist_ok=True)
    for key in keys:
        shutil.copy(wheels[key]["path"], server.package_dir)


def uploaded(wheels) -> dict[str, str]:
    return {w["filename"]: w["sha256"] for w in wheels.values()}


ALL = (f"{A}-1.0", f"{B}-1.0", f"{B}-1.1", f"{B}-9.0", f"{C}-1.0")


@pytest.mark.parametrize("client", ["pip", "uv"])
def test_the_extra_and_the_dependency_resolve_from_the_index_past_the_requires_python_trap(
    client, pypiserver, wheels, uv_bin, tmp_path
):
    put(pypiserver, wheels, *ALL)
    out = rs.resolve(
        None, client, pypiserver.simple_url, f"{A}[extra]", opts(), [TRAP], uploaded(wheels), 120, uv=uv_bin,
        work_dir=str(tmp_path),
    )  # fmt: skip
    assert {n: i["version"] for n, i in out["installed"].items()} == FULL
    assert rs.judge(client, f"{A}[extra]", out["installed"], FULL) == []
    for name, item in out["installed"].items():
        assert item["sha256"] == uploaded(wheels)[item["filename"]], name
        assert item["url"].startswith(pypiserver.url)
    # pypiserver 2.4.2 advertises no data-requires-python: the client had to fetch B 9.0 to learn it cannot run it
    assert out["fetched"] == {TRAP: True}
    plain = rs.resolve(None, client, pypiserver.simple_url, A, opts(), (), uploaded(wheels), 120, uv=uv_bin)
    assert rs.judge(client, A, plain["installed"], {A: "1.0", B: "1.1", C: ""}) == []
    assert not os.listdir(tmp_path)


def test_a_missing_release_is_named(pypiserver, wheels, uv_bin):
    put(pypiserver, wheels, f"{A}-1.0", f"{B}-1.0", f"{B}-9.0", f"{C}-1.0")  # B 1.1 never reached the index
    out = rs.resolve(None, "uv", pypiserver.simple_url, f"{A}[extra]", opts(), (), uploaded(wheels), 120, uv=uv_bin)
    problems = rs.judge("uv", f"{A}[extra]", out["installed"], FULL)
    assert problems == [f"uv resolved {B} to 1.0 for {A}[extra], expected 1.1"]


def test_the_extra_is_not_installed_without_being_asked_for(pypiserver, wheels, uv_bin):
    put(pypiserver, wheels, *ALL)
    out = rs.resolve(None, "uv", pypiserver.simple_url, f"{A}[extra]", opts(), (), uploaded(wheels), 120, uv=uv_bin)
    problems = rs.judge("uv", f"{A}[extra]", out["installed"], {C: ""})
    assert problems == [f"uv installed {C} 1.0 for {A}[extra], which does not ask for it"]


@pytest.mark.parametrize("client", ["pip", "uv"])
def test_a_dependency_served_by_another_index_fails(client, pypiserver_factory, wheels, uv_bin, tmp_path):
    # C is missing from the index under test; its fallback (another index) holds it: dependency confusion on a
    # transitive dependency. The install works, and must not pass.
    other = pypiserver_factory()
    put(other, wheels, f"{C}-1.0")
    server = pypiserver_factory(fallback_url=other.simple_url)
    put(server, wheels, f"{A}-1.0", f"{B}-1.0", f"{B}-1.1")
    with pytest.raises(rs.ResolveError) as err:
        rs.resolve(None, client, server.simple_url, f"{A}[extra]", opts(), (), uploaded(wheels), 120, uv=uv_bin)
    assert "another origin" in err.value.msg and f"127.0.0.1:{other.port}" in err.value.msg, err.value.msg
    assert "--disable-fallback" in err.value.msg


def test_a_wrong_file_behind_the_index_fails(pypiserver, wheels, uv_bin):
    # The uploaded B 1.1 is not the one the index serves (another build under the same name).
    put(pypiserver, wheels, *ALL)
    fake = dict(uploaded(wheels))
    fake[wheels[f"{B}-1.1"]["filename"]] = "0" * 64
    with pytest.raises(rs.ResolveError) as err:
        rs.resolve(None, "pip", pypiserver.simple_url, f"{A}[extra]", opts(), (), fake, 120)
    assert "0" * 64 in err.value.msg and B in err.value.msg


def test_a_dependency_missing_everywhere_is_one_sentence(pypiserver, wheels, uv_bin):
    put(pypiserver, wheels, f"{A}-1.0", f"{C}-1.0")
    for client in ("pip", "uv"):
        with pytest.raises(rs.ResolveError) as err:
            rs.resolve(None, client, pypiserver.simple_url, f"{A}[extra]", opts(), (), {}, 120, uv=uv_bin)
        assert B in err.value.msg, err.value.msg


def test_bad_input_is_one_sentence():
    with pytest.raises(rs.ResolveError) as err:
        rs.resolve(None, "pip", "http://127.0.0.1:9/simple/", "a[extra", opts())
    assert "not PEP 508" in err.value.msg
    with pytest.raises(rs.ResolveError) as err:
        rs.resolve(None, "pip", "ftp://host/simple/", "a", opts())
    assert "not an http(s) URL" in err.value.msg
    with pytest.raises(rs.ResolveError) as err:
        rs.resolve(None, "conda", "http://127.0.0.1:9/simple/", "a", opts())
    assert "not one of" in err.value.msg


def test_probe_dependencies_are_validated():
    with pytest.raises(pb.ProbeError) as err:
        pb.probe_spec("x", "1.0", dependencies=["b>=>1"])
    assert "not PEP 508" in err.value.msg
    with pytest.raises(pb.ProbeError) as err:
        pb.probe_spec("x", "1.0", dependencies="b")
    assert "give a list" in err.value.msg
    with pytest.raises(pb.ProbeError) as err:
        pb.probe_spec("x", "1.0", extras={"bad extra!": ["c"]})
    assert "extra name" in err.value.msg
    with pytest.raises(pb.ProbeError) as err:
        pb.probe_spec("x", "1.0", requires_python="three")
    assert "requires_python" in err.value.msg
    spec = pb.probe_spec("x", "1.0", dependencies=["b >= 1.0"], extras={"Extra": ["c"]}, requires_python=">=3.8")
    assert spec.dependencies == ("b>=1.0",) and spec.extras == (("extra", ("c",)),)
    assert spec.params() == pb.probe_spec("x", "1.0", dependencies=["b>=1.0"], extras={"extra": ["c"]}).params()


def test_direct_wheels_declare_what_setuptools_declares(tmp_path):
    """builder 'direct' (a wheel written without a backend) carries the same dependency metadata as a real build."""
    import email.parser
    import zipfile

    def metadata(builder: str) -> dict[str, list[str]]:
        spec = pb.probe_spec(
            A, "1.0", dependencies=[f"{B}>=1.0"], extras={"extra": [C, f"{B}; python_version>'3'"]},
            requires_python=">=3.9", builder=builder,
        )  # fmt: skip
        whl = pb.build(None, str(tmp_path / builder), probe=spec, formats=["wheel"])["wheel"]
        with zipfile.ZipFile(whl["path"]) as archive:
            names = archive.namelist()
            meta = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        msg = email.parser.Parser().parsestr(meta)
        return {
            key: sorted(msg.get_all(key) or [])
            for key in ("Name", "Version", "Requires-Python", "Requires-Dist", "Provides-Extra")
        }

    assert metadata("direct") == metadata("build")
    with pytest.raises(pb.ProbeError) as err:
        pb.build(None, str(tmp_path / "x"), probe=pb.probe_spec(A, "1.0", builder="direct"), formats=["wheel", "sdist"])
    assert "writes wheels only" in err.value.msg
