#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: index_snapshot
short_description: Record what a simple index holds, and compare it with an earlier record
version_added: "0.2.0"
description:
  - Reads a PEP 503/691 simple index as a client sees it and returns a snapshot, a map of each normalized project name
    to its files and their digests.
  - "O(depth) sets how much is read: V(names) is the root listing only, V(files) adds every project page with the
    hash each link advertises, V(bytes) downloads every selected file (streamed) and hashes it, failing when the bytes
    do not match the advertised hash."
  - With O(compare_to), compares the new snapshot with an earlier one. It fails when anything that was there is gone
    or changed, or when probe packages (O(probe_prefix)) are left behind. Projects or files that others added
    meanwhile are reported in RV(diff.foreign) with a warning, not a failure.
  - Only reads; never uploads, removes or restarts anything.
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
  depth:
    description: How much to read (see the description).
    type: str
    choices: [names, files, bytes]
    default: files
  projects:
    description:
      - Read only these projects (any spelling). Each must list at least one (selected) file.
      - Empty means every project of the root listing.
    type: list
    elements: str
    default: []
  limit:
    description: Read at most this many projects (in name order, after O(exclude_prefix)). V(0) means no limit.
    type: int
    default: 0
  exclude_prefix:
    description: Leave out projects named C(<prefix>) or C(<prefix>-...), for example probe packages.
    type: list
    elements: str
    default: []
  version:
    description: Only this version's files of each project.
    type: str
  latest:
    description: Only the newest version's files of each project (the newest final release when there is one).
    type: bool
    default: false
  compare_to:
    description:
      - An earlier RV(snapshot) of the same O(depth) to compare with.
      - The projects of that snapshot are read again (the whole index when it was complete, that is taken without
        O(projects), O(limit), O(exclude_prefix), O(version) or O(latest)); those selection options are then ignored.
      - At O(depth=bytes) only the files recorded in it are downloaded again; newer files are listed, not downloaded.
    type: dict
  probe_prefix:
    description: With O(compare_to), added projects under this prefix are leftovers of a run and fail the task.
    type: str
    default: ""
notes:
  - O(depth=bytes) downloads everything selected; use O(limit), O(projects), O(version) or O(latest) on a big index.
seealso:
  - module: pypi_ops.pypiserver.index_list
requirements:
  - requests
  - packaging
"""

EXAMPLES = r"""
- name: Record the listing before the run
  pypi_ops.pypiserver.index_snapshot:
    url: https://pypi.example.com/simple/
    depth: names
  register: before

- name: The run left the listing as it found it
  pypi_ops.pypiserver.index_snapshot:
    url: https://pypi.example.com/simple/
    depth: names
    compare_to: "{{ before.snapshot }}"
    probe_prefix: pypiops-probe

- name: Hash the newest files of five packages, by downloading them
  pypi_ops.pypiserver.index_snapshot:
    url: https://pypi.example.com/simple/
    depth: bytes
    limit: 5
    latest: true
    exclude_prefix: [pypiops-probe]
    username: ops
    password: "{{ vault_pypi_password }}"
"""

RETURN = r"""
snapshot:
  description: What the index holds; pass it to O(compare_to) later.
  returned: success
  type: dict
  contains:
    depth: {description: The O(depth) read., type: str, returned: always, sample: files}
    complete: {description: Whether the whole index was read (no selection)., type: bool, returned: always}
    projects:
      description: "Normalized project name to C({filename: digest}); digests are C(algo:hex), or empty for V(names)."
      type: dict
      returned: always
      sample: {"foo": {"foo-1.0.tar.gz": "sha256:9f86d0..."}}
project_count:
  description: Projects in the snapshot.
  returned: success
  type: int
  sample: 3
file_count:
  description: Files in the snapshot.
  returned: success
  type: int
  sample: 7
unhashed:
  description: Files downloaded at O(depth=bytes) whose index link carries no hash (nothing to check them against).
  returned: success
  type: list
  elements: str
diff:
  description: The comparison with O(compare_to).
  returned: when O(compare_to) is given
  type: dict
  contains:
    equal: {description: Whether both snapshots are the same., type: bool, returned: always}
    lost: {description: "Projects, or C(project/filename), that were there and are gone.", type: list, returned: always}
    changed: {description: "C(project/filename) whose digest changed.", type: list, returned: always}
    leftover: {description: Added items under O(probe_prefix)., type: list, returned: always}
    foreign: {description: Other added items (uploads by others during the run)., type: list, returned: always}
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import snapshot
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    if p["limit"] < 0:
        module.fail_json(msg="limit must be 0 (no limit) or more.")
    if p["version"] and p["latest"]:
        module.fail_json(msg="version and latest select different files; give one of them.")
    before = p["compare_to"]
    if before is not None and before.get("depth") != p["depth"]:
        module.fail_json(
            msg=f"compare_to is a snapshot of depth {before.get('depth')!r}, this one is {p['depth']!r}; "
            "take both at the same depth."
        )
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    session = httputil.make_session(opts)
    try:
        snap = snapshot.take(
            session,
            p["url"],
            opts,
            depth=p["depth"],
            projects=p["projects"],
            limit=p["limit"],
            exclude_prefixes=p["exclude_prefix"],
            version=p["version"],
            latest=p["latest"],
            known=before,
        )
    finally:
        session.close()
    result: dict[str, t.Any] = {
        "changed": False,
        "snapshot": {"depth": snap["depth"], "complete": snap["complete"], "projects": snap["projects"]},
        "project_count": snap["project_count"],
        "file_count": snap["file_count"],
        "unhashed": snap["unhashed"],
    }
    if snap["unhashed"]:
        module.warn(f"No hash in the index for {', '.join(snap['unhashed'][:5])}: downloaded, nothing to compare with.")
    if snap["mismatches"]:
        module.fail_json(
            msg=f"{len(snap['mismatches'])} file(s) do not match the hash in their index link: "
            f"{', '.join(snap['mismatches'][:5])}; the stored file or the index's hash is wrong, check the server's "
            "package storage.",
            **result,
        )
    if before is not None:
        diff = snapshot.compare(before, result["snapshot"], p["probe_prefix"])
        result["diff"] = diff
        if diff["foreign"]:
            module.warn(
                f"{len(diff['foreign'])} item(s) appeared during the run that this run did not upload "
                f"(first: {diff['foreign'][0]}); someone else is using the index."
            )
        problem = snapshot.verdict(diff, f"the index at {httputil.redact_url(p['url'])}")
        if problem:
            module.fail_json(msg=problem, **result)
    return result


def main() -> None:
    argument_spec = dict(
        url=dict(type="str", required=True),
        depth=dict(type="str", choices=list(snapshot.DEPTHS), default="files"),
        projects=dict(type="list", elements="str", default=[]),
        limit=dict(type="int", default=0),
        exclude_prefix=dict(type="list", elements="str", default=[]),
        version=dict(type="str"),
        latest=dict(type="bool", default=False),
        compare_to=dict(type="dict"),
        probe_prefix=dict(type="str", default=""),
        **httputil.CLIENT_ARGS,
    )
    run_module(
        "index_snapshot",
        argument_spec,
        run,
        libraries=[
            Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR),
            Library("packaging", si.HAS_PACKAGING, si.PACKAGING_IMPORT_ERROR),
        ],
        errors={si.IndexReadError: None, snapshot.SnapshotError: None},
        doing=lambda p: f"while reading {httputil.redact_url(p['url'])}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
