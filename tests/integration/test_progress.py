"""Long tasks print progress while they run: real ansible-playbook, real pypiserver, output read as it comes.

ansible-playbook's stdout and stderr are read line by line while it runs: a progress line must arrive
while the task still runs, not in a flush at exit. The late-port case goes further: the server is
started only after the first progress line has been read, so the task can only pass if progress is
printed live. The three cases cover where the line goes: stdout when it is live (unbuffered, or a
terminal), stderr when stdout is a block-buffered pipe.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
import typing as t
from pathlib import Path

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import free_port
from tests.helpers import ROOT, VENV_BIN

HEADER = """\
- name: Progress
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
"""


class Run(t.NamedTuple):
    rc: int
    lines: list[tuple[str, str]]  # (stream, line) in arrival order; stream is "stdout" or "stderr"

    @property
    def text(self) -> str:
        return "\n".join(line for _stream, line in self.lines)

    def progress(self, label: str, stream: str | None = None) -> list[str]:
        return [line for where, line in self.lines if line.startswith(f"  [{label}] ") and stream in (None, where)]


def play(
    tmp: Path,
    tasks: str,
    on_line: t.Callable[[str, str, subprocess.Popen], None] | None = None,
    terminal: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Run:
    """Run a one-play playbook; call ``on_line(stream, line, proc)`` with each output line as it arrives.

    stdout is a pipe (as in CI), or with ``terminal`` a pseudo-terminal (as in a shell); stderr is a pipe.
    """
    playbook = tmp / "play.yml"
    playbook.write_text(HEADER + tasks)
    scratch = tmp / "tmpdir"
    scratch.mkdir(exist_ok=True)
    child_env = dict(os.environ)
    child_env.pop("PYTHONUNBUFFERED", None)
    child_env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        TMPDIR=str(scratch),  # where the action plugin puts its progress files
    )
    child_env.update(env or {})
    if terminal:
        out_fd, slave = pty.openpty()
        stdout: t.Any = slave
    else:
        stdout = subprocess.PIPE
    proc = subprocess.Popen(
        [str(VENV_BIN / "ansible-playbook"), str(playbook)],
        cwd=ROOT,
        env=child_env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )
    if terminal:
        os.close(slave)
    else:
        out_fd = proc.stdout.fileno()
    streams = {out_fd: "stdout", proc.stderr.fileno(): "stderr"}
    pending = {fd: b"" for fd in streams}
    lines: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout

    def emit(fd: int, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        lines.append((streams[fd], line))
        if on_line is not None:
            on_line(streams[fd], line, proc)

    try:
        open_fds = set(streams)
        while open_fds:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"ansible-playbook did not finish within {timeout}s:\n" + "\n".join(
                line for _s, line in lines[-40:]
            )
            ready, _, _ = select.select(list(open_fds), [], [], min(remaining, 1.0))
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO from a pseudo-terminal whose writers are all gone
                    chunk = b""
                if not chunk:
                    open_fds.discard(fd)
                    if pending[fd]:
                        emit(fd, pending[fd])
                    continue
                pending[fd] += chunk
                while b"\n" in pending[fd]:
                    raw, pending[fd] = pending[fd].split(b"\n", 1)
                    emit(fd, raw)
        rc = proc.wait(timeout=30)
    finally:
        if terminal:
            os.close(out_fd)
        if proc.poll() is None:
            proc.kill()  # by PID: this process only
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert not list(scratch.glob("pypi_ops-progress-*")), "a progress file was left behind"
    return Run(rc, lines)


def test_load_test_prints_progress_live_and_module_defaults_still_apply(auth_pypiserver, tmp_path):
    """300 uploads then 300 downloads of 512 KiB wheels (several seconds); credentials come only from module_defaults."""
    out = tmp_path / "result.json"
    tasks = f"""\
    - name: Load with progress
      module_defaults:
        group/pypi_ops.pypiserver.client:
          username: {auth_pypiserver.username}
          password: {auth_pypiserver.password}
      pypi_ops.pypiserver.load_test:
        repository_url: {auth_pypiserver.url}
        simple_url: {auth_pypiserver.simple_url}
        project: progress-load
        uploads: 300
        payload_size: 524288
        work_dir: {tmp_path / "work"}
      register: load
    - name: Keep the registered result
      ansible.builtin.copy:
        content: "{{{{ load | to_json }}}}"
        dest: {out}
        mode: "0600"
"""
    live: list[bool] = []

    def on_line(_stream: str, line: str, proc: subprocess.Popen) -> None:
        if line.startswith("  [load] ") and not live:
            live.append(proc.poll() is None)  # read while ansible-playbook still runs

    # an unbuffered stdout (PYTHONUNBUFFERED, as a CI job would set) is live: progress goes there
    run = play(tmp_path, tasks, on_line, env={"PYTHONUNBUFFERED": "1"})
    assert run.rc == 0, run.text[-4000:]
    lines = run.progress("load")
    assert lines, run.text[-4000:]
    assert run.progress("load", "stdout") == lines
    assert live == [True]
    # every progress line comes after the task banner and before the task's result
    text = [line for _stream, line in run.lines]
    banner = text.index(next(x for x in text if x.startswith("TASK [Load with progress]")))
    result = text.index(next(x for x in text if x.startswith("changed: [localhost]")))
    assert all(banner < text.index(x) < result for x in lines)
    for line in lines:
        assert line.split("] ", 1)[1].split(" ", 1)[0] in ("wheels", "uploads", "downloads"), line
        assert line.endswith(" s)"), line
    # the registered result is the module's own: nothing added, nothing lost
    res = json.loads(out.read_text())
    assert res["upload"]["ok"] == 300 and res["download"]["ok"] == 300 and res["success_rate"] == 100.0
    assert len(res["operations"]) == 600 and len(res["files"]) == 300
    assert "progress_file" not in json.dumps(res)
    assert not res.get("failed")


def test_http_check_waits_for_a_server_that_starts_late(pypiserver_factory, tmp_path):
    """The server is started only once a progress line has been read: the wait passes only if progress is live."""
    port = free_port()
    out = tmp_path / "result.json"
    tasks = f"""\
    - name: Wait for the server
      pypi_ops.pypiserver.http_check:
        url: http://127.0.0.1:{port}/health
        wait: 60
      register: check
    - name: Keep the registered result
      ansible.builtin.copy:
        content: "{{{{ check | to_json }}}}"
        dest: {out}
        mode: "0600"
"""
    started: list[tuple[str, str]] = []

    def on_line(stream: str, line: str, _proc: subprocess.Popen) -> None:
        if line.startswith("  [wait] ") and not started:
            started.append((stream, line))
            pypiserver_factory(port=port)

    # stdout is a plain pipe, which ansible-playbook block-buffers: the progress goes to stderr, live
    run = play(tmp_path, tasks, on_line)
    assert started, run.text[-4000:]
    assert run.rc == 0, run.text[-4000:]
    stream, line = started[0]
    assert stream == "stderr" and line.startswith("  [wait] attempt ") and "Connection refused" in line, started
    res = json.loads(out.read_text())
    assert res["status"] == 200 and res["attempts"] > 1 and not res.get("failed")


def test_http_check_timeout_keeps_one_sentence_and_progress_can_be_turned_off(tmp_path):
    closed, quiet = free_port(), free_port()
    out = tmp_path / "result.json"
    tasks = f"""\
    - name: Wait for nothing
      pypi_ops.pypiserver.http_check:
        url: http://127.0.0.1:{closed}/
        wait: 5
      register: check
      ignore_errors: true
    - name: Keep the registered result
      ansible.builtin.copy:
        content: "{{{{ check | to_json }}}}"
        dest: {out}
        mode: "0600"
    - name: Wait quietly
      pypi_ops.pypiserver.http_check:
        url: http://127.0.0.1:{quiet}/
        wait: 3
      vars:
        pypi_progress: false
      ignore_errors: true
"""
    # stdout is a terminal (line buffered): the progress goes there, as for a user in a shell
    run = play(tmp_path, tasks, terminal=True)
    assert run.rc == 0, run.text[-4000:]  # both failures were ignored
    lines = run.progress("wait")
    assert lines, run.text[-4000:]
    assert run.progress("wait", "stdout") == lines
    assert all(f"127.0.0.1:{closed}/" in line for line in lines)  # none from the quiet task
    res = json.loads(out.read_text())
    assert res["failed"] is True and res["status"] == -1 and res["attempts"] > 1
    msg = res["msg"]
    assert msg.startswith(f"Connection refused by http://127.0.0.1:{closed}/: nothing listens there;"), msg
    assert "gave up after" in msg and "\n" not in msg and "[wait]" not in msg and "attempt 1," not in msg
