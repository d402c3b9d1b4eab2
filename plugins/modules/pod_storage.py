#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pod_storage
short_description: Inventory the package directory inside a Kubernetes pod and compare it with expected files
version_added: "0.1.0"
description:
  - Lists the files of the pypiserver package directory inside a running pod, with their size and sha256,
    by running one read-only shell command through the C(pods/exec) API (as C(kubectl exec) does).
  - Compares them with O(expect) and reports what is missing or differs, in the same shape as
    M(pypi_ops.pypiserver.storage_inventory), so a restart or persistence test can prove nothing was lost.
  - Only regular files directly in O(path) are listed; dot files and sub-directories are skipped.
author:
  - pypi_ops contributors (@pypi-ops)
requirements:
  - kubernetes (the Python client, with websocket-client)
  - C(sh), C(sha256sum) and C(wc) in the container
extends_documentation_fragment:
  - pypi_ops.pypiserver.k8s
  - pypi_ops.pypiserver.k8s.namespace
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.attributes.read_only
options:
  pod:
    description: Name of the pod to look into.
    type: str
  label_selector:
    description: Label selector, for example V(app=pypiserver); the first Ready pod (by name) is used.
    type: str
  container:
    description: Container to run in. Defaults to the pod's only or default container.
    type: str
  path:
    description: The package directory inside the container.
    type: str
    default: /data/packages
  expect:
    description: Files that must be present, each with C(filename) and optionally C(size) and C(sha256).
    type: list
    elements: dict
    default: []
  fail_on_mismatch:
    description: Fail the task when an expected file is missing or differs.
    type: bool
    default: true
  timeout:
    description: Seconds the command in the pod may take, from connecting to the last byte.
    type: float
    default: 30
notes:
  - Needs RBAC for C(get)/C(list) on C(pods) and C(create) on C(pods/exec), and optionally C(get) on C(namespaces).
  - Filenames holding a newline are not supported.
seealso:
  - module: pypi_ops.pypiserver.storage_inventory
  - module: pypi_ops.pypiserver.pod_restart
"""

EXAMPLES = r"""
- name: Every uploaded file survived the restart, intact
  pypi_ops.pypiserver.pod_storage:
    namespace: pypi
    label_selector: app=pypiserver
    path: /data/packages
    expect: "{{ build.files }}"

- name: Just list what one pod holds
  pypi_ops.pypiserver.pod_storage:
    namespace: pypi
    pod: pypiserver-0
    fail_on_mismatch: false
  register: storage
"""

RETURN = r"""
pod:
  description: Name of the pod that was inspected.
  returned: always
  type: str
  sample: pypiserver-0
files:
  description: Every regular file directly in O(path), by name.
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
  description: Expected files whose size or sha256 differ, with C(filename), C(field), C(expected) and C(found).
  returned: always
  type: list
  elements: dict
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import k8s_wait as kw
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import pod_exec, storage
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import K8S_ARGS, K8S_NAMESPACE_ARGS
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    ns = p["namespace"]
    if p["timeout"] <= 0:
        raise kw.K8sError("timeout must be more than 0")
    api = kw.load_client(p["kubeconfig"], p["context"])
    core = kw.k8s_client.CoreV1Api(api)
    kw.check_namespace(core, ns)
    name = pod_exec.choose_pod(core, ns, p["pod"], p["label_selector"])
    files = pod_exec.pod_inventory(core, ns, name, p["path"], p["container"], p["timeout"])
    found, problem = storage.verdict(files, p["expect"], f"{p['path']} in pod {name}")
    result = {"changed": False, "pod": name, **found}
    if p["fail_on_mismatch"] and problem:
        module.fail_json(msg=problem, **result)
    return result


def main() -> None:
    argument_spec = dict(
        pod=dict(type="str"),
        label_selector=dict(type="str"),
        container=dict(type="str"),
        path=dict(type="str", default="/data/packages"),
        expect=dict(type="list", elements="dict", default=[]),
        fail_on_mismatch=dict(type="bool", default=True),
        timeout=dict(type="float", default=30.0),
        **K8S_ARGS,
        **K8S_NAMESPACE_ARGS,
    )
    run_module(
        "pod_storage",
        argument_spec,
        run,
        libraries=[Library("kubernetes", kw.HAS_K8S, kw.K8S_IMPORT_ERROR)],
        errors={kw.K8sError: None},
        doing=lambda p: f"while reading the pod's storage in namespace {p['namespace']}",
        mutually_exclusive=[("pod", "label_selector")],
        required_one_of=[("pod", "label_selector")],
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
