#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: credentials_check
short_description: Prove that a pypiserver accepts some credentials and refuses others, without changing anything
version_added: "0.2.0"
description:
  - Sends a request that pypiserver authenticates before doing anything and that changes nothing, and checks the answers.
    For the C(update) action it is C(POST /) with C(:action=verify), which pypiserver answers 200 and ignores; for C(list),
    C(GET /simple/); for C(download), a C(GET) of a package file that cannot exist (404 once authenticated).
  - First the request is sent without credentials and must get 401; otherwise the server does not authenticate that action
    and an accepted answer would prove nothing, so the module fails.
  - Then, until O(wait) seconds have passed, O(username) with O(password) must be accepted and O(username) with
    O(refused_password) refused (403, or 401), O(consecutive) times in a row. Made for a credential rotation, where the
    server picks up the new htpasswd a moment after it was written.
  - Every failure is one sentence naming what was answered and what to check.
author:
  - pypi_ops contributors (@pypi-ops)
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.attributes.read_only
options:
  url:
    description: Base URL of the server (where uploads go, C(POST /)).
    type: str
    required: true
  auth_actions:
    description:
      - What the server authenticates (V(update), V(list), V(download)); picks the probe, in that order of preference.
    type: list
    elements: str
    default: [update]
  refused_password:
    description:
      - A password for O(username) that must be refused, such as the one before a rotation. Never logged.
      - Either O(password) or O(refused_password) (or both) must be given.
    type: str
  wait:
    description: Seconds to keep probing (backoff 0.2 s to 2 s) until the answers are as expected; V(0) probes once.
    type: float
    default: 0
  consecutive:
    description:
      - How many probes in a row must give the expected answers. More than one makes it likelier that every replica
        behind a load balancer has picked up the change (it is no proof of that).
    type: int
    default: 1
  hint:
    description: Sentence appended to the failure message, saying what to check.
    type: str
    default: ""
notes:
  - O(username) is required; O(password) is the password that must be accepted.
seealso:
  - module: pypi_ops.pypiserver.local_server
  - module: pypi_ops.pypiserver.htpasswd_secret
"""

EXAMPLES = r"""
- name: The new password works and the old one is refused (wait up to 30 s for the server to re-read its htpasswd)
  pypi_ops.pypiserver.credentials_check:
    url: http://127.0.0.1:8080/
    username: ci
    password: "{{ new_password }}"
    refused_password: "{{ old_password }}"
    wait: 30
  no_log: true
"""

RETURN = r"""
probe:
  description: The request used.
  returned: success
  type: str
  sample: "POST / :action=verify (a no-op)"
action:
  description: The pypiserver auth action the probe exercises.
  returned: success
  type: str
  sample: update
anonymous_status:
  description: Status without credentials (always 401 on success).
  returned: success
  type: int
  sample: 401
accepted_status:
  description: Status for O(password); null when it was not given.
  returned: success
  type: int
  sample: 200
refused_status:
  description: Status for O(refused_password); null when it was not given.
  returned: success
  type: int
  sample: 403
attempts:
  description: Rounds of probes made.
  returned: success
  type: int
waited:
  description: Seconds from the first probe to the proof.
  returned: success
  type: float
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import credentials as cred
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    if not p["username"]:
        module.fail_json(msg="credentials_check needs username; give the user whose passwords are checked.")
    if p["password"] is None and p["refused_password"] is None:
        module.fail_json(msg="Nothing to check: give password (must work), refused_password (must fail), or both.")
    if p["password"] is not None and p["password"] == p["refused_password"]:
        module.fail_json(
            msg="password and refused_password are the same, so one answer cannot prove both; give two passwords."
        )
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    out = cred.prove(
        p["url"],
        p["username"],
        opts,
        p["auth_actions"],
        password=p["password"],
        refused_password=p["refused_password"],
        wait=p["wait"],
        consecutive=p["consecutive"],
        hint=p["hint"],
    )
    return dict(out, changed=False)


def main() -> None:
    argument_spec = dict(
        url=dict(type="str", required=True),
        auth_actions=dict(type="list", elements="str", default=["update"]),
        refused_password=dict(type="str", no_log=True),
        wait=dict(type="float", default=0.0),
        consecutive=dict(type="int", default=1),
        hint=dict(type="str", default=""),
        **httputil.client_args(),
    )
    run_module(
        "credentials_check",
        argument_spec,
        run,
        libraries=[Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR)],
        errors={cred.CredentialsError: None},
        doing=lambda p: f"while proving the credentials at {httputil.redact_url(p['url'])}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
