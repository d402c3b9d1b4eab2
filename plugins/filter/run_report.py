# Copyright: pypi_ops.pypiserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""report_dest and test_plan: where a run's report goes, and which tests the run is going to report."""

from __future__ import annotations

import datetime
import typing as t

DOCUMENTATION = r"""
name: report_dest
short_description: The directory of a run's report
version_added: "0.4.0"
description:
  - C(pypi_report_dir) itself, or with O(unique) a new directory under it,
    C(<dir>/<name>/<UTC time>-<target>-<run id>), so that reports of a live index are kept side by side.
  - The functional_tests role computes it when the run starts (its checkpoints write the report there as the run
    goes); the report role uses the same value at the end.
positional: _input
options:
  _input:
    description: C(pypi_report_dir).
    type: path
    required: true
  name:
    description: C(pypi_report_name), such as V(verify).
    type: str
    default: verify
  unique:
    description: C(pypi_report_unique).
    type: bool
    default: false
  target:
    description: The target (local, url ...).
    type: str
    default: unknown
  run_id:
    description: The run id.
    type: str
    default: run
"""

EXAMPLES = r"""
pypi_report_dest: "{{ pypi_report_dir | pypi_ops.pypiserver.report_dest(pypi_report_name, pypi_report_unique | bool, pypi_target, run_id) }}"
"""

RETURN = r"""
_value:
  description: The directory.
  type: path
"""


def report_dest(
    report_dir: str, name: str = "verify", unique: t.Any = False, target: str = "unknown", run_id: str = "run"
) -> str:
    if not unique or str(unique).lower() in ("false", "0", "no", ""):
        return str(report_dir)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{report_dir}/{name}/{stamp}-{target or 'unknown'}-{run_id or 'run'}"


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"report_dest": report_dest}
