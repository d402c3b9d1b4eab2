# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback used by scripts/bench.py: every task's wall time, action and status, written as JSON at the end.

Enabled only by the benchmark (ANSIBLE_CALLBACK_PLUGINS=scripts/bench_plugins, ANSIBLE_CALLBACKS_ENABLED=bench_timer,
BENCH_TIMER_OUT=<file>); it is not part of the collection.
"""

from __future__ import annotations

import json
import os
import time
import typing as t

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timer
type: aggregate
short_description: per-task wall times for scripts/bench.py
description:
  - Records when each task's runner started and finished, its action and status, and writes them to the file named by
    the BENCH_TIMER_OUT environment variable when the playbook ends.
requirements:
  - enabled in callbacks_enabled
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.out = os.environ.get("BENCH_TIMER_OUT")
        self.start = time.monotonic()
        self.running: dict[str, float] = {}
        self.tasks: list[dict[str, t.Any]] = []

    def _key(self, host: t.Any, task: t.Any) -> str:
        return f"{host.get_name()}|{task._uuid}"

    def v2_runner_on_start(self, host: t.Any, task: t.Any) -> None:
        self.running[self._key(host, task)] = time.monotonic()

    def _done(self, result: t.Any, status: str) -> None:
        end = time.monotonic()
        task = result._task
        began = self.running.pop(self._key(result._host, task), end)
        self.tasks.append(
            {
                "name": task.get_name(),
                "action": task.action,
                "status": status,
                "start": round(began - self.start, 4),
                "seconds": round(end - began, 4),
            }
        )

    def v2_runner_on_ok(self, result: t.Any) -> None:
        self._done(result, "ok")

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        self._done(result, "failed")

    def v2_runner_on_skipped(self, result: t.Any) -> None:
        self._done(result, "skipped")

    def v2_runner_on_unreachable(self, result: t.Any) -> None:
        self._done(result, "unreachable")

    def v2_playbook_on_stats(self, stats: t.Any) -> None:
        if not self.out:
            return
        with open(self.out, "w", encoding="utf-8") as handle:
            json.dump({"wall": round(time.monotonic() - self.start, 3), "tasks": self.tasks}, handle)
