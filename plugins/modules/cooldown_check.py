#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cooldown_check
short_description: Prove that release cooldowns (pip --uploaded-prior-to, uv --exclude-newer) work against an index
version_added: "0.5.0"
description:
  - Installs O(name)==O(version) from O(index_url) only, with each client in O(clients), twice - with a cut-off after
    the upload (now plus O(clock_skew)) and with one before it (O(uploaded_after) less O(clock_skew)) - through
    M(pypi_ops.pypiserver.package_install)'s isolated installers (pip C(--uploaded-prior-to), uv C(--exclude-newer)).
  - Both clients place a file by the PEP 700 C(upload-time) the index gives in its PEP 691 JSON. Where the index
    gives one, each client must install with the later cut-off and install nothing with the earlier one, or the
    task fails naming the client and the cut-off.
  - Where the index gives no upload time (pypiserver 2.4.2 serves HTML only), what each client does is the finding
    (measured with pip 26.3 and uv 0.13.9 - pip refuses the index, uv drops every file and installs nothing). It is
    a warning (RV(status=warn), and an Ansible warning) unless O(expected) is true, which makes it a failure.
  - A client that is not installed, or a pip without C(--uploaded-prior-to) (before 26.0), is left out and named in
    RV(reason); with no client left, RV(status=skip).
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Nothing is installed; the result says C(skipped=true) and gives the cut-offs.
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
options:
  index_url:
    description: The simple index of the server under test, e.g. C(http://127.0.0.1:8080/simple/).
    type: str
    required: true
  name:
    description: The project to install, uploaded after O(uploaded_after) (the run's probe).
    type: str
    required: true
  version:
    description: Its version (C(name==version)).
    type: str
    required: true
  filename:
    description: The uploaded file, whose C(upload-time) is read from the index for the report. Default, the last file listed.
    type: str
  import_name:
    description: Module to import after the install. Defaults to the normalized O(name) with C(-) replaced by C(_).
    type: str
  expected_sha256:
    description: Fail an install whose file's sha256 differs (the uploaded wheel's).
    type: str
  uploaded_after:
    description: A time (seconds since the epoch) known to be before the upload, such as the start of the run.
    type: float
    required: true
  clock_skew:
    description: Seconds the index's clock may differ from this host's; both cut-offs keep this far from the upload.
    type: float
    default: 120
  clients:
    description: The install clients to try.
    type: list
    elements: str
    choices: [pip, uv]
    default: [pip, uv]
  expected:
    description: Release cooldowns must work - an index without upload times fails instead of warning.
    type: bool
    default: false
  work_dir:
    description: Directory for the throwaway venvs. Defaults to the system temporary directory.
    type: path
  python:
    description: Interpreter whose pip runs and from which the venvs are made. Defaults to the one running the module.
    type: path
  uv:
    description: The uv binary. Defaults to C(uv) next to O(python), else the first C(uv) on C(PATH).
    type: path
  timeout:
    description: Seconds each step (venv, install, import) may take.
    type: float
    default: 300
notes:
  - pip's version is known only for the interpreter running the module; another O(python)'s pip that lacks the
    option is recognised by its error.
seealso:
  - module: pypi_ops.pypiserver.package_install
  - module: pypi_ops.pypiserver.index_conformance
  - name: PEP 700 - Additional Fields for the Simple API for Package Indexes
    description: The C(upload-time) both clients need.
    link: https://peps.python.org/pep-0700/
"""

EXAMPLES = r"""
- name: Do release cooldowns work against the index? (a warning when it gives no upload times)
  pypi_ops.pypiserver.cooldown_check:
    index_url: http://127.0.0.1:8080/simple/
    name: "{{ probe.name }}"
    version: "{{ probe.version }}"
    filename: "{{ probe.wheel.filename }}"
    uploaded_after: "{{ run_started }}"
  register: cooldown

- name: A site whose developers rely on uv exclude-newer
  pypi_ops.pypiserver.cooldown_check:
    index_url: https://pypi.example.internal/simple/
    name: pypi-ops-probe-20260101
    version: 1.0.0
    uploaded_after: 1767225600
    expected: true
    username: ci
    password: "{{ vault_pypi_password }}"
"""

RETURN = r"""
status:
  description: V(pass) (the clients honour the index's upload times), V(warn) (the index gives none; the finding is in
    RV(reason)), V(skip) (no client could try) - a failure otherwise.
  returned: always
  type: str
  sample: warn
reason:
  description: One sentence on the result, the finding included.
  returned: always
  type: str
finding:
  description: What breaks for which client when the index gives no upload times; null otherwise.
  returned: always
  type: str
cutoffs:
  description: The two cut-offs, ISO 8601 UTC.
  returned: always
  type: dict
  sample: {before: "2026-12-05T03:00:00Z", after: "2026-12-05T03:12:00Z"}
upload_time:
  description: The C(upload-time) the index gives the file (null without one).
  returned: always
  type: str
index_page:
  description: What the project page was when asked as pip and uv ask (C(HTML (no PEP 691 JSON)), C(PEP 691 JSON ...)).
  returned: always
  type: str
outcomes:
  description:
    - One entry per install - C(client), C(cutoff) (V(before) or V(after)), C(at), C(installed), C(kind) (null,
      V(excluded), V(no_upload_time), V(unsupported), V(missing), V(error)), C(filename), C(msg), C(tried).
    - C(tried) is false for an earlier cut-off that was not tried because the later one met an answer that any
      cut-off meets (no upload times, no such option, no client); the entry repeats that answer.
  returned: always
  type: list
  elements: dict
"""

import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import cooldown as cd
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http, probe
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import pip_runner as pr
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    try:
        probe.validate_name(p["name"])
        probe.validate_version(p["version"])
    except probe.ProbeError as exc:
        module.fail_json(msg=exc.msg)
    _url, _user, url_password = pr.split_credentials(p["index_url"])
    if url_password:
        module.no_log_values.add(url_password)
    opts = http.ClientOptions.from_params(p)
    spec = pr.InstallSpec(
        index_url=p["index_url"],
        name=p["name"],
        version=p["version"],
        import_name=p["import_name"] or None,
        expected_sha256=p["expected_sha256"],
        work_dir=p["work_dir"],
        timeout=opts.deadline.cap(p["timeout"]),
        retries=0,
        python=p["python"],
        uv=p["uv"],
    )
    if module.check_mode:
        return {
            "changed": False,
            "skipped": True,
            "status": "skip",
            "reason": "check mode: nothing installed.",
            "finding": None,
            "cutoffs": cd.cutoffs(p["uploaded_after"], time.time(), p["clock_skew"]),
            "outcomes": [],
            "upload_time": None,
            "index_page": "",
        }
    http.warn_insecure(module, opts)
    result = cd.run(
        module,
        spec,
        opts,
        p["clients"],
        p["uploaded_after"],
        p["clock_skew"],
        p["filename"],
        p["expected"],
    )
    result = {"changed": False, **{k: v for k, v in result.items() if k not in ("failures", "skipped")}}
    if result["status"] == "fail":
        module.fail_json(msg=result["reason"], **result)
    if result["status"] == "warn":
        module.warn(result["finding"])
    return result


def main() -> None:
    argument_spec = dict(
        index_url=dict(type="str", required=True),
        name=dict(type="str", required=True),
        version=dict(type="str", required=True),
        filename=dict(type="str"),
        import_name=dict(type="str"),
        expected_sha256=dict(type="str"),
        uploaded_after=dict(type="float", required=True),
        clock_skew=dict(type="float", default=120.0),
        clients=dict(type="list", elements="str", choices=["pip", "uv"], default=["pip", "uv"]),
        expected=dict(type="bool", default=False),
        work_dir=dict(type="path"),
        python=dict(type="path"),
        uv=dict(type="path"),
        timeout=dict(type="float", default=300.0),
        **http.CLIENT_ARGS,
    )
    run_module(
        "cooldown_check",
        argument_spec,
        run,
        libraries=[
            Library("requests", http.HAS_REQUESTS, http.REQUESTS_IMPORT_ERROR),
            Library("packaging", probe.HAS_PACKAGING, probe.PACKAGING_IMPORT_ERROR),
        ],
        doing=lambda p: f"while checking cooldowns against {http.redact_url(p['index_url'])}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
