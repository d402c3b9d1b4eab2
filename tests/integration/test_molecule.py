"""The molecule scenarios of extensions/molecule/ (collection mode), run for real with the pinned
molecule: destroy, syntax, converge, idempotence (a second converge changes nothing), verify (the
full suite and its report), destroy. Molecule keeps its ephemeral state in a per-test ANSIBLE_HOME;
HOME is a fresh directory, so a write to ~/.ansible shows up."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from tests.helpers import ROOT, VENV_BIN, parse_junit

MOLECULE = VENV_BIN / "molecule"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

pytestmark = pytest.mark.slow


def _molecule(command: str, scenario: str, tmp_path, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(
        {
            "HOME": str(tmp_path / "home"),
            "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
            "NO_COLOR": "1",
            "ANSIBLE_NOCOLOR": "1",
        }
    )
    env.pop("MOLECULE_EPHEMERAL_DIRECTORY", None)
    return subprocess.run(
        [str(MOLECULE), command, "-s", scenario],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _mounts_under(path) -> list[str]:
    with open("/proc/mounts") as handle:
        return [line.split()[1] for line in handle if line.split()[1].startswith(str(path))]


@pytest.mark.parametrize("scenario", ["default", "s3"])
def test_molecule_scenario(scenario, tmp_path, request):
    if scenario == "s3":
        request.getfixturevalue("require_fuse")  # skip without FUSE/s3fs, as tests/integration/test_s3.py
    if not MOLECULE.exists():
        pytest.fail(f"{MOLECULE} is missing; run 'make dev' (requirements-molecule.txt) first.")
    (tmp_path / "home").mkdir()
    state_dir = ROOT / ".state" / "molecule" / scenario
    junit = ROOT / "reports" / "molecule" / scenario / "junit.xml"
    started = time.time()
    try:
        run = _molecule("test", scenario, tmp_path, timeout=540)
    finally:
        # molecule test destroys on failure too; this is the backstop for a timeout
        if state_dir.exists():
            _molecule("destroy", scenario, tmp_path, timeout=120)
    output = ANSI.sub("", run.stdout + run.stderr)
    assert run.returncode == 0, output[-6000:]

    # every step of the sequence ran and passed, the idempotence step included
    for step in ["destroy", "syntax", "converge", "idempotence", "verify"]:
        # the DETAILS block at the end: "<scenario> > <step>: Executed: Successful" ("➜" on a terminal)
        assert re.search(rf"^{scenario} (?:>|➜) {step}: Executed: Successful", output, re.M), (step, output[-4000:])
    assert "Idempotence test failed" not in output

    # verify wrote this run's report, and every test in it passed (none failed or was skipped)
    assert junit.exists() and junit.stat().st_mtime >= started, f"no fresh {junit}"
    results = parse_junit(junit)
    assert results["deploy"]["status"] == "passed", results["deploy"]
    for test_id in ["connection", "upload", "download", "persistence", "storage"]:
        assert results[test_id]["status"] == "passed", (test_id, results[test_id])
    if scenario == "s3":
        for test_id in ["s3_connectivity", "s3_upload", "s3_download"]:
            assert results[test_id]["status"] == "passed", (test_id, results[test_id])
    failed = {k: v for k, v in results.items() if v["status"] == "failed"}
    assert not failed, failed

    # destroy stopped everything and removed the state; nothing was written to ~/.ansible
    assert not state_dir.exists(), f"{state_dir} left behind"
    assert _mounts_under(state_dir) == []
    assert not (tmp_path / "home" / ".ansible").exists(), "molecule or ansible wrote to ~/.ansible"
    assert (tmp_path / "ansible-home" / "tmp").is_dir(), "molecule did not keep its state in ANSIBLE_HOME"
