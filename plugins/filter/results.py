# Copyright: pypi_ops.pypiserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The result bookkeeping of the roles: result_row, failure_reason, skip_reason, client_matrix and
client_set.

Thin wrappers (in the style of kubernetes.core's k8s.py filters) around plugins/module_utils/results.py, where the
logic lives and is unit-tested. Their documentation is in the sidecar files <filter name>.yml beside this one.
"""

from __future__ import annotations

import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import results


def result_row(
    test_id: str,
    priority: str,
    t0: t.Any = None,
    reason: t.Any = "",
    figures: t.Any = None,
    status: str | None = None,
    skip: t.Any = "",
    duration: t.Any = None,
) -> dict[str, t.Any]:
    return results.result_row(
        test_id, priority, t0, reason=reason, figures=figures, status=status, skip=skip, duration=duration
    )


def failure_reason(
    result: t.Any, task: t.Any = None, deadline: t.Any = None, default: str = results.TASK_FAILED, items: bool = True
) -> str:
    return results.failure_reason(result, task, deadline=deadline, default=default, items=items)


def skip_reason(prerequisite: str, status: str = "failed") -> str:
    return results.skip_reason(prerequisite, status)


def client_matrix(
    upload_results: t.Any, install_results: t.Any, install_clients: t.Any, break_on: str | None = None
) -> list[dict[str, t.Any]]:
    return results.client_matrix(upload_results, install_results, install_clients, break_on)


def client_set(clients: t.Any, kind: str) -> list[str]:
    return results.client_set(clients, kind)


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "result_row": result_row,
            "failure_reason": failure_reason,
            "skip_reason": skip_reason,
            "client_matrix": client_matrix,
            "client_set": client_set,
        }
