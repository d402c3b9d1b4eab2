"""playbooks/restore_drill.yml run with the real ansible-playbook on the local and local_s3 targets: real pypiserver
processes, a real moto S3 server mounted with s3fs, real pip.

The backup is checked here independently of the code under test (the tarball opened with tarfile, every member
hashed with hashlib and compared with the manifest), and after every run nothing the drill started may be left:
no process whose command line names the run's directory, no mount under it, no state directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest
import requests

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_s3
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from tests.helpers import ROOT, rewrite_tar_member, run_playbook

DRILL = ROOT / "playbooks" / "restore_drill.yml"
ROWS = ["deploy", "backup", "deploy_fresh", "restore", "files_intact", "install"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def left_behind(tmp_path: Path) -> list[str]:
    """Processes whose command line names ``tmp_path``, and mounts under it."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmd = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(tmp_path) in cmd and "pytest" not in cmd:
            out.append(f"{pid}: {cmd[:200]}")
    with open("/proc/mounts", encoding="utf-8") as mounts:
        out += [line for line in mounts if str(tmp_path) in line]
    return out


def the_backup(backups: Path) -> tuple[Path, dict]:
    (one,) = [p for p in backups.iterdir() if p.is_dir()]
    return one, json.loads((one / "manifest.json").read_text())


def assert_drill_passed(run) -> None:
    assert run.rc == 0, run.output[-4000:]
    assert list(run.results) == ROWS, run.results
    assert all(row["status"] == "passed" for row in run.results.values()), run.results


@pytest.mark.slow
def test_restore_drill_on_local_and_a_tampered_backup(tmp_path):
    backups = tmp_path / "backups"
    run = run_playbook(DRILL, tmp_path / "a", {"pypi_backup_dir": str(backups)})
    assert_drill_passed(run)
    backup_dir, manifest = the_backup(backups)
    assert manifest["format"] == "tar"
    names = {f["name"]: f["sha256"] for f in manifest["files"]}
    (wheel,) = [n for n in names if n.endswith(".whl")]
    assert wheel.startswith("pypiops_probe_")
    with tarfile.open(backup_dir / "packages.tar.gz") as tar:
        assert {m.name: sha(tar.extractfile(m).read()) for m in tar if m.isfile()} == names
    assert f"backed up {len(names)} file(s)" in run.results["backup"]["reason"]
    assert f"serves all {len(names)} file(s) of the manifest" in run.results["files_intact"]["reason"]
    assert f"pip installed {wheel} from the restored index only" in run.results["install"]["reason"]
    # the drill started the target and the fresh server: it stopped both and removed their state
    assert left_behind(tmp_path / "a") == []
    assert not (tmp_path / "a" / "state").exists() and not (tmp_path / "a" / "state-restore").exists()

    # a file altered in the backup after it was taken: the drill refuses it, naming the file and both sha256s
    rewrite_tar_member(backup_dir / "packages.tar.gz", wheel, b"tampered wheel")
    bad = run_playbook(DRILL, tmp_path / "b", {"pypi_restore_from": str(backup_dir)})
    assert bad.rc != 0
    reason = bad.results["backup"]["reason"]
    assert bad.results["backup"]["status"] == "failed", bad.results
    assert f"{wheel} has sha256 {sha(b'tampered wheel')} in the backup, the manifest says {names[wheel]}" in reason
    assert [bad.results[r]["status"] for r in ROWS[2:]] == ["skipped"] * 4
    assert left_behind(tmp_path / "b") == []


@pytest.mark.slow
def test_restore_drill_on_local_s3_keeps_a_running_target(tmp_path, require_fuse):
    """The target already runs (a verify.yml -e pypi_cleanup=false left it): the drill leaves it running, same PID,
    without its probe; the fresh bucket, mount and server it started are gone."""
    state = tmp_path / "state"
    target = {"pypi_target": "local_s3", "pypi_cleanup": False, "pypi_local_state_dir": str(state)}
    try:
        deployed = run_playbook(ROOT / "tests" / "playbooks" / "deploy_only.yml", tmp_path / "deploy", target)
        assert deployed.rc == 0, deployed.output[-4000:]
        server = ls.describe(ls.read_state(str(state)))
        assert server["running"], server
        run = run_playbook(DRILL, tmp_path, {"pypi_target": "local_s3", "pypi_backup_dir": str(tmp_path / "backups")})
        assert_drill_passed(run)
        _backup_dir, manifest = the_backup(tmp_path / "backups")
        assert manifest["format"] == "s3_copy" and manifest["s3"]["prefix"].startswith("pypi-ops-backups/")
        assert manifest["file_count"] == len(manifest["files"]) >= 2
        assert "(a copy under s3://pypi/pypi-ops-backups/" in run.results["backup"]["reason"]
        assert "empty bucket pypi at http://127.0.0.1:" in run.results["deploy_fresh"]["reason"]
        assert "into s3://pypi/packages at http://127.0.0.1:" in run.results["restore"]["reason"]
        # the target still runs, the same process, and its probe is gone again
        assert ls.read_state(str(state))["pid"] == server["pid"] and ls.pid_alive(server["pid"])
        (probe,) = {f["name"].split("-")[0] for f in manifest["files"]}
        listing = requests.get(server["url"] + "simple/", timeout=10)
        assert listing.status_code == 200 and probe.replace("_", "-") not in listing.text.replace("_", "-")
        assert left_behind(tmp_path / "state-restore") == [] and not (tmp_path / "state-restore").exists()
    finally:
        ls.stop(str(state))
        local_s3.stop(str(state / "s3"))
    assert left_behind(tmp_path) == []


def test_restore_drill_refuses_the_url_target_and_s3_on_the_node(tmp_path):
    """The kubernetes drill itself runs on the real cluster (tests/cluster/test_real_cluster.py)."""
    url = run_playbook(DRILL, tmp_path / "u", {"pypi_target": "url", "pypi_url": "http://127.0.0.1:9/"})
    assert url.rc != 0 and "gives no access to the package store" in url.output
    k8s = run_playbook(DRILL, tmp_path / "k", {"pypi_target": "kubernetes", "pypi_k8s_s3_node_mount": True})
    assert k8s.rc != 0 and "drills the chart's claim (persistence.type pvc); drop pypi_k8s_s3_node_mount" in k8s.output
    assert not (tmp_path / "u" / "state").exists() and not (tmp_path / "k" / "state").exists()
