#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: package_resolve
short_description: Resolve a requirement with its dependencies and extras from the index only, with pip or uv
version_added: "0.5.0"
description:
  - "Installs O(requirement) (for example C(app[extra])) into a throwaway venv with isolated pip (C(pip install
    --isolated --only-binary :all: --report)) or uv (C(uv pip install --no-config -v)), from O(index_url) only, and
    reports every distribution the resolver chose."
  - Each one must come from the index under test by the same rule as M(pypi_ops.pypiserver.package_install) (its
    project page served by the index, its file one the index advertised, its bytes the uploaded sha256 where
    O(uploaded) names it) and, for each name in O(expected), be installed at that version, or not at all.
  - O(watch) names files (for example a release whose C(Requires-Python) this interpreter cannot meet) and RV(fetched)
    says whether the client fetched each one while resolving, which it does when the index does not advertise
    C(data-requires-python).
  - Fails in one sentence naming every difference.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: none
    details: The install is the check; it writes only a temporary venv, removed afterwards.
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
options:
  index_url:
    description: The simple index, for example C(http://127.0.0.1:8080/simple/).
    type: str
    required: true
  requirement:
    description: A PEP 508 requirement, for example V(pypiops-probe-x-dep-a[extra]).
    type: str
    required: true
  client:
    description: The installer.
    type: str
    choices: [pip, uv]
    default: pip
  expected:
    description:
      - Project name to the version it must be installed at; an empty string means it must not be installed.
    type: dict
    default: {}
  uploaded:
    description: File name to the sha256 of the uploaded file; an installed file of that name must carry it.
    type: dict
    default: {}
  watch:
    description: File names to report in RV(fetched).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds the install may take (cut to what is left of O(deadline)).
    type: float
    default: 300
  python:
    description: Interpreter of the throwaway venv (and whose pip runs). Defaults to the one running the module.
    type: path
  uv:
    description: The uv binary; by default found next to O(python), else on C(PATH).
    type: path
  work_dir:
    description: Parent of the temporary directory (removed afterwards).
    type: path
requirements:
  - requests
  - packaging
seealso:
  - module: pypi_ops.pypiserver.package_install
"""

EXAMPLES = r"""
- name: app[extra] resolves lib and its extra from the index only
  pypi_ops.pypiserver.package_resolve:
    index_url: http://127.0.0.1:8080/simple/
    requirement: app[extra]
    client: uv
    expected: {app: "1.0", lib: "1.1", extra-lib: "1.0"}
    watch: [lib-9.0-py3-none-any.whl]
"""

RETURN = r"""
installed:
  description: Every distribution installed, by normalized name.
  returned: success
  type: dict
  sample: {app: {version: "1.0", filename: app-1.0-py3-none-any.whl, url: "http://127.0.0.1:8080/packages/app-1.0-py3-none-any.whl", sha256: "ab12..."}}
fetched:
  description: For each O(watch) file, whether the client fetched it (downloaded it, or requested its metadata).
  returned: success
  type: dict
  sample: {lib-9.0-py3-none-any.whl: true}
provenance:
  description: Per installed file, how its origin was proven (see M(pypi_ops.pypiserver.package_install)).
  returned: success
  type: list
  elements: dict
client:
  description: The installer used.
  returned: always
  type: str
  sample: uv
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import resolution
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    base = {"changed": False, "client": p["client"], "requirement": p["requirement"]}
    try:
        out = resolution.resolve(
            module,
            p["client"],
            p["index_url"],
            p["requirement"],
            opts,
            p["watch"],
            {str(k): str(v) for k, v in p["uploaded"].items()},
            p["timeout"],
            p["python"],
            p["uv"],
            p["work_dir"],
        )
    except resolution.ResolveError as exc:
        module.fail_json(msg=exc.msg, output_tail=exc.output_tail, **base)
    problems = resolution.judge(p["client"], p["requirement"], out["installed"], p["expected"])
    result = dict(base, **out)
    if problems:
        module.fail_json(msg="; ".join(problems) + ".", **result)
    return result


def main() -> None:
    argument_spec = dict(
        index_url=dict(type="str", required=True),
        requirement=dict(type="str", required=True),
        client=dict(type="str", choices=list(resolution.CLIENTS), default="pip"),
        expected=dict(type="dict", default={}),
        uploaded=dict(type="dict", default={}),
        watch=dict(type="list", elements="str", default=[]),
        timeout=dict(type="float", default=300.0),
        python=dict(type="path"),
        uv=dict(type="path"),
        work_dir=dict(type="path"),
        **httputil.CLIENT_ARGS,
    )
    run_module(
        "package_resolve",
        argument_spec,
        run,
        libraries=[Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR)],
        doing=lambda p: f"while resolving {p['requirement']}",
        supports_check_mode=False,
    )


if __name__ == "__main__":
    main()
