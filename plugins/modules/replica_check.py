#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: replica_check
short_description: Check that every replica of an index lists a file uploaded through its front (read-after-write)
version_added: "0.5.0"
description:
  - Asks each replica directly (O(replicas), each replica's own base URL) for C(/simple/<project>/) until it lists
    O(filename) with O(sha256), for at most O(wait) seconds (cut to the test's deadline). A replica already
    listing it is not asked again.
  - Fails naming every replica that still does not (stale - it lists nothing or another hash - or not answering),
    with the fix - pypiserver C(--backend simple-dir), which the chart sets when C(replicaCount > 1), or shared
    storage that notifies every reader of new files.
  - Read-only. The upload itself is done before, through the front (M(pypi_ops.pypiserver.package_upload)).
author:
  - pypi_ops contributors (@pypi-ops)
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.attributes.read_only
options:
  replicas:
    description: Base URL of each replica (C(http://HOST:PORT/)), as C(pypi_server.replicas) lists them.
    type: list
    elements: str
    required: true
  project:
    description: Project whose page is read.
    type: str
    required: true
  filename:
    description: File that every replica must list.
    type: str
    required: true
  sha256:
    description: Its sha256 (hex), as uploaded.
    type: str
    required: true
  wait:
    description: Seconds every replica has to list the file, from the first request.
    type: float
    default: 30
seealso:
  - module: pypi_ops.pypiserver.local_front
  - module: pypi_ops.pypiserver.index_list
"""

EXAMPLES = r"""
- name: Every replica lists the file uploaded through the front within 30 s
  pypi_ops.pypiserver.replica_check:
    replicas: "{{ pypi_server.replicas }}"
    project: my-probe
    filename: my_probe-1.0.0-py3-none-any.whl
    sha256: "{{ wheel.sha256 }}"
    wait: 30
"""

RETURN = r"""
replicas:
  description: What each replica answered last.
  returned: always
  type: list
  elements: dict
  contains:
    url: {description: The replica's base URL., type: str}
    state: {description: "V(ok), V(missing), V(differing) or V(error).", type: str}
    detail: {description: "What it answered, in words.", type: str}
    seconds: {description: Seconds from the first request until it listed the file (null if it never did)., type: float}
    polls: {description: Requests made to it., type: int}
stale:
  description: Replicas that did not list the file with its sha256 in time.
  returned: always
  type: list
  elements: str
seconds:
  description: Time spent.
  returned: always
  type: float
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import replicas as rep
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    urls = [u.strip() for u in p["replicas"] if u and u.strip()]
    if not urls:
        module.fail_json(msg="replicas is empty; give the base URL of each replica (pypi_server.replicas).")
    if p["wait"] < 0:
        module.fail_json(msg=f"wait is {p['wait']:g}; give the seconds (0 or more) each replica has to list the file.")
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    result = rep.check(urls, p["project"], p["filename"], p["sha256"], p["wait"], opts)
    if result["stale"]:
        stale = [r for r in result["replicas"] if r["state"] != "ok"]
        module.fail_json(msg=rep.stale_message(stale, len(urls), p["filename"], p["wait"]), changed=False, **result)
    return {"changed": False, **result}


def main() -> None:
    argument_spec: dict[str, dict[str, t.Any]] = {
        "replicas": {"type": "list", "elements": "str", "required": True},
        "project": {"type": "str", "required": True},
        "filename": {"type": "str", "required": True},
        "sha256": {"type": "str", "required": True},
        "wait": {"type": "float", "default": 30.0},
        **httputil.CLIENT_ARGS,
    }
    run_module(
        "replica_check",
        argument_spec,
        run,
        libraries=[
            Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR),
            Library("packaging", si.HAS_PACKAGING, si.PACKAGING_IMPORT_ERROR),
        ],
        doing="while reading the replicas",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
