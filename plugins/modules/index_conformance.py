#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: index_conformance
short_description: Check a simple index against the PEPs pip and uv rely on, and report what it supports
version_added: "0.3.0"
description:
  - Reads one project of a simple index the way pip and uv do and judges the answers. Each check is a finding with a
    status of V(pass), V(warn), V(fail) or V(skip) (nothing to check).
  - B(PEP 503) the project page's content type; project names normalized in the root listing; a request with a
    non-normalized name (for example C(PYPI_OPS_PROBE)) redirects to the normalized page or answers it; every link
    carries a hash fragment; the newest wheel downloads with the hash its link gives; C(data-requires-python) is
    HTML-escaped and valid when present, and agrees with the wheel's C(Requires-Python).
  - B(PEP 691) whether the server offers JSON under content negotiation, or serves HTML to the JSON-preferring
    C(Accept) header pip and uv send; both are fine, the finding says which.
  - B(PEP 658/714) when a metadata file is advertised, C(<file>.metadata) must exist, match its advertised hash and
    the wheel's own C(METADATA); the attribute should use the PEP 714 name.
  - B(PEP 592) yanked files are reported when present.
  - B(PEP 700) where the index serves PEP 691 JSON - C(meta.api-version) is 1.1 or later, the project's C(versions)
    lists the uploaded version (O(uploaded_version)), and the checked file's C(size) and C(upload-time) match what was
    uploaded (O(uploaded_size); an ISO 8601 time, not in the future and not before O(uploaded_after), each with
    O(clock_skew) to spare). On an HTML-only index (pypiserver 2.4.2) these four checks are V(skip), not applicable.
  - A finding fails only for what breaks pip or uv (measured against pip 26.3 and uv 0.13.9), and warns on what they
    tolerate. The task fails when any finding fails (with O(strict), when any warns too), in one sentence naming every
    failing check.
  - RV(supports) records what the server offers (JSON, metadata files, yanking, C(data-requires-python), hash
    algorithms, range requests).
author:
  - pypi_ops contributors (@pypi-ops)
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.attributes.read_only
options:
  url:
    description:
      - URL of the simple index root, for example C(http://127.0.0.1:8080/simple/). A missing trailing slash is added.
    type: str
    required: true
  project:
    description:
      - A project known to be on the index (a probe package uploaded before), in any spelling.
      - Its page is read, its newest wheel (or O(filename)) downloaded and its C(.metadata) file requested.
    type: str
    required: true
  filename:
    description:
      - The file of O(project) to download and compare; by default the wheel of the newest version.
    type: str
  uploaded_size:
    description:
      - Size in bytes of O(filename) as uploaded, for the PEP 700 C(size) check. Without it, the size of the file as
        downloaded is the reference.
    type: int
    version_added: "0.5.0"
  uploaded_version:
    description:
      - The version uploaded, which the PEP 700 C(versions) list must hold. Without it, the checked file's version.
    type: str
    version_added: "0.5.0"
  uploaded_after:
    description:
      - A time (seconds since the epoch) known to be before the upload, such as the start of the run; a PEP 700
        C(upload-time) earlier than it (less O(clock_skew)) fails. V(0) leaves that check out.
    type: float
    default: 0
    version_added: "0.5.0"
  clock_skew:
    description:
      - Seconds the index's clock may differ from this host's when C(upload-time) is compared with now and with
        O(uploaded_after).
    type: float
    default: 120
    version_added: "0.5.0"
  strict:
    description:
      - Fail on warnings too, for sites that want every SHOULD of the PEPs, not only what pip and uv need.
    type: bool
    default: false
notes:
  - The project page is requested with the C(Accept) header uv sends (V(application/vnd.pypi.simple.v1+json,
    application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01)) and once more with V(application/vnd.pypi.simple.v1+json)
    alone.
  - No proxy settings and no C(~/.netrc) are read from the environment; the module talks to O(url) only.
  - pypiserver 2.4.2 serves HTML only, emits neither C(data-requires-python), metadata files nor C(data-yanked), and
    answers a non-normalized name with a 301 redirect; on it the module passes with warnings.
requirements:
  - requests
  - packaging
seealso:
  - module: pypi_ops.pypiserver.index_list
  - name: PEP 503 - Simple Repository API
    description: The HTML index format.
    link: https://peps.python.org/pep-0503/
  - name: PEP 691 - JSON-based Simple API
    description: The JSON index format and content negotiation.
    link: https://peps.python.org/pep-0691/
  - name: PEP 658 - Serve distribution metadata in the Simple Repository API
    description: The C(.metadata) files.
    link: https://peps.python.org/pep-0658/
  - name: PEP 700 - Additional Fields for the Simple API for Package Indexes
    description: C(versions), C(size) and C(upload-time), which release cooldowns need.
    link: https://peps.python.org/pep-0700/
  - name: PEP 592 - Adding "Yank" Support to the Simple API
    description: Yanked files.
    link: https://peps.python.org/pep-0592/
"""

EXAMPLES = r"""
- name: Check the local pypiserver's index with the probe uploaded before
  pypi_ops.pypiserver.index_conformance:
    url: http://127.0.0.1:8080/simple/
    project: pypi-ops-probe
  register: conformance

- name: Show what the server supports
  ansible.builtin.debug:
    var: conformance.supports

- name: Demand every SHOULD of the PEPs from a production index behind TLS
  pypi_ops.pypiserver.index_conformance:
    url: https://pypi.example.internal/simple/
    project: pypi-ops-probe
    strict: true
    username: ci
    password: "{{ vault_pypi_password }}"
    ca_path: /etc/pki/private-ca.pem
"""

RETURN = r"""
project:
  description: The normalized name of O(project).
  returned: success
  type: str
  sample: pypi-ops-probe
checked_file:
  description: The file downloaded and compared (null when the page lists no wheel).
  returned: success
  type: str
  sample: pypi_ops_probe-1.0.0-py3-none-any.whl
findings:
  description: One entry per check, in a fixed order.
  returned: always
  type: list
  elements: dict
  contains:
    check: {description: "Name of the check, for example V(hash_fragments).", type: str, returned: always}
    pep: {description: "The PEP(s) it comes from, for example V(503) or V(658/714).", type: str, returned: always}
    status: {description: "V(pass), V(warn), V(fail) or V(skip).", type: str, returned: always}
    detail: {description: One sentence on what was seen., type: str, returned: always}
  sample:
    - {check: hash_fragments, pep: "503", status: pass, detail: "all 2 link(s) carry a hash (sha256)."}
supports:
  description: What the server offers, as seen on the project page.
  returned: always
  type: dict
  contains:
    pep503_html: {description: The page was HTML., type: bool, returned: always}
    pep691_json: {description: The page was PEP 691 JSON under content negotiation., type: bool, returned: always}
    json_only_accept: {description: "Status and media type answered to a JSON-only C(Accept).", type: str, returned: always}
    pep658_metadata: {description: A metadata file is advertised for some file., type: bool, returned: always}
    pep714_core_metadata: {description: "It is advertised under the PEP 714 name.", type: bool, returned: always}
    metadata_file_served: {description: "C(<wheel>.metadata) answered 200.", type: bool, returned: always}
    pep592_yanked: {description: "True when a yanked file was seen; null when none was (unknown).", type: bool, returned: always}
    requires_python: {description: "Some link carries C(data-requires-python).", type: bool, returned: always}
    hash_algos: {description: Hash algorithms on the page's links., type: list, elements: str, returned: always}
    non_normalized_request: {description: "What a non-normalized name got, for example V(redirect 301).", type: str, returned: always}
    range_requests: {description: "The wheel download announced C(Accept-Ranges: bytes) (uv reads METADATA with range requests).", type: bool, returned: always}
    pep629_repository_version: {description: The repository version the page declares; null without one., type: str, returned: always}
    pep700_upload_time: {description: "The JSON page gives files an C(upload-time) (PEP 700).", type: bool, returned: always}
  sample: {pep691_json: false, pep658_metadata: false, requires_python: false, hash_algos: [sha256]}
summary:
  description: Findings per status, and the checks that failed the task.
  returned: always
  type: dict
  sample: {counts: {pass: 6, warn: 1, fail: 0, skip: 4}, failing: []}
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import conformance as cf
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    session = httputil.make_session(opts)
    try:
        uploaded = {
            "size": p["uploaded_size"],
            "version": p["uploaded_version"],
            "after": p["uploaded_after"] or None,
            "skew": p["clock_skew"],
        }
        obs = cf.observe(session, p["url"], p["project"], opts, p["filename"], uploaded)
    except cf.ObserveError as exc:
        module.fail_json(msg=exc.msg, status=exc.status, findings=[], supports={})
    finally:
        session.close()
    findings, supports = cf.evaluate(obs)
    wheel = obs.get("wheel")
    result: dict[str, t.Any] = {
        "changed": False,
        "project": obs["project"],
        "checked_file": wheel["record"]["filename"] if wheel else None,
        "findings": findings,
        "supports": supports,
        "summary": cf.summarize(findings, p["strict"]),
    }
    for item in findings:
        if item["status"] == "warn" and not p["strict"]:
            module.warn(f"{item['check']} (PEP {item['pep']}): {item['detail']}")
    msg = cf.failure_message(findings, obs["project"], obs["simple_url"], p["strict"])
    if msg:
        module.fail_json(msg=msg, **result)
    return result


def main() -> None:
    argument_spec = dict(
        url=dict(type="str", required=True),
        project=dict(type="str", required=True),
        filename=dict(type="str"),
        uploaded_size=dict(type="int"),
        uploaded_version=dict(type="str"),
        uploaded_after=dict(type="float", default=0.0),
        clock_skew=dict(type="float", default=120.0),
        strict=dict(type="bool", default=False),
        **httputil.CLIENT_ARGS,
    )
    run_module(
        "index_conformance",
        argument_spec,
        run,
        libraries=[
            Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR),
            Library("packaging", si.HAS_PACKAGING, si.PACKAGING_IMPORT_ERROR),
        ],
        errors={si.IndexReadError: ("status",)},
        doing=lambda p: f"while checking {httputil.redact_url(p['url'])}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
