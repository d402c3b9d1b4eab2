#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: storage_inventory
short_description: Inventory a package directory and compare it with expected files
version_added: "0.1.0"
description:
  - Lists the files in a pypiserver package directory with their sizes, and the sha256 of the files asked for
    (streamed, never read whole).
  - Compares them with O(expect) (filename, size, sha256) and reports what is missing or differs.
  - Optionally proves the directory is writable by creating and removing a probe file.
  - This is the C(dir) implementation of the functional tests' storage interface; other targets
    (a pod volume, an S3 bucket) return the same shape.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Reads only; the writability probe is skipped in check mode.
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
options:
  path:
    description: The package directory.
    type: path
    required: true
  expect:
    description: Files that must be present, each with C(filename) and optionally C(size) and C(sha256).
    type: list
    elements: dict
    default: []
  hash_all:
    description: Hash every file, not only the expected ones (slow on big directories).
    type: bool
    default: false
  check_writable:
    description: Create and delete a probe file to prove the directory is writable.
    type: bool
    default: false
  fail_on_mismatch:
    description: Fail the task when an expected file is missing or differs.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Every uploaded file is on disk, intact
  pypi_ops.pypiserver.storage_inventory:
    path: /srv/pypi/packages
    expect: "{{ build.files }}"
"""

RETURN = r"""
files:
  description: Every file in the directory (no sub-directories), by name.
  returned: always
  type: dict
  sample: {"probe-1.0.0.tar.gz": {"size": 1024, "sha256": "ab..."}}
count:
  description: Number of files.
  returned: always
  type: int
missing:
  description: Expected filenames that are absent.
  returned: always
  type: list
  elements: str
mismatched:
  description: Expected files whose size or sha256 differ, with both values.
  returned: always
  type: list
  elements: dict
writable:
  description: Result of the writability probe (null when not asked or in check mode).
  returned: always
  type: bool
"""

import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import storage
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    path = p["path"]
    if not os.path.isdir(path):
        module.fail_json(
            msg=f"Package directory {path} does not exist or is not a directory; check the target's storage path."
        )
    wanted = {e.get("filename") or os.path.basename(e.get("path", "")) for e in p["expect"]}
    try:
        files = storage.inventory_dir(path, None if p["hash_all"] else wanted)
    except OSError as exc:
        module.fail_json(msg=f"Cannot read package directory {path}: {exc.strerror}; check its permissions.")
    writable = None
    if p["check_writable"] and not module.check_mode:
        writable, why = storage.probe_writable(path)
        if not writable:
            module.fail_json(
                msg=f"Package directory {path} is not writable ({why}); uploads would fail. Fix its permissions."
            )
    found, problem = storage.verdict(files, p["expect"], path)
    result = {"changed": False, **found, "writable": writable}
    if p["fail_on_mismatch"] and problem:
        module.fail_json(msg=problem, **result)
    return result


def main() -> None:
    argument_spec = dict(
        path=dict(type="path", required=True),
        expect=dict(type="list", elements="dict", default=[]),
        hash_all=dict(type="bool", default=False),
        check_writable=dict(type="bool", default=False),
        fail_on_mismatch=dict(type="bool", default=True),
    )
    run_module(
        "storage_inventory",
        argument_spec,
        run,
        doing=lambda p: f"while reading {p['path']}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
