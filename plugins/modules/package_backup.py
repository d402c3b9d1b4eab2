#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: package_backup
short_description: Back up, restore and verify a pypiserver package store with a sha256 manifest
version_added: "0.7.0"
description:
  - V(backup) reads every file of O(store) (a package directory, or the objects under a bucket prefix) and writes
    a backup into the directory O(backup) - C(manifest.json), every file's name, size and sha256, and
    C(packages.tar.gz) (O(format=tar)), or for a bucket a server-side copy of the package prefix to
    O(backup_prefix) in the same bucket (O(format=s3_copy)), each copy hashed again. Backups are never
    overwritten.
  - V(restore) first checks the whole backup against its manifest and refuses it, naming the file and both
    sha256s, when anything was altered or the archive is corrupt. Then it writes the files O(store) lacks (each
    one hashed on its way in), refuses to replace a different file, and reads the store back.
  - V(verify) checks, against the manifest, O(store) (it holds every file with the same sha256) and O(snapshot)
    (an index lists every file with the same sha256); given neither, the backup itself.
  - The playbook C(playbooks/restore_drill.yml) uses it. Every failure is one sentence naming the cause (and the
    file with the sha256 difference) and the next step; credentials never appear in it.
  - Stores are of O(store.kind) C(dir) (a package directory), C(s3) (the objects under a bucket prefix) or C(pod)
    (the package directory inside a pypiserver pod of a Kubernetes release, read and written through the
    C(pods/exec) API as M(pypi_ops.pypiserver.pod_storage) reads it; each file is hashed on the controller).
author:
  - pypi_ops contributors (@pypi-ops)
requirements:
  - boto3 (for stores of kind C(s3))
  - kubernetes (the Python client, for stores of kind C(pod))
attributes:
  check_mode:
    support: full
    details:
      - V(backup) lists what would be backed up and writes nothing.
      - V(restore) checks the backup and the target and lists what would be written, and writes nothing.
      - V(verify) only reads.
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
options:
  state:
    description: What to do.
    type: str
    choices: [backup, restore, verify]
    required: true
  backup:
    description:
      - The backup directory. V(backup) creates it (mode 0700) and fails when it already holds a backup.
    type: path
    required: true
  format:
    description:
      - V(backup) only. V(tar) writes C(packages.tar.gz) into O(backup); V(s3_copy) copies the objects of an
        O(store.kind=s3) to O(backup_prefix) in the same bucket (the manifest still goes to O(backup)).
    type: str
    choices: [tar, s3_copy]
    default: tar
  backup_prefix:
    description: O(format=s3_copy) only. The bucket prefix the copy goes to; it must not overlap the package prefix.
    type: str
    default: ""
  store:
    description:
      - V(backup) - the store backed up. V(restore) - the store restored into. V(verify) - a store to check against
        the manifest (optional).
    type: dict
    suboptions: &store_options
      kind:
        description:
          - V(dir) (a package directory), V(s3) (the objects under a bucket prefix) or V(pod) (the package directory
            inside a pod).
          - V(pod) was added in version 0.7.0 together with the module; the pod must have C(sh), C(cat), C(head),
            C(wc) and C(mv) (the chart's image has them).
        type: str
        choices: [dir, s3, pod]
        required: true
      path:
        description:
          - Kind V(dir) - the package directory.
          - Kind V(pod) - the package directory inside the pod, an absolute path (the chart's is C(/data/packages)).
        type: str
      namespace:
        description: Kind V(pod) - the namespace of the release.
        type: str
      pod:
        description: Kind V(pod) - the pod; mutually exclusive in practice with O(store.label_selector).
        type: str
      label_selector:
        description:
          - Kind V(pod) - the first Ready pod matching it is used, for example
            C(app.kubernetes.io/name=pypiserver,app.kubernetes.io/instance=pypi).
        type: str
      container:
        description: Kind V(pod) - the container, when the pod has more than one.
        type: str
      kubeconfig:
        description: Kind V(pod) - the kubeconfig file; the default chain (C(KUBECONFIG), C(~/.kube/config), in-cluster) without it.
        type: path
      context:
        description: Kind V(pod) - the kubeconfig context.
        type: str
      timeout:
        description: Kind V(pod) - seconds one command in the pod may take (the listing, or one file read or written).
        type: float
        default: 300.0
      endpoint_url:
        description: Kind V(s3) - URL of an S3-compatible server; omit it for AWS S3.
        type: str
      region:
        description: Kind V(s3) - the region to sign requests for.
        type: str
        default: us-east-1
      bucket:
        description: Kind V(s3) - the bucket.
        type: str
      prefix:
        description: Kind V(s3) - the key prefix of the package directory; a trailing C(/) is implied.
        type: str
        default: ""
      access_key:
        description: Kind V(s3) - access key id (with O(store.secret_key)); without both, the AWS chain is used.
        type: str
      secret_key:
        description: Kind V(s3) - secret access key. Never shown.
        type: str
      session_token:
        description: Kind V(s3) - session token for temporary credentials.
        type: str
      profile:
        description: Kind V(s3) - a named AWS profile.
        type: str
      validate_certs:
        description: Kind V(s3) - verify the endpoint's TLS certificate.
        type: bool
        default: true
      ca_path:
        description: Kind V(s3) - CA bundle (PEM) for the endpoint.
        type: path
      connect_timeout:
        description: Kind V(s3) - seconds to connect.
        type: float
        default: 5.0
      read_timeout:
        description: Kind V(s3) - seconds to wait for data.
        type: float
        default: 60.0
  source:
    description:
      - V(restore) and V(verify) of an O(format=s3_copy) backup - the S3 endpoint and credentials of the bucket
        holding the copy (its C(kind) is V(s3); the bucket and prefix come from the manifest).
    type: dict
    suboptions: *store_options
  snapshot:
    description:
      - V(verify) only. The RV(pypi_ops.pypiserver.index_snapshot#module:snapshot) of the index serving the
        restored store (O(pypi_ops.pypiserver.index_snapshot#module:depth=bytes) or V(files)). Every file of the
        manifest must be listed with the manifest's sha256.
    type: dict
notes:
  - Files are stored by their path relative to the package directory (pypiserver also serves one level of
    sub-directories). The index is matched by file name.
  - V(restore) keeps a checked copy of every file in a temporary directory until the whole backup has checked out,
    so it needs as much free space there as the backup holds.
seealso:
  - module: pypi_ops.pypiserver.index_snapshot
  - module: pypi_ops.pypiserver.local_server
"""

EXAMPLES = r"""
- name: Back up the package directory of a local server
  pypi_ops.pypiserver.package_backup:
    state: backup
    store: {kind: dir, path: /srv/pypi/packages}
    backup: /backups/pypi-20260101

- name: Copy a bucket's package prefix to a backup prefix
  pypi_ops.pypiserver.package_backup:
    state: backup
    format: s3_copy
    backup_prefix: backups/20260101
    store:
      kind: s3
      endpoint_url: https://s3.example.com
      bucket: pypi
      prefix: packages
      access_key: "{{ s3_access_key }}"
      secret_key: "{{ vault_s3_secret_key }}"
    backup: /backups/pypi-20260101

- name: Restore it into a new, empty package directory
  pypi_ops.pypiserver.package_backup:
    state: restore
    backup: /backups/pypi-20260101
    store: {kind: dir, path: /srv/pypi-new/packages}

- name: Back up the package directory inside the release's pod (pods/exec)
  pypi_ops.pypiserver.package_backup:
    state: backup
    store:
      kind: pod
      namespace: pypi
      label_selector: app.kubernetes.io/name=pypiserver,app.kubernetes.io/instance=pypi
      path: /data/packages
    backup: /backups/pypi-20260101

- name: The restored index serves every file with its sha256
  pypi_ops.pypiserver.package_backup:
    state: verify
    backup: /backups/pypi-20260101
    snapshot: "{{ after.snapshot }}"
"""

RETURN = r"""
manifest:
  description: The backup's manifest (format, created, source, file_count, total_bytes, files, and for s3_copy the s3 location).
  returned: success, except V(backup) in check mode
  type: dict
file_count:
  description: Files in the backup (or, for V(backup) in check mode, in the store).
  returned: success
  type: int
  sample: 3
total_bytes:
  description: Their total size in bytes.
  returned: success
  type: int
  sample: 40960
files:
  description: Each file's C(name), C(size) and C(sha256) (no sha256 for V(backup) in check mode).
  returned: success
  type: list
  elements: dict
written:
  description: V(restore) - the files written (in check mode, that would be written).
  returned: when state is restore
  type: list
  elements: str
unchanged:
  description: V(restore) - files the target already held with the same content.
  returned: when state is restore
  type: list
  elements: str
problems:
  description: V(verify) and a failed V(restore) - everything that differs, one sentence each.
  returned: when state is verify, or on a mismatch
  type: list
  elements: str
"""

import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import backup as bk
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import s3
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import run_module

STORE_OPTIONS = dict(
    kind=dict(type="str", choices=list(bk.KINDS), required=True),
    path=dict(type="str"),
    namespace=dict(type="str"),
    pod=dict(type="str"),
    label_selector=dict(type="str"),
    container=dict(type="str"),
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    timeout=dict(type="float", default=300.0),
    endpoint_url=dict(type="str"),
    region=dict(type="str", default="us-east-1"),
    bucket=dict(type="str"),
    prefix=dict(type="str", default=""),
    access_key=dict(type="str", no_log=True),
    secret_key=dict(type="str", no_log=True),
    session_token=dict(type="str", no_log=True),
    profile=dict(type="str"),
    validate_certs=dict(type="bool", default=True),
    ca_path=dict(type="path"),
    connect_timeout=dict(type="float", default=5.0),
    read_timeout=dict(type="float", default=60.0),
)


def _summary(manifest: dict[str, t.Any]) -> dict[str, t.Any]:
    return {
        "manifest": manifest,
        "file_count": len(manifest["files"]),
        "total_bytes": sum(f["size"] for f in manifest["files"]),
        "files": manifest["files"],
    }


def _source(module: AnsibleModule) -> bk.S3Store | None:
    spec = module.params["source"]
    if not spec:
        return None
    store = bk.make_store(spec)
    if not isinstance(store, bk.S3Store):
        raise bk.BackupError("source is where an s3_copy backup lives; give it kind s3 (endpoint and credentials).")
    return store


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    backup_dir = os.path.abspath(p["backup"])
    if p["state"] == "backup":
        store = bk.make_store(p["store"])
        if p["format"] == "s3_copy" and not isinstance(store, bk.S3Store):
            module.fail_json(msg="format s3_copy copies a bucket prefix; give store with kind s3, or use format tar.")
        if module.check_mode:
            sizes = bk.plan_backup(store)
            return {
                "changed": True,
                "file_count": len(sizes),
                "total_bytes": sum(sizes.values()),
                "files": [{"name": n, "size": s} for n, s in sizes.items()],
            }
        if p["format"] == "s3_copy":
            manifest = bk.backup_s3_copy(t.cast(bk.S3Store, store), backup_dir, p["backup_prefix"])
        else:
            manifest = bk.backup_tar(store, backup_dir)
        return {"changed": True, **_summary(manifest)}

    manifest = bk.read_manifest(backup_dir)
    source = _source(module)
    if p["state"] == "restore":
        out = bk.restore(manifest, backup_dir, bk.make_store(p["store"]), source, check_mode=module.check_mode)
        return {**_summary(manifest), **out}

    problems: list[str] = []
    checked: list[str] = []
    if p["store"]:
        store = bk.make_store(p["store"])
        problems += bk.check_store(manifest, store)
        checked.append(store.where)
    if p["snapshot"] is not None:
        problems += bk.check_snapshot(manifest, p["snapshot"])
        checked.append("the index")
    if not checked:
        problems += bk.check_backup(manifest, backup_dir, source)
        checked.append("the backup")
    result = {"changed": False, "problems": problems, **_summary(manifest)}
    what = " and ".join(checked)
    if problems:
        module.fail_json(
            msg=f"{what[0].upper()}{what[1:]} {'does' if len(checked) == 1 else 'do'} not match the backup manifest "
            f"{bk.manifest_path(backup_dir)}: "
            f"{bk.few(problems)}; the files were altered or lost after the backup.",
            **result,
        )
    return result


def main() -> None:
    argument_spec = dict(
        state=dict(type="str", choices=["backup", "restore", "verify"], required=True),
        backup=dict(type="path", required=True),
        format=dict(type="str", choices=list(bk.FORMATS), default="tar"),
        backup_prefix=dict(type="str", default=""),
        store=dict(type="dict", options=STORE_OPTIONS),
        source=dict(type="dict", options=STORE_OPTIONS),
        snapshot=dict(type="dict"),
    )
    run_module(
        "package_backup",
        argument_spec,
        run,
        errors={bk.BackupError: ("problems",), s3.S3CheckError: None},
        doing=lambda p: f"while the {p['state']} of {p['backup']}",
        supports_check_mode=True,
        required_if=[("state", "backup", ["store"]), ("state", "restore", ["store"])],
    )


if __name__ == "__main__":
    main()
