#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: package_upload
short_description: Upload Python distributions to an index and classify each outcome
version_added: "0.1.0"
description:
  - Uploads each dist file on its own, with B(twine) by default (the client users run), with B(uv publish)
    (O(client=uv)), B(poetry publish), B(pdm publish) or B(hatch publish) (O(client=poetry), V(pdm), V(hatch)),
    or with a direct POST to the legacy upload API (O(client=http)).
  - Each file's outcome is classified with its HTTP status as one of V(uploaded), V(exists), V(unauthorized),
    V(forbidden), V(too_large), V(rejected), V(server_error), V(unreachable), V(invalid_dist) or V(error); with
    O(confirm_listed=true) also V(unlisted).
  - O(expect) lets a negative test assert a refusal; any other outcome fails the task with one message that
    names what was expected, what came back and the usual cause.
  - Credentials reach twine through C(TWINE_USERNAME)/C(TWINE_PASSWORD), uv through
    C(UV_PUBLISH_USERNAME)/C(UV_PUBLISH_PASSWORD), poetry, pdm and hatch through their own variables (see the notes)
    in their environment, never their argv.
  - With O(client=uv), V(poetry), V(pdm) or V(hatch) and no such program, the task fails with RV(client_missing=true)
    and a message naming the program and how to install it, so a play can tell "the client is absent" from "the
    upload failed".
notes:
  - With O(ca_path), twine gets C(--cert) and C(REQUESTS_CA_BUNDLE)/C(CURL_CA_BUNDLE) name the same bundle (when set, as
    on many CI machines, they would override C(--cert) inside twine).
  - uv publish runs isolated, as measured with uv 0.13.9. Every inherited C(UV_*) variable is removed from its
    environment, and it gets no config (C(--no-config)), no stored credentials (an empty C(UV_CREDENTIALS_DIR) and
    C(NETRC)), no retries and C(--trusted-publishing never). It never gets C(--check-url), which would turn a
    duplicate into a success.
  - uv publish cannot upload without credentials. Without O(password) it sends a placeholder user, so an open
    server still takes the upload and an authenticating one refuses it (V(forbidden)).
  - uv has no C(--cert) for publish; O(ca_path) reaches it as C(SSL_CERT_FILE). O(validate_certs=false) becomes
    C(--allow-insecure-host) for the upload URL's host and port.
  - poetry, pdm and hatch run isolated, as measured with poetry 2.5.1, pdm 2.29.4 and hatch 1.18.2. Each runs in a
    throwaway directory (removed afterwards, failure or not) with a throwaway C(HOME) and XDG directories, an empty
    C(NETRC) and keyring's null backend; every inherited C(POETRY_*), C(PDM_*), C(HATCH_*), C(UV_*), C(PIP_*) and
    C(TWINE_*) variable is removed from its environment. Nothing is read from or written to the user's config,
    cache, keyring or home.
  - poetry publish only publishes a project's C(dist/) directory, so the file is hard-linked (or copied) into the
    C(dist/) of a throwaway project whose C(pyproject.toml) has the name and version of the file's name. The upload
    URL is the repository C(pypiops), defined by C(POETRY_REPOSITORIES_PYPIOPS_URL); the credentials are
    C(POETRY_HTTP_BASIC_PYPIOPS_USERNAME)/C(POETRY_HTTP_BASIC_PYPIOPS_PASSWORD); C(POETRY_KEYRING_ENABLED=false),
    C(POETRY_CONFIG_DIR), C(POETRY_CACHE_DIR) and C(POETRY_DATA_DIR) in the throwaway home, C(--no-interaction).
    O(ca_path) is C(POETRY_CERTIFICATES_PYPIOPS_CERT) (and C(REQUESTS_CA_BUNDLE)); O(validate_certs=false) is a
    C(verify = false) in the throwaway C(config.toml), the only place poetry reads it from.
  - pdm runs C(pdm publish --no-build) in the same kind of throwaway project, with C(PDM_PUBLISH_REPO) (the URL),
    C(PDM_PUBLISH_USERNAME)/C(PDM_PUBLISH_PASSWORD), C(PDM_PUBLISH_CA_CERTS) for O(ca_path); C(PDM_CONFIG_FILE),
    C(PDM_CACHE_DIR) and C(PDM_LOG_DIR) in the throwaway home, C(PDM_CHECK_UPDATE=false), C(PDM_NON_INTERACTIVE=1),
    and C(PDM_USE_VENV=false) with C(PDM_PYTHON) set to O(python) (else pdm makes a virtualenv before it uploads).
    O(validate_certs=false) becomes C(--no-verify-ssl).
  - hatch runs C(hatch publish --no-prompt FILE) with C(HATCH_INDEX_REPO) (the URL), C(HATCH_INDEX_USER),
    C(HATCH_INDEX_AUTH) and C(HATCH_INDEX_CA_CERT) for O(ca_path); C(HATCH_CONFIG) (an empty file),
    C(HATCH_CACHE_DIR) (where hatch would remember users it prompted for) and C(HATCH_DATA_DIR) in the throwaway
    home. It never prompts, so it saves no user or password. hatch has no way to skip TLS verification; with
    O(validate_certs=false) the upload fails with V(error) and says so.
  - Without O(password), poetry sends no credentials at all (an open server takes the upload, an authenticating one
    answers V(unauthorized)). pdm and hatch refuse to upload without a user and a password, so, like uv, they send
    a placeholder user (an open server takes the upload, an authenticating one answers V(forbidden)).
  - poetry and hatch print the HTTP status of a refusal, pdm too; poetry also prints the server's message.
  - The progress this module writes to O(progress_file) is which file; the bytes sent with O(client=http), a heartbeat
    while twine, uv, poetry, pdm or hatch runs.
  - With O(confirm_listed=true), each file a client reports as uploaded is looked up on the project's page of
    O(index_url) (with the same credentials and timeouts); a file the page does not list, or lists with another
    sha256 than the local file's, becomes V(unlisted), which fails the task naming the client.
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Validates the files and reports what would be uploaded; nothing is sent.
extends_documentation_fragment:
  - pypi_ops.pypiserver.client
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.progress
options:
  repository_url:
    description: Upload endpoint, for pypiserver the server root (V(http://host:8080/)).
    type: str
    required: true
  files:
    description: Dist files (wheels, sdists) to upload, in order.
    type: list
    elements: path
    required: true
  expect:
    description:
      - Outcome(s) every file must have. V(refused) stands for V(unauthorized) or V(forbidden).
    type: list
    elements: str
    default: [uploaded]
  client:
    description:
      - V(twine) runs C(python -m twine upload) per file.
      - V(uv) runs C(uv publish) per file (see O(uv) for where the binary comes from).
      - V(poetry), V(pdm), V(hatch) run C(poetry publish), C(pdm publish --no-build), C(hatch publish) per file,
        isolated (see the notes and O(executable)). Added in version 0.7.0.
      - V(http) posts the multipart form itself (streamed from disk); with O(anonymous=true) it sends no credentials.
    type: str
    choices: [twine, uv, http, poetry, pdm, hatch]
    default: twine
  uv:
    description:
      - The uv binary for O(client=uv).
      - Defaults to C(uv) next to O(python) (or next to the interpreter running the module, where the C(uv) wheel
        installs it), else the first C(uv) on C(PATH).
      - Ignored by the other clients.
    type: path
    version_added: "0.3.0"
  executable:
    description:
      - The program for O(client=poetry), V(pdm) or V(hatch).
      - Defaults to the program of that name next to O(python) (or next to the interpreter running the module; the
        Makefile links C(.venv/bin/poetry), C(pdm) and C(hatch) there), else the first one on C(PATH).
      - Ignored by the other clients (uv has O(uv)).
    type: path
    version_added: "0.7.0"
  confirm_listed:
    description:
      - After each file whose outcome is V(uploaded), read the project's page on O(index_url) and require the file
        there with the local file's sha256; otherwise the outcome is V(unlisted).
      - Catches a client, proxy or server that reports success for a file the index never serves.
    type: bool
    default: false
    version_added: "0.7.0"
  index_url:
    description:
      - The simple index O(confirm_listed) reads. Defaults to O(repository_url) with C(simple/) appended.
    type: str
    version_added: "0.7.0"
  anonymous:
    description: With O(client=http), send no Authorization header at all (twine and uv always send one).
    type: bool
    default: false
  timeout:
    description: Seconds allowed for each file's upload.
    type: float
    default: 300
  python:
    description:
      - Interpreter with twine installed. Defaults to the one running the module.
      - With O(client=uv), the directory of this interpreter is where uv is looked for first (unless O(uv) is given);
        the same holds for poetry, pdm and hatch (unless O(executable) is given). pdm gets it as C(PDM_PYTHON).
    type: path
  validate_certs:
    description:
      - Verify TLS certificates. V(false) works, with a warning; prefer O(ca_path) for a private CA.
      - Twine has no switch for it, so with V(false) twine runs with its upload session's C(verify) turned off (where
        twine would set its C(--cert) CA); everything else in twine is unchanged.
      - uv gets C(--allow-insecure-host) for the upload URL's host and port.
  ca_path:
    description: CA bundle for a private CA (twine C(--cert), uv C(SSL_CERT_FILE); the direct client verifies with it too).
  read_timeout:
    default: 300
  progress_file:
    version_added: "0.2.0"
"""

EXAMPLES = r"""
- name: Upload a wheel and an sdist with twine
  pypi_ops.pypiserver.package_upload:
    repository_url: http://127.0.0.1:8080/
    files: "{{ build.files | map(attribute='path') | list }}"
    username: ci
    password: "{{ pypi_password }}"

- name: Upload the same files with uv publish; tell a missing uv apart from a failed upload
  pypi_ops.pypiserver.package_upload:
    repository_url: http://127.0.0.1:8080/
    files: "{{ build.files | map(attribute='path') | list }}"
    client: uv
    username: ci
    password: "{{ pypi_password }}"
  register: uv_upload
  failed_when: uv_upload is failed and not (uv_upload.client_missing | default(false))

- name: Upload with poetry publish, and prove the index lists the file with the same sha256
  pypi_ops.pypiserver.package_upload:
    repository_url: http://127.0.0.1:8080/
    files: ["{{ build.wheel.path }}"]
    client: poetry
    confirm_listed: true
    username: ci
    password: "{{ pypi_password }}"

- name: Upload with hatch publish from a chosen hatch
  pypi_ops.pypiserver.package_upload:
    repository_url: http://127.0.0.1:8080/
    files: ["{{ build.wheel.path }}"]
    client: hatch
    executable: /opt/hatch/bin/hatch
    username: ci
    password: "{{ pypi_password }}"

- name: Prove that a wrong password is refused
  pypi_ops.pypiserver.package_upload:
    repository_url: http://127.0.0.1:8080/
    files: ["{{ build.wheel.path }}"]
    username: ci
    password: wrong
    expect: [refused]
"""

RETURN = r"""
results:
  description: One entry per file, in order.
  returned: always
  type: list
  elements: dict
  contains:
    path: {description: The file., type: str}
    filename: {description: Its name., type: str}
    outcome:
      description:
        - Classified outcome.
        - V(unlisted) (with O(confirm_listed=true)) when the client said it uploaded the file but the index does not
          list it, or lists it with another sha256.
      type: str
      sample: uploaded
    status: {description: "HTTP status, when one came back.", type: int, sample: 200}
    detail: {description: "What the server or client said, on refusal.", type: str}
    seconds: {description: Time for this file., type: float}
    expected: {description: Whether the outcome was one of O(expect)., type: bool}
uploaded:
  description: Files whose outcome was V(uploaded).
  returned: always
  type: list
  elements: str
client:
  description: The upload client used (O(client)).
  returned: always
  type: str
  sample: uv
client_missing:
  description:
    - V(true) when the task failed because the client's program is not installed (O(client=uv), V(poetry),
      V(pdm) or V(hatch) and no such program found). Nothing was uploaded; RV(results) is empty and C(msg) names what is missing and how to install it.
    - V(false) otherwise, also when an upload failed.
  returned: always (unless the arguments are invalid)
  type: bool
  sample: false
uv:
  description: The uv binary that ran.
  returned: when O(client=uv) and uv was found
  type: str
  sample: /opt/venv/bin/uv
executable:
  description: The poetry, pdm or hatch program that ran.
  returned: when O(client) is V(poetry), V(pdm) or V(hatch) and the program was found
  type: str
  sample: /opt/venv/bin/poetry
  version_added: "0.7.0"
"""

import functools
import os
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import (
    client_tools,
    progress,
    publishers,
    upload,
    uv_runner,
)
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.args_common import PROGRESS_ARGS
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module

CLIENT_NAMES = {
    "twine": "twine",
    "uv": "uv publish",
    "http": "the direct upload (client=http)",
    "poetry": "poetry publish",
    "pdm": "pdm publish",
    "hatch": "hatch publish",
}


def _expected(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out += ["unauthorized", "forbidden"] if value == "refused" else [value]
    return out


def _name_version(path: str) -> tuple[str, str]:
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    filename = os.path.basename(path)
    if filename.endswith(".whl"):
        name, version, _build, _tags = parse_wheel_filename(filename)
    else:
        name, version = parse_sdist_filename(filename)
    return str(name), str(version)


def _upload_one(
    module: AnsibleModule,
    session: t.Any,
    path: str,
    opts: httputil.ClientOptions,
    unreachable: str | None,
    prog: progress.Progress,
    label: str,
    uv: str | None,
    program: str | None = None,
) -> tuple[upload.Outcome, float]:
    p = module.params
    if unreachable:
        return upload.Outcome("unreachable", None, unreachable), 0.0
    size = f"{os.path.getsize(path) / 1048576:.1f} MiB"
    if p["client"] in publishers.TOOLS and program:
        tool = p["client"]
        with prog.heartbeat(f"{label} ({size}), {tool} publish running"):
            return upload.timed(
                lambda: publishers.publish(
                    module, tool, p["repository_url"], path, opts, opts.deadline.cap(p["timeout"]), program, p["python"]
                )
            )
    if p["client"] == "twine":
        with prog.heartbeat(f"{label} ({size}), twine running"):
            return upload.timed(
                lambda: upload.twine_upload(
                    module, p["repository_url"], path, opts, opts.deadline.cap(p["timeout"]), p["python"]
                )
            )
    if uv:
        with prog.heartbeat(f"{label} ({size}), uv publish running"):
            return upload.timed(
                lambda: uv_runner.uv_publish(
                    module, p["repository_url"], path, opts, opts.deadline.cap(p["timeout"]), uv
                )
            )
    try:
        name, version = _name_version(path)
    except Exception as exc:  # noqa: BLE001 - packaging's InvalidWheelFilename / InvalidSdistFilename
        return upload.Outcome("invalid_dist", None, str(exc)), 0.0
    prog.phase("bytes", os.path.getsize(path), label)
    return upload.timed(
        lambda: upload.http_upload(
            session,
            p["repository_url"],
            path,
            name,
            version,
            None,
            opts,
            auth=not p["anonymous"],
            progress=prog.bound(label),
        )
    )


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    base: dict[str, t.Any] = {"client": p["client"], "client_missing": False}
    expected = _expected(p["expect"])
    unknown = sorted(set(expected) - set(upload.OUTCOMES))
    if unknown:
        module.fail_json(
            msg=f"expect has unknown outcome(s) {unknown}; use {list(upload.OUTCOMES) + ['refused']}.", **base
        )
    files = [os.path.abspath(f) for f in p["files"]]
    problem = upload.check_files(files)
    if problem:
        module.fail_json(msg=problem, **base)
    uv = None
    if p["client"] == "uv":  # a missing client is its own signal (client_missing), not a failed upload
        try:
            uv = uv_runner.find_uv(p["uv"], p["python"])
        except uv_runner.UvNotFound as exc:
            module.fail_json(msg=exc.msg, changed=False, results=[], uploaded=[], **dict(base, client_missing=True))
        base["uv"] = uv
    program = None
    if p["client"] in publishers.TOOLS:  # the same signal for poetry, pdm and hatch
        try:
            program = client_tools.find_tool(p["client"], p["executable"], p["python"])
        except client_tools.ToolNotFound as exc:
            module.fail_json(msg=exc.msg, changed=False, results=[], uploaded=[], **dict(base, client_missing=True))
        base["executable"] = program
    opts = httputil.ClientOptions.from_params(p)
    httputil.warn_insecure(module, opts)
    if module.check_mode:
        return {
            "changed": True,
            "results": [{"path": f, "filename": os.path.basename(f)} for f in files],
            "uploaded": [],
            **base,
        }

    session = httputil.make_session(opts)
    index_url = p["index_url"] or publishers.default_index_url(p["repository_url"])
    unreachable = upload.preflight(session, p["repository_url"], opts)
    results: list[dict[str, t.Any]] = []
    prog = progress.Progress(p["progress_file"], "upload")
    for index, path in enumerate(files, 1):
        label = f"file {index}/{len(files)} {os.path.basename(path)}"
        got, secs = _upload_one(module, session, path, opts, unreachable, prog, label, uv, program)
        if p["confirm_listed"] and got.outcome == "uploaded":
            seen, more = upload.timed(functools.partial(publishers.confirm_listed, session, index_url, path, opts))
            secs += more
            if seen.outcome != "uploaded":
                got = seen
        results.append(
            {
                "path": path,
                "filename": os.path.basename(path),
                "outcome": got.outcome,
                "status": got.status,
                "detail": got.detail,
                "seconds": round(secs, 3),
                "expected": got.outcome in expected,
            }
        )
    uploaded = [r["filename"] for r in results if r["outcome"] == "uploaded"]
    result = {"changed": bool(uploaded), "results": results, "uploaded": uploaded, **base}
    bad = [r for r in results if not r["expected"]]
    if bad:
        first = bad[0]
        msg = upload.explain(
            first["filename"],
            upload.Outcome(first["outcome"], first["status"], first["detail"]),
            expected,
            client=CLIENT_NAMES.get(p["client"], p["client"]),
        )
        if len(bad) > 1:
            msg += f" ({len(bad) - 1} more file(s) also unexpected; see results.)"
        module.fail_json(msg=msg, **result)
    return result


def main() -> None:
    argument_spec = dict(
        repository_url=dict(type="str", required=True),
        files=dict(type="list", elements="path", required=True),
        expect=dict(type="list", elements="str", default=["uploaded"]),
        client=dict(type="str", default="twine", choices=["twine", "uv", "http", *publishers.TOOLS]),
        uv=dict(type="path"),
        executable=dict(type="path"),
        confirm_listed=dict(type="bool", default=False),
        index_url=dict(type="str"),
        anonymous=dict(type="bool", default=False),
        timeout=dict(type="float", default=300.0),
        python=dict(type="path"),
        **PROGRESS_ARGS,
        **httputil.client_args(read_timeout=300.0),  # bulk transfers: a longer read timeout
    )
    run_module(
        "package_upload",
        argument_spec,
        run,
        libraries=[Library("requests", httputil.HAS_REQUESTS, httputil.REQUESTS_IMPORT_ERROR)],
        doing=lambda p: f"while uploading to {httputil.redact_url(p['repository_url'])}",
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
