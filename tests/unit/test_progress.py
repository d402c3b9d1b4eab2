"""Progress: the module-side writer, the callbacks in module_utils, the modules' wiring and the controller's watcher.

Writer and watcher are tested on real files; the callbacks and modules against real pypiserver processes
(fixtures in tests/conftest.py), pod_restart against the fake Kubernetes API server of the contract tests.
The playbook-level proof (lines printed live by ansible-playbook) is tests/integration/test_progress.py.
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import progress, traffic, upload
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import free_port
from ansible_collections.pypi_ops.pypiserver.plugins.modules import http_check, index_list, load_test, package_upload
from ansible_collections.pypi_ops.pypiserver.plugins.plugin_utils import progress_display as pa

KEYS = {"label", "unit", "done", "total", "detail", "elapsed_s"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _read(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _opts() -> httputil.ClientOptions:
    return httputil.ClientOptions(None, None, True, None, 5.0, 30.0)


# ------------------------------------------------------------------ the writer


@pytest.mark.parametrize("path", [None, ""])
def test_no_path_is_a_no_op(path, tmp_path):
    prog = progress.Progress(path, "load", total=3, unit="uploads")
    assert not prog.enabled
    prog.phase("uploads", 3)
    prog.update(1, detail="x", force=True)
    prog(2, total=3, detail="y")
    with prog.heartbeat("twine running", interval=0.01):
        pass
    assert prog.writes == 0
    assert list(tmp_path.iterdir()) == []


def test_writes_one_json_object_atomically(tmp_path):
    path = tmp_path / "progress.json"
    clock = FakeClock()
    prog = progress.Progress(str(path), "load", total=10, unit="uploads", clock=clock)
    clock.now += 2.5
    prog.update(3, detail="1 failed")
    state = _read(path)
    assert set(state) == KEYS
    assert state == {"label": "load", "unit": "uploads", "done": 3, "total": 10, "detail": "1 failed", "elapsed_s": 2.5}
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]  # the temporary file was renamed, not left


def test_rate_limited_to_one_write_per_interval_unless_forced(tmp_path):
    path = tmp_path / "progress.json"
    clock = FakeClock()
    prog = progress.Progress(str(path), "load", unit="uploads", clock=clock)
    prog.update(1)  # the first update is always written
    clock.now += 0.4
    prog.update(2)
    prog.update(3)
    assert prog.writes == 1 and _read(path)["done"] == 1
    clock.now += 0.7  # 1.1 s after the first write
    prog.update(4)
    assert prog.writes == 2 and _read(path)["done"] == 4
    clock.now += 0.1
    prog.phase("downloads", 5)  # a new phase is written at once
    assert prog.writes == 3
    assert _read(path) | {"elapsed_s": None} == {
        "label": "load",
        "unit": "downloads",
        "done": 0,
        "total": 5,
        "detail": "",
        "elapsed_s": None,
    }


def test_callback_protocol_and_bound_prefix(tmp_path):
    path = tmp_path / "progress.json"
    prog = progress.Progress(str(path), "download", unit="bytes", min_interval=0)
    progress.notify(prog, 10, 100, "ignored detail")
    assert _read(path)["done"] == 10 and _read(path)["total"] == 100
    cb = prog.bound("file 1/2 a.whl")
    cb(50, total=200)
    assert _read(path)["detail"] == "file 1/2 a.whl" and _read(path)["total"] == 200
    cb(60, total=200, detail="slow")
    assert _read(path)["detail"] == "file 1/2 a.whl, slow"


def test_notify_swallows_a_broken_callback():
    def broken(*_a, **_kw):
        raise RuntimeError("boom")

    progress.notify(broken, 1, 2, "x")  # does not raise
    progress.notify(None, 1)


@pytest.mark.parametrize("where", ["missing_dir", "parent_is_a_file", "path_is_a_dir"])
def test_never_raises_on_an_unwritable_path(where, tmp_path):
    if where == "missing_dir":
        path = tmp_path / "no" / "such" / "progress.json"
    elif where == "parent_is_a_file":
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "progress.json"
    else:
        path = tmp_path / "adir"
        (path / "child").mkdir(parents=True)  # os.replace cannot replace a non-empty directory
    prog = progress.Progress(str(path), "load", unit="uploads", min_interval=0)
    prog.update(1)
    prog.phase("downloads", 3)
    prog(2, total=3)
    with prog.heartbeat("x", interval=0.01):
        pass
    assert prog.writes == 0 and not prog.enabled  # it gave up after the first failure, silently
    leftovers = [p.name for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []


def test_heartbeat_refreshes_while_a_blocking_call_runs(tmp_path):
    path = tmp_path / "progress.json"
    prog = progress.Progress(str(path), "upload")
    with prog.heartbeat("file 1/1 big.whl (110.0 MiB), twine running", interval=0.05):
        deadline = time.monotonic() + 10
        while prog.writes < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert prog.writes >= 3
    written = prog.writes
    time.sleep(0.2)
    assert prog.writes == written  # the heartbeat stopped with the block
    assert _read(path)["detail"].endswith("twine running")


def test_concurrent_updates_leave_valid_json(tmp_path):
    path = tmp_path / "progress.json"
    prog = progress.Progress(str(path), "load", unit="uploads", min_interval=0)

    def work(base: int) -> None:
        for i in range(200):
            prog.update(base + i, total=1000)

    threads = [threading.Thread(target=work, args=(k * 200,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert set(_read(path)) == KEYS
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]


# ------------------------------------------------------------------ the controller side


@pytest.mark.parametrize(
    ("state", "line"),
    [
        (
            {"label": "load", "unit": "uploads", "done": 37, "total": 100, "detail": "", "elapsed_s": 12.34},
            "  [load] uploads 37/100 (12.3 s)",
        ),
        (
            {"label": "load", "unit": "downloads", "done": 5, "total": 9, "detail": "1 failed", "elapsed_s": 3},
            "  [load] downloads 5/9, 1 failed (3.0 s)",
        ),
        (
            {"label": "download", "unit": "bytes", "done": 47185920, "total": 115343360, "detail": "file 1/1 a.whl"},
            "  [download] file 1/1 a.whl: 45.0/110.0 MiB",
        ),
        (
            {"label": "upload", "unit": "", "done": None, "total": None, "detail": "twine running", "elapsed_s": 10},
            "  [upload] twine running (10.0 s)",
        ),
        (
            {"label": "wait", "unit": "attempt", "done": 4, "total": None, "detail": "refused", "elapsed_s": 1.5},
            "  [wait] attempt 4, refused (1.5 s)",
        ),
    ],
)
def test_render(state, line):
    assert pa.render(state) == line
    assert pa.render(state, "localhost") == line


def test_render_names_a_remote_host_and_bounds_the_detail():
    line = pa.render({"label": "wait", "unit": "attempt", "done": 1, "detail": "x" * 500}, "web1")
    assert line.startswith("  [wait web1] attempt 1, xxx")
    assert len(line) < pa.DETAIL_LIMIT + 40 and line.endswith("...")
    assert pa.render(["not", "a", "state"]) is None


def test_render_shows_the_watchers_time_when_given():
    state = {"label": "upload", "detail": "twine running", "elapsed_s": 0.6}
    assert pa.render(state) == "  [upload] twine running (0.6 s)"
    assert pa.render(state, elapsed=2.04) == "  [upload] twine running (2.0 s)"


class Stream:
    def __init__(self, line_buffering: bool = False, write_through: bool = False) -> None:
        self.line_buffering = line_buffering
        self.write_through = write_through


@pytest.mark.parametrize(
    ("stream", "callback", "stderr"),
    [
        (Stream(line_buffering=True), "default", False),  # a terminal
        (Stream(write_through=True), "default", False),  # python -u / PYTHONUNBUFFERED
        (Stream(), "default", True),  # a pipe or a file: block buffered until the next task
        (None, "default", True),  # no stdout at all
        (Stream(line_buffering=True), "ansible.posix.json", True),  # machine-readable stdout
    ],
)
def test_progress_goes_to_stdout_only_when_it_is_live(stream, callback, stderr):
    assert pa.use_stderr(stream if stream is not None else object(), callback) is stderr


@pytest.mark.parametrize(
    ("kwargs", "wanted"),
    [
        ({}, True),
        ({"enabled": False}, False),  # pypi_progress: false
        ({"transport": "ssh"}, False),  # the module runs on another machine
        ({"check_mode": True}, False),
        ({"async_val": 30}, False),
        ({"become": True}, False),
        ({"args": {"progress_file": "/tmp/mine.json"}}, False),  # set by hand: not ours to delete
    ],
)
def test_action_uses_a_progress_file_only_where_it_can(kwargs, wanted):
    call = {"transport": "local", "check_mode": False, "async_val": 0, "become": False, "args": {"url": "x"}}
    call["enabled"] = True
    call.update(kwargs)
    assert pa.progress_wanted(**call) is wanted


def test_progress_dir_is_private_and_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(pa.tempfile, "tempdir", str(tmp_path))
    first, second = pa.make_progress_dir(), pa.make_progress_dir()
    assert first != second and os.path.dirname(first) == str(tmp_path)
    assert os.listdir(first) == [] and os.stat(first).st_mode & 0o077 == 0  # private to this user
    monkeypatch.setattr(pa.tempfile, "tempdir", str(tmp_path / "missing"))
    assert pa.make_progress_dir() is None  # no directory, no progress; never an error


def test_importing_the_display_side_keeps_module_warnings_working():
    """The display helpers must not pull in controller code: that would reroute module warnings for the process."""
    from ansible.module_utils import _internal

    assert not _internal.is_controller


def test_watcher_emits_only_changes_and_never_raises(tmp_path):
    path = tmp_path / "progress.json"
    seen: list[str] = []
    watcher = pa.ProgressWatcher(str(path), emit=seen.append)
    assert watcher.poll() is None  # no file yet
    prog = progress.Progress(str(path), "load", unit="uploads", total=4, min_interval=0)
    prog.update(1)
    assert watcher.poll() is not None
    assert watcher.poll() is None  # unchanged
    prog.update(2)
    watcher.poll()
    path.write_text("{not json")
    assert watcher.poll() is None
    assert [s.split(" (")[0] for s in seen] == ["  [load] uploads 1/4", "  [load] uploads 2/4"]


def test_watcher_thread_polls_and_stops(tmp_path):
    path = tmp_path / "progress.json"
    seen: list[str] = []
    watcher = pa.ProgressWatcher(str(path), interval=0.02, emit=seen.append)
    watcher.start()
    try:
        prog = progress.Progress(str(path), "load", unit="uploads", total=2, min_interval=0)
        prog.update(1)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert seen and seen[0].startswith("  [load] uploads 1/2")
    assert not watcher._thread.is_alive()


# ------------------------------------------------------------------ callbacks in module_utils, real server


def test_upload_all_and_download_all_report_each_operation(pypiserver, tmp_path):
    files = [traffic.synthetic_wheel(str(tmp_path), "progprobe", f"1.0.{i}") for i in range(5)]
    calls: list[tuple] = []
    lock = threading.Lock()

    def record(done, total=None, detail=""):
        with lock:
            calls.append((done, total, detail))

    ops, _ = traffic.upload_all(files, pypiserver.url, _opts(), parallel=2, progress=record)
    assert all(o.ok for o in ops)
    assert sorted(c[0] for c in calls) == [1, 2, 3, 4, 5] and {c[1] for c in calls} == {5}
    calls.clear()
    ops, _ = traffic.download_all(files[:3], pypiserver.simple_url, _opts(), progress=record)
    assert all(o.ok for o in ops)
    assert calls == [(1, 3, ""), (2, 3, ""), (3, 3, "")]


def test_upload_all_counts_failures_in_the_detail(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/"
    files = [traffic.synthetic_wheel(str(tmp_path), "progprobe", f"1.0.{i}") for i in range(2)]
    calls: list[tuple] = []
    traffic.upload_all(files, url, _opts(), progress=lambda d, total=None, detail="": calls.append((d, detail)))
    assert calls == [(1, "1 failed"), (2, "2 failed")]


def test_http_upload_and_download_report_bytes(pypiserver, tmp_path):
    rec = traffic.synthetic_wheel(str(tmp_path), "progbytes", "1.0.0", payload_size=3 * 1048576)
    sent: list[tuple] = []
    session = httputil.make_session(_opts())
    try:
        got = upload.http_upload(
            session,
            pypiserver.url,
            rec["path"],
            rec["name"],
            rec["version"],
            rec["sha256"],
            _opts(),
            progress=lambda d, total=None, detail="": sent.append((d, total)),
        )
        assert got.outcome == "uploaded", got
        assert len(sent) > 1 and sent[-1][0] == sent[-1][1] > rec["size"]  # the whole multipart body went out
        received: list[tuple] = []
        url = pypiserver.url + "packages/" + rec["filename"]
        sha, size = si.download_and_hash(
            session, url, _opts(), progress=lambda d, total=None, detail="": received.append((d, total))
        )
    finally:
        session.close()
    assert (sha, size) == (rec["sha256"], rec["size"])
    assert received[-1] == (rec["size"], rec["size"]) and len(received) >= 3  # 1 MiB chunks


# ------------------------------------------------------------------ module wiring (in-process runs)


def test_load_test_writes_progress_and_returns_the_same_result(pypiserver, tmp_path, run_module):
    path = tmp_path / "progress.json"
    args = {
        "repository_url": pypiserver.url,
        "simple_url": pypiserver.simple_url,
        "project": "progload",
        "uploads": 4,
        "work_dir": str(tmp_path / "work"),
        "progress_file": str(path),
    }
    res = run_module(load_test, args)
    assert not res.failed, res
    assert res["upload"]["ok"] == 4 and res["download"]["ok"] == 4
    assert "progress_file" not in res
    state = _read(path)
    assert state["label"] == "load" and state["unit"] == "downloads" and state["total"] == 4


def test_http_check_wait_writes_attempts_and_keeps_its_message(tmp_path, run_module):
    path = tmp_path / "progress.json"
    url = f"http://127.0.0.1:{free_port()}/"
    res = run_module(http_check, {"url": url, "wait": 1, "progress_file": str(path)})
    assert res.failed
    assert res["msg"].startswith(f"Connection refused by {url}: nothing listens there")
    assert "gave up after" in res["msg"] and "\n" not in res["msg"] and "attempt 1," not in res["msg"]
    state = _read(path)
    assert state["label"] == "wait" and state["unit"] == "attempt" and state["done"] >= 1
    assert "Connection refused" in state["detail"]
    # without wait there is nothing to report
    once = tmp_path / "once.json"
    assert run_module(http_check, {"url": url, "progress_file": str(once)}).failed
    assert not once.exists()


def test_index_list_verify_hashes_writes_bytes(pypiserver, tmp_path, run_module):
    rec = traffic.synthetic_wheel(pypiserver.package_dir, "progindex", "1.0.0", payload_size=100000)
    path = tmp_path / "progress.json"
    res = run_module(
        index_list,
        {"url": pypiserver.simple_url, "project": "progindex", "verify_hashes": True, "progress_file": str(path)},
    )
    assert not res.failed, res
    assert res["downloads"][0]["sha256"] == rec["sha256"]
    state = _read(path)
    assert state["label"] == "download" and state["unit"] == "bytes"
    assert state["detail"] == f"file 1/1 {rec['filename']}" and state["total"] == rec["size"]


@pytest.mark.parametrize("client", ["http", "twine"])
def test_package_upload_writes_progress(client, pypiserver, tmp_path, run_module):
    rec = traffic.synthetic_wheel(str(tmp_path / "dist"), f"progup-{client}", "1.0.0", payload_size=100000)
    path = tmp_path / "progress.json"
    res = run_module(
        package_upload,
        {"repository_url": pypiserver.url, "files": [rec["path"]], "client": client, "progress_file": str(path)},
    )
    assert not res.failed, res
    assert res["uploaded"] == [rec["filename"]]
    state = _read(path)
    assert state["label"] == "upload" and state["detail"].startswith(f"file 1/1 {rec['filename']}")
    if client == "http":
        assert state["unit"] == "bytes"
    else:
        assert state["detail"].endswith("twine running")
    assert os.path.getsize(os.path.join(pypiserver.package_dir, rec["filename"])) == rec["size"]


@pytest.mark.contract
def test_pod_restart_writes_new_ready_pods(tmp_path, run_module):
    from ansible_collections.pypi_ops.pypiserver.plugins.modules import pod_restart
    from tests.fake_k8s import FakeKube

    kube = FakeKube(tmp_path / "kube", namespaces=("pypi",), default_namespace="pypi", ready_delay=0.3)
    kube.start()
    try:
        kube.add_workload("Deployment", "pypi", "pypiserver", replicas=2)
        path = tmp_path / "progress.json"
        res = run_module(
            pod_restart,
            {
                "kubeconfig": str(kube.kubeconfig),
                "namespace": "pypi",
                "deployment": "pypiserver",
                "poll_interval": 0.05,
                "timeout": 10,
                "progress_file": str(path),
            },
        )
    finally:
        kube.stop()
    assert not res.failed, res
    assert len(res["new_pods"]) == 2
    state = _read(path)
    assert state["label"] == "restart" and state["unit"] == "new Ready pods" and state["total"] == 2
    assert "pod(s) listed" in state["detail"]
