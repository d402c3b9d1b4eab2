#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: local_server
short_description: Start, stop, restart, inspect a pypiserver on 127.0.0.1, or rotate its credentials
version_added: "0.1.0"
description:
  - Runs a real pypiserver process on the controller, detached from Ansible, for the embedded C(local) target.
  - The PID and the settings the server was started with are kept in O(state_dir), so later tasks find it.
  - Credentials are written to an htpasswd file with mode 0600; they never appear in the server's argv.
  - Every start waits for the health endpoint, with a deadline; on a timeout the module fails with the tail of the server log.
  - O(state=credentials) gives a running server a new password without restarting it (pypiserver re-reads its htpasswd file
    when the file's mtime changes, at the next authenticated request).
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Reports what would change; nothing is started, stopped or written.
  platform:
    platforms: posix
    details: Linux (PIDs are checked through C(/proc)); the server runs on the controller.
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
options:
  state:
    description:
      - V(started) ensures a server with these settings runs; an identical running server is left alone (C(changed=false)).
      - V(restarted) always starts a new process on the same port and package directory.
      - V(stopped) stops it (SIGTERM, then SIGKILL) and forgets it. V(status) only reports.
      - V(credentials) rotates the credentials of the server running from O(state_dir), without a restart. The htpasswd
        file the server reads (its C(-P) argument, whatever O(htpasswd_path) says) is replaced atomically, with a new
        mtime, to hold exactly O(username) with O(password); O(password) is also stored in O(credentials_file).
        Fails when no server runs there or when it has no authentication. It proves nothing; run
        M(pypi_ops.pypiserver.credentials_check) afterwards.
    type: str
    choices: [started, stopped, restarted, status, credentials]
    default: started
  state_dir:
    description: Directory holding C(server.json) (PID, settings) and C(server.log).
    type: path
    required: true
  package_dir:
    description: Directory pypiserver serves and stores uploads in. Created if missing; must be writable.
    type: path
  port:
    description: TCP port on 127.0.0.1. V(0) picks a free port (and keeps it across restarts).
    type: int
    default: 0
  host:
    description: Interface to bind. Loopback by default; change it only on purpose.
    type: str
    default: 127.0.0.1
  auth_actions:
    description:
      - Actions that need credentials, any of V(update), V(download), V(list). Empty means no authentication.
      - Needs O(username) and O(password) when not empty.
    type: list
    elements: str
    default: [update]
  username:
    description: User written to the htpasswd file.
    type: str
  password:
    description:
      - Password written (hashed) to the htpasswd file. Never logged.
      - With O(state=credentials), the new password (required), at least 12 characters, no control characters and no
        leading or trailing whitespace.
    type: str
  credentials_file:
    description:
      - O(state=credentials) only. Where the new password is stored, mode 0600, in the format of Ansible's
        C(ansible.builtin.password) lookup, so that a later run reading it (the deploy role does) uses the new password.
      - Defaults to O(state_dir)/credentials. Written before the htpasswd file and put back if that write fails.
    type: path
    version_added: "0.2.0"
  htpasswd_path:
    description: Where to write the htpasswd file. Defaults to O(state_dir)/htpasswd.
    type: path
  overwrite:
    description: Start pypiserver with C(--overwrite), allowing an existing file to be replaced.
    type: bool
    default: false
  fallback_url:
    description:
      - Where pypiserver redirects requests for projects it does not have.
      - Empty (the default) disables the redirect, so a missing package is a 404 and never comes from elsewhere.
    type: str
    default: ""
  ephemeral:
    description:
      - Empty the package directory at every start and restart, like a pod whose volume is an C(emptyDir).
      - For proving that the persistence test catches a deployment that loses packages; never use it for real.
    type: bool
    default: false
  health_endpoint:
    description: Path of the liveness endpoint.
    type: str
    default: /health
  backend:
    description: pypiserver storage backend.
    type: str
    choices: [auto, simple-dir, cached-dir]
    default: auto
  python:
    description: Python interpreter that has pypiserver installed. Defaults to the one running the module.
    type: path
  timeout:
    description: Seconds to wait for the health endpoint (start) or for the process to exit (stop).
    type: float
    default: 30
notes:
  - The server process is detached (own session, stdio on C(server.log)); it outlives the play until stopped.
  - With O(state=credentials) the server process is never restarted or signalled; RV(server.pid) stays the same.
seealso:
  - module: pypi_ops.pypiserver.index_list
  - module: pypi_ops.pypiserver.credentials_check
"""

EXAMPLES = r"""
- name: Start a pypiserver that authenticates uploads
  pypi_ops.pypiserver.local_server:
    state: started
    state_dir: "{{ playbook_dir }}/.state/local"
    package_dir: "{{ playbook_dir }}/.state/local/packages"
    username: ci
    password: "{{ vault_pypi_password }}"
  register: server

- name: Restart it on the same package directory
  pypi_ops.pypiserver.local_server:
    state: restarted
    state_dir: "{{ playbook_dir }}/.state/local"
    package_dir: "{{ playbook_dir }}/.state/local/packages"
    username: ci
    password: "{{ vault_pypi_password }}"

- name: Rotate its password without a restart (stored in .state/local/credentials)
  pypi_ops.pypiserver.local_server:
    state: credentials
    state_dir: "{{ playbook_dir }}/.state/local"
    username: ci
    password: "{{ new_password }}"
  no_log: true

- name: Stop it
  pypi_ops.pypiserver.local_server:
    state: stopped
    state_dir: "{{ playbook_dir }}/.state/local"
"""

RETURN = r"""
server:
  description: The server as it is after the task.
  returned: always
  type: dict
  contains:
    running: {description: Whether the process is alive., type: bool, returned: always, sample: true}
    pid: {description: Process id., type: int, returned: when known, sample: 4242}
    port: {description: TCP port., type: int, returned: when known, sample: 8080}
    url: {description: Base URL., type: str, returned: when known, sample: "http://127.0.0.1:8080/"}
    health_url: {description: Health endpoint URL., type: str, returned: when known}
    package_dir: {description: Served directory., type: str, returned: when known}
    log_file: {description: Server log., type: str, returned: when known}
    healthy: {description: Health endpoint answered 200 (state=status only)., type: bool, returned: state=status}
    startup_seconds: {description: Time from spawn to healthy., type: float, returned: when started}
htpasswd:
  description: The htpasswd file the running server reads (state=credentials).
  returned: state=credentials
  type: str
  sample: /srv/.state/local/htpasswd
htpasswd_changed:
  description: Whether the htpasswd file was (or, in check mode, would be) replaced.
  returned: state=credentials
  type: bool
credentials_file:
  description: Where the new password is stored (state=credentials).
  returned: state=credentials
  type: str
  sample: /srv/.state/local/credentials
credentials_file_changed:
  description: Whether the stored password was (or would be) replaced.
  returned: state=credentials
  type: bool
previous_pid:
  description: PID before a restart or stop, if a server was running.
  returned: always
  type: int
  sample: 4241
log_tail:
  description: Last lines of the server log, on failure.
  returned: failure
  type: list
  elements: str
"""

import os
import sys
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import run_module


def _spec(params: dict[str, t.Any], htpasswd: str | None) -> ls.Spec:
    return ls.Spec(
        package_dir=os.path.abspath(params["package_dir"]),
        port=params["port"],
        host=params["host"],
        auth_actions=tuple(a.strip().lower() for a in params["auth_actions"] if a.strip()),
        htpasswd=htpasswd,
        overwrite=params["overwrite"],
        fallback_url=params["fallback_url"] or None,
        health_endpoint=params["health_endpoint"],
        backend=params["backend"],
        python=params["python"] or sys.executable,
        ephemeral=params["ephemeral"],
    )


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    state_dir = os.path.abspath(p["state_dir"])
    before = ls.read_state(state_dir)
    prev = ls.describe(before)
    previous_pid = prev.get("pid") if prev.get("running") else None
    result: dict[str, t.Any] = {"changed": False, "previous_pid": previous_pid}

    if p["state"] == "status":
        result["server"] = ls.status(state_dir, p["timeout"])
        return result
    if p["state"] == "credentials":
        if not p["username"] or not p["password"]:
            module.fail_json(msg="state=credentials needs username and the new password; give both.")
        out = ls.rotate_credentials(
            state_dir,
            p["username"],
            p["password"],
            os.path.abspath(p["credentials_file"] or os.path.join(state_dir, "credentials")),
            check_mode=module.check_mode,
        )
        result.update(out)
        return result
    if p["state"] == "stopped":
        result["changed"] = bool(prev.get("running"))
        if module.check_mode:
            result["server"] = prev
            return result
        changed, result["server"] = ls.stop(state_dir, p["timeout"])
        result["changed"] = changed
        return result

    if not p["package_dir"]:
        module.fail_json(msg="package_dir is required when state is started or restarted.")
    htpasswd = None
    actions = [a for a in p["auth_actions"] if a.strip()]
    if actions:
        if not p["username"] or p["password"] is None:
            module.fail_json(
                msg="auth_actions needs username and password (pypiserver refuses every upload without them); "
                "give both, or set auth_actions: [] for a server without authentication."
            )
        htpasswd = os.path.abspath(p["htpasswd_path"] or os.path.join(state_dir, "htpasswd"))
    spec = _spec(p, htpasswd)
    ls.validate_spec(spec)

    if module.check_mode:
        same = (
            bool(prev.get("running"))  # a running server has a state record
            and before is not None
            and before.get("argv") == spec.argv(t.cast(int, p["port"] or before.get("port")))
        )
        result["changed"] = p["state"] == "restarted" or not same
        result["server"] = prev
        return result

    ht_changed = False
    if htpasswd:
        ls.make_private_dirs(state_dir)
        ht_changed = ls.write_htpasswd(htpasswd, {p["username"]: p["password"]})
    changed, server = ls.start(spec, state_dir, timeout=p["timeout"], force_restart=p["state"] == "restarted")
    result.update(changed=changed or ht_changed, server=server)
    return result


def main() -> None:
    argument_spec = dict(
        state=dict(type="str", default="started", choices=["started", "stopped", "restarted", "status", "credentials"]),
        state_dir=dict(type="path", required=True),
        package_dir=dict(type="path"),
        port=dict(type="int", default=0),
        host=dict(type="str", default="127.0.0.1"),
        auth_actions=dict(type="list", elements="str", default=["update"]),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        htpasswd_path=dict(type="path"),
        credentials_file=dict(type="path"),
        overwrite=dict(type="bool", default=False),
        fallback_url=dict(type="str", default=""),
        health_endpoint=dict(type="str", default="/health"),
        ephemeral=dict(type="bool", default=False),
        backend=dict(type="str", default="auto", choices=["auto", "simple-dir", "cached-dir"]),
        python=dict(type="path"),
        timeout=dict(type="float", default=30.0),
    )
    run_module(
        "local_server",
        argument_spec,
        run,
        errors={ls.ServerError: ("log_tail",)},
        doing=lambda p: f"while managing the local pypiserver (state={p['state']})",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
