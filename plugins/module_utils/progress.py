# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of a long module run, written to one small JSON file the controller polls.

A module cannot print while it runs, so the long ones (load_test, package_upload, http_check,
index_list, pod_restart) take an optional ``progress_file``. Their action plugins
(``plugins/plugin_utils/progress_action.py``) pick the path when the connection is local,
poll it and print a line when it changed. The file holds one JSON object::

    {"label": "load", "unit": "uploads", "done": 37, "total": 100, "detail": "1 failed", "elapsed_s": 12.3}

It is rewritten atomically (a temporary file, then ``os.replace``), at most once per
``min_interval`` seconds unless forced. Progress is a convenience: with no path it does
nothing, and no failure to write it ever reaches the caller (it stops trying instead).

The protocol code in module_utils takes a plain callback, ``progress(done, total=None,
detail="")``, so it does not need to know about files; :func:`notify` calls one safely.
"""

from __future__ import annotations

import json
import os
import threading
import time
import typing as t

Callback = t.Callable[..., None]


def notify(progress: Callback | None, done: int | None, total: int | None = None, detail: str = "") -> None:
    """Call a progress callback if there is one; whatever it raises is swallowed (progress never breaks a run)."""
    if progress is None:
        return
    try:
        progress(done, total=total, detail=detail)
    except Exception:  # noqa: BLE001 - progress must never break the caller
        pass


class Progress:
    """Writer of the progress file; every method is a no-op without a path and never raises."""

    def __init__(
        self,
        path: str | None,
        label: str,
        total: int | None = None,
        unit: str = "",
        min_interval: float = 1.0,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path or None
        self.label = label
        self.unit = unit
        self.total = total
        self.done: int | None = None
        self.detail = ""
        self.min_interval = min_interval
        self._clock = clock
        self._start = clock()
        self._last_write: float | None = None
        self._lock = threading.Lock()
        self._broken = False
        self.writes = 0  # how many times the file was written (for tests and diagnostics)

    @property
    def enabled(self) -> bool:
        return self.path is not None and not self._broken

    def state(self) -> dict[str, t.Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "done": self.done,
            "total": self.total,
            "detail": self.detail,
            "elapsed_s": round(self._clock() - self._start, 1),
        }

    def update(
        self,
        done: int | None = None,
        detail: str = "",
        total: int | None = None,
        unit: str | None = None,
        force: bool = False,
    ) -> None:
        """Record the new state; write it when ``min_interval`` has passed since the last write (or ``force``)."""
        if not self.enabled:
            return
        try:
            with self._lock:
                self.done = done
                self.detail = detail or ""
                if total is not None:
                    self.total = total
                if unit is not None:
                    self.unit = unit
                now = self._clock()
                if not force and self._last_write is not None and now - self._last_write < self.min_interval:
                    return
                self._last_write = now
                self._write(self.state())
        except Exception:  # noqa: BLE001 - progress must never break the caller
            self._broken = True

    def __call__(self, done: int | None = None, total: int | None = None, detail: str = "") -> None:
        """The ``progress(done, total=None, detail="")`` callback the module_utils functions take."""
        self.update(done, detail=detail, total=total)

    def phase(self, unit: str, total: int | None = None, detail: str = "") -> None:
        """Start a new phase (e.g. uploads, then downloads): counter back to 0, written at once."""
        if not self.enabled:
            return
        with self._lock:
            self.total = None
        self.update(0, detail=detail, total=total, unit=unit, force=True)

    def bound(self, prefix: str) -> Callback:
        """A callback whose detail starts with ``prefix`` (e.g. ``file 1/3 foo.whl``), then the caller's own detail."""

        def callback(done: int | None = None, total: int | None = None, detail: str = "") -> None:
            self.update(done, detail=f"{prefix}, {detail}" if detail else prefix, total=total)

        return callback

    def heartbeat(self, detail: str, interval: float = 2.0) -> _Heartbeat:
        """Context manager: rewrite the file every ``interval`` s (fresh ``elapsed_s``) while a blocking call runs."""
        return _Heartbeat(self, detail, interval)

    def _write(self, state: dict[str, t.Any]) -> None:
        path = t.cast(str, self.path)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(state, handle)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self.writes += 1


class _Heartbeat:
    def __init__(self, progress: Progress, detail: str, interval: float) -> None:
        self.progress = progress
        self.detail = detail
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self.progress.update(self.progress.done, detail=self.detail, force=True)

    def __enter__(self) -> _Heartbeat:
        if self.progress.enabled:
            self.progress.update(self.progress.done, detail=self.detail, force=True)
            self._thread = threading.Thread(target=self._beat, name="progress-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 1.0)
