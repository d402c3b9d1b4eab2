# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: run_checkpoint
short_description: Record a run's progress so that it leaves a report whatever happens
version_added: "0.4.0"
description:
  - Called by the functional_tests role at every test boundary and by the report role at the end. Runs on the
    controller (an action plugin); there is no module to run on a host.
  - At O(event=begin) and O(event=end) it writes the report (junit.xml, summary.md, results.json, report.html) into
    O(dest) as if the run stopped now - the test running marked C(interrupted), the tests still planned C(not_run) -
    and keeps the run's state in C(<dest>/.run-state.json).
  - The first call starts a guardian process, in its own session, that watches ansible-playbook. If ansible-playbook
    ends without O(event=final) (SIGTERM from a CI runner, Ctrl-C, a crash), the guardian stops what the run
    started on this machine (the local pypiserver, its S3 server and mount, a port-forward), writes the report again
    saying the run was interrupted, what it stopped and what is left behind (a helm release, probe packages), and
    exits. A run killed with SIGKILL keeps the last checkpoint's report.
  - O(event=final), after the real report is written, removes the state; the guardian then exits.
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
options:
  event:
    description: V(begin) of a test, V(end) of a test, or V(final) once the report is written.
    type: str
    required: true
    choices: [begin, end, final]
  dest:
    description: The report directory of the run.
    type: path
    required: true
  test:
    description: Id of the test that begins (O(event=begin)).
    type: str
  priority:
    description: Its priority (p0, p1, p2 ...).
    type: str
  results:
    description: The results recorded so far (C(pypi_results)).
    type: list
    elements: dict
  plan:
    description:
      - Every test of the run, in order, each an id or C({id, tags}); those selected by O(run_tags) and O(skip_tags)
        that have no result are reported C(not_run).
    type: list
    elements: raw
  run_tags:
    description: C(ansible_run_tags).
    type: list
    elements: str
    default: [all]
  skip_tags:
    description: C(ansible_skip_tags).
    type: list
    elements: str
    default: []
  suite:
    description: Name of the test suite in the report.
    type: str
    default: pypi_ops.pypiserver
  properties:
    description: Properties of the report (target, URL, run id). Never a secret.
    type: dict
  teardown:
    description:
      - What the guardian stops if the run is interrupted - C(target), C(cleanup), C(local_state_dir),
        C(k8s_state_dir), C(s3_node_mount), C(work_dir), C(keep_work) - and what it names as left behind -
        C(helm_release), C(namespace), C(probes), C(probe_prefix).
    type: dict
attributes:
  check_mode:
    support: full
    details: The checkpoint is written in check mode too (the report is the evidence of a check run).
author:
  - pypi_ops contributors (@pypi-ops)
"""

EXAMPLES = r"""
- name: Checkpoint before a test
  pypi_ops.pypiserver.run_checkpoint:
    event: begin
    dest: "{{ pypi_report_dest }}"
    test: load
    priority: p2
    results: "{{ pypi_results }}"
    plan: "{{ pypi_test_plan }}"
"""

RETURN = r"""
state:
  description: Path of the run's state file.
  returned: always
  type: str
guardian_pid:
  description: PID of the guardian process watching this run.
  returned: always
  type: int
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:  # pragma: no cover - the action plugin does the work
    module.fail_json(msg="run_checkpoint runs on the controller through its action plugin; it has nothing to do here.")
    return {}


def main() -> None:  # pragma: no cover - the action plugin does the work on the controller
    argument_spec = dict(
        event=dict(type="str", required=True, choices=["begin", "end", "final"]),
        dest=dict(type="path", required=True),
        test=dict(type="str"),
        priority=dict(type="str"),
        results=dict(type="list", elements="dict"),
        plan=dict(type="list", elements="raw"),
        run_tags=dict(type="list", elements="str", default=["all"]),
        skip_tags=dict(type="list", elements="str", default=[]),
        suite=dict(type="str", default="pypi_ops.pypiserver"),
        properties=dict(type="dict"),
        teardown=dict(type="dict"),
    )
    run_module("run_checkpoint", argument_spec, run, supports_check_mode=True)


if __name__ == "__main__":
    main()
