# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side progress display, free of Ansible controller imports at import time.

``render`` turns the JSON state a module wrote (``plugins/module_utils/progress.py``) into one line;
``ProgressWatcher`` polls the file in a daemon thread and prints a line whenever it changed;
``use_stderr`` picks the stream. The action plugins use these through
``progress_action.ProgressActionBase``. Ansible's Display and constants are imported only when a
line is printed: importing controller code flips ansible-core into controller mode for the whole
process, which unit tests that run modules in-process must not get as a side effect.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
import typing as t

POLL_SECONDS = 2.0
DETAIL_LIMIT = 160


def _mib(value: t.Any) -> str:
    return f"{float(value) / 1048576:.1f}"


def render(state: t.Any, host: str | None = None, elapsed: float | None = None) -> str | None:
    """The line printed for one progress state (the JSON object a module wrote); None if it is not one.

    ``elapsed`` (the watcher's seconds since the task started) is shown instead of the state's ``elapsed_s``
    (the module's seconds when it wrote the state), so that the lines of one task count up from its start.
    """
    if not isinstance(state, dict):
        return None
    label = str(state.get("label") or "progress")
    if host and host not in ("localhost", "127.0.0.1"):
        label = f"{label} {host}"
    unit = str(state.get("unit") or "")
    done, total = state.get("done"), state.get("total")
    detail = " ".join(str(state.get("detail") or "").split())
    if len(detail) > DETAIL_LIMIT:
        detail = detail[: DETAIL_LIMIT - 3] + "..."
    numeric = isinstance(done, int | float) and not isinstance(done, bool)
    has_total = isinstance(total, int | float) and not isinstance(total, bool) and total > 0
    if unit == "bytes" and numeric:
        counter = f"{_mib(done)}/{_mib(total)} MiB" if has_total else f"{_mib(done)} MiB"
        text = f"{detail}: {counter}" if detail else counter
    else:
        counter = ""
        if unit and numeric:
            counter = f"{unit} {done}/{total}" if has_total else f"{unit} {done}"
        text = ", ".join(x for x in (counter, detail) if x) or "running"
    if elapsed is None:
        elapsed = state.get("elapsed_s")
    tail = f" ({float(elapsed):.1f} s)" if isinstance(elapsed, int | float) and not isinstance(elapsed, bool) else ""
    return f"  [{label}] {text}{tail}"


class ProgressWatcher:
    """Polls a progress file in a daemon thread and hands a rendered line to ``emit`` whenever it changed."""

    def __init__(
        self,
        path: str,
        host: str | None = None,
        interval: float = POLL_SECONDS,
        emit: t.Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.host = host
        self.interval = interval
        self.emit = emit or display_line
        self.lines: list[str] = []
        self._last: bytes | None = None
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> str | None:
        """Read the file once; emit and return a line when it changed. Never raises."""
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read(65536)
            if not raw or raw == self._last:
                return None
            self._last = raw
            line = render(json.loads(raw.decode("utf-8")), self.host, time.monotonic() - self._start)
            if line is None:
                return None
            self.lines.append(line)
            self.emit(line)
            return line
        except Exception:  # noqa: BLE001 - no file yet, a torn read, a closed display: progress is best effort
            return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pypi-ops-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling. Bounded: a poll is one small file read, and the thread is a daemon anyway."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 1.0)


def stdout_is_live(stream: t.Any = None) -> bool:
    """Whether the controller's stdout shows a line at once: a terminal (line buffered) or ``python -u``.

    A worker's own stdio is /dev/null, but ``sys.__stdout__`` is the object it inherited from the main
    process through fork, so its buffering flags are the main process's. Through a pipe or into a file,
    without PYTHONUNBUFFERED, ansible-playbook's stdout is block buffered and only flushed when the next
    worker forks, so a progress line there would show up after the task, not while it runs.
    """
    stream = sys.__stdout__ if stream is None else stream
    return bool(getattr(stream, "line_buffering", False) or getattr(stream, "write_through", False))


def use_stderr(stream: t.Any = None, callback: str | None = None) -> bool:
    """Print progress on stderr (line buffered even into a pipe) unless stdout is live and meant for humans."""
    if callback is None:
        from ansible import constants as C

        callback = str(getattr(C, "DEFAULT_STDOUT_CALLBACK", "") or "")
    if "json" in callback:
        return True  # a machine-readable stdout (json, jsonl...) must not get stray lines
    return not stdout_is_live(stream)


def display_line(line: str) -> None:
    """Print one progress line with Ansible's Display (proxied to the main process from a worker)."""
    from ansible.utils.display import Display

    Display().display(line, stderr=use_stderr())


def progress_wanted(
    transport: str | None, check_mode: bool, async_val: t.Any, become: bool, args: dict[str, t.Any], enabled: bool
) -> bool:
    """Whether the action plugin should pass a progress file of its own and watch it."""
    if transport != "local":
        return False  # the module runs elsewhere: its file would not be ours to read
    if check_mode or async_val or become:
        return False  # nothing long happens / the module outlives the task / another user could not write here
    if args.get("progress_file"):
        return False  # set by hand: the caller watches it
    return bool(enabled)


def make_progress_dir() -> str | None:
    """A fresh private (0700) temporary directory for the progress file; None when none can be made."""
    try:
        return tempfile.mkdtemp(prefix="pypi_ops-progress-")
    except OSError:
        return None
