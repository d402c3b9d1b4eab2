# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bookkeeping of a run's results: one row per test (or deploy, or rotation step), the one-line reason of a
failure, the reason of a skip, and the clients test's matrix.

The roles call these through the filters in plugins/filter/results.py (result_row, failure_reason, skip_reason,
client_matrix); everything here is plain Python on plain data, so that it is tested without Ansible.

A row is ``{'id', 'priority', 'status', 'duration', 'reason', 'figures'}``, in that order: the report
(module_utils/report.py) and the checkpoints (run_state.py) read it.
"""

from __future__ import annotations

import re
import time
import typing as t

TASK_FAILED = "task failed"
UNNAMED = "?"
TEST_DEADLINE = "the test's deadline"


def result_row(
    test_id: str,
    priority: str,
    t0: t.Any = None,
    reason: t.Any = "",
    figures: t.Any = None,
    status: str | None = None,
    skip: t.Any = "",
    duration: t.Any = None,
    now: float | None = None,
) -> dict[str, t.Any]:
    """One result row. ``status`` defaults to skipped when ``skip`` (the skip reason) is not empty, else passed;
    the reason is then the skip reason. ``duration`` is the seconds since ``t0`` (epoch seconds; none: 0.0),
    rounded to the millisecond, unless given."""
    skip = "" if skip is None else str(skip)
    if status is None:
        status = "skipped" if skip else "passed"
    if skip and status == "skipped":
        reason = skip
    if duration is None:
        duration = elapsed(t0, now)
    return {
        "id": test_id,
        "priority": priority,
        "status": status,
        "duration": round(float(duration), 3),
        "reason": reason,
        "figures": {} if figures is None else figures,
    }


def elapsed(t0: t.Any, now: float | None = None) -> float:
    """Seconds from ``t0`` (epoch seconds, a number or its string) to ``now``, rounded to the millisecond; 0.0
    without a start."""
    if t0 is None or t0 == "":
        return 0.0
    return round((time.time() if now is None else now) - float(t0), 3)


def first_line(message: t.Any, default: str = TASK_FAILED) -> str:
    """The first line of a message (its string form); ``default`` when it has no line at all."""
    lines = str(message).splitlines()
    return lines[0] if lines else default


def failure_message(result: t.Any, default: str = TASK_FAILED, items: bool = True) -> str:
    """The first line of a failed task's message. With ``items``, a loop's failure is the message of its first
    failed item (a loop's own message is only "One or more items failed"), when that item has one."""
    result = result if isinstance(result, dict) else {}
    message: t.Any = result["msg"] if "msg" in result else default
    if items:
        failed = [r for r in result.get("results") or [] if isinstance(r, dict) and r.get("failed")]
        if failed and "msg" in failed[0]:
            message = failed[0]["msg"]
    return first_line(message, default)


def task_name(task: t.Any) -> str:
    """The name of ``ansible_failed_task`` (a dict, or the name itself); ``?`` without one."""
    if isinstance(task, dict):
        return str(task["name"]) if "name" in task else UNNAMED
    return UNNAMED if task is None else str(task)


def failure_reason(
    result: t.Any,
    task: t.Any = None,
    deadline: t.Any = None,
    default: str = TASK_FAILED,
    items: bool = True,
) -> str:
    """The reason of a failed row, from ``ansible_failed_result`` and ``ansible_failed_task``.

    Given a ``deadline`` (a functional test's: the test_deadline filter's info), a task stopped by its Ansible
    ``timeout`` (the backstop after that deadline) is named with the deadline's ``name``. Otherwise the first line
    of the message (failure_message), followed by `` [task: <name>]`` when a task is given."""
    result = result if isinstance(result, dict) else {}
    if deadline is not None and "timedout" in result:
        info = deadline if isinstance(deadline, dict) else {}
        name = info["name"] if "name" in info else TEST_DEADLINE
        return (
            f'{name} passed: the task "{task_name(task)}" was stopped by its Ansible timeout (the backstop); '
            "the server is too slow or hangs"
        )
    message = failure_message(result, default, items)
    return message if task is None else f"{message} [task: {task_name(task)}]"


def skip_reason(prerequisite: str, status: str = "failed") -> str:
    """Why a step or test did not run: the step it needs did not pass."""
    return f"prerequisite {prerequisite} {status}"


# The clients test's client sets: what ``all`` stands for, in matrix order (the collection's own http uploader is
# no ecosystem client, so ``all`` leaves it out; it can still be named).
UPLOAD_CLIENTS = ("twine", "uv", "poetry", "pdm", "hatch")
INSTALL_CLIENTS = ("pip", "uv", "uv-lock", "poetry", "pdm")


def client_set(clients: t.Any, kind: str) -> list[str]:
    """``pypi_clients_upload`` or ``pypi_clients_install`` (``kind`` upload or install) with ``all`` expanded to
    every client of that kind, in matrix order, and duplicates dropped; a bare string is one client."""
    every = UPLOAD_CLIENTS if kind == "upload" else INSTALL_CLIENTS
    names = [clients] if isinstance(clients, str) else list(clients or [])
    out: list[str] = []
    for name in names:
        for one in every if str(name) == "all" else (str(name),):
            if one not in out:
                out.append(one)
    return out


def _seconds(value: t.Any) -> float | None:
    try:
        return round(float(value), 2)
    except (TypeError, ValueError):
        return None


def _get(value: t.Any, key: str, default: t.Any = None) -> t.Any:
    return value.get(key, default) if isinstance(value, dict) else default


def _pair(result: t.Any) -> tuple[t.Any, t.Any]:
    """(upload client, install client) of one install loop result, whose item is [build result, install client]."""
    item = _get(result, "item")
    if isinstance(item, list | tuple) and len(item) == 2:
        return _get(item[0], "item"), item[1]
    return None, None


def client_matrix(
    upload_results: t.Any, install_results: t.Any, install_clients: t.Any, break_on: str | None = None
) -> list[dict[str, t.Any]]:
    """The clients test's matrix: one row per (upload client, install client) pair, in upload then install order.

    ``upload_results``: the results of the upload loop (each item a build result whose ``item`` is the upload
    client); ``install_results``: the results of the install loop over [uploaded probe, install client] (it may
    have stopped early: ``break_on`` is the pattern of the messages that stop it). Each row is
    ``{'status', 'reason', 'upload', 'install', 'package'}``: a missing client is skipped naming it, a failed
    upload fails its pairs, a pair the loop never reached fails saying why, an install that did not report where
    it came from fails with its message, and the rest pass with the version installed and its origin.
    """
    installs = [r for r in install_results or [] if isinstance(r, dict)]
    last = installs[-1] if installs else {}
    stop = str(last.get("msg", ""))
    rows: list[dict[str, t.Any]] = []
    for up in upload_results or []:
        build = _get(up, "item", {})
        upload = _get(build, "item")
        for install in install_clients or []:
            got = [r for r in installs if _pair(r) == (upload, install)]
            if _get(up, "client_missing"):
                row = {"status": "skipped", "reason": f"upload client {upload} is not installed: {_get(up, 'msg', '')}"}
            elif not _get(up, "uploaded"):
                message = up["msg"] if "msg" in up else "nothing uploaded"
                row = {"status": "failed", "reason": f"upload with {upload} failed: {message}"}
            elif not got:
                if break_on is not None and re.search(break_on, stop):
                    reason = f"not run: the matrix stopped after a pair failed with: {stop}"
                else:
                    reason = f"install with {install} did not run"
                row = {"status": "failed", "reason": reason}
            elif got[0].get("client_missing"):
                row = {
                    "status": "skipped",
                    "reason": f"install client {install} is not installed: {got[0].get('msg', '')}",
                }
            elif "origin" not in got[0]:
                message = got[0]["msg"] if "msg" in got[0] else "no result"
                row = {"status": "failed", "reason": f"install with {install} failed: {message}"}
            else:
                row = {
                    "status": "passed",
                    "reason": f"{install} installed {got[0].get('installed_version')} from {got[0]['origin']}",
                }
            files = _get(up, "results") or [{}]
            times = {"upload_seconds": _seconds(_get(files[0], "seconds")), "install_seconds": None}
            if got:
                times["install_seconds"] = _seconds(got[0].get("seconds"))
            rows.append(dict(row, upload=upload, install=install, package=_get(build, "name"), **times))
    return rows
