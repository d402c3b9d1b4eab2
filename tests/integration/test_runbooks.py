"""The runbooks in playbooks/ and verify.yml's production mode, run with the real ansible-playbook against real
pypiserver processes.

What each must leave untouched is checked byte for byte on the server's package directory: every file's name,
size, sha256 and mtime, before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
import requests

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import traffic
from tests.helpers import ROOT, run_playbook

PLAYBOOKS = ROOT / "playbooks"


def inventory(package_dir: str) -> dict[str, tuple[int, str, int]]:
    """{relative path: (size, sha256, mtime_ns)} of every file under the package directory."""
    out = {}
    for base, _dirs, files in os.walk(package_dir):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            st = os.stat(path)
            out[os.path.relpath(path, package_dir)] = (st.st_size, digest, st.st_mtime_ns)
    return out


def put_wheel(server, name: str, version: str, payload: int = 64) -> dict:
    return traffic.synthetic_wheel(server.package_dir, name, version, payload)


def creds(server) -> dict:
    return {"pypi_username": server.username or "", "pypi_password": server.password or ""}


def url_target(server, **extra) -> dict:
    return {"pypi_target": "url", "pypi_url": server.url, **creds(server), **extra}


# --------------------------------------------------------------------------- smoke.yml


def test_smoke_reads_a_package_and_changes_nothing(tmp_path, auth_pypiserver):
    wheel = put_wheel(auth_pypiserver, "served-pkg", "1.0.0")
    put_wheel(auth_pypiserver, "served-pkg", "1.1.0")
    put_wheel(auth_pypiserver, "other-pkg", "0.1")
    before = inventory(auth_pypiserver.package_dir)

    first = run_playbook(
        PLAYBOOKS / "smoke.yml",
        tmp_path,
        url_target(
            auth_pypiserver,
            pypi_smoke_package="Served_Pkg",
            pypi_smoke_version="1.0.0",
            pypi_smoke_sha256=wheel["sha256"],
        ),
    )
    assert first.rc == 0, first.output[-4000:]
    assert [k for k, v in first.results.items() if v["status"] == "passed"] == [
        "deploy",
        "connection",
        "simple_index",
        "smoke_package",
    ]
    assert wheel["filename"] in first.results["smoke_package"]["reason"]
    # the report lands in reports/smoke/<UTC time>-url-<run id>/, never over an earlier run's
    assert re.fullmatch(r"\d{8}T\d{6}Z-url-.+", first.report_dir.name), first.report_dir
    assert first.report_dir.parent.name == "smoke"

    second = run_playbook(
        PLAYBOOKS / "smoke.yml", tmp_path, url_target(auth_pypiserver, pypi_smoke_package="served-pkg")
    )
    assert second.rc == 0, second.output[-4000:]
    assert "served_pkg-1.1.0" in second.results["smoke_package"]["reason"]  # newest version by default
    assert second.report_dir != first.report_dir and (first.report_dir / "junit.xml").exists()

    assert inventory(auth_pypiserver.package_dir) == before


def test_smoke_fails_on_a_wrong_hash_a_missing_package_and_a_writing_target(tmp_path, auth_pypiserver):
    put_wheel(auth_pypiserver, "served-pkg", "1.0.0")
    stale = run_playbook(
        PLAYBOOKS / "smoke.yml",
        tmp_path / "a",
        url_target(auth_pypiserver, pypi_smoke_package="served-pkg", pypi_smoke_sha256="0" * 64),
    )
    assert stale.rc != 0
    assert stale.results["smoke_package"]["status"] == "failed"
    assert "expected hash is stale" in stale.results["smoke_package"]["reason"]

    missing = run_playbook(
        PLAYBOOKS / "smoke.yml", tmp_path / "b", url_target(auth_pypiserver, pypi_smoke_package="not-there")
    )
    assert missing.rc != 0 and missing.results["smoke_package"]["status"] == "failed"
    assert "not-there" in missing.results["smoke_package"]["reason"]

    local = run_playbook(PLAYBOOKS / "smoke.yml", tmp_path / "c", {"pypi_target": "local", "pypi_smoke_package": "x"})
    assert local.rc != 0 and "smoke.yml only reads" in local.output
    assert not (tmp_path / "c" / "state").exists()  # refused before anything started


# --------------------------------------------------------------------------- verify.yml in production mode


PRODUCTION_SMALL = {"pypi_mode": "production", "pypi_large_size_mib": 1, "pypi_mv_prerelease": ""}


@pytest.mark.slow
def test_production_mode_leaves_the_index_as_it_found_it(tmp_path, auth_pypiserver):
    for name, version in (("app-core", "1.0"), ("app-core", "1.1"), ("app-cli", "2.0")):
        put_wheel(auth_pypiserver, name, version)
    before = inventory(auth_pypiserver.package_dir)

    run = run_playbook(ROOT / "verify.yml", tmp_path, url_target(auth_pypiserver, **PRODUCTION_SMALL))
    assert run.rc == 0, run.output[-4000:]
    for test_id in ("persistence", "overwrite", "load"):
        assert run.results[test_id]["status"] == "skipped", run.results[test_id]
        assert "production mode" in run.results[test_id]["reason"]
        assert "pypi_production_allow" in run.results[test_id]["reason"]
    for test_id in ("upload", "download", "list", "multiple_versions", "auth", "concurrency", "large_package"):
        assert run.results[test_id]["status"] == "passed", (test_id, run.results[test_id])
    assert run.results["probe_cleanup"]["status"] == "passed", run.results["probe_cleanup"]
    assert run.results["index_unchanged"]["status"] == "passed", run.results["index_unchanged"]
    assert run.report_dir.parent.name == "verify" and "-url-" in run.report_dir.name
    # the same files, with the same bytes and mtimes: nothing was overwritten, removed or left behind
    assert inventory(auth_pypiserver.package_dir) == before

    # allowed explicitly, a destructive test runs (and its probes are removed too)
    allowed = run_playbook(
        ROOT / "verify.yml",
        tmp_path / "allowed",
        url_target(auth_pypiserver, **PRODUCTION_SMALL, pypi_production_allow=["load"], pypi_load_uploads=5),
        args=["--tags", "load"],
    )
    assert allowed.rc == 0, allowed.output[-4000:]
    assert allowed.results["load"]["status"] == "passed"
    assert inventory(auth_pypiserver.package_dir) == before


@pytest.mark.slow
def test_production_mode_removes_probes_after_a_failed_test(tmp_path, auth_pypiserver):
    put_wheel(auth_pypiserver, "app-core", "1.0")
    before = inventory(auth_pypiserver.package_dir)
    # the operator expects downloads to need credentials too; this server only guards uploads: the auth test
    # fails after its probe was uploaded
    run = run_playbook(
        ROOT / "verify.yml",
        tmp_path,
        url_target(auth_pypiserver, **PRODUCTION_SMALL, pypi_auth_expect=["update", "download"]),
        args=["--tags", "p0,auth"],
    )
    assert run.rc != 0
    assert run.results["auth"]["status"] == "failed"
    assert run.results["probe_cleanup"]["status"] == "passed"
    assert run.results["index_unchanged"]["status"] == "passed"
    assert inventory(auth_pypiserver.package_dir) == before


def test_production_mode_refuses_to_deploy_a_kubernetes_release(tmp_path):
    run = run_playbook(ROOT / "verify.yml", tmp_path, {"pypi_mode": "production", "pypi_target": "kubernetes"})
    assert run.rc != 0
    assert "never installs or upgrades a release" in run.output
    assert run.results["deploy"]["status"] == "failed"


# --------------------------------------------------------------------------- persistence_drill.yml


def _deploy_local(tmp_path: Path, **extra) -> dict:
    variables = {"pypi_cleanup": False, **extra}
    run = run_playbook(ROOT / "tests" / "playbooks" / "deploy_only.yml", tmp_path, variables)
    assert run.rc == 0, run.output[-4000:]
    return json.loads((tmp_path / "state" / "server.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("ephemeral", [False, True], ids=["durable", "ephemeral"])
def test_persistence_drill_on_the_local_target(tmp_path, ephemeral):
    state = tmp_path / "state"
    try:
        server = _deploy_local(tmp_path, pypi_local_ephemeral=ephemeral)
        package_dir = server["package_dir"]
        for name in ("keep-a", "keep-b"):
            traffic.synthetic_wheel(package_dir, name, "1.0")
        before = inventory(package_dir)
        run = run_playbook(
            PLAYBOOKS / "persistence_drill.yml", tmp_path, {"pypi_local_ephemeral": ephemeral, "pypi_drill_count": 5}
        )
        after = ls.read_state(str(state))
        assert after["pid"] != server["pid"]  # the drill restarted the server ...
        assert ls.pid_alive(after["pid"])  # ... and left it running
        if not ephemeral:
            assert run.rc == 0, run.output[-4000:]
            assert run.results["persistence_drill"]["status"] == "passed"
            assert "2 file(s) of 2 package(s)" in run.results["persistence_drill"]["reason"]
            assert {k: v[:2] for k, v in inventory(package_dir).items()} == {k: v[:2] for k, v in before.items()}
        else:  # the storage is emptied on restart: the drill must say so
            assert run.rc != 0
            assert run.results["persistence_drill"]["status"] == "failed"
            assert "lost" in run.results["persistence_drill"]["reason"]
    finally:
        ls.stop(str(state))


def test_persistence_drill_refuses_the_url_target(tmp_path):
    run = run_playbook(PLAYBOOKS / "persistence_drill.yml", tmp_path, {"pypi_target": "url", "pypi_url": "http://x/"})
    assert run.rc != 0 and "cannot restart" in run.output


# --------------------------------------------------------------------------- cleanup_probes.yml


def test_cleanup_probes_lists_in_check_mode_and_removes_only_old_probes(tmp_path, auth_pypiserver):
    old = [
        put_wheel(auth_pypiserver, "pypiops-probe-20200101t000000123", "1.0.0"),
        put_wheel(auth_pypiserver, "pypiops-probe-20200101t000000123-mv", "1.0.1"),
        put_wheel(auth_pypiserver, "pypiops-probe-20200101t000000123-mv", "2.0.0"),
    ]
    young = put_wheel(auth_pypiserver, "pypiops-probe-29990101t000000123", "1.0.0")
    undated = put_wheel(auth_pypiserver, "pypiops-probe-custom", "1.0.0")
    lookalikes = [
        put_wheel(auth_pypiserver, "pypiops-probes-20200101t000000123", "1.0"),
        put_wheel(auth_pypiserver, "my-pypiops-probe-20200101t000000123", "1.0"),
        put_wheel(auth_pypiserver, "pypiops-prob-20200101t000000123", "1.0"),
    ]
    before = inventory(auth_pypiserver.package_dir)

    listed = run_playbook(
        PLAYBOOKS / "cleanup_probes.yml", tmp_path / "check", url_target(auth_pypiserver), args=["--check"]
    )
    assert listed.rc == 0, listed.output[-4000:]
    assert "would remove 3 probe version(s) of 2 project(s)" in listed.results["cleanup_probes"]["reason"]
    assert inventory(auth_pypiserver.package_dir) == before

    removed = run_playbook(PLAYBOOKS / "cleanup_probes.yml", tmp_path / "run", url_target(auth_pypiserver))
    assert removed.rc == 0, removed.output[-4000:]
    assert "removed 3 probe version(s)" in removed.results["cleanup_probes"]["reason"]
    after = inventory(auth_pypiserver.package_dir)
    assert not any(rec["filename"] in after for rec in old)
    survivors = [young, undated, *lookalikes]
    assert {rec["filename"]: before[rec["filename"]] for rec in survivors} == {
        rec["filename"]: after[rec["filename"]] for rec in survivors
    }
    assert len(after) == len(survivors)

    again = run_playbook(PLAYBOOKS / "cleanup_probes.yml", tmp_path / "again", url_target(auth_pypiserver))
    assert again.rc == 0 and "removed 0 probe version(s)" in again.results["cleanup_probes"]["reason"]
    # the server itself is untouched and still serves
    assert requests.get(auth_pypiserver.url + "health", timeout=5).status_code == 200
