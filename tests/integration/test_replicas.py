"""Replicas, for real: two pypiserver processes behind the collection's nginx front (Debian's nginx, round robin).

On local_s3 each replica has its own s3fs mount of one moto bucket, the way two nodes would mount it. With the
cached-dir backend (a listing cached until inotify says otherwise, and inotify never hears of a file written through
the other mount) the replicas test must fail naming the stale replica; with simple-dir it must pass. A target with
one replica skips it with the reason. Each case is one verify.yml run with only the tests it needs.
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import ROOT, run_playbook

VERIFY = ROOT / "verify.yml"
URL = re.compile(r"http://127\.0\.0\.1:\d+/")


def _mounts_under(path) -> list[str]:
    with open("/proc/mounts") as handle:
        return [line.split()[1] for line in handle if line.split()[1].startswith(str(path))]


def _s3_replicas(tmp_path, backend: str, wait: float):
    extra = {
        "pypi_target": "local_s3",
        "pypi_local_replicas": 2,
        "pypi_local_backend": backend,
        "pypi_replica_wait": wait,
    }
    return run_playbook(VERIFY, tmp_path, extra, args=["--tags", "upload,replicas"], timeout=300)


@pytest.mark.slow
@pytest.mark.usefixtures("require_fuse")
def test_cached_backend_on_separate_mounts_fails_naming_the_stale_replica(tmp_path):
    run = _s3_replicas(tmp_path, "cached-dir", wait=4)
    assert run.rc != 0, run.output[-3000:]
    assert run.results["upload"]["status"] == "passed", run.results
    rep = run.results["replicas"]
    assert rep["status"] == "failed", run.results
    reason = rep["reason"]
    # the replica that took the upload sees it; the other, on its own mount, does not: exactly one is named
    assert "1 of 2 replicas is stale" in reason, reason
    named = URL.findall(reason)
    front = URL.findall(run.results["deploy"]["reason"])
    assert len(named) == 1 and front and named[0] != front[0], (named, front, reason)
    assert "--backend simple-dir" in reason and "after 4s" in reason, reason
    # every process stopped, every mount gone, the state removed
    assert _mounts_under(tmp_path) == []
    assert not (tmp_path / "state").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("require_fuse")
def test_simple_dir_backend_on_separate_mounts_passes(tmp_path):
    run = _s3_replicas(tmp_path, "simple-dir", wait=30)
    assert run.rc == 0, run.output[-3000:]
    rep = run.results["replicas"]
    assert rep["status"] == "passed", run.results
    assert "all 2 replicas, asked directly, list" in rep["reason"] and "simple-dir backend" in rep["reason"], rep
    assert _mounts_under(tmp_path) == []
    assert not (tmp_path / "state").exists()


def test_one_replica_skips_with_the_reason(tmp_path):
    run = run_playbook(VERIFY, tmp_path, args=["--tags", "replicas"], timeout=180)
    assert run.rc == 0, run.output[-3000:]
    rep = run.results["replicas"]
    assert rep["status"] == "skipped", run.results
    assert "reaches 1 replica(s) directly" in rep["reason"] and "pypi_local_replicas: 2" in rep["reason"], rep


def test_fewer_replicas_than_expected_fail(tmp_path):
    run = run_playbook(VERIFY, tmp_path, {"pypi_replicas_expected": 2}, args=["--tags", "replicas"], timeout=180)
    assert run.rc != 0
    rep = run.results["replicas"]
    assert rep["status"] == "failed", run.results
    assert "reaches 1 replica(s) directly" in rep["reason"] and "fewer than pypi_replicas_expected (2)" in rep["reason"]
