#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: package_install
short_description: Prove a package installs from the index under test, and only from it
version_added: "0.1.0"
description:
  - Creates a throwaway venv (C(python -m venv --without-pip)), installs O(name)==O(version) into it with the
    controller's pip (C(pip --python)), imports the package and reads its C(__version__).
  - With O(client=uv) the same happens with B(uv) instead (C(uv venv) from O(python), then C(uv pip install)), isolated
    as described in the notes. The result has the same keys for both clients, so a play can treat them alike.
  - pip is isolated from every other package source. C(--isolated) drops C(PIP_*) variables and the user config,
    C(PIP_CONFIG_FILE) is set to the null device so global and site config files (C(/etc/pip.conf),
    C($XDG_CONFIG_DIRS/pip/pip.conf)) are not read either, and O(index_url) is the only index
    (no extra index, no find-links, wheels only).
  - Credentials go into a private netrc file (mode 0600) named by C(NETRC);
    they never appear in argv or in the index URL.
    Credentials embedded in O(index_url) are moved there too (prefer O(username) and O(password)).
  - Where the install came from is judged by one rule, for pip and uv alike. The project page the client read must
    be served by the index under test (a redirect of the page to another origin, such as pypiserver's fallback to
    pypi.org, fails). The installed file's URL must be one that page advertised (relative links resolved, the
    C(#sha256=) fragment ignored), and its bytes must carry O(expected_sha256), or the sha256 the index advertised.
    The file itself may be on another origin, as PyPI's absolute links and Artifactory's redirects to object storage
    are. With O(client=uv), every URL uv requested (from its C(-v) log) must be on the index's origin or be an
    advertised file.
  - Also fails when the imported module is not inside the throwaway venv, or when O(expected_version) does not match.
  - With O(client=uv-lock), O(client=poetry) or O(client=pdm) the install goes through a lock file, in a throwaway
    project whose only index is O(index_url) - C(uv lock) + C(uv sync), C(poetry lock) + C(poetry install --no-root),
    C(pdm lock -S static_urls) + C(pdm install) - into a venv made from O(python). The lock file is checked too - its
    entry for O(name) must name the index under test, the installed file must be one it records, and the sha256 it
    records must be O(expected_sha256) - and is returned as RV(lock). A locked version other than
    O(expected_version) fails, naming both.
  - With O(client=uv) and no uv binary, the task fails with RV(client_missing=true) and a message naming uv and how
    to install it, so a play can tell "uv is absent" from "the install failed".
  - The throwaway venv and the netrc are removed afterwards, also on failure (unless O(keep_venv)).
  - Nothing changes on the server, so the result is always C(changed=false).
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Nothing is installed; the result says C(skipped=true).
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
  - pypi_ops.pypiserver.client
options:
  index_url:
    description: The simple index of the server under test, e.g. C(http://127.0.0.1:8080/simple/).
    type: str
    required: true
  name:
    description: Project name to install.
    type: str
    required: true
  version:
    description: Exact version to install (C(name==version)). Omitted, the client picks the latest the index offers.
    type: str
  uploaded_prior_to:
    description:
      - A release cut-off, an ISO 8601 date and time such as C(2026-01-31T00:00:00Z). The client considers only files
        the index says were uploaded before it (PEP 700 C(upload-time)) - pip C(--uploaded-prior-to) (pip 26.0 or
        later), uv C(--exclude-newer).
      - On an index without upload times pip refuses to install and uv finds no file (measured with pip 26.3 and uv
        0.13.9 against pypiserver 2.4.2); the failure then has RV(cutoff=no_upload_time).
    type: str
    version_added: "0.5.0"
  pre:
    description: Let the client consider pre-releases (pip C(--pre), uv C(--prerelease allow)) when picking the latest version.
    type: bool
    default: false
  import_name:
    description: Module to import. Defaults to the normalized O(name) with C(-) replaced by C(_).
    type: str
  expected_version:
    description: Fail unless the imported C(__version__) equals this (PEP 440 equality, so C(1.0) matches C(1.0.0)).
    type: str
  expected_sha256:
    description: Fail unless the resolved file's sha256 equals this (e.g. the built wheel's).
    type: str
  keep_venv:
    description: Keep the throwaway venv for inspection; its path is returned as RV(venv_dir).
    type: bool
    default: false
  work_dir:
    description: Directory where the throwaway venv is created. Defaults to the system temporary directory.
    type: path
  client:
    description:
      - V(pip) installs with the controller's pip (C(python -m pip --python <venv>)).
      - V(uv) installs with C(uv pip install --no-build --no-cache) into a C(uv venv) (see O(uv)).
      - V(uv-lock) (version 0.7.0) runs C(uv lock) then C(uv sync --locked); the index is the one C([[index]])
        (C(default = true)) of a throwaway C(uv.toml) named by C(UV_CONFIG_FILE), which also keeps every other uv
        config file out (C(UV_NO_CONFIG) would drop the project's own settings, and without either uv merges
        C(/etc/uv/uv.toml)); credentials as C(UV_INDEX_PYPIOPS_USERNAME)/C(_PASSWORD).
      - V(poetry) (version 0.7.0) runs C(poetry lock) then C(poetry install --no-root) with C(package-mode = false) and
        one C([[tool.poetry.source]]) of C(priority = "primary"), which turns poetry's implicit PyPI off (poetry's
        C(Factory.create_pool)); credentials as C(POETRY_HTTP_BASIC_PYPIOPS_USERNAME)/C(_PASSWORD), config, cache and
        data dirs in a throwaway home, keyring off.
      - V(pdm) (version 0.7.0) runs C(pdm lock -S static_urls) then C(pdm install --frozen-lockfile) with
        C(distribution = false) and one C([[tool.pdm.source]]) named C(pypi), which replaces pdm's default;
        C(PDM_IGNORE_STORED_INDEX=1), a throwaway C(PDM_CONFIG_FILE), credentials as
        C(PDM_PYPI_USERNAME)/C(PDM_PYPI_PASSWORD).
      - Credentials never reach any client's argv; every inherited C(UV_*), C(POETRY_*), C(PDM_*), C(PIP_*) variable is
        removed from its environment.
    type: str
    choices: [pip, uv, uv-lock, poetry, pdm]
    default: pip
    version_added: "0.3.0"
  uv:
    description:
      - The uv binary for O(client=uv).
      - Defaults to C(uv) next to O(python) (or next to the interpreter running the module, where the C(uv) wheel
        installs it), else the first C(uv) on C(PATH).
      - Ignored with O(client=pip).
    type: path
    version_added: "0.3.0"
  executable:
    description:
      - The program for O(client=poetry) or O(client=pdm). Defaults to C(poetry) or C(pdm) next to O(python) (or next
        to the interpreter running the module), else the first one on C(PATH).
      - O(client=uv-lock) uses O(uv) instead; ignored with the other clients.
    type: path
    version_added: "0.7.0"
  python:
    description:
      - Interpreter whose pip runs and from which the venv is made. Defaults to the one running the module.
      - With O(client=uv), the venv is made from it (C(uv venv --python), no interpreter download) and uv is looked for
        next to it first (unless O(uv) is given).
    type: path
  retries:
    description: pip's C(--retries) for each connection; with O(client=uv), C(UV_HTTP_RETRIES).
    type: int
    default: 1
  timeout:
    description: Seconds each step (venv creation, pip or uv, import) may take before it is killed.
    type: float
    default: 300
  username:
    description:
      - User for the index (written to a private netrc, not passed in argv).
      - With O(client=uv), given to uv as C(UV_INDEX_PYPIOPS_USERNAME) in its environment.
  password:
    description:
      - Password for the index (written to a private netrc, not passed in argv).
      - With O(client=uv), given to uv as C(UV_INDEX_PYPIOPS_PASSWORD) in its environment.
  validate_certs:
    description:
      - Verify TLS certificates. V(false) passes C(--trusted-host) for the index host to pip, and warns.
      - With O(client=uv), C(--allow-insecure-host) for the index host and port.
  ca_path:
    description: CA bundle for a private CA, passed to pip as C(--cert) (to uv as C(--cert) and C(SSL_CERT_FILE)).
  connect_timeout:
    description: Seconds to connect. pip has a single socket timeout, set to the larger of this and O(read_timeout).
  read_timeout:
    description: Seconds to wait for data. See O(connect_timeout).
  deadline:
    description:
      - Absolute time (seconds since the epoch) by which the module must end; V(0) for none. O(timeout) is cut to
        what is left of it. The functional_tests role sets it from C(pypi_test_deadline) and C(pypi_run_deadline).
notes:
  - With O(ca_path), pip gets C(--cert) and C(REQUESTS_CA_BUNDLE)/C(CURL_CA_BUNDLE) name the same bundle (when set, as on
    many CI machines, they would override C(--cert) inside pip).
  - Only wheels are considered (C(--only-binary :all:)); an index that holds only the sdist makes this module fail.
  - pip reports a 401 or an unreachable index only as "from versions none"; the module then asks the project page
    directly to tell which.
  - O(client=uv) is isolated as measured with uv 0.13.9. C(UV_NO_CONFIG) alone drops only config files, so every
    inherited C(UV_*) variable is removed from uv's environment (an inherited C(UV_EXTRA_INDEX_URL) would otherwise
    install from another index). C(UV_CREDENTIALS_DIR) and C(NETRC) name empty private files, and O(index_url) is
    the only index (C(--default-index)).
  - uv follows redirects silently (pypiserver's default fallback sends unknown projects to pypi.org). Its C(-v) log
    names every file it requested; each must come from the index under test, or the module fails.
  - With O(client=uv), RV(sha256) is the index's C(#sha256=) hash, which uv checks the download against. An index
    without one (pypiserver C(--hash-algo off)) has the served file fetched and hashed here.
seealso:
  - module: pypi_ops.pypiserver.package_build
"""

EXAMPLES = r"""
- name: Install the probe just uploaded and check it is the one built
  pypi_ops.pypiserver.package_install:
    index_url: "{{ server_url }}simple/"
    name: "{{ probe.name }}"
    version: "{{ probe.version }}"
    expected_version: "{{ probe.expected_version }}"
    expected_sha256: "{{ probe.wheel.sha256 }}"
    username: ci
    password: "{{ vault_pypi_password }}"
  register: installed

- name: The same install with uv; tell a missing uv apart from a failed install
  pypi_ops.pypiserver.package_install:
    index_url: "{{ server_url }}simple/"
    name: "{{ probe.name }}"
    version: "{{ probe.version }}"
    expected_version: "{{ probe.expected_version }}"
    client: uv
  register: uv_installed
  failed_when: uv_installed is failed and not (uv_installed.client_missing | default(false))

- name: The latest pre-release the index offers
  pypi_ops.pypiserver.package_install:
    index_url: https://pypi.example.internal/simple/
    name: pypi-ops-probe
    pre: true
    ca_path: /etc/pki/internal-ca.pem
"""

RETURN = r"""
requirement:
  description: What the client was asked to install.
  returned: always
  type: str
  sample: pypi-ops-probe==1.0.0
client:
  description: The install client used (O(client)).
  returned: always
  type: str
  sample: uv
client_missing:
  description:
    - V(true) when the task failed because the client's program is not installed (O(client=uv) and no uv binary
      found; O(client=poetry) or O(client=pdm) and no such program). Nothing was installed; C(msg) names what is missing and how to install it.
    - V(false) otherwise, also when the install failed.
  returned: always (unless the arguments are invalid)
  type: bool
  sample: false
index_url:
  description: The index used, without credentials.
  returned: always
  type: str
resolved_url:
  description: URL of the file the client downloaded (redacted), as the index advertised it (it may be on another
    origin than the index, for example a file host).
  returned: success
  type: str
  sample: http://127.0.0.1:8080/packages/pypi_ops_probe-1.0.0-py3-none-any.whl
seconds:
  description: Wall time of the install, from the client's start to the import check (the clients test's matrix).
  returned: success
  type: float
  sample: 1.19
  version_added: "0.7.0"
origin:
  description:
    - Scheme, host and port RV(resolved_url) came from. That is the one of O(index_url), or the file host the index links
      or redirects to (accepted only for a file URL the index advertised, with the uploaded sha256).
  returned: success
  type: str
  sample: http://127.0.0.1:8080
requests:
  description: Every URL uv requested (from its C(-v) log, redacted), each on the index's origin or an advertised file.
  returned: success with O(client=uv)
  type: list
  elements: str
uv:
  description: The uv binary that ran.
  returned: when O(client=uv) and uv was found
  type: str
  sample: /opt/venv/bin/uv
provenance:
  description:
    - How each installed file was proven to come from the index under test, one entry per file the client
      installed; C(page) is the project page that advertised C(url), C(off_origin) whether the file is on another
      origin than the index, C(sha256_checked_against) V(expected) (O(expected_sha256)) or V(index) (the
      advertised sha256).
  returned: success
  type: list
  elements: dict
  version_added: "0.5.0"
  sample: [{"name": "pypi-ops-probe", "url": "https://files.example/pypi_ops_probe-1.0.0-py3-none-any.whl",
            "page": "http://127.0.0.1:8080/simple/pypi-ops-probe/", "off_origin": true,
            "sha256": "5409dbd916faad66289987ca03ac1f100cfa85f1cfb6dc15a142bfe58b382eea",
            "sha256_checked_against": "expected"}]
filename:
  description: Name of the resolved file.
  returned: success
  type: str
  sample: pypi_ops_probe-1.0.0-py3-none-any.whl
sha256:
  description: SHA-256 of the resolved file.
  returned: success
  type: str
sha256_source:
  description:
    - V(pip-report) from pip's C(--report). That is the index's C(#sha256=) fragment, which pip verified while
      downloading, or, when the index gives no fragment, pip's own hash of the downloaded file.
    - V(download) when the report had none and the file was fetched and hashed here.
    - V(index-hash-checked-by-uv) with O(client=uv) - the index's C(#sha256=) fragment, which uv verified while
      downloading; V(download) when the index gives none.
  returned: success
  type: str
installed_version:
  description: Version the client installed (pip's report; uv's C(-v) log).
  returned: success
  type: str
  sample: 1.0.0
import_name:
  description: Module imported.
  returned: success
  type: str
imported_version:
  description: The imported module's C(__version__) (null if it has none).
  returned: success
  type: str
import_file:
  description: The imported module's C(__file__), inside the throwaway venv.
  returned: success
  type: str
cmd:
  description: The install command's argv, pip's or uv's (holds no credentials).
  returned: when the install command ran
  type: list
  elements: str
venv_dir:
  description: The kept venv.
  returned: when O(keep_venv=true)
  type: str
skipped:
  description: True in check mode, where nothing is installed.
  returned: check mode
  type: bool
cutoff:
  description:
    - With O(uploaded_prior_to), why the install failed - V(excluded) (no file before the cut-off), V(no_upload_time)
      (the index gives no upload times), V(unsupported) (the client lacks the option); null for any other failure.
  returned: failure with O(uploaded_prior_to)
  type: str
  sample: no_upload_time
lock:
  description:
    - With a lock-based client, what its lock file records for the installed file - C(file) the lock file's name,
      C(url) the file URL (for poetry, which records only the source URL and the file name, the URL the index
      advertises for that name), C(source) the index recorded (uv, poetry), C(sha256) the hash recorded.
  returned: success with O(client=uv-lock), O(client=poetry) or O(client=pdm)
  type: dict
  version_added: "0.7.0"
  sample: {"file": "poetry.lock", "url": "http://127.0.0.1:8080/packages/pypi_ops_probe-1.0.0-py3-none-any.whl",
           "source": "http://127.0.0.1:8080/simple", "sha256": "5409dbd916faad66289987ca03ac1f100cfa85f1cfb6dc15a142bfe58b382eea"}
locked_version:
  description: The version the lock file pinned for O(name).
  returned: when the lock step of a lock-based client succeeded
  type: str
  version_added: "0.7.0"
pip_output:
  description: Last lines of pip's output.
  returned: failure with O(client=pip)
  type: list
  elements: str
uv_output:
  description: Last lines of uv's output (without its C(-v) debug lines).
  returned: failure with O(client=uv)
  type: list
  elements: str
uv_lock_output:
  description: Last lines of the output of C(uv lock) or C(uv sync), without uv's C(-v) debug lines.
  returned: failure with O(client=uv-lock)
  type: list
  elements: str
  version_added: "0.7.0"
poetry_output:
  description: Last lines of the output of C(poetry lock) or C(poetry install), without its debug log and traceback.
  returned: failure with O(client=poetry)
  type: list
  elements: str
  version_added: "0.7.0"
pdm_output:
  description: Last lines of the output of C(pdm lock) or C(pdm install), without its debug log and traceback.
  returned: failure with O(client=pdm)
  type: list
  elements: str
  version_added: "0.7.0"
"""

import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import (
    client_tools,
    http,
    lock_install,
    probe,
    uv_runner,
)
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import pip_runner as pr
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def _base(module: AnsibleModule) -> dict[str, t.Any]:
    """Keys of every result, success or failure."""
    return {"changed": False, "client": module.params["client"], "client_missing": False}


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    base = _base(module)
    try:  # before pip runs: a bad name or version (or a marker smuggled into it) is the caller's mistake
        probe.validate_name(p["name"])
        if p["version"]:
            probe.validate_version(p["version"])
    except probe.ProbeError as exc:
        module.fail_json(msg=exc.msg, **base)
    _url, _user, url_password = pr.split_credentials(p["index_url"])
    if url_password:
        module.no_log_values.add(url_password)  # keep it out of the logged invocation too
    uv = tool = None
    if p["client"] in ("uv", "uv-lock"):  # a missing client is its own signal (client_missing), not a failed install
        try:
            uv = uv_runner.find_uv(p["uv"], p["python"])
        except uv_runner.UvNotFound as exc:
            module.fail_json(msg=exc.msg, **dict(base, client_missing=True))
        base["uv"] = uv
    elif p["client"] in ("poetry", "pdm"):
        try:
            tool = client_tools.find_tool(p["client"], p["executable"], p["python"])
        except client_tools.ToolNotFound as exc:
            module.fail_json(msg=exc.msg, **dict(base, client_missing=True))
        base[p["client"]] = tool
    opts = http.ClientOptions.from_params(p)
    spec = pr.InstallSpec(
        index_url=p["index_url"],
        name=p["name"],
        version=p["version"] or None,
        pre=p["pre"],
        import_name=p["import_name"] or None,
        expected_version=p["expected_version"],
        expected_sha256=p["expected_sha256"],
        keep_venv=p["keep_venv"],
        work_dir=p["work_dir"],
        timeout=opts.deadline.cap(p["timeout"]),
        retries=p["retries"],
        python=p["python"],
        uploaded_prior_to=p["uploaded_prior_to"] or None,
    )
    if module.check_mode:
        return {
            **base,
            "skipped": True,
            "requirement": spec.requirement,
            "index_url": http.redact_url(pr.split_credentials(spec.index_url)[0]),
            "msg": f"Check mode: would install {spec.requirement} into a throwaway venv and import {spec.module_name}.",
        }
    http.warn_insecure(module, opts)
    if opts.deadline.passed():
        raise pr.InstallError(opts.deadline.error(f"before installing {spec.requirement}").msg)
    started = time.monotonic()
    if p["client"] in lock_install.CLIENTS:
        program = uv or tool
        if program is None:  # pragma: no cover - found above, or the module failed with client_missing
            raise pr.InstallError(f"no program for {p['client']} was found.")
        result = lock_install.install_and_import(module, p["client"], program, spec, opts)
    elif uv:
        result = uv_runner.install_and_import(module, spec._replace(uv=uv), opts)
    else:
        result = pr.install_and_import(module, spec, opts)
    seconds = round(time.monotonic() - started, 3)
    return {**base, **result, "origin": pr.origin_text(result["resolved_url"]), "seconds": seconds}


def _install_error(exc: pr.InstallError, module: AnsibleModule) -> dict[str, t.Any]:
    """pip's (or uv's) failure: its sentence, the last lines of its output and what it found out."""
    details = {k: v for k, v in exc.details.items() if k not in ("msg", "failed", "changed", "client")}
    output = {f"{module.params['client'].replace('-', '_')}_output": exc.output_tail}  # pip_output, uv_lock_output, ...
    return {"msg": exc.msg, **output, **dict(_base(module), **details)}


def main() -> None:
    argument_spec = dict(
        index_url=dict(type="str", required=True),
        name=dict(type="str", required=True),
        version=dict(type="str"),
        pre=dict(type="bool", default=False),
        uploaded_prior_to=dict(type="str"),
        import_name=dict(type="str"),
        expected_version=dict(type="str"),
        expected_sha256=dict(type="str"),
        keep_venv=dict(type="bool", default=False),
        work_dir=dict(type="path"),
        client=dict(type="str", default="pip", choices=["pip", "uv", *lock_install.CLIENTS]),
        uv=dict(type="path"),
        executable=dict(type="path"),
        python=dict(type="path"),
        retries=dict(type="int", default=1),
        timeout=dict(type="float", default=300.0),
        **http.CLIENT_ARGS,
    )
    run_module(
        "package_install",
        argument_spec,
        run,
        libraries=[Library("requests", http.HAS_REQUESTS, http.REQUESTS_IMPORT_ERROR)],
        errors={pr.InstallError: _install_error},
        doing=lambda p: f"while installing {p['name']} from {http.redact_url(p['index_url'])}",
        fail_fields=_base,
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
