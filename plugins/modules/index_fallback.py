#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: index_fallback
short_description: Prove that an index answers a project it cannot hold with a 404, not a redirect to another index
version_added: "0.5.0"
description:
  - The dependency-confusion check. pypiserver redirects every project it does not hold to pypi.org unless it runs
    with C(--disable-fallback); pip and uv follow that redirect silently, so a private name missing from the index
    resolves on the public one.
  - Asks for O(name), a project no one uploaded, three ways. One GET of C(<url>/<name>/) that follows same-origin
    redirects only (5 at most). Then isolated C(pip download) and C(uv pip compile) (see O(clients)), each run with
    every proxy variable pointing at a blocking proxy that this module starts on 127.0.0.1, with C(NO_PROXY) naming
    only the index's host. A redirect to another host reaches nothing, so the public index is never contacted, and
    the proxy records where the client was sent. The clients' logs name the origins they reached, which also catches
    another port on the index's own host.
  - Passes when the index answers 404 (or 410) and every client found nothing and went nowhere else. Fails, in one
    sentence that names the redirect's C(Location) and the fix, on a redirect to another origin (unless
    O(fallback_expected)), on a page served for the name, on a client that resolved the name or was sent elsewhere.
author:
  - pypi_ops contributors (@pypi-ops)
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.attributes.read_only
options:
  url:
    description: URL of the simple index root, for example C(http://127.0.0.1:8080/simple/).
    type: str
    required: true
  name:
    description:
      - A project name that no one uploaded, unique to the run (the role uses C(<pypi_probe_prefix>-<run id>-absent)).
    type: str
    required: true
  clients:
    description:
      - The clients that ask for O(name) besides the direct request. An empty list asks with the direct request only.
      - uv is looked up next to O(python) and on C(PATH); when it is not found its entry says so and is not a failure.
    type: list
    elements: str
    choices: [pip, uv]
    default: [pip, uv]
  fallback_expected:
    description:
      - The site wants unknown names redirected (for example to a curated upstream); a redirect then passes.
    type: bool
    default: false
  timeout:
    description: Seconds each client may take (cut to what is left of O(deadline)).
    type: float
    default: 120
  python:
    description: Interpreter whose pip runs, and that uv resolves for. Defaults to the one running the module.
    type: path
  uv:
    description: The uv binary; by default found next to O(python), else on C(PATH).
    type: path
  work_dir:
    description: Parent of the temporary directory the clients run in (removed afterwards).
    type: path
notes:
  - Measured with pypiserver 2.4.2, pip 26 and uv 0.13.9. With its fallback on, pypiserver answers 303 to
    C(https://pypi.org/simple/<name>/); with C(--disable-fallback) it answers 404.
requirements:
  - requests
seealso:
  - module: pypi_ops.pypiserver.index_conformance
  - name: pypiserver --disable-fallback
    description: The server option that turns the redirect off.
    link: https://github.com/pypiserver/pypiserver#usage
"""

EXAMPLES = r"""
- name: Unknown names must not be sent to pypi.org
  pypi_ops.pypiserver.index_fallback:
    url: http://127.0.0.1:8080/simple/
    name: pypi-ops-probe-20261205-absent

- name: A site that redirects unknown names on purpose; check with the direct request only
  pypi_ops.pypiserver.index_fallback:
    url: https://pypi.example.internal/simple/
    name: pypi-ops-probe-run1-absent
    clients: []
    fallback_expected: true
    username: ci
    password: "{{ vault_pypi_password }}"
"""

RETURN = r"""
name:
  description: The project asked for.
  returned: always
  type: str
  sample: pypi-ops-probe-run1-absent
direct:
  description: The direct request.
  returned: always
  type: dict
  contains:
    url: {description: The project page requested., type: str, returned: always}
    status: {description: "The HTTP status; null when no answer came.", type: int, returned: always}
    location: {description: "Where a redirect pointed (empty without one).", type: str, returned: always}
    hops: {description: Same-origin redirects followed., type: list, elements: str, returned: always}
    error: {description: "Why no answer came (empty otherwise).", type: str, returned: always}
  sample: {url: "http://127.0.0.1:8080/simple/x/", status: 404, location: "", hops: [], error: ""}
clients:
  description: What each client did, keyed by client.
  returned: always
  type: dict
  sample:
    pip: {rc: 1, resolved: false, not_found: true, elsewhere: [], timed_out: false}
    uv: {rc: 1, resolved: false, not_found: true, elsewhere: [], timed_out: false}
redirected:
  description: The index redirected the name to another origin.
  returned: always
  type: bool
  sample: false
reason:
  description: One sentence on the outcome.
  returned: always
  type: str
  sample: the index answers HTTP 404 for the unknown project x; pip, uv found nothing and went nowhere else
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import fallback
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    url = p["url"] if p["url"].endswith("/") else p["url"] + "/"
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https") or "://" not in url:
        module.fail_json(
            msg=f"url {httputil.redact_url(url)!r} is not an http(s) URL; give the simple index, e.g. http://host:8080/simple/."
        )
    name = p["name"].strip()
    if not name or "/" in name:
        module.fail_json(msg=f"name {name!r} is not a project name; give one such as pypi-ops-probe-run1-absent.")
    session = httputil.make_session(opts)
    try:
        direct = fallback.ask_index(session, url, name, opts)
    finally:
        session.close()
    redirected = bool(direct.get("location")) and direct.get("status") is not None and 300 <= direct["status"] < 400
    clients = fallback.run_clients(
        module, url, name, opts, p["clients"], p["timeout"], p["python"], p["uv"], p["work_dir"]
    )
    ok, reason = fallback.verdict(direct, clients, httputil.redact_url(url), name, p["fallback_expected"])
    result = {
        "changed": False,
        "name": name,
        "direct": direct,
        "clients": clients,
        "redirected": redirected,
        "reason": reason,
    }
    if not ok:
        module.fail_json(msg=reason, **result)
    return result


def main() -> None:
    argument_spec = dict(
        url=dict(type="str", required=True),
        name=dict(type="str", required=True),
        clients=dict(type="list", elements="str", choices=list(fallback.CLIENTS), default=list(fallback.CLIENTS)),
        fallback_expected=dict(type="bool", default=False),
        timeout=dict(type="float", default=120.0),
        python=dict(type="path"),
        uv=dict(type="path"),
        work_dir=dict(type="path"),
        **httputil.CLIENT_ARGS,
    )
    run_module(
        "index_fallback",
        argument_spec,
        run,
        libraries=[Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR)],
        doing=lambda p: f"while asking {httputil.redact_url(p['url'])} for {p['name']}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
