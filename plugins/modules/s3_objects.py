#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_objects
short_description: Inventory the packages in an S3 bucket prefix and compare them with expected files
version_added: "0.1.0"
description:
  - Checks that the bucket is reachable with the given credentials (HeadBucket), then lists the objects under
    O(prefix) with their sizes, and the sha256 of the objects asked for (streamed, never read whole).
  - Compares them with O(expect) (filename, size, sha256) and reports what is missing or differs.
  - This is the C(s3) implementation of the functional tests' storage interface; it returns the same shape as
    M(pypi_ops.pypiserver.storage_inventory), so a pypiserver whose package volume is a bucket is checked the same way.
  - Every failure is one sentence naming the cause (no bucket, access denied, wrong credentials, endpoint
    unreachable, TLS, timeout) and the next step; credentials never appear in it.
author:
  - pypi_ops contributors (@pypi-ops)
requirements:
  - boto3
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.attributes.read_only
options:
  endpoint_url:
    description:
      - URL of an S3-compatible server (MinIO, Ceph RGW, moto), e.g. V(http://127.0.0.1:9000).
      - Omit it for AWS S3 itself. When set, requests use path-style addressing.
    type: str
  region:
    description: Region to sign requests for.
    type: str
    default: us-east-1
  access_key:
    description:
      - Access key id. Needs O(secret_key).
      - Without O(profile), O(access_key) and O(secret_key), the standard AWS chain is used
        (C(AWS_ACCESS_KEY_ID)/C(AWS_SECRET_ACCESS_KEY), C(AWS_PROFILE), shared files, instance role).
    type: str
  secret_key:
    description: Secret access key. Never shown in results or messages.
    type: str
  session_token:
    description: Session token for temporary credentials.
    type: str
  profile:
    description: Named profile from the AWS config/credentials files. Takes precedence over O(access_key).
    type: str
  bucket:
    description: The bucket holding the packages.
    type: str
    required: true
  prefix:
    description: Key prefix of the package directory inside the bucket; a trailing C(/) is implied.
    type: str
    default: ""
  expect:
    description: Files that must be present, each with C(filename) and optionally C(size) and C(sha256).
    type: list
    elements: dict
    default: []
  hash_all:
    description: Hash every object, not only the expected ones (downloads them all).
    type: bool
    default: false
  fail_on_mismatch:
    description: Fail the task when an expected file is missing or differs.
    type: bool
    default: true
  validate_certs:
    description: Verify the endpoint's TLS certificate. Prefer O(ca_path) for a private CA.
    type: bool
    default: true
  ca_path:
    description: CA bundle (PEM) to verify the endpoint's certificate with.
    type: path
  connect_timeout:
    description: Seconds to wait for a TCP connection. Requests are tried at most twice.
    type: float
    default: 5
  read_timeout:
    description: Seconds to wait for an answer (or the next piece of an object).
    type: float
    default: 60
notes:
  - Filenames are object keys relative to O(prefix); keys ending in C(/) (folder markers) are skipped.
  - HeadBucket answers a refusal without a body, so a wrong key and a missing C(s3:ListBucket) permission give
    the same 403 message.
seealso:
  - module: pypi_ops.pypiserver.storage_inventory
"""

EXAMPLES = r"""
- name: Every uploaded file is in the bucket, intact
  pypi_ops.pypiserver.s3_objects:
    endpoint_url: "{{ pypi_s3_endpoint_url }}"
    bucket: "{{ pypi_s3_bucket }}"
    prefix: packages
    access_key: "{{ pypi_s3_access_key }}"
    secret_key: "{{ pypi_s3_secret_key }}"
    expect: "{{ build.files }}"

- name: List an AWS bucket with the credentials of the environment, without failing
  pypi_ops.pypiserver.s3_objects:
    bucket: my-pypi-packages
    region: eu-west-1
    fail_on_mismatch: false
  register: stored
"""

RETURN = r"""
bucket:
  description: The bucket.
  returned: always
  type: str
  sample: pypi
prefix:
  description: The normalized prefix (empty or ending in C(/)).
  returned: always
  type: str
  sample: packages/
endpoint_url:
  description: The endpoint used (null for AWS S3).
  returned: always
  type: str
  sample: http://127.0.0.1:9000
reachable:
  description: The bucket answered HeadBucket with these credentials.
  returned: always
  type: bool
  sample: true
files:
  description: Every object under the prefix, by filename (key relative to the prefix).
  returned: success, or when files are missing or differ
  type: dict
  sample: {"probe-1.0.0.tar.gz": {"size": 1024, "sha256": "ab...", "key": "packages/probe-1.0.0.tar.gz"}}
count:
  description: Number of objects.
  returned: success, or when files are missing or differ
  type: int
missing:
  description: Expected filenames that are absent.
  returned: success, or when files are missing or differ
  type: list
  elements: str
mismatched:
  description: Expected files whose size or sha256 differ, with both values.
  returned: success, or when files are missing or differ
  type: list
  elements: dict
error_kind:
  description:
    - Why the bucket could not be read, one of V(no_bucket), V(access_denied), V(bad_credentials), V(bad_endpoint),
      V(tls), V(timeout), V(error).
  returned: failure, when the bucket could not be read
  type: str
  sample: no_bucket
"""

import os
import typing as t
import warnings

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import s3, storage
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    opts = s3.S3Options.from_params(p)
    if not opts.bucket:
        module.fail_json(msg="bucket is empty; set it to the bucket holding the packages (pypi_s3_bucket).")
    if not opts.validate_certs:
        module.warn("validate_certs is false: TLS certificates are NOT verified; use ca_path for a private CA instead.")
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")  # said once above, not per request
    wanted = {e.get("filename") or os.path.basename(e.get("path", "")) for e in p["expect"]}
    result: dict[str, t.Any] = {
        "changed": False,
        "bucket": opts.bucket,
        "prefix": opts.prefix,
        "endpoint_url": opts.endpoint_url,
        "reachable": False,
    }
    try:
        client = s3.make_client(opts)
        s3.check_bucket(client, opts)
        result["reachable"] = True
        files = s3.inventory(client, opts, None if p["hash_all"] else wanted)
    except Exception as exc:  # noqa: BLE001 - every error becomes one sentence, never a traceback
        err = s3.describe_error(exc, opts)
        module.fail_json(msg=err.msg, error_kind=err.kind, **result)
    found, problem = storage.verdict(files, p["expect"], opts.where)
    result.update(found)
    if p["fail_on_mismatch"] and problem:
        module.fail_json(msg=problem, **result)
    return result


def main() -> None:
    argument_spec = dict(
        endpoint_url=dict(type="str"),
        region=dict(type="str", default="us-east-1"),
        access_key=dict(type="str", no_log=True),
        secret_key=dict(type="str", no_log=True),
        session_token=dict(type="str", no_log=True),
        profile=dict(type="str"),
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", default=""),
        expect=dict(type="list", elements="dict", default=[]),
        hash_all=dict(type="bool", default=False),
        fail_on_mismatch=dict(type="bool", default=True),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        connect_timeout=dict(type="float", default=5.0),
        read_timeout=dict(type="float", default=60.0),
    )
    run_module(
        "s3_objects",
        argument_spec,
        run,
        libraries=[Library("boto3", s3.HAS_BOTO3, s3.BOTO3_IMPORT_ERROR)],
        doing=lambda p: f"while reading bucket {p['bucket']}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
