"""The chart's canary script (charts/pypiserver/files/canary.py, what the canary CronJob runs) against real
pypiserver processes: it passes on a healthy index, open or authenticating every action, and fails, naming the step,
on storage that is read-only (a read-only bind mount of the package directory) and on an index it cannot reach.
The CronJob itself runs on the real cluster (tests/cluster)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from tests.integration.test_secrets import recognizable

SCRIPT = ROOT / "charts" / "pypiserver" / "files" / "canary.py"


def canary(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if not k.startswith(("PYPI_", "CANARY_"))}
    child.update(PYPI_URL=url, CANARY_NAME="pypi-ops-canary", CANARY_TIMEOUT="10", **env)
    return subprocess.run([sys.executable, "-I", str(SCRIPT)], env=child, capture_output=True, text=True, timeout=120)


def test_a_healthy_open_index_passes_every_step_and_keeps_nothing(pypiserver):
    run = canary(pypiserver.url)
    assert run.returncode == 0, run.stderr
    steps = [line.split()[0] for line in run.stdout.splitlines() if " ok in " in line]
    assert steps == ["connection", "simple", "upload", "download", "remove"], run.stdout
    assert "CANARY OK" in run.stdout
    assert os.listdir(pypiserver.package_dir) == []  # the canary removed its upload


def test_an_index_that_authenticates_everything_passes_with_the_secret_and_never_prints_it(pypiserver_factory):
    secret = recognizable("canary")
    server = pypiserver_factory(auth_actions=("update", "download", "list"), username="canary", password=secret)
    refused = canary(server.url)
    assert refused.returncode == 1 and "canary step simple failed" in refused.stderr and "HTTP 401" in refused.stderr
    run = canary(server.url, PYPI_USERNAME="canary", PYPI_PASSWORD=secret)
    assert run.returncode == 0, run.stderr
    assert secret not in run.stdout + run.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root")
def test_read_only_storage_fails_the_upload_step(pypiserver_factory, tmp_path):
    packages = tmp_path / "packages"
    packages.mkdir()
    server = pypiserver_factory(package_dir=str(packages))
    subprocess.run(["mount", "--bind", str(packages), str(packages)], check=True, timeout=30)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(packages)], check=True, timeout=30)
        run = canary(server.url)
    finally:
        subprocess.run(["umount", str(packages)], check=True, timeout=30)
    assert run.returncode == 1, run.stdout
    assert "canary step upload failed: the upload of pypi_ops_canary-" in run.stderr, run.stderr
    assert "answered HTTP 500" in run.stderr, run.stderr  # pypiserver cannot write the file
    assert "connection ok" in run.stdout and "simple ok" in run.stdout


def test_an_index_it_cannot_reach_fails_the_connection_step_within_its_timeout():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = canary(f"http://127.0.0.1:{port}/")
    assert run.returncode == 1
    assert run.stderr.startswith("CANARY FAILED: canary step connection failed: GET health could not reach"), run.stderr
