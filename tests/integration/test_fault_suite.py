"""Fault-injection suite: the FULL verify.yml (every test, tiny sizes) against a server broken in one way.

For each fault the run must fail, exactly the tests that exist to catch that fault must fail (the
others pass or are skipped as on a healthy server), each failure reason must name the cause, and
the teardown must still have run (no pypiserver left, state removed). One healthy full run must
fail nothing. verify.yml and the roles are not changed for testing; the breaks come from:

- the local target's own options (an ephemeral package dir, auth off, overwrite on);
- ``tests/faultproxy.py``, a real reverse proxy in front of a real pypiserver, used as the url
  target (413 body-size limit, the wrong file served for a version);
- saboteur threads acting on the real server behind its back while verify.yml runs: they watch
  the package and work directories and corrupt a stored file, delete one version's file, or kill
  the server with SIGKILL at a point of the run that is fixed by what has already happened.

The runs are independent, so they go two at a time in background threads (``FAULT_SUITE_PARALLEL``
changes that); each test waits for its own run and checks it. Only the selected tests' runs start.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import re
import secrets
import signal
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from tests.faultproxy import FaultProxy
from tests.helpers import ROOT, PlayRun, run_playbook

VERIFY = ROOT / "verify.yml"
PARALLEL = max(1, int(os.environ.get("FAULT_SUITE_PARALLEL", "2")))
# Every test runs, with tiny sizes: the faults are about correctness, not volume.
TINY = {"pypi_large_size_mib": 1, "pypi_load_uploads": 5, "pypi_load_downloads": 5}
RUN_TIMEOUT = 900
SABOTEUR_WAIT = 600  # a saboteur gives up (and says so) if its trigger never comes
POLL = 0.02

# Results of a healthy full run: the tests that pass on each target, and the ones skipped.
LOCAL_PASSED = {
    "deploy",
    "connection",
    "web_ui",
    "simple_index",
    "fallback",
    "upload",
    "download",
    "list",
    "index_conformance",
    "cooldown",
    "multiple_versions",
    "dependencies",
    "persistence",
    "storage",
    "auth",
    "concurrency",
    "overwrite",
    "large_package",
    "load",
    "clients",
}
LOCAL_SKIPPED = {"s3_connectivity", "s3_upload", "s3_download", "helm_test", "replicas"}  # replicas: one server
URL_SKIPPED = LOCAL_SKIPPED | {"persistence", "storage"}
URL_PASSED = LOCAL_PASSED - URL_SKIPPED

# xdist: one worker runs the whole module; fault_runs starts every fault's run for the tests of this module
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fault_suite")]


# ---------------------------------------------------------------- what a run knows about itself


@dataclass
class Context:
    """Paths and names of one run, known before it starts (the run id is chosen here)."""

    tmp: Path
    run_id: str
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    @property
    def package_dir(self) -> Path:
        return self.state_dir / "packages"  # pypi_local_package_dir's default

    @property
    def run_dir(self) -> Path:
        return self.tmp / "work" / self.run_id  # pypi_run_dir

    def wheel(self, suffix: str = "", version: str = "1.0.0") -> str:
        """Filename of a probe wheel: the run's probe, or its ``-mv``/``-auth``/... project."""
        return f"pypiops_probe_{self.run_id}{suffix.replace('-', '_')}-{version}-py3-none-any.whl"

    def built(self, filename: str) -> Path | None:
        found = sorted(self.run_dir.glob(f"dist/*/{filename}"))
        return found[0] if found else None

    def stored_complete(self, filename: str) -> Path | None:
        """The stored file, once it holds exactly the bytes that were built (the upload is complete)."""
        stored, built = self.package_dir / filename, self.built(filename)
        try:
            if built is not None and stored.read_bytes() == built.read_bytes():
                return stored
        except OSError:
            pass
        return None

    def wait_for(self, what: str, check: t.Callable[[], t.Any]) -> t.Any:
        deadline = time.monotonic() + SABOTEUR_WAIT
        while not self.stop.is_set() and time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(POLL)
        raise TimeoutError(f"saboteur: {what} never happened (the run ended or {SABOTEUR_WAIT}s passed)")

    def server_state(self) -> dict[str, t.Any] | None:
        return ls.read_state(str(self.state_dir))


class PidWatch(threading.Thread):
    """Records every pypiserver PID the local target's state file names during the run."""

    def __init__(self, ctx: Context):
        super().__init__(daemon=True)
        self.ctx = ctx
        self.seen: dict[int, str | None] = {}

    def run(self) -> None:
        while not self.ctx.stop.is_set():
            self.look()
            time.sleep(POLL)

    def look(self) -> None:
        state = self.ctx.server_state()
        if state and state.get("pid"):
            self.seen.setdefault(int(state["pid"]), state.get("pid_start"))


# ---------------------------------------------------------------- saboteurs (behind the server's back)


def corrupt_probe_wheel_once_download_starts(ctx: Context) -> str:
    """Once the probe wheel is stored intact and the download test has started (its pip venv appears
    in the run dir, after upload's checks), flip 64 bytes in the middle of the stored wheel."""
    wheel = ctx.wheel()
    stored = ctx.wait_for(f"{wheel} stored", lambda: ctx.stored_complete(wheel))
    ctx.wait_for("the download test's pip venv", lambda: any(ctx.run_dir.glob("pypi_ops-install-*")))
    data = bytearray(stored.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + 64, len(data))):
        data[i] ^= 0xFF
    with open(stored, "r+b") as handle:  # same name, same size, other bytes
        handle.write(data)
    return f"corrupted 64 bytes at offset {middle} of {wheel} ({len(data)} bytes)"


def delete_one_version(ctx: Context) -> str:
    """Once the multiple_versions probe's 1.0.1 wheel is stored, delete it (2.0.0 and 2.1.0rc1 are still
    to be uploaded, so this happens before the index is read)."""
    wheel = ctx.wheel("-mv", "1.0.1")
    stored = ctx.wait_for(f"{wheel} stored", lambda: ctx.stored_complete(wheel))
    stored.unlink()
    return f"deleted {wheel}"


def kill_server_after_auth_upload(ctx: Context) -> str:
    """Once the auth test's wheel is stored (the 7th upload of the run, after persistence restarted the
    server), SIGKILL the server: auth and every later test talk to a dead server."""
    wheel = ctx.wheel("-auth")
    ctx.wait_for(f"{wheel} stored", lambda: ctx.stored_complete(wheel))
    state = ctx.server_state() or {}
    pid, token = state.get("pid"), state.get("pid_start")
    if not ls.pid_alive(pid, token):
        raise RuntimeError(f"saboteur: no live server to kill (state {state})")
    os.kill(int(pid), signal.SIGKILL)
    return f"killed pypiserver PID {pid} after {wheel} was stored"


# ---------------------------------------------------------------- the faults


@dataclass(frozen=True)
class Fault:
    id: str
    what: str
    failed: frozenset[str]
    reasons: dict[str, str]  # test id -> regex its reason must match (case-insensitive)
    target: str = "local"
    extra: dict[str, t.Any] = field(default_factory=dict)
    saboteur: t.Callable[[Context], str] | None = None
    proxy: dict[str, t.Any] = field(default_factory=dict)


# the kill lands after the auth upload was stored: either its answer or the next request finds no server
REFUSED = r"connection refused|no answer|unreachable|connection (reset|aborted)|remote end closed"

FAULTS = [
    Fault(
        "healthy",
        "no fault: every test passes",
        frozenset(),
        {
            "persistence": r"^restarted \(\d+ -> \d+\)",
            "auth": r"^enforced update: anonymous upload 401",
            "overwrite": r"^overwrite expected off: second upload exists",
        },
    ),
    Fault(
        "storage_lost_on_restart",
        "the package dir is emptied on every restart (pypi_local_ephemeral, like an emptyDir)",
        frozenset({"persistence", "storage"}),
        {"persistence": r"is not on the index|not listed", "storage": r"missing from storage: .*lost"},
        extra={"pypi_local_ephemeral": True},
    ),
    Fault(
        "auth_not_enforced",
        "the server starts without auth while uploads are expected to need it",
        frozenset({"auth"}),
        {"auth": r"expected unauthorized, got uploaded.*upload without credentials"},
        extra={"pypi_auth_actions": [], "pypi_auth_expect": ["update"]},
    ),
    Fault(
        "stored_file_corrupted",
        "the stored probe wheel gets other bytes after upload, when the download test starts",
        # index_conformance passes: pypiserver hashes the file it serves, so link and bytes still agree
        frozenset({"download", "list", "persistence", "storage"}),
        {
            "download": r"not the uploaded file.*sha256|sha256 differs",
            "list": r"sha256 other than the uploaded|sha256 differs",
            "persistence": r"sha256 other than the uploaded|sha256 differs",
            "storage": r"differs in storage: \S+-1\.0\.0-py3-none-any\.whl \(sha256 expected",
        },
        saboteur=corrupt_probe_wheel_once_download_starts,
    ),
    Fault(
        "version_file_deleted",
        "one version's file (multiple_versions 1.0.1) is deleted behind the index's back",
        frozenset({"multiple_versions", "persistence", "storage"}),
        {
            "multiple_versions": r"not listed: \S+_mv-1\.0\.1-",
            "persistence": r"not listed: \S+_mv-1\.0\.1-",
            "storage": r"missing from storage: \S+_mv-1\.0\.1-py3-none-any\.whl\.",
        },
        saboteur=delete_one_version,
    ),
    Fault(
        "body_size_limit",
        "a proxy in front of the server refuses bodies over 512 KiB with 413 (ingress body-size limit)",
        frozenset({"large_package"}),
        {"large_package": r"413.*(proxy-body-size|client_max_body_size)"},
        target="url",
        proxy={"max_body": 512 * 1024},
    ),
    Fault(
        "server_dies_mid_run",
        "the server is SIGKILLed right after the auth test's upload",
        frozenset({"auth", "concurrency", "overwrite", "large_package", "load", "clients"}),
        {
            "auth": REFUSED,
            "concurrency": REFUSED,
            "overwrite": REFUSED,
            "large_package": REFUSED,
            "load": REFUSED,
            "clients": rf"4 of 4 client pair\(s\) failed: twine->pip: upload with twine failed: .*({REFUSED})",
        },
        extra={"pypi_connect_timeout": 2},
        saboteur=kill_server_after_auth_upload,
    ),
    Fault(
        "wrong_file_served",
        "a proxy serves the 1.0.0 wheel's bytes for the multiple_versions 1.0.1 wheel",
        frozenset({"multiple_versions"}),
        {"multiple_versions": r"-mv==1\.0\.1 with bytes whose sha256 differs from the hash in its own index"},
        target="url",
        proxy={"swap": (r"_mv-1\.0\.1-", "_mv-1.0.0-")},
    ),
    Fault(
        "fallback_on",
        "the server redirects projects it does not hold to pypi.org (pypiserver's default --fallback-url)",
        frozenset({"fallback"}),
        {"fallback": r"redirects the unknown project .* to https://pypi\.org/simple/.*--disable-fallback"},
        extra={"pypi_local_fallback_url": "https://pypi.org/simple/"},
    ),
    Fault(
        "overwrite_allowed",
        "the server allows overwriting while the policy says no",
        frozenset({"overwrite"}),
        {"overwrite": r"expected exists, got uploaded"},
        extra={"pypi_overwrite": True, "pypi_overwrite_expected": False},
    ),
]
BY_ID = {fault.id: fault for fault in FAULTS}


# ---------------------------------------------------------------- running one fault


@dataclass
class Outcome:
    fault: Fault
    run: PlayRun | None = None
    error: str = ""
    seconds: float = 0.0
    sabotage: str = ""
    sabotage_error: str = ""
    pids: dict[int, str | None] = field(default_factory=dict)
    left_running: list[int] = field(default_factory=list)
    state_left: bool = False
    proxy_swapped: list[str] = field(default_factory=list)
    upstream_healthy: bool | None = None


def execute(fault: Fault, tmp: Path) -> Outcome:
    """One full verify.yml with ``fault`` injected; everything it started is stopped by PID before returning."""
    # 17 characters, like a generated run id (16-20). With ids of 11 characters or fewer, twine wraps its
    # "already exists" message inside the two words and the overwrite test misreads the refusal.
    ctx = Context(tmp, f"fault{secrets.token_hex(6)}")
    out = Outcome(fault)
    extra: dict[str, t.Any] = {**TINY, "pypi_run_id": ctx.run_id, **fault.extra}
    upstream_state = tmp / "upstream"
    proxy: FaultProxy | None = None
    watch = PidWatch(ctx)
    sab_thread = None
    try:
        if fault.target == "url":
            password = secrets.token_urlsafe(12)
            htpasswd = tmp / "htpasswd"
            ls.write_htpasswd(str(htpasswd), {"fault-user": password})
            spec = ls.Spec(package_dir=str(tmp / "upstream-packages"), auth_actions=("update",), htpasswd=str(htpasswd))
            _, info = ls.start(spec, str(upstream_state), timeout=30)
            proxy = FaultProxy(info["url"], **fault.proxy).__enter__()
            extra.update(
                {
                    "pypi_target": "url",
                    "pypi_url": proxy.url,
                    "pypi_username": "fault-user",
                    "pypi_password": password,
                    "pypi_auth_actions": ["update"],
                }
            )
        else:
            watch.start()
        if fault.saboteur is not None:

            def sabotage() -> None:
                try:
                    out.sabotage = fault.saboteur(ctx)
                except Exception as exc:  # noqa: BLE001 - reported by the test, never lost
                    out.sabotage_error = f"{type(exc).__name__}: {exc}"

            sab_thread = threading.Thread(target=sabotage, daemon=True)
            sab_thread.start()
        t0 = time.monotonic()
        try:
            out.run = run_playbook(VERIFY, tmp, extra, timeout=RUN_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - a hang (TimeoutExpired) is a finding, not a crash of the suite
            out.error = f"{type(exc).__name__}: {exc}"
        out.seconds = time.monotonic() - t0
    finally:
        ctx.stop.set()
        if sab_thread is not None:
            sab_thread.join(10)
        if watch.is_alive():
            watch.join(10)
        if proxy is not None:
            out.proxy_swapped = list(proxy.swapped)
            proxy.stop()
        if fault.target == "url":
            out.upstream_healthy = ls.status(str(upstream_state)).get("healthy")
            ls.stop(str(upstream_state))
        else:
            watch.look()
            out.pids = dict(watch.seen)
            out.state_left = ctx.state_dir.exists()
            # the teardown must have stopped every server; stop leftovers here (by PID) and report them
            for pid, token in out.pids.items():
                if ls.pid_alive(pid, token):
                    out.left_running.append(pid)
                    ls.terminate(pid, token)
    return out


@pytest.fixture(scope="module")
def fault_runs(request, tmp_path_factory):
    """Start the selected faults' runs, PARALLEL at a time, in the order the tests will ask for them."""
    wanted = [
        item.callspec.params["fault_id"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec") and "fault_id" in item.callspec.params
    ]
    pool = cf.ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="fault")
    futures = {
        fault_id: pool.submit(execute, BY_ID[fault_id], tmp_path_factory.mktemp(f"fault-{fault_id}"))
        for fault_id in dict.fromkeys(wanted)
    }
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def _explain(out: Outcome) -> str:
    lines = [f"fault {out.fault.id}: {out.fault.what}", f"sabotage: {out.sabotage or out.sabotage_error or '-'}"]
    if out.run is not None:
        lines += [f"rc={out.run.rc}", json.dumps(out.run.results, indent=1), out.run.output[-3000:]]
    return "\n".join(lines + [out.error])


@pytest.mark.parametrize("fault_id", [fault.id for fault in FAULTS])
def test_full_run_with_fault(fault_id, fault_runs):
    out: Outcome = fault_runs[fault_id].result()
    fault = out.fault
    why = _explain(out)
    assert not out.error, why  # no hang, no crash of ansible-playbook
    assert not out.sabotage_error, why  # the fault was really injected
    if fault.saboteur is not None:
        assert out.sabotage, why
    run = out.run
    assert run is not None and run.results, why

    # the run fails exactly when a fault was injected, and exactly the expected tests fail
    if fault.failed:
        assert run.rc != 0, why
    else:
        assert run.rc == 0, why
    statuses = {test_id: result["status"] for test_id, result in run.results.items()}
    passed = URL_PASSED if fault.target == "url" else LOCAL_PASSED
    skipped = URL_SKIPPED if fault.target == "url" else LOCAL_SKIPPED
    expected = {test_id: "passed" for test_id in passed} | {test_id: "skipped" for test_id in skipped}
    expected |= {test_id: "failed" for test_id in fault.failed}
    assert statuses == expected, why

    print(f"\n[{fault.id}] {out.seconds:.1f} s, rc {run.rc}; sabotage: {out.sabotage or '-'}")
    for test_id in sorted(fault.failed | set(fault.reasons)):
        print(f"  {test_id} {run.results[test_id]['status']}: {run.results[test_id]['reason']}")

    # each failure names its cause, and the play's final message names exactly the failed tests
    for test_id, pattern in fault.reasons.items():
        reason = run.results[test_id]["reason"]
        assert re.search(pattern, reason, re.IGNORECASE | re.DOTALL), (test_id, reason, pattern)
    final = re.search(r"(\d+) test\(s\) failed: ([a-z0-9_, ]+)\.", " ".join(run.output.split()))
    if fault.failed:
        assert final is not None, why
        assert int(final.group(1)) == len(fault.failed), why
        assert set(final.group(2).split(", ")) == fault.failed, why
    else:
        assert final is None, why

    # the teardown ran: no server left running, the state removed (local); the url target stopped nothing
    if fault.target == "local":
        assert out.pids, why  # the watch saw the server
        assert out.left_running == [], why
        assert not out.state_left, why
    else:
        assert out.upstream_healthy is True, why
    if fault.id == "wrong_file_served":
        assert out.proxy_swapped, why  # pip really asked for 1.0.1 and got 1.0.0's bytes
    if fault.id == "server_dies_mid_run":
        assert len(out.pids) >= 2, why  # the first server and the one persistence restarted
