#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: local_s3
short_description: A local S3 bucket (moto on 127.0.0.1) mounted with s3fs, for an S3-backed pypiserver
version_added: "0.1.0"
description:
  - Starts an S3 protocol server (C(moto.server)) on 127.0.0.1, creates a bucket and mounts it (optionally a key
    prefix of it) on a directory with Debian's C(s3fs) FUSE client. A local pypiserver serving that directory
    stores every upload as an object, the same shape as a pod whose volume is an S3 CSI mount.
  - Both processes are detached; their PIDs are kept in O(state_dir). V(stopped) unmounts, then stops them by PID.
  - Needs FUSE (C(/dev/fuse)) and s3fs; without them it fails with that reason.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Reports what would change; nothing is started or stopped.
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
options:
  state:
    description: V(started) (idempotent), V(stopped) or V(status).
    type: str
    choices: [started, stopped, status]
    default: started
  state_dir:
    description: Directory for PIDs, logs and the s3fs credentials file (0600).
    type: path
    required: true
  bucket:
    description: Bucket name.
    type: str
    default: pypi
  prefix:
    description: Key prefix mounted (the package directory inside the bucket).
    type: str
    default: packages
  mountpoint:
    description: Where the bucket is mounted. Defaults to O(state_dir)/mnt. Must be empty.
    type: path
  port:
    description: Port of the S3 server on 127.0.0.1; V(0) picks a free one.
    type: int
    default: 0
  access_key:
    description: Access key the bucket is used with (moto accepts any).
    type: str
    default: pypi-ops
  secret_key:
    description: Secret key written to the s3fs credentials file.
    type: str
    default: pypi-ops-secret
  mount_options:
    description:
      - Extra s3fs C(-o) options, e.g. V(allow_other), V(uid=9898), V(gid=9898) when the mount is handed to a pod
        that runs as another user (the kubernetes target's stand-in for an S3 CSI driver).
    type: list
    elements: str
    default: []
    version_added: "0.4.0"
  mounts:
    description:
      - How many times the bucket is mounted, each by its own s3fs process, the way each node running a replica
        would mount it. Mount 1 is at O(mountpoint); mount N above 1 at O(mountpoint)-N (for example C(mnt-1)).
      - The local targets mount one per pypiserver replica (C(pypi_local_replicas)). Changing it restarts the S3
        server, which forgets the bucket's objects.
    type: int
    default: 1
    version_added: "0.5.0"
  timeout:
    description: Seconds to wait for the S3 server and the mount.
    type: float
    default: 30
"""

EXAMPLES = r"""
- name: A bucket mounted where pypiserver will store packages
  pypi_ops.pypiserver.local_s3:
    state_dir: "{{ playbook_dir }}/.state/local/s3"
  register: s3

- name: Unmount and stop
  pypi_ops.pypiserver.local_s3:
    state: stopped
    state_dir: "{{ playbook_dir }}/.state/local/s3"
"""

RETURN = r"""
s3:
  description: The S3 side after the task.
  returned: always
  type: dict
  contains:
    running: {description: S3 server and s3fs alive and mounted., type: bool}
    endpoint_url: {description: S3 endpoint., type: str, sample: "http://127.0.0.1:40123"}
    region: {description: Region name used., type: str}
    bucket: {description: Bucket., type: str}
    prefix: {description: Mounted key prefix., type: str}
    mountpoint: {description: Mount directory., type: str}
    mounted: {description: Whether the mountpoint is a mount., type: bool}
    mountpoints:
      description: Every mount of the bucket, the first being O(mountpoint).
      type: list
      elements: str
      version_added: "0.5.0"
    unmounted: {description: "After V(stopped), whether the mount is gone.", type: bool}
log_tail:
  description: Last lines of the failing process's log.
  returned: failure
  type: list
  elements: str
"""

import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_s3
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    state_dir = os.path.abspath(p["state_dir"])
    try:
        current = local_s3.describe(local_s3.read_state(state_dir))
    except ls.ServerError as exc:  # the state file: its sentence only
        module.fail_json(msg=exc.msg)
    if p["state"] == "status":
        return {"changed": False, "s3": current}
    if module.check_mode:
        return {"changed": current["running"] != (p["state"] == "started"), "s3": current}
    if p["state"] == "stopped":
        out = local_s3.stop(state_dir)
        return {"changed": out.pop("changed"), "s3": out}
    spec = local_s3.S3Spec(
        state_dir=state_dir,
        bucket=p["bucket"],
        prefix=p["prefix"],
        mountpoint=p["mountpoint"] or "",
        port=p["port"],
        access_key=p["access_key"],
        secret_key=p["secret_key"],
        mount_options=tuple(p["mount_options"]),
        mounts=p["mounts"],
    )
    if not 1 <= spec.mounts <= 16:
        module.fail_json(msg=f"mounts is {spec.mounts}; mount the bucket 1 to 16 times (one per replica).")
    changed, out = local_s3.start(spec, p["timeout"])
    return {"changed": changed, "s3": out}


def main() -> None:
    argument_spec = dict(
        state=dict(type="str", default="started", choices=["started", "stopped", "status"]),
        state_dir=dict(type="path", required=True),
        bucket=dict(type="str", default="pypi"),
        prefix=dict(type="str", default="packages"),
        mountpoint=dict(type="path"),
        port=dict(type="int", default=0),
        access_key=dict(type="str", default="pypi-ops", no_log=False),
        secret_key=dict(type="str", default="pypi-ops-secret", no_log=True),
        mount_options=dict(type="list", elements="str", default=[]),
        mounts=dict(type="int", default=1),
        timeout=dict(type="float", default=30.0),
    )
    run_module(
        "local_s3",
        argument_spec,
        run,
        errors={ls.ServerError: ("log_tail",)},
        doing=lambda p: f"while managing the local S3 (state={p['state']})",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
