#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: port_forward
short_description: Start, stop, re-open or inspect a kubectl port-forward on 127.0.0.1
version_added: "0.1.0"
description:
  - Runs C(kubectl port-forward --address 127.0.0.1 -n NAMESPACE TARGET LOCAL:REMOTE) on the controller, detached from Ansible.
  - The PID, local port and arguments are kept in O(state_dir) (C(port-forward.json), mode 0600; output in C(port-forward.log)).
  - Every start waits, with a deadline, until a TCP connection to the local port succeeds.
    If kubectl exits first or the deadline passes, the process is killed and the module fails with one message and the log tail.
  - A port-forward is bound to the one pod kubectl picked at start, so after a pod restart it must be re-opened with O(state=restarted),
    which keeps the same local port when it is still free (otherwise a new one is picked and RV(port_changed) is true).
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Reports what would change; nothing is started or stopped.
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.k8s
options:
  state:
    description:
      - V(started) ensures a forward with these arguments runs; a live one with the same arguments is left alone (C(changed=false)).
      - V(restarted) stops the forward and opens it again on the same local port. Without O(target) it re-opens the recorded forward.
      - V(stopped) stops it by PID and forgets it (idempotent). V(status) only reports.
    type: str
    choices: [started, stopped, restarted, status]
    default: started
  state_dir:
    description: Directory holding C(port-forward.json) and C(port-forward.log).
    type: path
    required: true
  namespace:
    description: Namespace of O(target). Required with O(state=started).
    type: str
  target:
    description: What to forward to, V(svc/NAME), V(pod/NAME) or V(deployment/NAME). Required with O(state=started).
    type: str
  remote_port:
    description: Port on the target.
    type: int
    default: 8080
  local_port:
    description: Port on 127.0.0.1. V(0) picks a free one (and keeps the recorded one across restarts when it is free).
    type: int
    default: 0
  kubeconfig:
    description: Kubeconfig file passed to kubectl as C(--kubeconfig). Default is kubectl's own choice.
  context:
    description: Kubeconfig context passed to kubectl as C(--context).
  kubectl:
    description: kubectl executable (name on PATH or a path).
    type: str
    default: kubectl
  timeout:
    description: Seconds to wait for the local port to accept connections.
    type: float
    default: 30
notes:
  - The forwarder is detached (own session); it outlives the play until stopped.
  - A successful local connect means kubectl listens; each forwarded connection still needs a running pod behind the target.
  - Not tested in this collection's unit tests, forwarding through a real API server to a real pod (that needs a cluster; the kind scenario covers it).
    The unit tests use a stand-in forwarder process and the real kubectl against an unreachable API server.
seealso:
  - module: pypi_ops.pypiserver.pod_restart
"""

EXAMPLES = r"""
- name: Forward the pypiserver service to the controller
  pypi_ops.pypiserver.port_forward:
    state: started
    state_dir: "{{ playbook_dir }}/.state/kind"
    namespace: pypi
    target: svc/pypiserver
    remote_port: 8080
  register: fwd

- name: Use it
  ansible.builtin.uri:
    url: "{{ fwd.url }}health"

- name: Re-open it after the pod restarted (same local port)
  pypi_ops.pypiserver.port_forward:
    state: restarted
    state_dir: "{{ playbook_dir }}/.state/kind"

- name: Stop it
  pypi_ops.pypiserver.port_forward:
    state: stopped
    state_dir: "{{ playbook_dir }}/.state/kind"
"""

RETURN = r"""
url:
  description: Base URL of the forward.
  returned: when a forward is recorded
  type: str
  sample: "http://127.0.0.1:41234/"
local_port:
  description: Local port of the forward.
  returned: when a forward is recorded
  type: int
  sample: 41234
pid:
  description: PID of the forwarder process.
  returned: when a forward is recorded
  type: int
  sample: 4242
port_changed:
  description: On O(state=restarted), true when the old local port was taken and a new one was picked.
  returned: state=restarted
  type: bool
previous_pid:
  description: PID of the forwarder before a restart or stop, if one was running.
  returned: always
  type: int
forward:
  description: The forward as it is after the task.
  returned: always
  type: dict
  contains:
    running: {description: Whether the process is alive., type: bool, returned: always, sample: true}
    accepting: {description: Local port accepts connections (state=status only)., type: bool, returned: state=status}
    namespace: {description: Namespace., type: str, returned: when known}
    target: {description: Target., type: str, returned: when known}
    remote_port: {description: Remote port., type: int, returned: when known}
    log_file: {description: Forwarder log., type: str, returned: when known}
    startup_seconds: {description: Time from spawn to the first accepted connection., type: float, returned: when started}
log_tail:
  description: Last lines of the forwarder log, on failure.
  returned: failure
  type: list
  elements: str
"""

import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import port_forward as pf
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import K8S_ARGS
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import run_module


def _result(result: dict[str, t.Any], forward: dict[str, t.Any]) -> dict[str, t.Any]:
    result["forward"] = forward
    for key in ("url", "local_port", "pid"):
        if forward.get(key) is not None:
            result[key] = forward[key]
    if "port_changed" in forward:
        result["port_changed"] = forward["port_changed"]
    return result


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    state_dir = os.path.abspath(p["state_dir"])
    before = pf.read_state(state_dir)
    prev = pf.describe(before)
    alive = bool(prev.get("running"))
    result: dict[str, t.Any] = {"changed": False, "previous_pid": prev.get("pid") if alive else None}

    if p["state"] == "status":
        return _result(result, pf.status(state_dir))
    if p["state"] == "stopped":
        if module.check_mode:
            result["changed"] = alive
            return _result(result, prev)
        changed, forward = pf.stop(state_dir)
        result["changed"] = changed
        return _result(result, forward)

    if p["target"] or p["state"] == "started" or not before:
        if not p["target"] or not p["namespace"]:
            module.fail_json(
                msg=f"namespace and target are required with state={p['state']} (nothing is recorded to re-open)."
            )
        args = pf.make_args(p["namespace"], p["target"], p["remote_port"], p["kubeconfig"], p["context"], p["kubectl"])
    else:
        args = None  # re-open the recorded forward
    if not 0 <= p["local_port"] <= 65535:
        module.fail_json(msg=f"local_port {p['local_port']} is out of range; use 1-65535, or 0 for a free port.")

    same = alive and (args is None or pf.same_args(before, args, p["local_port"]))
    if p["state"] == "started" and same:
        return _result(result, prev)
    result["changed"] = True
    if module.check_mode:
        return _result(result, prev)

    if p["state"] == "restarted" and (args is None or pf.same_args(before, args, p["local_port"])):
        forward = pf.reopen(state_dir, p["timeout"])
    else:  # args is None only with state=restarted and no target, which re-opens the recorded forward above
        forward = pf.start(state_dir, local_port=p["local_port"], timeout=p["timeout"], **(args or {}))
    return _result(result, forward)


def main() -> None:
    argument_spec = dict(
        state=dict(type="str", default="started", choices=["started", "stopped", "restarted", "status"]),
        state_dir=dict(type="path", required=True),
        namespace=dict(type="str"),
        target=dict(type="str"),
        remote_port=dict(type="int", default=8080),
        local_port=dict(type="int", default=0),
        kubectl=dict(type="str", default="kubectl"),
        timeout=dict(type="float", default=30.0),
        **K8S_ARGS,
    )
    run_module(
        "port_forward",
        argument_spec,
        run,
        errors={pf.ServerError: ("log_tail",)},
        doing=lambda p: f"while managing the port-forward (state={p['state']})",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
