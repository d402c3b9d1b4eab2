"""The diagnostics bundle of a failed run (issue 19, part 1), with real servers and the real verify.yml.

- a crashed local server: verify.yml on the local target while a watcher kills pypiserver by PID (SIGKILL) once the
  run has built its probe; the run fails and ``diagnostics/`` names the dead process and holds its log's tail, which
  the teardown removes from the state dir right after;
- a lost s3fs mount on local_s3: s3fs killed by PID the same way; the bundle names the dead s3fs process and holds
  the S3 state and log tails, with neither the password nor the S3 secret key in it;
- a 500 from a url target: a real pypiserver behind a FaultProxy that answers 500 (echoing the request's
  Authorization header, as a leaky error page would) for ``/simple/``; the bundle has the request and the response
  (status 500, headers without Authorization, the body's head) and every report file links it;
- secrets: both runs use recognizable secrets (tests/integration/test_secrets.py), given in a vars file as a user
  would; no form of any of them is in any file of the bundle;
- the size caps and the deadline, through the module itself: a server log bigger than the file cap, and a server that
  accepts connections and never answers (FaultProxy hang_after) with a 3 s deadline.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import diagnostics as diag
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.modules import diagnostics as diag_module
from tests.faultproxy import FaultProxy
from tests.helpers import ROOT, PlayRun, run_playbook
from tests.integration.test_secrets import forms, recognizable

VERIFY = ROOT / "verify.yml"
USER = "diag-user"


def bundle_files(report_dir: Path) -> dict[str, str]:
    root = report_dir / "diagnostics"
    return {str(p.relative_to(root)): p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file()}


def assert_no_secret(files: dict[str, str], secrets: list[str]) -> None:
    assert files, "the bundle is empty: nothing was scanned"
    for secret in secrets:
        for form in forms(secret, USER):
            leaks = [name for name, text in files.items() if form in text]
            assert not leaks, f"a form of a secret is in {leaks}"


def vars_file(tmp: Path, values: dict[str, t.Any]) -> list[str]:
    path = tmp / "secrets.json"
    path.write_text(json.dumps(values))
    os.chmod(path, 0o600)
    return ["-e", f"@{path}"]


# ---------------------------------------------------------------- a crashed local server


class Killer(threading.Thread):
    """Kills a process of the run by PID once the probe wheel is built (the upload test is about to send it): by
    default pypiserver, whose PID is ``pid`` in ``state/server.json``."""

    state_file = ("state", "server.json")
    pid_key = "pid"

    def __init__(self, tmp: Path):
        super().__init__(daemon=True)
        self.tmp = tmp
        self.done = threading.Event()
        self.killed: int | None = None
        self.error = ""

    def run(self) -> None:
        deadline = time.monotonic() + 300
        while not self.done.is_set() and time.monotonic() < deadline:
            state = self.tmp.joinpath(*self.state_file)
            wheels = list((self.tmp / "work").glob("*/dist/*/*.whl"))
            if state.exists() and wheels:
                try:
                    pid = int(json.loads(state.read_text())[self.pid_key])
                    os.kill(pid, signal.SIGKILL)
                    self.killed = pid
                except (OSError, ValueError, KeyError) as exc:
                    self.error = f"could not kill {self.pid_key}: {exc}"
                return
            time.sleep(0.02)
        self.error = "the probe was never built"


@pytest.fixture(scope="module")
def crashed_run(tmp_path_factory) -> tuple[PlayRun, Killer, list[str], float]:
    tmp = tmp_path_factory.mktemp("diag-crash")
    secrets = [recognizable("password")]
    killer = Killer(tmp)
    killer.start()
    start = time.monotonic()
    try:
        run = run_playbook(
            VERIFY,
            tmp,
            args=["--tags", "upload,download", *vars_file(tmp, {"pypi_password": secrets[0], "pypi_username": USER})],
        )
    finally:
        killer.done.set()
        killer.join(5)
    return run, killer, secrets, time.monotonic() - start


@pytest.mark.slow
def test_a_crashed_local_server_is_named_with_its_log_tail(crashed_run):
    run, killer, secrets, _seconds = crashed_run
    assert killer.killed, killer.error
    assert run.rc != 0, run.output[-3000:]
    assert "failed" in {r["status"] for r in run.results.values()}, run.results
    files = bundle_files(run.report_dir)
    index = files["index.md"]
    assert f"**cause**: pypiserver process {killer.killed} is not running" in index, index
    assert "last log line:" in index
    process = files["local/process.md"]
    assert f"PID: {killer.killed}" in process and "alive: no" in process
    assert "pypiserver" in process and "started:" in process
    log = files["local/server.log"]
    assert "# tail of " in log and len(log.splitlines()) > 2, log  # the server's own lines, gone from the state dir now
    assert not (run.report_dir.parent / "state").exists(), "the teardown still ran after the collection"
    assert "local/df.txt" in files and "available:" in files["local/df.txt"]
    assert_no_secret(files, secrets)
    assert "- Diagnostics: diagnostics/index.md" in (run.report_dir / "summary.md").read_text()


# ---------------------------------------------------------------- a lost s3fs mount (local_s3)


class MountKiller(Killer):
    """Kills the run's s3fs: the package directory becomes a dead FUSE mount."""

    state_file = ("state", "s3", "s3.json")
    pid_key = "s3fs_pid"


@pytest.mark.slow
def test_a_lost_s3fs_mount_on_local_s3_is_named_with_the_s3_logs(tmp_path, require_fuse):
    secrets = [recognizable("password"), recognizable("s3secret")]
    killer = MountKiller(tmp_path)
    killer.start()
    try:
        run = run_playbook(
            VERIFY,
            tmp_path,
            {"pypi_target": "local_s3"},
            args=[
                "--tags",
                "upload,download",
                *vars_file(
                    tmp_path,
                    {"pypi_password": secrets[0], "pypi_username": USER, "pypi_local_s3_secret_key": secrets[1]},
                ),
            ],
        )
    finally:
        killer.done.set()
        killer.join(5)
    assert killer.killed, killer.error
    assert run.rc != 0, run.output[-3000:]
    assert "failed" in {r["status"] for r in run.results.values()}, run.results
    files = bundle_files(run.report_dir)
    index = files["index.md"]
    assert f"s3fs process {killer.killed} (mount " in index and ") is not running" in index, index
    state = files["s3/state.md"]
    assert f"s3fs PID {killer.killed}: NOT running" in state and "moto PID " in state, state
    assert "a dead mount (nothing serves it)" in state, state  # os.path.ismount cannot see a dead FUSE mount
    assert [n for n in files if n.startswith("s3/") and n.endswith(".log")], sorted(files)  # the s3fs/moto tails
    assert "local/server.log" in files  # the pypiserver that wrote to the dead mount
    assert_no_secret(files, secrets)
    # the teardown still ran after the collection: no mount is left under the run's directory
    with open("/proc/mounts", encoding="utf-8") as mounts:
        assert not [line for line in mounts if str(tmp_path) in line]


# ---------------------------------------------------------------- a 500 from a url target


class Simple500(FaultProxy):
    """A FaultProxy whose /simple/ pages answer 500 and echo the request's Authorization header (a leaky error page);
    every other request reaches the real pypiserver behind it."""

    def handle(self, req: t.Any) -> None:
        if not req.path.startswith("/simple/"):
            super().handle(req)
            return
        body = (
            "<html><body><h1>500 Internal Server Error</h1><pre>upstream index backend crashed; "
            f"request had Authorization: {req.headers.get('Authorization')}</pre></body></html>"
        ).encode()
        req.send_response(500)
        req.send_header("Content-Type", "text/html")
        req.send_header("Content-Length", str(len(body)))
        req.send_header("Set-Cookie", "session=d1agn0st1c-cookie-value; HttpOnly")
        req.end_headers()
        req.wfile.write(body)


@pytest.fixture(scope="module")
def url_500_run(tmp_path_factory) -> tuple[PlayRun, list[str]]:
    tmp = tmp_path_factory.mktemp("diag-500")
    secrets = [recognizable("password")]
    htpasswd = str(tmp / "htpasswd")
    ls.write_htpasswd(htpasswd, {USER: secrets[0]})
    state = str(tmp / "server")
    spec = ls.Spec(package_dir=str(tmp / "packages"), auth_actions=("update", "list", "download"), htpasswd=htpasswd)
    ls.start(spec, state, timeout=30)
    try:
        with Simple500(ls.describe(ls.read_state(state))["url"]) as proxy:
            extra = {"pypi_target": "url", "pypi_url": proxy.url, "pypi_auth_actions": ["update", "list", "download"]}
            run = run_playbook(
                VERIFY,
                tmp,
                extra,
                args=["--tags", "simple_index", *vars_file(tmp, {"pypi_password": secrets[0], "pypi_username": USER})],
            )
    finally:
        ls.stop(state)
    return run, secrets


@pytest.mark.slow
def test_a_500_from_a_url_target_is_recorded_with_its_request_and_response(url_500_run):
    run, secrets = url_500_run
    assert run.rc != 0
    assert run.results["simple_index"]["status"] == "failed", run.results
    files = bundle_files(run.report_dir)
    simple = files["http/02-simple.txt"]
    first = simple.splitlines()[0]
    assert first.startswith("GET http://127.0.0.1:") and first.endswith("/simple/"), first
    assert "> Authorization: [removed]" in simple  # sent, as the tests send it, and not written
    assert "< HTTP 500 Internal Server Error" in simple
    assert "< Set-Cookie: [removed]" in simple and "d1agn0st1c-cookie-value" not in simple
    assert "upstream index backend crashed" in simple  # the body's head
    assert "Basic [REDACTED]" in simple or "[REDACTED]" in simple  # the echoed header, redacted in the body
    root = files["http/01-root.txt"]
    assert "< HTTP 200" in root, root  # the root is served by the real pypiserver behind the proxy
    index = files["index.md"]
    assert "/simple/ answered HTTP 500" in index.split("## Other findings")[0], index
    assert_no_secret(files, secrets)
    # every report file links the bundle
    assert "- Diagnostics: diagnostics/index.md" in (run.report_dir / "summary.md").read_text()
    assert '<a href="diagnostics/index.md">' in (run.report_dir / "report.html").read_text()
    junit = (run.report_dir / "junit.xml").read_text()
    assert "diagnostics: diagnostics/index.md</failure>" in junit


# ---------------------------------------------------------------- the caps and the deadline, through the module


def test_the_file_and_total_caps_hold_on_a_real_server_log(pypiserver_factory, run_module, tmp_path):
    secret = recognizable("password")
    server = pypiserver_factory(auth_actions=("update",), username=USER, password=secret)
    # pypiserver logs little by default: grow its log the way a crash loop would, with lines that carry the password
    with open(os.path.join(server.state_dir, ls.LOG_FILE), "a", encoding="utf-8") as handle:
        for i in range(400):
            handle.write(f"ERROR request {i}: auth failed for {USER}:{secret} at /simple/no-such-project-{i}/\n")
    log_size = os.path.getsize(os.path.join(server.state_dir, ls.LOG_FILE))
    assert log_size > 8192
    total = diag.INDEX_RESERVE + 5000
    result = run_module(
        diag_module,
        {
            "dest": str(tmp_path),
            "target": "local",
            "state_dir": server.state_dir,
            "server": {
                "base_url": server.url,
                "health_url": server.url + "health",
                "storage": {"path": server.package_dir},
            },
            "results": [{"id": "upload", "status": "failed", "reason": "test"}],
            "username": USER,
            "password": secret,
            "file_cap": 4096,
            "total_cap": total,
            "timeout": 30,
        },
    )
    assert not result.failed, result
    root = tmp_path / "diagnostics"
    sizes = {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}
    assert all(size <= 4096 for name, size in sizes.items() if name != "index.md"), sizes
    assert sum(sizes.values()) <= total, sizes
    log = (root / "local" / "server.log").read_text()
    assert log.startswith("[truncated: kept the last") and "no-such-project-399" in log
    index = (root / "index.md").read_text()
    assert "local/server.log" in index and "(truncated)" in index
    assert "alive: yes" in (root / "local" / "process.md").read_text()
    assert "## Not collected" in index  # the total cap left files out, and says which
    assert_no_secret({k: (root / k).read_text() for k in sizes}, [secret])


def test_a_hanging_server_cannot_hold_the_bundle_past_its_deadline(pypiserver, run_module, tmp_path):
    with FaultProxy(pypiserver.url, hang_after=0) as proxy:
        start = time.monotonic()
        result = run_module(
            diag_module,
            {
                "dest": str(tmp_path),
                "target": "url",
                "server": {"base_url": proxy.url, "health_url": proxy.url + "health"},
                "results": [{"id": "connection", "status": "failed", "reason": "timed out"}],
                "timeout": 3,
            },
        )
        seconds = time.monotonic() - start
    assert not result.failed, result
    assert seconds < 5, f"the collection took {seconds:.1f} s with a 3 s deadline"
    root = tmp_path / "diagnostics"
    index = (root / "index.md").read_text()
    first = root / "http" / "01-root.txt"
    if result["timed_out"]:  # the deadline cut the probes: index.md says so, and so does a warning
        assert "Collection stopped at the deadline (3 s)" in index
        assert "deadline" in json.dumps(result.get("warnings", [])), result
    else:  # the first probe's own bound (what was left of the 3 s) ended it, and it says it timed out
        assert "timed out" in first.read_text(), first.read_text()
    assert "connection" in index  # the failed test is listed
