#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: local_front
short_description: A round-robin nginx front on 127.0.0.1 for local pypiserver replicas
version_added: "0.5.0"
description:
  - Starts Debian's C(nginx) with its own prefix and configuration in O(state_dir) (no system configuration, no
    privileged port), listening on 127.0.0.1 and sending every request round robin to O(upstreams), the base URLs
    of the pypiserver replicas the local targets run when C(pypi_local_replicas) is above 1.
  - Uploads stream through with no size limit (C(client_max_body_size 0), C(proxy_request_buffering off)) and
    generous timeouts; a failed replica is not retried on another (C(proxy_next_upstream off)), so what a client sees
    is what the replica answered.
  - The process is detached and stopped by PID (V(stopped)). A start waits until the front answers O(health_path).
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Reports what would change; nothing is started or stopped.
  platform:
    platforms: posix
    details: Linux with nginx installed (Debian C(apt-get install nginx)).
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
options:
  state:
    description: V(started) (idempotent for the same upstreams and port), V(stopped) or V(status).
    type: str
    choices: [started, stopped, status]
    default: started
  state_dir:
    description: Directory for nginx's configuration, PID, logs and temporary files.
    type: path
    required: true
  upstreams:
    description: Base URLs (C(http://HOST:PORT/)) of the replicas. Required with V(started).
    type: list
    elements: str
    default: []
  port:
    description: Port of the front on 127.0.0.1; V(0) picks a free one (kept across starts).
    type: int
    default: 0
  health_path:
    description: Path that must answer 200 through the front before a start succeeds.
    type: str
    default: /health
  timeout:
    description: Seconds to wait for the front to answer (start) or exit (stop).
    type: float
    default: 30
seealso:
  - module: pypi_ops.pypiserver.local_server
  - module: pypi_ops.pypiserver.replica_check
"""

EXAMPLES = r"""
- name: Round robin over two replicas
  pypi_ops.pypiserver.local_front:
    state_dir: "{{ playbook_dir }}/.state/local/front"
    upstreams: ["http://127.0.0.1:40001/", "http://127.0.0.1:40002/"]
  register: front

- name: Stop it
  pypi_ops.pypiserver.local_front:
    state: stopped
    state_dir: "{{ playbook_dir }}/.state/local/front"
"""

RETURN = r"""
front:
  description: The front after the task.
  returned: always
  type: dict
  contains:
    running: {description: Whether nginx is alive., type: bool, returned: always}
    pid: {description: nginx master process id., type: int, returned: when known}
    port: {description: TCP port., type: int, returned: when known}
    url: {description: Base URL of the front., type: str, returned: when known, sample: "http://127.0.0.1:40000/"}
    upstreams: {description: The replicas' base URLs., type: list, elements: str, returned: always}
    conf: {description: The nginx.conf written., type: str, returned: when known}
    log_file: {description: nginx's error log., type: str, returned: when known}
log_tail:
  description: Last lines of nginx's log, on failure.
  returned: failure
  type: list
  elements: str
"""

import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import front
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    state_dir = os.path.abspath(p["state_dir"])
    current = front.describe(front.read_state(state_dir))
    if p["state"] == "status":
        return {"changed": False, "front": current}
    if p["state"] == "stopped":
        if module.check_mode:
            return {"changed": current["running"], "front": current}
        changed, out = front.stop(state_dir, p["timeout"])
        return {"changed": changed, "front": out}
    if not p["upstreams"]:
        module.fail_json(msg="state=started needs upstreams: the base URLs of the replicas to send requests to.")
    for url in p["upstreams"]:
        front.upstream_address(url)
    if module.check_mode:
        same = current["running"] and current["upstreams"] == p["upstreams"] and (p["port"] in (0, current["port"]))
        return {"changed": not same, "front": current}
    changed, out = front.start(state_dir, p["upstreams"], p["port"], health_path=p["health_path"], timeout=p["timeout"])
    return {"changed": changed, "front": out}


def main() -> None:
    argument_spec = dict(
        state=dict(type="str", default="started", choices=["started", "stopped", "status"]),
        state_dir=dict(type="path", required=True),
        upstreams=dict(type="list", elements="str", default=[]),
        port=dict(type="int", default=0),
        health_path=dict(type="str", default="/health"),
        timeout=dict(type="float", default=30.0),
    )
    run_module(
        "local_front",
        argument_spec,
        run,
        errors={ls.ServerError: ("log_tail",)},
        doing=lambda p: f"while managing the nginx front (state={p['state']})",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
