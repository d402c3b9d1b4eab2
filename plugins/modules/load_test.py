#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: load_test
short_description: Many uploads then many downloads with hash checks, timed, in one module call
version_added: "0.1.0"
description:
  - Writes O(uploads) small valid wheels (distinct versions of one project, or distinct projects with
    O(distinct_projects)), uploads them, then downloads O(downloads) files from the URLs the index lists and
    checks every sha256 against the uploaded file.
  - The loop runs inside this one call so that the figures describe the server, not Ansible. Uploads use a
    direct, streamed POST to the legacy upload API (C(:action=file_upload)) over keep-alive sessions, not
    twine; the P0 C(upload) test is the twine path. Wheels are written directly (a minimal valid wheel),
    not built, so a run of hundreds costs milliseconds of harness time.
  - O(parallel) greater than 1 runs the operations in that many threads (the concurrency test);
    1 runs them one after another (the load test).
  - Reports success counts, p50/p95/p99 latency and throughput for each phase, and fails below O(min_success_rate).
notes:
  - The progress this module writes to O(progress_file) is the wheels written and the uploads and downloads done.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Nothing is sent in check mode.
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.progress
options:
  repository_url:
    description: Upload endpoint.
    type: str
    required: true
  simple_url:
    description: Simple index URL the downloads are resolved from.
    type: str
    required: true
  project:
    description: Project name (or name prefix with O(distinct_projects)). Use a unique, run-specific name.
    type: str
    required: true
  uploads:
    description: Number of uploads.
    type: int
    default: 100
  downloads:
    description: Number of downloads (cycling over the uploaded files). Defaults to O(uploads).
    type: int
  parallel:
    description: Worker threads per phase.
    type: int
    default: 1
  distinct_projects:
    description: Each upload is its own project (C(<project>-<i>)) instead of a version (C(1.0.<i>)) of one project.
    type: bool
    default: false
  payload_size:
    description: Incompressible bytes added to each wheel.
    type: int
    default: 0
  min_success_rate:
    description: Percentage of operations (uploads and downloads together) that must succeed.
    type: float
    default: 100
  work_dir:
    description: Where the wheels are written (a sub-directory is created and removed).
    type: path
    required: true
  keep_files:
    description: Keep the generated wheels.
    type: bool
    default: false
  read_timeout:
    default: 60
  timeout:
    description: Seconds allowed for each upload or download in all.
    type: float
    default: 300
    version_added: 0.4.0
  max_consecutive_failures:
    description:
      - Circuit breaker. After this many consecutive failures of the same kind (the same HTTP status, a stall, a
        refused connection ...) the module stops starting operations and fails with the first error and the count it
        saw, instead of waiting out every remaining operation's timeout against a server that does not answer.
      - V(0) never stops early. Intermittent failures (a failure, then a success) reset the count; O(min_success_rate)
        judges those.
    type: int
    default: 5
    version_added: 0.4.0
  progress_file:
    version_added: "0.2.0"
"""

EXAMPLES = r"""
- name: 100 sequential uploads and downloads
  pypi_ops.pypiserver.load_test:
    repository_url: http://127.0.0.1:8080/
    simple_url: http://127.0.0.1:8080/simple/
    project: "pypiops-probe-{{ run_id }}-load"
    work_dir: /tmp/pypi-load

- name: Three different packages uploaded and downloaded at once
  pypi_ops.pypiserver.load_test:
    repository_url: http://127.0.0.1:8080/
    simple_url: http://127.0.0.1:8080/simple/
    project: "pypiops-probe-{{ run_id }}-conc"
    uploads: 3
    parallel: 3
    distinct_projects: true
    work_dir: /tmp/pypi-conc
"""

RETURN = r"""
upload:
  description: Upload phase figures (total, ok, failed, seconds, p50_ms, p95_ms, p99_ms, max_ms, ops_per_s, mib_per_s,
    histogram).
  returned: success
  type: dict
  contains:
    histogram:
      description:
        - Latency distribution of the successful operations over fixed buckets with upper edges 1, 2, 5, 10, 20, 50,
          100, 200, 500, 1000, 2000 and 5000 ms, plus a last bucket with C(le_ms=null) (+Inf) for the rest.
        - Not cumulative. Each element counts the operations with previous edge < latency <= C(le_ms). All buckets are
          always present, and the counts sum to C(ok).
      returned: success
      type: list
      elements: dict
      sample: [{"le_ms": 1, "count": 0}, {"le_ms": 2, "count": 7}, {"le_ms": 5, "count": 93}, {"le_ms": null, "count": 0}]
download:
  description: Download phase figures, same keys as RV(upload) (including C(histogram)).
  returned: success
  type: dict
success_rate:
  description: Percentage of all operations that succeeded.
  returned: success
  type: float
stopped:
  description:
    - Why the run stopped before its last operation (the circuit breaker, O(max_consecutive_failures), or O(deadline)),
      empty when every operation ran. The module then fails with this message.
  returned: always
  type: str
  sample: "stopped after 5 consecutive download failures (no byte for 30 s) at 5/100; first: download of ..."
  version_added: 0.4.0
failures:
  description: The first 20 failed operations (kind, filename, status, detail).
  returned: success
  type: list
  elements: dict
operations:
  description: Every operation with its latency (kind, filename, ok, ms).
  returned: success
  type: list
  elements: dict
files:
  description: The uploaded files (filename, name, version, size, sha256).
  returned: success
  type: list
  elements: dict
"""

import os
import shutil
import tempfile
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import bounds, probe, progress, traffic
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import PROGRESS_ARGS
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    if p["uploads"] < 1 or p["parallel"] < 1:
        module.fail_json(msg="uploads and parallel must be at least 1.")
    downloads = p["uploads"] if p["downloads"] is None else p["downloads"]
    if downloads < 0 or not 0 <= p["min_success_rate"] <= 100:
        module.fail_json(msg="downloads must be 0 or more and min_success_rate between 0 and 100.")
    try:
        probe.validate_name(p["project"])
    except probe.ProbeError as exc:
        module.fail_json(msg=exc.msg)
    if module.check_mode:
        return {"changed": False, "skipped": True, "msg": "check mode: nothing uploaded"}
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    prog = progress.Progress(p["progress_file"], "load")
    os.makedirs(p["work_dir"], exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="load-", dir=p["work_dir"])
    try:
        files = []
        prog.phase("wheels written", p["uploads"])
        for i in range(p["uploads"]):
            if opts.deadline.passed():
                where = f"while writing wheel {i}/{p['uploads']}"
                module.fail_json(msg=f"Load stopped early: {opts.deadline.error(where).msg}")
            name = f"{p['project']}-{i}" if p["distinct_projects"] else p["project"]
            version = "1.0.0" if p["distinct_projects"] else f"1.0.{i}"
            files.append(traffic.synthetic_wheel(scratch, name, version, p["payload_size"]))
            prog.update(i + 1)
        prog.phase("uploads", p["uploads"])
        up_breaker = bounds.Breaker(p["max_consecutive_failures"], "upload", p["uploads"])
        up_ops, up_wall = traffic.upload_all(
            files, p["repository_url"], opts, p["parallel"], progress=prog, breaker=up_breaker
        )
        uploaded = {o.filename for o in up_ops if o.ok}
        wanted = [f for f in files if f["filename"] in uploaded]
        down_breaker = bounds.Breaker(p["max_consecutive_failures"], "download", downloads)
        down_ops: list[traffic.Op]
        if up_breaker.open:  # the server stopped working: downloads would only repeat the failure
            down_ops, down_wall = [], 0.0
        elif wanted:
            targets = [wanted[i % len(wanted)] for i in range(downloads)]
            prog.phase("downloads", downloads)
            down_ops, down_wall = traffic.download_all(
                targets, p["simple_url"], opts, p["parallel"], progress=prog, breaker=down_breaker
            )
        else:  # nothing to download: every download counts as failed
            down_ops = [traffic.Op("download", "-", False, None, 0.0, 0, "no upload succeeded")] * downloads
            down_wall = 0.0
    except si.IndexReadError as exc:
        module.fail_json(msg=f"Listing the uploaded files failed: {exc.msg}")
    finally:
        if not p["keep_files"]:
            shutil.rmtree(scratch, ignore_errors=True)
    stopped = up_breaker.message or down_breaker.message
    ops = up_ops + down_ops
    ok = sum(1 for o in ops if o.ok)
    rate = round(100.0 * ok / len(ops), 2) if ops else 0.0
    failures = [
        {"kind": o.kind, "filename": o.filename, "status": o.status, "detail": o.detail} for o in ops if not o.ok
    ]
    result: dict[str, t.Any] = {
        "changed": bool(uploaded),
        "upload": traffic.summarize(up_ops, up_wall),
        "download": traffic.summarize(down_ops, down_wall),
        "success_rate": rate,
        "failures": failures[:20],
        "operations": [
            {"kind": o.kind, "filename": o.filename, "ok": o.ok, "ms": round(o.seconds * 1000, 1)} for o in ops
        ],
        "files": [{k: f[k] for k in ("filename", "name", "version", "size", "sha256")} for f in files],
    }
    result["stopped"] = stopped
    if stopped:
        module.fail_json(msg=f"Load stopped early: {stopped}", **result)
    if rate < p["min_success_rate"]:
        first = failures[0]
        module.fail_json(
            msg=f"{len(failures)} of {len(ops)} operations failed (success {rate}% < {p['min_success_rate']}%); "
            f"first: {first['kind']} of {first['filename']}: {first['detail']}.",
            **result,
        )
    return result


def main() -> None:
    argument_spec = dict(
        repository_url=dict(type="str", required=True),
        simple_url=dict(type="str", required=True),
        project=dict(type="str", required=True),
        uploads=dict(type="int", default=100),
        downloads=dict(type="int"),
        parallel=dict(type="int", default=1),
        distinct_projects=dict(type="bool", default=False),
        payload_size=dict(type="int", default=0),
        min_success_rate=dict(type="float", default=100.0),
        work_dir=dict(type="path", required=True),
        keep_files=dict(type="bool", default=False),
        **PROGRESS_ARGS,
        timeout=dict(type="float", default=300.0),
        max_consecutive_failures=dict(type="int", default=5),
        **httputil.client_args(read_timeout=60.0),  # bulk transfers: a longer read timeout
    )
    run_module(
        "load_test",
        argument_spec,
        run,
        libraries=[
            Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR),
            Library("packaging", si.HAS_PACKAGING, si.PACKAGING_IMPORT_ERROR),
        ],
        doing=lambda p: f"while loading {httputil.redact_url(p['repository_url'])}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
