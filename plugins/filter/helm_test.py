# Copyright: pypi_ops.pypiserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""helm_test_verdict: read ``helm test --logs`` output into a verdict and one sentence."""

from __future__ import annotations

import re
import typing as t

DOCUMENTATION = r"""
name: helm_test_verdict
short_description: The verdict of a C(helm test --logs) run, with one sentence naming what failed
version_added: "0.4.0"
description:
  - Reads the registered result of C(helm test RELEASE --logs) (stdout, stderr, rc).
  - Returns C(ok), the C(suites) with their phases, and C(message), one sentence for the report.
  - A test whose logs say C(forbidden) is reported as an RBAC denial, naming the verb and resource.
positional: _input
options:
  _input:
    description: The registered result of the command.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Judge helm test
  ansible.builtin.assert:
    that: (_ht | pypi_ops.pypiserver.helm_test_verdict).ok
    fail_msg: "{{ (_ht | pypi_ops.pypiserver.helm_test_verdict).message }}"
"""

RETURN = r"""
_value:
  description: C(ok) (bool), C(suites) (list of name and phase), C(message) (str).
  type: dict
"""

_SUITE = re.compile(r"^TEST SUITE:\s+(\S+)\s*$")
_PHASE = re.compile(r"^Phase:\s+(\S+)")
_LOGS = re.compile(r"^POD LOGS:\s+(\S+)")
_FORBIDDEN = re.compile(r'cannot (\w+) resource "([^"]+)"')
_NOISE = ("Traceback", "File ", "raise ", "  ")


def _logs_by_pod(lines: list[str]) -> dict[str, list[str]]:
    logs: dict[str, list[str]] = {}
    current = None
    for line in lines:
        m = _LOGS.match(line)
        if m:
            current = m.group(1)
            logs[current] = []
        elif current is not None and line.strip():
            logs[current].append(line.strip())
    return logs


def _why(log: list[str]) -> str:
    for line in log:
        m = _FORBIDDEN.search(line)
        if m:
            return (
                f"RBAC denied: the test's service account cannot {m.group(1)} {m.group(2)} ({line[:200]}); "
                "check the test Role's verbs (tests.persistenceVerbs)"
            )
    useful = [line for line in log if not line.startswith(_NOISE)]
    return (useful[-1] if useful else (log[-1] if log else "no log"))[:300]


def helm_test_verdict(result: dict[str, t.Any]) -> dict[str, t.Any]:
    stdout = str(result.get("stdout") or "")
    stderr = str(result.get("stderr") or "")
    rc = result.get("rc")
    lines = stdout.splitlines()
    suites: list[dict[str, str]] = []
    for line in lines:
        m = _SUITE.match(line)
        if m:
            suites.append({"name": m.group(1), "phase": "?"})
            continue
        m = _PHASE.match(line)
        if m and suites and suites[-1]["phase"] == "?":
            suites[-1]["phase"] = m.group(1)
    logs = _logs_by_pod(lines)
    failed = [s for s in suites if s["phase"] != "Succeeded"]
    err = next((ln.strip() for ln in stderr.splitlines() if ln.strip().startswith("Error")), stderr.strip()[:300])
    if rc == 0 and suites and not failed:
        return {"ok": True, "suites": suites, "message": f"{len(suites)} test hook(s), all Succeeded"}
    if failed:
        first = failed[0]
        why = _why(logs.get(first["name"], []))
        others = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return {
            "ok": False,
            "suites": suites,
            "message": f"helm test hook {first['name']} {first['phase']}{others}: {why}",
        }
    if not suites:
        return {
            "ok": False,
            "suites": suites,
            "message": f"helm test ran no test hook (rc {rc}): {err or 'no output'}; check the release and "
            "the chart's templates/tests",
        }
    return {"ok": False, "suites": suites, "message": f"helm test exited {rc} though every hook Succeeded: {err}"}


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"helm_test_verdict": helm_test_verdict}
