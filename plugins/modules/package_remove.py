# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: package_remove
short_description: Remove packages from a pypiserver and prove they are gone
version_added: "0.2.0"
description:
  - Removes one project's versions (O(name), O(versions)), or every probe project of a prefix older than some
    hours (O(prefix), O(older_than)), with pypiserver's C(:action=remove_pkg) POST to O(url).
  - pypiserver guards removal with the same C(update) auth action as uploads, so the upload credentials remove.
  - pypiserver identifies a file by the exact name and version written in its file name, so one POST is sent per
    spelling found on the project page (C(Foo_Bar-1.0.tar.gz) and C(foo_bar-1.0-py3-none-any.whl) need two).
  - B(A 200 is not trusted.) After the POSTs the project page is read again; a removed file still listed, or whose
    download URL does not answer 404/410, fails the task.
  - With O(prefix), a project matches when its normalized name equals the normalized prefix or starts with it
    followed by C(-); nothing else ever matches (C(pypiops-probe) matches neither C(pypiops-probes) nor
    C(my-pypiops-probe-x)). Its age comes from the run id right after the prefix,
    C(<prefix>-YYYYmmddtHHMMSS[up to 5 digits][-suffix]) in UTC, as the collection names its probes.
  - Idempotent; a version or project that is not listed is not an error.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Lists what would be removed in RV(would_remove) and removes nothing.
  platform:
    platforms: all
    details: Runs wherever Python and requests run; talks HTTP(S) to the index.
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
options:
  url:
    description:
      - Where pypiserver accepts POSTs (its root, the URL twine uploads to), for example C(http://127.0.0.1:8080/).
    type: str
    required: true
  simple_url:
    description:
      - The simple index root used to list projects and files and to prove removal. Defaults to O(url) + C(simple/).
      - It must reach the same server and storage as O(url).
    type: str
  name:
    description:
      - Project to remove versions of (any spelling; normalized). Exclusive with O(prefix).
    type: str
  versions:
    description:
      - Versions of O(name) to remove, compared in PEP 440 normal form and exactly (C(1.0) does not select C(1.0.0)).
      - Empty removes every version the project page lists.
    type: list
    elements: str
    default: []
  prefix:
    description:
      - Probe prefix (a valid project name, for example C(pypiops-probe)); removes every version of each matching
        project old enough for O(older_than). Exclusive with O(name).
    type: str
  older_than:
    description:
      - With O(prefix), hours a probe must be older than to be removed, from the timestamp in its name.
      - V(0) removes matching probes of any age, including the ones whose age cannot be read (RV(undated)).
    type: float
    default: 24
  verify_timeout:
    description:
      - Seconds to keep re-reading the project page until removed files are gone (for caches or eventually
        consistent storage). V(0) reads once.
    type: float
    default: 5
notes:
  - Probes whose name has no readable timestamp after the prefix (a custom C(pypi_run_id)) are reported in
    RV(undated) and removed only with O(older_than=0).
  - On failure, RV(removed) holds what was removed (and proven gone) before it.
requirements:
  - requests
  - packaging
seealso:
  - module: pypi_ops.pypiserver.package_upload
  - module: pypi_ops.pypiserver.index_list
"""

EXAMPLES = r"""
- name: Remove this run's probe, every version
  pypi_ops.pypiserver.package_remove:
    url: "{{ pypi_server.upload_url }}"
    simple_url: "{{ pypi_server.simple_url }}"
    name: "{{ pypi_probe_name }}"
    username: "{{ pypi_username }}"
    password: "{{ pypi_password }}"

- name: Remove two versions of one project
  pypi_ops.pypiserver.package_remove:
    url: https://pypi.example.internal/
    name: mypkg
    versions: ["1.0.0", "1.0.1"]
    ca_path: /etc/pki/private-ca.pem
    username: ci
    password: "{{ vault_pypi_password }}"

- name: Runbook - what leftover probes older than two days would be removed
  pypi_ops.pypiserver.package_remove:
    url: https://pypi.example.internal/
    prefix: pypiops-probe
    older_than: 48
    username: ci
    password: "{{ vault_pypi_password }}"
  check_mode: true
  register: leftovers
"""

RETURN = r"""
removed:
  description: Versions removed and proven gone, one entry per project version.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Normalized project name., type: str, returned: always, sample: pypiops-probe-20261125t153012345}
    version: {description: Version (PEP 440 normal form)., type: str, returned: always, sample: 1.0.0}
    files: {description: File names removed., type: list, elements: str, returned: always}
would_remove:
  description: What the run set out to remove (same shape as RV(removed)); in check mode nothing is removed.
  returned: always
  type: list
  elements: dict
kept:
  description: Matching probes too young to remove.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Normalized project name., type: str, returned: always}
    age_hours: {description: Age from the timestamp in the name (negative when in the future)., type: float, returned: always}
    timestamp: {description: "That timestamp, UTC ISO 8601.", type: str, returned: always, sample: "2026-11-25T15:30:12Z"}
undated:
  description: Matching probes whose name has no readable timestamp after the prefix (removed only with O(older_than=0)).
  returned: always
  type: list
  elements: str
matched:
  description: Projects that matched O(prefix), or O(name) when the index lists it.
  returned: always
  type: list
  elements: str
absent:
  description: Requested O(versions) the project page does not list (nothing to remove).
  returned: when O(name) is given
  type: list
  elements: str
"""

import typing as t
from urllib.parse import urljoin, urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import remove
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def default_simple_url(url: str) -> str:
    parts = urlsplit(url)
    base = url if parts.path.endswith("/") else parts._replace(path=parts.path + "/").geturl()
    return urljoin(base, "simple/")


def run(module: AnsibleModule, result: dict[str, t.Any]) -> dict[str, t.Any]:
    p = module.params
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    session = httputil.make_session(opts)
    try:
        remove.run(
            session,
            opts,
            p["url"],
            p["simple_url"] or default_simple_url(p["url"]),
            name=p["name"],
            versions=p["versions"],
            prefix=p["prefix"],
            older_than=p["older_than"],
            check_mode=module.check_mode,
            verify_timeout=p["verify_timeout"],
            result=result,
        )
    finally:
        session.close()
    return result


def main() -> None:
    argument_spec = dict(
        url=dict(type="str", required=True),
        simple_url=dict(type="str"),
        name=dict(type="str"),
        versions=dict(type="list", elements="str", default=[]),
        prefix=dict(type="str"),
        older_than=dict(type="float", default=24.0),
        verify_timeout=dict(type="float", default=5.0),
        **httputil.client_args(),
    )
    result: dict[str, t.Any] = {}  # filled while it runs: a failure returns what was done so far
    run_module(
        "package_remove",
        argument_spec,
        lambda module: run(module, result),
        libraries=[
            Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR),
            Library("packaging", si.HAS_PACKAGING, si.PACKAGING_IMPORT_ERROR),
        ],
        errors={remove.RemoveError: ("status",)},
        doing=lambda p: f"while removing packages at {httputil.redact_url(p['url'])}",
        fail_fields=lambda module: result,
        supports_check_mode=True,
        mutually_exclusive=[("name", "prefix")],
        required_one_of=[("name", "prefix")],
    )


if __name__ == "__main__":
    main()
