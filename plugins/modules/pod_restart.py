#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pod_restart
short_description: Restart Kubernetes pods and wait until their replacements are Ready
version_added: "0.1.0"
description:
  - Restarts the pods of a pypiserver deployment, for restart and persistence tests, and waits for the replacements.
  - V(delete) mode deletes each selected pod with a uid precondition, so only the pod that was looked at is deleted.
  - V(rollout) mode does what C(kubectl rollout restart) does, bumping the C(kubectl.kubernetes.io/restartedAt) annotation of the pod template.
  - V(wait) mode restarts nothing. It waits until the selected pods are Ready (any uid), for example to check a release
    before testing it, with the same diagnosis on a timeout.
  - A replacement counts only when its uid is new, its C(Ready) condition is C(True) and it is not terminating.
    An old pod that is terminating but still Ready, or a StatefulSet pod back under the same name, never ends the wait early.
  - On a timeout the module fails with one diagnosis per pod (phase, conditions, container waiting reasons such as
    C(ImagePullBackOff) with the image or C(CrashLoopBackOff) with the last exit code, C(Unschedulable), C(Multi-Attach))
    and what to do next.
author:
  - pypi_ops contributors (@pypi-ops)
requirements:
  - kubernetes (the Python client)
attributes:
  check_mode:
    support: full
    details: Reports which pods would be restarted; nothing is deleted or patched. V(wait) mode only reads, and runs
      the same.
extends_documentation_fragment:
  - pypi_ops.pypiserver.k8s
  - pypi_ops.pypiserver.k8s.namespace
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.progress
options:
  label_selector:
    description: Label selector of the pods, for example V(app=pypiserver).
    type: str
  deployment:
    description: Restart the pods of this Deployment (its C(spec.selector.matchLabels)).
    type: str
  statefulset:
    description: Restart the pods of this StatefulSet (its C(spec.selector.matchLabels)).
    type: str
  mode:
    description:
      - V(delete) deletes the selected pods; their controller creates the replacements.
      - V(rollout) patches the restartedAt annotation of O(deployment) or O(statefulset).
      - V(wait) restarts nothing and waits until O(expected) of the selected pods are Ready; it fails at once when
        no pod matches.
    type: str
    choices: [delete, rollout, wait]
    default: delete
  grace_period:
    description: Termination grace period in seconds for V(delete) mode. Defaults to each pod's own.
    type: int
  expected:
    description:
      - Number of new Ready pods to wait for (in V(wait) mode, Ready pods). Defaults to the number of pods selected
        before the restart.
    type: int
  timeout:
    description: Seconds to wait for the replacements (in V(wait) mode, the pods) to be Ready.
    type: float
    default: 120
  poll_interval:
    description: First pause between polls, in seconds; it grows by half each round up to four times this (at most 5 s).
    type: float
    default: 1
  progress_file:
    version_added: "0.2.0"
notes:
  - Needs RBAC for C(get)/C(list) on C(pods), C(delete) on C(pods) (delete mode) or C(get)/C(patch) on the workload (rollout mode),
    and optionally C(get) on C(namespaces); a 403 names the missing verb and resource.
  - Bare pods without a controller are deleted and not replaced, so the wait times out.
  - The progress this module writes to O(progress_file) is the new Ready pods of O(expected) while the module waits
    for the replacements.
seealso:
  - module: pypi_ops.pypiserver.http_check
"""

EXAMPLES = r"""
- name: Delete the pypiserver pods and wait for the replacements
  pypi_ops.pypiserver.pod_restart:
    kubeconfig: "{{ lookup('env', 'KUBECONFIG') }}"
    namespace: pypi
    deployment: pypiserver
    timeout: 180
  register: restart

- name: Rolling restart of a StatefulSet, as kubectl rollout restart does
  pypi_ops.pypiserver.pod_restart:
    namespace: pypi
    statefulset: pypiserver
    mode: rollout

- name: Which pods would be restarted
  pypi_ops.pypiserver.pod_restart:
    namespace: pypi
    label_selector: app.kubernetes.io/name=pypiserver
  check_mode: true

- name: The release's pods are Ready (nothing is restarted)
  pypi_ops.pypiserver.pod_restart:
    namespace: pypi
    label_selector: app.kubernetes.io/instance=pypi
    mode: wait
    timeout: 60
"""

RETURN = r"""
selector:
  description: Label selector the pods were chosen with.
  returned: always
  type: str
  sample: app=pypiserver
old_pods:
  description: Pods selected before the restart (in check mode, the pods that would be restarted).
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Pod name., type: str, returned: always, sample: pypiserver-7c9d5-abcde}
    uid: {description: Pod uid., type: str, returned: always}
    node: {description: Node the pod ran on., type: str, returned: when scheduled, sample: node-1}
new_pods:
  description: Replacement pods that are Ready (new uids); in V(wait) mode, the Ready pods. Empty in check mode (except V(wait)).
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Pod name., type: str, returned: always}
    uid: {description: "Pod uid, never one of RV(old_pods)'s.", type: str, returned: always}
    node: {description: Node the pod runs on., type: str, returned: always}
elapsed:
  description: Seconds from the first delete or patch until the replacements were Ready.
  returned: always
  type: float
  sample: 14.2
diagnoses:
  description: One line per pod when the wait timed out.
  returned: failure
  type: list
  elements: str
"""

import datetime as dt
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import k8s_wait as kw
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import progress
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import (
    K8S_ARGS,
    K8S_NAMESPACE_ARGS,
    PROGRESS_ARGS,
)
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    ns = p["namespace"]
    if p["mode"] == "rollout" and not (p["deployment"] or p["statefulset"]):
        raise kw.K8sError(
            "mode=rollout needs deployment or statefulset (a label selector has no pod template to patch)"
        )
    if p["expected"] is not None and p["expected"] < 1:
        raise kw.K8sError("expected must be at least 1")

    api = kw.load_client(p["kubeconfig"], p["context"])
    core = kw.k8s_client.CoreV1Api(api)
    apps = kw.k8s_client.AppsV1Api(api)
    kw.check_namespace(core, ns)
    selector, pods = kw.select_pods(core, ns, p["label_selector"], p["deployment"], p["statefulset"], apps=apps)
    old_uids = [pod.metadata.uid for pod in pods]
    live = [pod for pod in pods if not kw.terminating(pod)]
    waiting_only = p["mode"] == "wait"
    if not live and waiting_only:
        raise kw.K8sError(
            f"no pod matches {selector} in namespace {ns}; check that the workload is installed there "
            f"(kubectl get pods -n {ns} --show-labels) and the selector, namespace and kubeconfig context"
        )
    if not live:
        raise kw.K8sError(f"selector {selector} matches no running pods in namespace {ns}")
    old_pods = [kw.pod_info(pod) for pod in live]
    expected = p["expected"] or len(live)
    result: dict[str, t.Any] = {
        "changed": not waiting_only,
        "selector": selector,
        "old_pods": old_pods,
        "new_pods": [],
        "elapsed": 0.0,
    }
    if module.check_mode and not waiting_only:
        return result

    start = time.monotonic()
    if waiting_only:
        old_uids = []  # any Ready pod counts
    elif p["mode"] == "delete":
        for pod in live:
            kw.delete_pod(core, ns, pod, p["grace_period"])
    else:
        kind, name = ("deployment", p["deployment"]) if p["deployment"] else ("statefulset", p["statefulset"])
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        kw.rollout_restart(apps, ns, kind, name, stamp)
    try:
        unit = "Ready pods" if waiting_only else "new Ready pods"
        prog = progress.Progress(p["progress_file"], "wait" if waiting_only else "restart", total=expected, unit=unit)
        new = kw.wait_for_new_ready(
            core, ns, selector, old_uids, expected, p["timeout"], p["poll_interval"], progress=prog
        )
    except kw.WaitTimeout as exc:
        module.fail_json(
            msg=exc.msg,
            diagnoses=exc.diagnoses,
            old_pods=old_pods,
            new_pods=[kw.pod_info(x) for x in exc.ready],
            elapsed=round(time.monotonic() - start, 3),
        )
    result.update(new_pods=[kw.pod_info(x) for x in new], elapsed=round(time.monotonic() - start, 3))
    return result


def main() -> None:
    argument_spec = dict(
        label_selector=dict(type="str"),
        deployment=dict(type="str"),
        statefulset=dict(type="str"),
        mode=dict(type="str", default="delete", choices=["delete", "rollout", "wait"]),
        grace_period=dict(type="int"),
        expected=dict(type="int"),
        timeout=dict(type="float", default=120.0),
        poll_interval=dict(type="float", default=1.0),
        **PROGRESS_ARGS,
        **K8S_ARGS,
        **K8S_NAMESPACE_ARGS,
    )
    run_module(
        "pod_restart",
        argument_spec,
        run,
        libraries=[Library("kubernetes", kw.HAS_K8S, kw.K8S_IMPORT_ERROR)],
        errors={kw.K8sError: None},
        doing=lambda p: f"while restarting pods in namespace {p['namespace']}",
        mutually_exclusive=[("label_selector", "deployment", "statefulset")],
        required_one_of=[("label_selector", "deployment", "statefulset")],
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
