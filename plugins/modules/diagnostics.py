# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: diagnostics
short_description: Write the diagnostics bundle of a failed run (logs, process state, events, HTTP exchanges)
version_added: "0.7.0"
description:
  - Writes C(<dest>/diagnostics/) with what an operator needs to find why a run failed, and C(index.md) listing each
    file, what it holds and the one-line cause when one was found (for example C(pypiserver process 1234 is not
    running; last log line - ...)).
  - For O(target=local) and O(target=local_s3) - each pypiserver process's state from O(state_dir) (PID, command line,
    start time, alive or not, health), the tail of its log, C(df) of the package store and its files, the nginx front's
    logs when replicas are used, the S3 server's and s3fs's state and log tails (local_s3).
  - For O(target=kubernetes) - with C(kubectl) and C(helm), each with a timeout - the logs of every release pod (current
    and, for each container that restarted, the previous one; a crash loop's cause quotes the crashed container's
    last log line), the namespace's events oldest first by when they last happened, C(kubectl describe) of the
    release's pods, PVCs and the PVs bound to them, C(helm status), C(helm history) and the logs of the helm test
    pods (annotation C(helm.sh/hook=test) and the release's C(app.kubernetes.io/instance) label).
  - For every target with a known base URL (O(target=url) first of all) - the requests the failing tests would have made
    (C(GET) of the root, C(/simple/), the probe project's page and the health URL), redirects not followed, with the
    method, the URL, the status, the response headers and the first 4 KiB of the body.
  - No secret is written - O(password) and O(secrets), in every form a log, a URL or a header could carry them
    (including base64 C(user:password) of HTTP Basic), are replaced by C([REDACTED]); C(Authorization), C(Cookie)
    and C(Set-Cookie) header values are removed; passwords in URLs and C(password=) pairs are redacted.
  - Each file is capped at O(file_cap) bytes (a log keeps its end, a body its start) and the bundle at O(total_cap)
    bytes; a cut says so in the file, a file left out is named in C(index.md).
  - Collection stops at O(timeout) seconds and writes what it has. The module never fails - problems are returned as
    RV(notes) and warnings - so it cannot turn a failed run into a hang or another error.
  - A previous bundle in the same place (a directory with an C(index.md)) is replaced.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: partial
    details: The bundle is the evidence of a failed run; it is written in check mode too.
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.k8s
options:
  dest:
    description: The report directory; the bundle goes to C(<dest>/diagnostics/).
    type: path
    required: true
  target:
    description: The target the run verified, as in C(pypi_server.target).
    type: str
    required: true
    choices: [local, local_s3, kubernetes, url]
  server:
    description:
      - The target's facts as the deploy role publishes them (C(pypi_server)) - C(base_url), C(simple_url),
        C(health_url), C(username) and C(storage.path) are used. Empty when the deploy failed early.
    type: dict
    default: {}
  results:
    description: The run's results (C(pypi_results)); the failed ones are listed in C(index.md).
    type: list
    elements: dict
    default: []
  state_dir:
    description:
      - The local target's state directory (C(pypi_local_state_dir)) with C(server.json), C(server.log), C(s3/),
        C(front/) and C(replica-N/); for O(target=kubernetes) the release's state directory (C(pypi_k8s_state_dir)),
        for its node S3 mount and port-forward log.
    type: path
  probe_project:
    description: The run's probe project, whose C(/simple/<project>/) page is requested too.
    type: str
    default: ""
  username:
    description: User name for the HTTP probes (sent as the tests send it) and for the redaction of C(user:password).
    type: str
    default: ""
  password:
    description: The server's password; sent with the HTTP probes, and redacted from everything written.
    type: str
    default: ""
  secrets:
    description: Other secrets of the run (S3 secret keys) to redact from everything written.
    type: list
    elements: str
    default: []
  validate_certs:
    description: Verify the server's TLS certificate in the HTTP probes.
    type: bool
    default: true
  ca_path:
    description: CA bundle for the HTTP probes.
    type: path
  release_namespace:
    description: Kubernetes namespace of the release (O(target=kubernetes)), as in C(kubernetes.core.helm).
    type: str
    default: ""
  release:
    description: Helm release name (O(target=kubernetes)).
    type: str
    default: ""
  selector:
    description: Label selector of the release's pods and PVCs (O(target=kubernetes)).
    type: str
    default: ""
  kubectl:
    description: The C(kubectl) executable.
    type: str
    default: kubectl
  helm:
    description: The C(helm) executable.
    type: str
    default: helm
  timeout:
    description: Seconds the whole collection may take; at the deadline it stops and writes what it has.
    type: float
    default: 60
  file_cap:
    description: Maximum bytes of one file of the bundle.
    type: int
    default: 65536
  total_cap:
    description: Maximum bytes of the whole bundle.
    type: int
    default: 2097152
"""

EXAMPLES = r"""
- name: Diagnostics of a failed local run, before the teardown removes the server's logs
  pypi_ops.pypiserver.diagnostics:
    dest: "{{ pypi_report_dest }}"
    target: local
    server: "{{ pypi_server }}"
    results: "{{ pypi_results }}"
    state_dir: "{{ pypi_local_state_dir }}"
    username: "{{ pypi_username }}"
    password: "{{ pypi_server_password }}"
  when: pypi_results | selectattr('status', 'equalto', 'failed') | list | length > 0
"""

RETURN = r"""
path:
  description: The bundle's directory.
  returned: always
  type: str
  sample: reports/diagnostics
index:
  description: Path of C(index.md); empty when the directory could not be written.
  returned: always
  type: str
  sample: reports/diagnostics/index.md
files:
  description: The files written, relative to RV(path).
  returned: always
  type: list
  elements: str
  sample: [local/process.md, local/server.log, http/01-root.txt]
cause:
  description: The one-line cause the collection found first; empty when none.
  returned: always
  type: str
  sample: "pypiserver process 1234 is not running (no such process (exited)); last log line: Killed"
causes:
  description: Every finding, in the order found.
  returned: always
  type: list
  elements: str
notes:
  description: Problems of the collection itself (a step that failed, a file that could not be written).
  returned: always
  type: list
  elements: str
timed_out:
  description: True when collection stopped at O(timeout) before every step finished.
  returned: always
  type: bool
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import diagnostics as diag
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import K8S_ARGS
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    k8s = None
    if p["target"] == "kubernetes":
        k8s = diag.K8s(
            namespace=p["release_namespace"],
            release=p["release"],
            selector=p["selector"] or f"app.kubernetes.io/instance={p['release']}",
            kubeconfig=p["kubeconfig"] or "",
            context=p["context"] or "",
            kubectl=p["kubectl"],
            helm=p["helm"],
        )
    req = diag.Request(
        dest=p["dest"],
        target=p["target"],
        server=p["server"] or {},
        results=p["results"] or [],
        state_dir=p["state_dir"] or "",
        probe_project=p["probe_project"],
        username=p["username"],
        password=p["password"],
        secrets=tuple(s for s in p["secrets"] if s),
        validate_certs=p["validate_certs"],
        ca_path=p["ca_path"] or "",
        k8s=k8s,
        timeout=p["timeout"],
        file_cap=p["file_cap"],
        total_cap=p["total_cap"],
    )
    try:
        out = diag.collect(req, module)
    except Exception as exc:  # noqa: BLE001 - diagnostics never fail the play: say it and go on
        out = {"path": "", "index": "", "files": [], "cause": "", "causes": [], "timed_out": False}
        out["notes"] = [f"The diagnostics collection stopped on an unexpected {type(exc).__name__}: {exc}."]
    for note in out.get("notes") or []:
        module.warn(f"Diagnostics: {note}")
    if out.get("timed_out"):
        module.warn(
            f"Diagnostics: collection stopped at its {p['timeout']:g} s deadline before {', '.join(out['unfinished'])}; "
            "the bundle has what was collected by then."
        )
    out.setdefault("notes", [])
    out["changed"] = bool(out.get("index"))
    return out


def main() -> None:
    argument_spec: dict[str, dict[str, t.Any]] = {
        "dest": {"type": "path", "required": True},
        "target": {"type": "str", "required": True, "choices": ["local", "local_s3", "kubernetes", "url"]},
        "server": {"type": "dict", "default": {}},
        "results": {"type": "list", "elements": "dict", "default": []},
        "state_dir": {"type": "path"},
        "probe_project": {"type": "str", "default": ""},
        "username": {"type": "str", "default": ""},
        "password": {"type": "str", "default": "", "no_log": True},
        "secrets": {"type": "list", "elements": "str", "default": [], "no_log": True},
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path"},
        "release_namespace": {"type": "str", "default": ""},
        "release": {"type": "str", "default": ""},
        "selector": {"type": "str", "default": ""},
        **K8S_ARGS,
        "kubectl": {"type": "str", "default": "kubectl"},
        "helm": {"type": "str", "default": "helm"},
        "timeout": {"type": "float", "default": 60.0},
        "file_cap": {"type": "int", "default": 65536},
        "total_cap": {"type": "int", "default": 2097152},
    }
    run_module(
        "diagnostics",
        argument_spec,
        run,
        doing=lambda p: f"while writing the diagnostics bundle to {p['dest']}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
