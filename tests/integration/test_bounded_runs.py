"""Every run of verify.yml ends within a bound and leaves a complete report (issue 15).

Real components only: a real pypiserver, behind ``tests/faultproxy.py`` (a real proxy) where the fault is on the
wire, and the real verify.yml. Each test states its bound from the timeouts it configures and asserts that bound
only (never a tighter timing):

- a server that stalls every file download mid-body, with the default settings: under 5 minutes, every failed
  test naming the stall, the tests that would only wait out the same stall skipped naming the stalled tests;
- a server that stops answering after N requests: the run ends within the sum of its deadlines;
- a SIGTERM to the whole ansible-playbook process group during ``load`` (what a CI runner sends): the run's
  guardian stops the local pypiserver, and the four report files mark ``load`` interrupted and the rest not run;
- the run deadline: the tests not started are skipped naming it, teardown and report still run, the play fails;
- a per-test deadline: the test fails naming it and the run goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import run_state
from tests.faultproxy import FaultProxy
from tests.helpers import ROOT, VENV_BIN, parse_junit, run_playbook, wait_gone

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

VERIFY = ROOT / "verify.yml"
REPORT_FILES = ("junit.xml", "summary.md", "results.json", "report.html", "metrics.prom")
TINY = {"pypi_large_size_mib": 1, "pypi_load_uploads": 5, "pypi_load_downloads": 5}
OVERHEAD = 120.0  # deploy, teardown, report and Ansible's own per-task cost, on top of what the timeouts allow


def _no_process_left(tmp: Path) -> None:
    """Nothing the run started (a server, a module, the run's guardian) still runs: all name paths under ``tmp``."""
    left = subprocess.run(["pgrep", "-af", str(tmp)], capture_output=True, text=True).stdout.strip()
    assert left == "", f"processes left behind: {left}"


def _complete_report(report_dir: Path) -> dict[str, t.Any]:
    for name in REPORT_FILES:
        assert (report_dir / name).is_file(), f"{name} missing from {report_dir}"
    return json.loads((report_dir / "results.json").read_text())


@contextlib.contextmanager
def _url_target(tmp: Path, **proxy: t.Any) -> t.Iterator[tuple[FaultProxy, dict[str, t.Any]]]:
    """A real pypiserver (authenticated uploads) behind a FaultProxy, and the verify.yml variables for it."""
    password = secrets.token_urlsafe(12)
    ls.write_htpasswd(str(tmp / "htpasswd"), {"bound-user": password})
    spec = ls.Spec(package_dir=str(tmp / "upstream-packages"), auth_actions=("update",), htpasswd=str(tmp / "htpasswd"))
    _, info = ls.start(spec, str(tmp / "upstream"), timeout=30)
    try:
        with FaultProxy(info["url"], **proxy) as fp:
            yield (
                fp,
                {
                    "pypi_target": "url",
                    "pypi_url": fp.url,
                    "pypi_username": "bound-user",
                    "pypi_password": password,
                    "pypi_auth_actions": ["update"],
                },
            )
    finally:
        ls.stop(str(tmp / "upstream"))


def test_a_server_that_stalls_every_download_ends_in_minutes_with_every_failure_naming_the_stall(tmp_path):
    """The issue's case, with the default settings (30 s without a byte is a stall, 300 s per operation)."""
    with _url_target(tmp_path, stall_body=(r"\.(whl|tar\.gz)$", 1 << 20)) as (proxy, target):
        start = time.monotonic()
        run = run_playbook(VERIFY, tmp_path, target, timeout=900)
        took = time.monotonic() - start
        assert proxy.stalled, "the proxy never stalled a download: the test proved nothing"
    assert took < 300, f"the run took {took:.0f} s against a stalling server"
    assert run.rc != 0
    _no_process_left(tmp_path)
    doc = _complete_report(run.report_dir)
    results = {r["id"]: r for r in doc["tests"]}
    failed = [r for r in results.values() if r["status"] == "failed"]
    assert failed, results
    for r in failed:
        assert "no byte for 30 s" in r["reason"], (r["id"], r["reason"])
    stalled_ids = [r["id"] for r in failed]
    breaker_skips = [
        r for r in results.values() if r["reason"].startswith("not run: 2 tests found the server stalling")
    ]
    assert breaker_skips, "the stall breaker skipped nothing"
    for r in breaker_skips:
        assert r["status"] == "skipped" and all(i in r["reason"] for i in stalled_ids[:2]), r
    assert results["upload"]["status"] == "passed"  # uploads are not stalled: the verifier tells them apart


def test_a_server_that_stops_answering_after_n_requests_ends_within_its_deadlines(tmp_path):
    read, connect, deadline = 2, 2, 25
    extra = {
        **TINY,
        "pypi_read_timeout": read,
        "pypi_connect_timeout": connect,
        "pypi_op_timeout": 20,
        "pypi_test_deadline": {"default": deadline},
    }
    with _url_target(tmp_path, hang_after=60) as (proxy, target):
        start = time.monotonic()
        run = run_playbook(VERIFY, tmp_path, {**target, **extra}, timeout=1200)
        took = time.monotonic() - start
        answered = proxy.requests
    tests = len(parse_junit(run.report_dir / "junit.xml"))
    bound = tests * (deadline + 30) + OVERHEAD  # every test at its deadline plus the task backstop, at worst
    assert took < bound, (took, bound)
    assert answered > 60, "the server never stopped answering: the test proved nothing"
    assert run.rc != 0
    _no_process_left(tmp_path)
    doc = _complete_report(run.report_dir)
    failed = [r for r in doc["tests"] if r["status"] == "failed"]
    assert failed
    for r in failed:  # each names a bound: no answer/no byte within the read timeout, or the deadline
        assert any(k in r["reason"] for k in ("within 2", "no byte for 2 s", "deadline", "2s", "timed out")), r


def _server_pid(state_dir: Path) -> int | None:
    state = ls.read_state(str(state_dir)) or {}
    return int(state["pid"]) if state.get("pid") else None


def test_sigterm_during_load_leaves_a_complete_report_and_no_process(tmp_path):
    extra = {**TINY, "pypi_load_uploads": 5000, "pypi_load_downloads": 0, "pypi_load_min_success": 0}
    variables = {
        "pypi_local_state_dir": str(tmp_path / "state"),
        "pypi_work_dir": str(tmp_path / "work"),
        "pypi_report_dir": str(tmp_path / "reports"),
        **extra,
    }
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
    )
    cmd = [str(VENV_BIN / "ansible-playbook"), str(VERIFY), "-e", json.dumps(variables)]
    proc = subprocess.Popen(  # noqa: S603
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    state = Path(run_state.state_path(str(tmp_path / "reports")))
    server_pid = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            doc = run_state.read_state(str(state)) or {}
            server_pid = server_pid or _server_pid(tmp_path / "state")
            if doc.get("current") == "load":
                break
            assert proc.poll() is None, "verify.yml ended before the load test"
            time.sleep(0.2)
        else:
            pytest.fail("the load test never started")
        time.sleep(2)  # in the middle of the uploads
        guardian = int(doc["guardian_pid"])
        os.killpg(proc.pid, signal.SIGTERM)  # what a CI runner does to a cancelled job
        proc.wait(60)
        wait_gone(guardian, 120, "the guardian")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        ls.stop(str(tmp_path / "state"))
    assert server_pid is not None and not run_state.alive(server_pid), "the local pypiserver was left running"
    _no_process_left(tmp_path)
    doc = _complete_report(tmp_path / "reports")
    statuses = {r["id"]: r["status"] for r in doc["tests"]}
    assert statuses["load"] == "interrupted"
    assert statuses["clients"] == "not_run" and statuses["connection"] == "passed"
    assert doc["properties"]["state"] == "interrupted"
    assert "stopped the local pypiserver" in doc["properties"]["teardown_done"]
    assert (tmp_path / "reports" / "summary.md").read_text().startswith("# pypi_ops.pypiserver: INTERRUPTED")


def test_the_run_deadline_skips_what_did_not_start_and_still_tears_down_and_reports(tmp_path):
    run = run_playbook(VERIFY, tmp_path, {**TINY, "pypi_run_deadline": 20}, timeout=600)
    assert run.rc != 0
    doc = _complete_report(run.report_dir)
    cut = [r for r in doc["tests"] if r["reason"] == "not run: the run deadline (20 s, pypi_run_deadline) passed"]
    assert cut and all(r["status"] == "skipped" for r in cut)
    # the play fails: on the test the deadline cut short (its reason names the deadline), else on the skips
    cut_short = [r for r in doc["tests"] if r["status"] == "failed"]
    assert all("the run deadline (20 s, pypi_run_deadline) passed" in r["reason"] for r in cut_short), cut_short
    final = " ".join(run.output.split())
    assert ("The run deadline passed before" in final) or (cut_short and "test(s) failed" in final), final[-2000:]
    assert not (tmp_path / "state").exists(), "the teardown did not run"


def test_a_test_past_its_deadline_fails_naming_it_and_the_run_goes_on(tmp_path):
    extra = {**TINY, "pypi_load_uploads": 5000, "pypi_load_downloads": 0, "pypi_test_deadline": {"load": 8}}
    run = run_playbook(VERIFY, tmp_path, extra, timeout=600)
    assert run.rc != 0
    load = run.results["load"]
    assert load["status"] == "failed"
    assert "the deadline of test load (8 s, pypi_test_deadline.load) passed" in load["reason"], load
    assert run.results["clients"]["status"] == "passed"  # the run went on
    assert float(load["time"]) < 8 + 30 + 10  # the deadline, the backstop after it, and overhead
