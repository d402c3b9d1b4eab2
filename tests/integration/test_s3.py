"""The local S3-backed target, for real: moto on 127.0.0.1, its bucket mounted with s3fs (FUSE),
pypiserver serving the mount. Plus the breaks the S3 tests exist to catch."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_s3
from tests.helpers import ROOT, run_playbook
from tests.unit.test_s3_objects import WRONG_SECRET, auth_moto  # noqa: F401 - fixture

VERIFY = ROOT / "verify.yml"
FAULT = ROOT / "tests" / "playbooks" / "fault.yml"
S3_TESTS = ["s3_connectivity", "s3_upload", "s3_download"]
SMALL = {"pypi_target": "local_s3", "pypi_large_size_mib": 2, "pypi_load_uploads": 10, "pypi_load_downloads": 10}

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("require_fuse")]


def _mounts_under(path) -> list[str]:
    with open("/proc/mounts") as handle:
        return [line.split()[1] for line in handle if line.split()[1].startswith(str(path))]


@pytest.fixture
def s3_server(tmp_path):
    """A moto S3 server with a bucket (no mount), stopped by PID afterwards."""
    spec = local_s3.S3Spec(state_dir=str(tmp_path / "s3only"))
    # start() mounts too; a plain S3 server for the url-target tests is the same processes minus s3fs use
    _, info = local_s3.start(spec)
    yield info
    local_s3.stop(spec.state_dir)


def test_full_suite_on_the_s3_backed_target(tmp_path):
    run = run_playbook(VERIFY, tmp_path, SMALL)
    assert run.rc == 0, run.output[-4000:]
    for test_id in ["upload", "download", "list", "persistence", "storage", *S3_TESTS]:
        assert run.results[test_id]["status"] == "passed", (test_id, run.results)
    assert "objects in s3://pypi/packages/" in run.results["s3_upload"]["reason"]
    # everything stopped and unmounted, state removed
    assert _mounts_under(tmp_path) == []
    assert not (tmp_path / "state").exists()


def test_s3_tests_skip_with_the_reason_on_plain_storage(tmp_path):
    run = run_playbook(VERIFY, tmp_path, args=["--tags", "s3"])
    assert run.rc == 0, run.output[-3000:]
    for test_id in S3_TESTS:
        assert run.results[test_id]["status"] == "skipped"
    assert "not S3" in run.results["s3_connectivity"]["reason"]
    assert run.results["s3_upload"]["reason"] == "prerequisite s3_connectivity skipped"


def test_server_writing_to_a_plain_directory_fails(tmp_path):
    run = run_playbook(
        FAULT,
        tmp_path,
        {
            "pypi_target": "local_s3",
            "fault": "unmount_bucket",
            "fault_before": ["connection"],
            "fault_after": ["upload", "s3_upload"],
        },
    )
    assert run.rc != 0
    assert run.results["upload"]["status"] == "failed"
    # the upload test's storage check reads the bucket: the files are not objects
    assert "missing from storage" in run.results["upload"]["reason"]
    assert "s3://pypi/packages/" in run.results["upload"]["reason"]
    assert run.results["s3_upload"]["status"] == "skipped"
    assert run.results["s3_upload"]["reason"] == "prerequisite upload failed"
    assert _mounts_under(tmp_path) == []


def test_objects_changed_behind_the_servers_back_fail(tmp_path):
    run = run_playbook(
        FAULT,
        tmp_path,
        {
            "pypi_target": "local_s3",
            "fault": "tamper_objects",
            "fault_before": ["upload"],
            "fault_after": ["s3_upload", "s3_download"],
        },
    )
    assert run.rc != 0
    reason = run.results["s3_upload"]["reason"]
    assert run.results["s3_upload"]["status"] == "failed"
    assert "missing from storage" in reason and ".tar.gz" in reason
    assert "sha256" in reason and ".whl" in reason
    assert run.results["s3_download"]["status"] == "failed"


def test_missing_bucket_fails_connectivity(tmp_path, pypiserver, s3_server):
    run = run_playbook(
        VERIFY,
        tmp_path,
        {
            "pypi_target": "url",
            "pypi_url": pypiserver.url,
            "pypi_s3_endpoint_url": s3_server["endpoint_url"],
            "pypi_s3_bucket": "no-such-bucket",
            "pypi_s3_access_key": "pypi-ops",
            "pypi_s3_secret_key": "pypi-ops-secret",
        },
        args=["--tags", "s3_connectivity"],
    )
    assert run.rc != 0
    assert run.results["s3_connectivity"]["status"] == "failed"
    assert "does not exist" in run.results["s3_connectivity"]["reason"]


def test_local_s3_module_lifecycle(tmp_path, run_module):
    from ansible_collections.pypi_ops.pypiserver.plugins.modules import local_s3 as mod

    state = str(tmp_path / "s3")
    first = run_module(mod, {"state_dir": state})
    assert not first.failed, first
    assert first["changed"] and first["s3"]["mounted"]
    again = run_module(mod, {"state_dir": state})
    assert again["changed"] is False
    with open(os.path.join(first["s3"]["mountpoint"], "probe.txt"), "w") as handle:
        handle.write("x")
    listing = subprocess.run(
        ["curl", "-s", f"{first['s3']['endpoint_url']}/pypi?list-type=2"], capture_output=True, text=True, check=False
    ).stdout
    assert "<Key>packages/probe.txt</Key>" in listing
    assert oct(os.stat(os.path.join(state, "s3fs.passwd")).st_mode & 0o777) == "0o600"
    stopped = run_module(mod, {"state_dir": state, "state": "stopped"})
    assert stopped["s3"]["unmounted"] is True
    assert _mounts_under(tmp_path) == []
    for pid in (first["s3"]["moto_pid"], first["s3"]["s3fs_pid"]):
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]


def test_wrong_s3_credentials_fail_connectivity_without_leaking(tmp_path, pypiserver, auth_moto):  # noqa: F811
    wrong = WRONG_SECRET
    run = run_playbook(
        VERIFY,
        tmp_path,
        {
            "pypi_target": "url",
            "pypi_url": pypiserver.url,
            "pypi_s3_endpoint_url": auth_moto.url,
            "pypi_s3_bucket": "secured",
            "pypi_s3_access_key": auth_moto.access_key,
            "pypi_s3_secret_key": wrong,
        },
        args=["--tags", "s3_connectivity", "-vvv"],
    )
    assert run.rc != 0
    reason = run.results["s3_connectivity"]["reason"]
    assert run.results["s3_connectivity"]["status"] == "failed"
    assert "403" in reason and "credentials" in reason
    assert wrong not in run.output
    assert wrong not in (run.report_dir / "junit.xml").read_text()
    # the right secret passes the same test
    good = run_playbook(
        VERIFY,
        tmp_path,
        {
            "pypi_target": "url",
            "pypi_url": pypiserver.url,
            "pypi_s3_endpoint_url": auth_moto.url,
            "pypi_s3_bucket": "secured",
            "pypi_s3_access_key": auth_moto.access_key,
            "pypi_s3_secret_key": auth_moto.secret_key,
        },
        args=["--tags", "s3_connectivity"],
    )
    assert good.rc == 0, good.output[-3000:]
