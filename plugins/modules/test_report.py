#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: test_report
short_description: Write the functional tests' results as JUnit XML, Markdown, JSON, HTML and OpenMetrics
version_added: "0.1.0"
description:
  - Takes the results the C(functional_tests) role recorded (id, priority, status, duration, reason, figures).
  - Writes into O(dest) C(junit.xml) (one testcase per test, named by its id), C(summary.md) (a table),
    C(results.json) and C(report.html).
  - C(results.json) is the machine-readable record, keys always in this order - C(format_version) (1), C(suite),
    C(generated_at) (UTC, C(YYYY-MM-DDTHH:MM:SSZ)), C(properties), C(counts) (passed, failed, skipped, total),
    C(duration) (total seconds) and C(tests), each with C(id), C(priority), C(status), C(duration), C(reason) and
    C(figures) as recorded.
  - C(report.html) is one self-contained file (inline CSS and SVG, no script, no external reference) - the
    status-coloured test table, the duration of each test as a bar chart, the latency histogram of the C(load)
    test (upload and download, from its C(up_hist) and C(down_hist) figures) and the C(large_package) upload and
    download MiB/s. A chart whose test did not run or did not pass is replaced by one line saying so. All text
    taken from the results is HTML-escaped.
  - Figures that are lists or dicts (the histograms) appear only in C(results.json) and C(report.html); scalar
    figures appear in every file.
  - C(metrics.prom) (since 0.7.0) is the run in the OpenMetrics text format, for node_exporter's textfile collector
    or a Pushgateway - whether the run passed, its timestamp, the number of tests per status, each test's status
    and duration, the C(load) test's latency quantiles and operations per second and the C(large_package) upload
    and download rate, all gauges named C(pypi_ops_verify_*) with the labels C(target) and C(suite) (no URL, run
    id or reason). It is written atomically (a temporary file in O(dest), then renamed; mode 0644). See
    C(docs/monitoring.md).
  - Returns the same table as plain rows for the play output. It never fails on test failures itself;
    the C(report) role decides that.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: partial
    details: Writing the report is the point; it is written in check mode too.
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
options:
  results:
    description: List of results, each with C(id), C(status) (passed, failed, skipped), C(duration), C(reason),
      optional C(priority) and C(figures) (a dict of measured values).
    type: list
    elements: dict
    required: true
  dest:
    description: Directory for the report files.
    type: path
    required: true
  suite:
    description: Suite name in the report.
    type: str
    default: pypi_ops.pypiserver
  properties:
    description: Run properties (target, URL, run id) shown in every report file. Never put secrets here.
    type: dict
    default: {}
  diagnostics:
    description:
      - The diagnostics bundle's C(index.md) of this run, relative to O(dest) (M(pypi_ops.pypiserver.diagnostics)
        writes C(diagnostics/index.md)); empty for none.
      - When given, C(summary.md) has a line C(Diagnostics - <path>), C(report.html) a link to it and each failed
        test's JUnit entry a line C(diagnostics - <path>) after its reason.
    type: str
    default: ""
    version_added: "0.7.0"
"""

EXAMPLES = r"""
- name: Write the report
  pypi_ops.pypiserver.test_report:
    results: "{{ pypi_results }}"
    dest: "{{ playbook_dir }}/reports"
    properties:
      target: local
"""

RETURN = r"""
junit:
  description: Path of the JUnit file.
  returned: always
  type: str
summary:
  description: Path of the Markdown summary.
  returned: always
  type: str
json:
  description: Path of C(results.json), the machine-readable results.
  returned: always
  type: str
  sample: reports/results.json
html:
  description: Path of C(report.html), the self-contained HTML report.
  returned: always
  type: str
  sample: reports/report.html
metrics:
  description: Path of C(metrics.prom), the run's metrics in the OpenMetrics text format.
  returned: always
  type: str
  sample: reports/metrics.prom
  version_added: "0.7.0"
table:
  description: The results as fixed-width rows.
  returned: always
  type: list
  elements: str
counts:
  description: Number of passed, failed, skipped and total tests.
  returned: always
  type: dict
failed_tests:
  description: Ids of the failed tests.
  returned: always
  type: list
  elements: str
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import report
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    results = report.normalize(module.params["results"])
    try:
        paths = report.write(
            module.params["dest"],
            results,
            module.params["suite"],
            module.params["properties"],
            diagnostics=module.params["diagnostics"],
        )
    except OSError as exc:
        module.fail_json(
            msg=f"Cannot write the report to {module.params['dest']}: {exc.strerror}; choose a writable pypi_report_dir."
        )
    return {
        "changed": True,
        "junit": paths["junit"],
        "summary": paths["summary"],
        "json": paths["json"],
        "html": paths["html"],
        "metrics": paths["metrics"],
        "table": report.text_table(results),
        "counts": report.counts(results),
        "failed_tests": [r["id"] for r in results if r["status"] == "failed"],
    }


def main() -> None:
    argument_spec = dict(
        results=dict(type="list", elements="dict", required=True),
        dest=dict(type="path", required=True),
        suite=dict(type="str", default="pypi_ops.pypiserver"),
        properties=dict(type="dict", default={}),
        diagnostics=dict(type="str", default=""),
    )
    run_module(
        "test_report",
        argument_spec,
        run,
        doing=lambda p: f"while writing the report to {p['dest']}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
