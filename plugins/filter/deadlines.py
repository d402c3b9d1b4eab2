# Copyright: pypi_ops.pypiserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""test_deadline: when one functional test must end, and what that deadline is called in messages."""

from __future__ import annotations

import math
import time
import typing as t

DOCUMENTATION = r"""
name: test_deadline
short_description: The deadline of one functional test, from pypi_test_deadline, pypi_op_timeout and pypi_run_deadline
version_added: "0.4.0"
description:
  - Each test has a default deadline, a multiple of C(pypi_op_timeout) plus a margin that covers the operations it
    runs (see C(DEFAULTS) in the source). With the default C(pypi_op_timeout) of 300 s that is from 3 minutes for
    C(connection) to 25 minutes for C(clients).
  - C(pypi_test_deadline) overrides it - a mapping from test id to seconds, with C(default) for the tests it does
    not name (those keep their own default without it).
  - The run deadline, when set, caps it; the name then says so.
  - Returns C(at) (seconds since the epoch), C(seconds) (the test's allowance), C(name) (the phrase the failure
    messages use), C(timeout) (seconds for an Ansible task C(timeout) backstop, a little after C(at)) and
    C(run_passed) (the run deadline has already passed, so the test is not to start).
positional: _input
options:
  _input:
    description: The test id.
    type: str
    required: true
  overrides:
    description: C(pypi_test_deadline), a mapping of test id (or C(default)) to seconds.
    type: dict
  op_timeout:
    description: C(pypi_op_timeout), seconds.
    type: float
    default: 300
  run_deadline_at:
    description: When the run must end (seconds since the epoch), 0 for no run deadline.
    type: float
    default: 0
  run_deadline:
    description: C(pypi_run_deadline) as configured (seconds), for the name.
    type: float
    default: 0
"""

EXAMPLES = r"""
deadline: "{{ 'load' | pypi_ops.pypiserver.test_deadline(pypi_test_deadline, pypi_op_timeout, pypi_run_deadline_at) }}"
"""

RETURN = r"""
_value:
  description: C(at), C(seconds), C(name), C(timeout) and C(run_passed).
  type: dict
"""

# (operations, margin s): deadline = operations * pypi_op_timeout + margin.
DEFAULTS: dict[str, tuple[float, float]] = {
    "connection": (0.5, 30),
    "web_ui": (0.5, 30),
    "simple_index": (0.5, 30),
    "fallback": (2, 60),
    "upload": (2, 60),
    "download": (2, 60),
    "list": (1, 60),
    "index_conformance": (1, 60),
    "cooldown": (2, 60),
    "multiple_versions": (3, 120),
    "dependencies": (4, 120),
    "persistence": (2, 240),
    "storage": (1, 60),
    "replicas": (2, 120),  # build + upload, then up to pypi_replica_wait (30 s) of polling
    "s3_connectivity": (0.5, 60),
    "s3_upload": (1, 60),
    "s3_download": (1, 60),
    "auth": (1, 120),
    "concurrency": (2, 60),
    "overwrite": (1, 60),
    "large_package": (4, 60),  # build, the size ladder (its steps together), upload, download
    "load": (2, 60),
    "clients": (4, 300),
    "helm_test": (2, 600),
}
FALLBACK = (1, 60)
BACKSTOP = 30  # the Ansible task timeout fires this long after the deadline: the modules stop by themselves first


def _error(msg: str) -> Exception:
    from ansible.errors import AnsibleFilterError  # lazily: see helm_values.py

    return AnsibleFilterError(msg)


def _seconds(value: t.Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _error(f"{what} must be a number of seconds, got {value!r}") from None
    if out < 0 or math.isnan(out):
        raise _error(f"{what} must be 0 or more seconds, got {value!r}")
    return out


def test_deadline(
    test_id: str,
    overrides: t.Any = None,
    op_timeout: t.Any = 300,
    run_deadline_at: t.Any = 0,
    run_deadline: t.Any = 0,
    now: float | None = None,
) -> dict[str, t.Any]:
    now = time.time() if now is None else float(now)
    op = _seconds(op_timeout, "pypi_op_timeout") or 300.0
    ops, margin = DEFAULTS.get(str(test_id), FALLBACK)
    seconds = ops * op + margin
    source = f"the deadline of test {test_id} ({seconds:g} s, pypi_test_deadline)"
    if overrides not in (None, "", {}):
        if not isinstance(overrides, dict):
            raise _error(
                f"pypi_test_deadline must be a mapping of test id to seconds (and 'default' for the others), "
                f"got {overrides!r}"
            )
        key = test_id if test_id in overrides else "default" if "default" in overrides else None
        if key is not None:
            seconds = _seconds(overrides[key], f"pypi_test_deadline.{key}")
            source = f"the deadline of test {test_id} ({seconds:g} s, pypi_test_deadline.{key})"
    at = now + seconds if seconds > 0 else 0.0
    run_at = _seconds(run_deadline_at, "pypi_run_deadline_at")
    name = source
    if run_at and (not at or run_at < at):
        at = run_at
        name = f"the run deadline ({_seconds(run_deadline, 'pypi_run_deadline'):g} s, pypi_run_deadline)"
    timeout = 0 if not at else max(1, math.ceil(at - now) + BACKSTOP)
    return {
        "at": round(at, 3),
        "seconds": seconds,
        "name": name,
        "timeout": timeout,
        "run_passed": bool(run_at) and run_at <= now,
    }


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"test_deadline": test_deadline}
