# Copyright: pypi_ops.pypiserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""test_skip_reason: whether a functional test runs, and if not, the one-line reason its skip records."""

from __future__ import annotations

import re
import typing as t

DOCUMENTATION = r"""
name: test_skip_reason
short_description: Why a functional test does not run (empty when it runs)
version_added: "0.4.0"
description:
  - In this order - the run deadline has passed; a prerequisite (O(requires), plus C(deploy) and C(connection)) did
    not pass; the run-level stall breaker - O(stall_breaker) earlier tests failed because the server stopped
    sending in the middle of a transfer, and this test downloads files (O(downloads)), so it would only wait out
    the same stall; production mode holds back a test that changes the server (O(destructive)) unless
    O(production_allow) names it.
  - Each reason names what caused it (the deadline, the failed test, the stalled tests, the setting to change).
positional: _input
options:
  _input:
    description: The test id.
    type: str
    required: true
  results:
    description: The results so far (C(pypi_results)).
    type: list
    elements: dict
  requires:
    description: Tests that must have passed.
    type: list
    elements: str
  deadline:
    description: The test's deadline info (the test_deadline filter).
    type: dict
  downloads:
    description: The test downloads package files.
    type: bool
    default: false
  stall_breaker:
    description: C(pypi_stall_breaker), the number of stalled tests after which downloading tests are skipped (0 never).
    type: int
    default: 2
  mode:
    description: C(pypi_mode), test or production.
    type: str
    default: test
  destructive:
    description: What the test would do to the server, when it changes it.
    type: str
    default: ""
  production_allow:
    description: C(pypi_production_allow).
    type: list
    elements: str
"""

EXAMPLES = r"""
pypi_test_skip: "{{ 'load' | pypi_ops.pypiserver.test_skip_reason(pypi_results, ['upload'], pypi_test_deadline_info) }}"
"""

RETURN = r"""
_value:
  description: The reason, or an empty string when the test runs.
  type: str
"""

STALL = re.compile(r"no byte for ([\d.]+) ?s")


def test_skip_reason(
    test_id: str,
    results: t.Any = None,
    requires: t.Any = None,
    deadline: t.Any = None,
    downloads: t.Any = False,
    stall_breaker: t.Any = 2,
    mode: str = "test",
    destructive: str = "",
    production_allow: t.Any = None,
) -> str:
    results = [r for r in results or [] if isinstance(r, dict)]
    deadline = deadline if isinstance(deadline, dict) else {}
    if deadline.get("run_passed"):
        return f"not run: {deadline.get('name') or 'the run deadline'} passed"
    needs = [n for n in list(requires or []) + ["deploy", "connection"] if n != test_id]
    bad = [r for r in results if r.get("id") in needs and r.get("status") != "passed"]
    if bad:
        return f"prerequisite {bad[0].get('id')} {bad[0].get('status')}"
    limit = int(stall_breaker or 0)
    if limit and _truthy(downloads):
        stalled = [r for r in results if r.get("status") == "failed" and STALL.search(str(r.get("reason") or ""))]
        if len(stalled) >= limit:
            first = STALL.search(str(stalled[0].get("reason")))
            return (
                f"not run: {len(stalled)} tests found the server stalling in the middle of transfers "
                f"({', '.join(str(r.get('id')) for r in stalled)}: {first.group(0) if first else 'no byte'}), and this "
                "test downloads files, so it would only wait out the same stall (pypi_stall_breaker: 0 runs it anyway)"
            )
    if mode == "production" and destructive and test_id not in (production_allow or []):
        return (
            f'production mode: {test_id} {destructive}; allow it with -e \'{{"pypi_production_allow": ["{test_id}"]}}\''
        )
    return ""


def _truthy(value: t.Any) -> bool:
    return value is True or str(value).lower() in ("true", "yes", "1", "on")


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"test_skip_reason": test_skip_reason}
