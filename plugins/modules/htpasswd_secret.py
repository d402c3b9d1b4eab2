#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: htpasswd_secret
short_description: Put new credentials into the Kubernetes Secret a pypiserver reads its htpasswd from
version_added: "0.2.0"
description:
  - Reads the Secret O(namespace)/O(name), and when its C(.htpasswd) key does not already accept O(username) with
    O(password), merge-patches its C(data) with a new C(.htpasswd) holding exactly O(username) (passlib's default scheme).
  - The C(username) and C(password) keys (the chart's helm tests read them) are updated only when the Secret already has
    them, so no plaintext copy is added to a Secret that had none.
  - Pods that mount the Secret as a volume see the new file after the kubelet's next sync (typically within a minute)
    and pypiserver re-reads it when its mtime changes, so no pod is restarted. A C(subPath) mount is never updated.
  - It only writes the Secret; prove the change with M(pypi_ops.pypiserver.credentials_check) (with O(pypi_ops.pypiserver.credentials_check#module:wait)).
  - For a Secret the chart created from its values, prefer C(helm upgrade) with the new C(auth.password), because a later
    C(helm upgrade --reuse-values) would otherwise write the old password back.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Reads the Secret and reports whether it would change; nothing is patched.
  platform:
    platforms: all
    details: Talks to the Kubernetes API with the kubernetes Python client.
extends_documentation_fragment:
  - pypi_ops.pypiserver.k8s
  - pypi_ops.pypiserver.k8s.namespace
  - pypi_ops.pypiserver.attributes
options:
  name:
    description: Name of the Secret (the chart's is C(<fullname>-auth), or its C(auth.existingSecret)).
    type: str
    required: true
  username:
    description: The user the new C(.htpasswd) holds (the only one).
    type: str
    required: true
  password:
    description: The new password; at least 12 characters, no control characters, no leading or trailing whitespace. Never logged.
    type: str
    required: true
requirements:
  - kubernetes (Python client)
  - passlib
seealso:
  - module: pypi_ops.pypiserver.credentials_check
  - module: pypi_ops.pypiserver.local_server
"""

EXAMPLES = r"""
- name: New credentials into the Secret the pods mount
  pypi_ops.pypiserver.htpasswd_secret:
    namespace: pypi
    name: pypi-auth
    username: ci
    password: "{{ new_password }}"
  no_log: true
"""

RETURN = r"""
secret:
  description: Name of the Secret.
  returned: success
  type: str
  sample: pypi-pypiserver-auth
namespace:
  description: Its namespace.
  returned: success
  type: str
keys:
  description: Keys of C(data) that were (or, in check mode, would be) replaced; empty when nothing changed.
  returned: success
  type: list
  elements: str
  sample: [.htpasswd, password]
resource_version:
  description: The Secret's resourceVersion after the task.
  returned: success
  type: str
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import credentials as cred
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import k8s_wait as kw
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import K8S_ARGS, K8S_NAMESPACE_ARGS
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    api = kw.load_client(p["kubeconfig"], p["context"])
    core = kw.k8s_client.CoreV1Api(api)
    return cred.rotate_secret(
        core, p["namespace"], p["name"], p["username"], p["password"], check_mode=module.check_mode
    )


def main() -> None:
    argument_spec = dict(
        name=dict(type="str", required=True),
        username=dict(type="str", required=True),
        password=dict(type="str", required=True, no_log=True),
        **K8S_ARGS,
        **K8S_NAMESPACE_ARGS,
    )
    run_module(
        "htpasswd_secret",
        argument_spec,
        run,
        libraries=[Library("kubernetes", kw.HAS_K8S, kw.K8S_IMPORT_ERROR)],
        errors={kw.K8sError: lambda exc, module: {"msg": cred.k8s_sentence(exc)}, cred.CredentialsError: None},
        doing=lambda p: f"while writing the Secret {p['namespace']}/{p['name']}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
