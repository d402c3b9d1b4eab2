#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: helm_release
short_description: Report a Helm release's revision, status and images, or roll it back to a revision
version_added: "0.7.0"
description:
  - Reads C(helm history) and C(helm get manifest) and returns the newest revision's number, status, chart,
    app version and the images of its workloads (Deployment, StatefulSet, DaemonSet), plus the history. A release
    that does not exist is not an error (RV(exists) is false).
  - With O(rollback_to), runs C(helm rollback RELEASE REVISION --wait) first and returns the state afterwards. When
    the rollback fails, the one-sentence message names the revision, status and image the release is left at.
  - Never returns the release's values or manifest (they carry the chart's credentials).
  - Used by the upgrade drill (C(playbooks/upgrade_drill.yml)) to say exactly what state a release is in.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Without O(rollback_to) the module only reads and runs unchanged; with it, it reports the release as it is and
      that it would roll back (C(changed=true)), and changes nothing.
extends_documentation_fragment:
  - pypi_ops.pypiserver.k8s
  - pypi_ops.pypiserver.k8s.namespace
  - pypi_ops.pypiserver.attributes
options:
  release:
    description: The release name.
    type: str
    required: true
  rollback_to:
    description: Roll the release back to this revision (C(helm rollback --wait)). Without it the module only reports.
    type: int
  wait_timeout:
    description: How long C(helm rollback --wait) may wait for the rolled-back workloads to be Ready (a Go duration).
    type: str
    default: 300s
  helm:
    description: The helm executable (a name on PATH or a path).
    type: str
    default: helm
seealso:
  - module: kubernetes.core.helm
requirements:
  - helm 3 on the controller
"""

EXAMPLES = r"""
- name: Where is the release now?
  pypi_ops.pypiserver.helm_release:
    release: pypi
    namespace: pypi
  register: rel

- name: Back to the first revision
  pypi_ops.pypiserver.helm_release:
    release: pypi
    namespace: pypi
    rollback_to: 1
    wait_timeout: 180s
"""

RETURN = r"""
exists:
  description: Whether the release exists.
  returned: always
  type: bool
revision:
  description: The newest revision's number (0 when the release does not exist).
  returned: always
  type: int
  sample: 3
status:
  description: The newest revision's status (C(deployed), C(failed), C(pending-upgrade) ...).
  returned: always
  type: str
  sample: deployed
chart:
  description: The newest revision's chart, name and version.
  returned: always
  type: str
  sample: pypiserver-0.7.0
app_version:
  description: The newest revision's app version.
  returned: always
  type: str
description:
  description: Helm's description of the newest revision (C(Upgrade complete), C(Rollback to 1) ...).
  returned: always
  type: str
images:
  description: The container images of the release's workloads at the newest revision.
  returned: always
  type: list
  elements: str
  sample: [localhost/pypiops/pypiserver:2.3.2]
history:
  description: Up to 20 revisions, oldest first, each with C(revision), C(status), C(chart), C(app_version), C(description), C(updated).
  returned: always
  type: list
  elements: dict
summary:
  description: The state in one phrase, for a report.
  returned: always
  type: str
  sample: revision 3 (deployed, chart pypiserver-0.7.0, image localhost/pypiops/pypiserver:2.3.2)
rolled_back_from:
  description: The revision the release was at before the rollback.
  returned: when O(rollback_to) rolled the release back
  type: int
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import helm_release as hr
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import K8S_ARGS, K8S_NAMESPACE_ARGS
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    helm = module.get_bin_path(p["helm"], required=False) or p["helm"]
    base = hr.base_argv(helm, p["namespace"], p["kubeconfig"], p["context"])

    def runner(argv: list[str]) -> tuple[int, str, str]:
        return module.run_command(argv)

    if p["rollback_to"] is None or module.check_mode:
        state = hr.info(runner, base, p["release"])
        changed = p["rollback_to"] is not None and state["exists"]
    else:
        state = hr.rollback(runner, base, p["release"], p["rollback_to"], p["wait_timeout"])
        changed = True
    return {"changed": changed, **state, "summary": hr.describe(state)}


def main() -> None:
    argument_spec = dict(
        release=dict(type="str", required=True),
        rollback_to=dict(type="int"),
        wait_timeout=dict(type="str", default="300s"),
        helm=dict(type="str", default="helm"),
        **K8S_ARGS,
        **K8S_NAMESPACE_ARGS,
    )
    run_module(
        "helm_release",
        argument_spec,
        run,
        libraries=[Library("PyYAML", hr.HAS_YAML)],
        errors={hr.HelmError: None},
        doing=lambda p: f"while reading helm release {p['release']} in namespace {p['namespace']}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
