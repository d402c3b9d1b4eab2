#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: size_ladder
short_description: Upload, download and hash-check files of growing size; name the size where refusals begin
version_added: "0.5.0"
description:
  - Climbs a ladder of upload sizes (for example 64 KiB, 256 KiB, 1 MiB, 16 MiB, then a large file). At each step
    it writes a valid wheel with a random payload of that size, uploads it, downloads it back from the URL the index
    lists and checks its sha256, timing both ways.
  - The first step that is not accepted ends the climb. The task then fails with one sentence that names the last
    size accepted, the first refused and the limit that usually sits between them, for example
    C(accepted up to 256 KiB, HTTP 413 from 1 MiB; nginx's client_max_body_size defaults to 1m ...).
  - Uploads are the streamed direct POST to the legacy upload API (C(:action=file_upload)), with the stall, operation
    and deadline bounds of every transfer. Wheels are written directly, each just before its upload, so a refusal at
    a small step costs no time writing the large ones.
  - Each step is a version C(1.0.<i>) of O(project); give a run-unique name under the probe prefix so that the probe
    cleanup removes them.
notes:
  - The progress this module writes to O(progress_file) is the step and the bytes sent or received.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Validates the steps; nothing is written or sent.
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
    description: Project name of the steps' wheels.
    type: str
    required: true
  steps:
    description:
      - Payload sizes, in bytes (V(65536)) or as a number with V(KiB), V(MiB) or V(GiB) (V(64 KiB), V(16MiB)).
      - Climbed smallest first; duplicates are dropped. An empty list runs only O(top_file), if given.
    type: list
    elements: raw
    required: true
  below:
    description:
      - Steps of this many bytes or more are left out (reported in RV(left_out)), so that the ladder stays under the
        large file that tops it. V(0) leaves none out.
    type: int
    default: 0
  top_file:
    description:
      - A distribution built elsewhere (the large probe wheel) uploaded, downloaded and hash-checked as the last step.
      - Its name and version are read from the file name.
    type: path
  work_dir:
    description: Where the steps' wheels are written (a sub-directory is created and removed).
    type: path
    required: true
  keep_files:
    description: Keep the generated wheels.
    type: bool
    default: false
  read_timeout:
    default: 300
  timeout:
    description: Seconds allowed for each upload or download in all.
    type: float
    default: 300
"""

EXAMPLES = r"""
- name: Climb 64 KiB, 256 KiB, 1 MiB, 16 MiB, then the large wheel
  pypi_ops.pypiserver.size_ladder:
    repository_url: http://127.0.0.1:8080/
    simple_url: http://127.0.0.1:8080/simple/
    project: "pypiops-probe-{{ run_id }}-ladder"
    steps: ["64 KiB", "256 KiB", "1 MiB", "16 MiB"]
    top_file: "{{ large_build.wheel.path }}"
    below: "{{ large_build.wheel.size }}"
    work_dir: /tmp/pypi-ladder
"""

RETURN = r"""
steps:
  description:
    - One entry per step climbed, in order. C(step) is the size's label, C(bytes) the file's size, C(outcome)
      V(uploaded) for an accepted step, else the upload's outcome (V(too_large), V(rejected) ...) or
      V(download_failed).
    - Accepted steps add C(upload_s), C(download_s), C(upload_mib_s) and C(download_mib_s); a refused one its C(status).
  returned: always (unless the arguments are invalid)
  type: list
  elements: dict
  sample: [{"step": "64 KiB", "bytes": 66791, "outcome": "uploaded", "upload_s": 0.01, "download_s": 0.004,
            "upload_mib_s": 6.4, "download_mib_s": 15.9}]
accepted_up_to:
  description: Label of the largest step accepted, empty when none was.
  returned: always (unless the arguments are invalid)
  type: str
  sample: 256 KiB
refused_from:
  description: Label of the first step not accepted, empty when all were.
  returned: always (unless the arguments are invalid)
  type: str
  sample: 1 MiB
summary:
  description: The accepted steps' MiB/s, one line, without the O(top_file) step (its figures are in RV(steps)).
  returned: always (unless the arguments are invalid)
  type: str
  sample: 64 KiB 6.4 MiB/s up 15.9 MiB/s down, 256 KiB 20.1 MiB/s up 60.2 MiB/s down
left_out:
  description: Labels of the steps left out by O(below).
  returned: always (unless the arguments are invalid)
  type: list
  elements: str
"""

import os
import shutil
import tempfile
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import ladder, probe, progress
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import PROGRESS_ARGS
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def _top_record(path: str) -> dict[str, t.Any]:
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import digest, upload

    problem = upload.check_files([path])
    if problem:
        raise ladder.LadderError(problem)
    info = probe.classify(os.path.basename(path))
    if info is None:
        raise ladder.LadderError(f"top_file {path} has no wheel or sdist file name, so its project is unknown.")
    rec = digest.file_record(path)
    rec.update(name=info[1], version=info[2])
    return rec


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    try:
        probe.validate_name(p["project"])
        sizes = ladder.parse_steps(p["steps"])
        top = _top_record(os.path.abspath(p["top_file"])) if p["top_file"] else None
    except (probe.ProbeError, ladder.LadderError) as exc:
        module.fail_json(msg=exc.msg)
    kept = [s for s in sizes if not p["below"] or s < p["below"]]
    left_out = [ladder.label(s) for s in sizes if s not in kept]
    if not kept and top is None:
        module.fail_json(msg="The size ladder has no step: give steps (or a top_file), or do not run it.")
    if module.check_mode:
        return {"changed": False, "skipped": True, "msg": "check mode: nothing uploaded", "left_out": left_out}
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    prog = progress.Progress(p["progress_file"], "size ladder")
    os.makedirs(p["work_dir"], exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="ladder-", dir=p["work_dir"])
    try:
        rungs = ladder.synthetic_rungs(scratch, p["project"], kept)
        if top is not None:
            rungs.append(ladder.file_rung(top))
        steps = ladder.climb(rungs, p["repository_url"], p["simple_url"], opts, prog)
    except ladder.LadderError as exc:
        module.fail_json(msg=exc.msg)
    finally:
        if not p["keep_files"]:
            shutil.rmtree(scratch, ignore_errors=True)
    last_ok, bad = ladder.first_refusal(steps)
    result: dict[str, t.Any] = {
        "changed": any(s.accepted or s.outcome == "download_failed" for s in steps),
        "steps": [s.figures() for s in steps],
        "accepted_up_to": last_ok.label if last_ok else "",
        "refused_from": bad.label if bad else "",
        "summary": ladder.summary(steps[: len(kept)]),  # the top file's step is reported by the caller
        "left_out": left_out,
    }
    if bad is not None:
        module.fail_json(msg=ladder.refusal_message(steps), **result)
    return result


def main() -> None:
    argument_spec = dict(
        repository_url=dict(type="str", required=True),
        simple_url=dict(type="str", required=True),
        project=dict(type="str", required=True),
        steps=dict(type="list", elements="raw", required=True),
        below=dict(type="int", default=0),
        top_file=dict(type="path"),
        work_dir=dict(type="path", required=True),
        keep_files=dict(type="bool", default=False),
        timeout=dict(type="float", default=300.0),
        **PROGRESS_ARGS,
        **httputil.client_args(read_timeout=300.0),  # bulk transfers: a longer read timeout
    )
    run_module(
        "size_ladder",
        argument_spec,
        run,
        libraries=[
            Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR),
            Library("packaging", probe.HAS_PACKAGING, probe.PACKAGING_IMPORT_ERROR),
        ],
        doing=lambda p: f"while climbing the size ladder at {httputil.redact_url(p['repository_url'])}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
