#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: package_build
short_description: Build a wheel and an sdist from a project or from a generated probe package
version_added: "0.1.0"
description:
  - Builds distributions with one C(python -m build --no-isolation) call, so no build requirement is downloaded;
    the interpreter in O(python) must have C(build) and C(setuptools).
  - Either builds an existing project (O(source_dir)) or generates a probe package (O(probe)), a real setuptools project
    whose C(__version__) names its version and which can carry an incompressible random payload of a chosen size.
  - The probe's name and version are validated before anything is built.
  - Idempotent. A stamp file per project in a hidden directory of O(dest) records what was built from which
    parameters (for O(source_dir), a fingerprint of the source files). When the dists in O(dest) still match,
    nothing is rebuilt and C(changed=false).
  - A probe's generated source tree is kept under O(dest)/.pypi_ops_build/src/
    (pypiserver does not list dot-directories).
author:
  - pypi_ops contributors (@pypi-ops)
attributes:
  check_mode:
    support: full
    details: Reports whether a build would happen; nothing is written or built.
extends_documentation_fragment:
  - pypi_ops.pypiserver.attributes
options:
  dest:
    description: Directory that receives the wheel and the sdist. Created if missing.
    type: path
    required: true
  probe:
    description:
      - Generate and build a probe package. Mutually exclusive with O(source_dir).
    type: dict
    suboptions:
      name:
        description: Project name (PEP 508, e.g. C(pypi-ops-probe)); it is normalized (PEP 503).
        type: str
        required: true
      version:
        description: PEP 440 version, e.g. C(1.0.0) or C(2.0.0rc1); normalized (C(1.0.0-rc1) becomes C(1.0.0rc1)).
        type: str
        required: true
      import_name:
        description: Name of the importable package. Defaults to the normalized name with C(-) replaced by C(_).
        type: str
      payload_size:
        description:
          - Size in bytes of C(<import_name>/payload.bin), random bytes shipped as package data. V(0) means no payload.
          - Random bytes do not compress, so the wheel is at least this big.
        type: int
        default: 0
      dependencies:
        description:
          - PEP 508 requirements the probe declares (C(Requires-Dist)), for example V(pypiops-probe-b>=1.0).
        type: list
        elements: str
        default: []
        version_added: "0.5.0"
      extras:
        description:
          - Optional dependencies, a mapping of extra name to requirements; C(name[extra]) pulls them in.
        type: dict
        default: {}
        version_added: "0.5.0"
      requires_python:
        description: The probe's C(Requires-Python), for example V(>=3.99) for a release no interpreter can install.
        type: str
        default: ">=3.8"
        version_added: "0.5.0"
      builder:
        description:
          - V(build) runs C(python -m build) on a generated setuptools project (the real build path).
          - V(direct) writes the wheel itself (PEP 427, stored, a RECORD with every sha256), in milliseconds, for
            tests that need many distinct wheels rather than a proof of the build; only O(formats=[wheel]).
        type: str
        choices: [build, direct]
        default: build
        version_added: "0.5.0"
  source_dir:
    description: An existing project with C(pyproject.toml) or C(setup.py). Mutually exclusive with O(probe).
    type: path
  import_name:
    description:
      - For O(source_dir), the importable package name to report.
      - Defaults to the normalized name with C(-) replaced by C(_).
    type: str
  formats:
    description: Which distributions to build; only the flags asked for are passed to C(python -m build).
    type: list
    elements: str
    choices: [wheel, sdist]
    default: [wheel, sdist]
  force:
    description: Rebuild even when O(dest) already holds matching dists.
    type: bool
    default: false
  python:
    description: Interpreter that runs C(python -m build). Defaults to the one running the module.
    type: path
  timeout:
    description: Seconds the build may take before it is killed.
    type: float
    default: 300
notes:
  - The build runs without network access needs (C(--no-isolation)); the setuptools next to O(python) is used.
  - Rebuilding a probe with a payload changes the dists' sha256 (the payload is random each time).
  - Quote versions in YAML (C("1.10")); an unquoted C(1.10) is the float C(1.1).
seealso:
  - module: pypi_ops.pypiserver.package_install
"""

EXAMPLES = r"""
- name: Build a 3 MiB probe package
  pypi_ops.pypiserver.package_build:
    dest: "{{ playbook_dir }}/.work/dist"
    probe:
      name: pypi-ops-probe
      version: "1.0.{{ ansible_date_time.epoch }}"
      payload_size: 3145728
  register: probe

- name: Build only the wheel of an existing project
  pypi_ops.pypiserver.package_build:
    dest: "{{ playbook_dir }}/.work/dist"
    source_dir: "{{ playbook_dir }}/files/myproject"
    formats: [wheel]

- name: Show what to upload
  ansible.builtin.debug:
    msg: "{{ probe.files | map(attribute='path') | list }}"
"""

RETURN = r"""
files:
  description: The built (or reused) distributions, wheel first.
  returned: success
  type: list
  elements: dict
  contains:
    path: {description: Absolute path., type: str, sample: /work/dist/pypi_ops_probe-1.0.0-py3-none-any.whl}
    filename: {description: Base name., type: str, sample: pypi_ops_probe-1.0.0-py3-none-any.whl}
    size: {description: Size in bytes., type: int, sample: 3148164}
    sha256: {description: SHA-256 of the file., type: str}
    kind: {description: V(wheel) or V(sdist)., type: str, sample: wheel}
wheel:
  description: The wheel's record (as in RV(files)), or null when not built.
  returned: success
  type: dict
sdist:
  description: The sdist's record (as in RV(files)), or null when not built.
  returned: success
  type: dict
name:
  description: Normalized project name (PEP 503).
  returned: success (for O(source_dir) not in check mode)
  type: str
  sample: pypi-ops-probe
version:
  description: Normalized version.
  returned: success (for O(source_dir) not in check mode)
  type: str
  sample: 1.0.0
import_name:
  description: Name to import after installing.
  returned: success (for O(source_dir) not in check mode)
  type: str
  sample: pypi_ops_probe
expected_version:
  description:
    - The C(__version__) string the probe's package carries; pass it to P(pypi_ops.pypiserver.package_install#module).
    - For O(source_dir), the built version (the project's C(__version__) is not inspected).
  returned: success (for O(source_dir) not in check mode)
  type: str
  sample: 1.0.0
source_dir:
  description: The project that was built (the generated tree for a probe).
  returned: always
  type: str
build_output:
  description: Last lines of the build's output.
  returned: failure of the build
  type: list
  elements: str
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import probe as pb
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.entrypoint import Library, run_module


def run(module: AnsibleModule) -> dict[str, t.Any]:
    p = module.params
    spec = None
    if p["probe"] is not None:
        q = p["probe"]
        spec = pb.probe_spec(
            q["name"],
            q["version"],
            q.get("import_name"),
            q.get("payload_size") or 0,
            q.get("dependencies"),
            q.get("extras"),
            q.get("requires_python"),
            q.get("builder") or "build",
        )
    return pb.build(
        module,
        dest=p["dest"],
        probe=spec,
        source_dir=p["source_dir"],
        formats=p["formats"],
        force=p["force"],
        check_mode=module.check_mode,
        timeout=p["timeout"],
        python=p["python"],
        import_name=p["import_name"],
    )


def main() -> None:
    argument_spec = dict(
        dest=dict(type="path", required=True),
        probe=dict(
            type="dict",
            options=dict(
                name=dict(type="str", required=True),
                version=dict(type="str", required=True),
                import_name=dict(type="str"),
                payload_size=dict(type="int", default=0),
                dependencies=dict(type="list", elements="str", default=[]),
                extras=dict(type="dict", default={}),
                requires_python=dict(type="str", default=">=3.8"),
                builder=dict(type="str", choices=["build", "direct"], default="build"),
            ),
        ),
        source_dir=dict(type="path"),
        import_name=dict(type="str"),
        formats=dict(type="list", elements="str", choices=["wheel", "sdist"], default=["wheel", "sdist"]),
        force=dict(type="bool", default=False),
        python=dict(type="path"),
        timeout=dict(type="float", default=300.0),
    )
    run_module(
        "package_build",
        argument_spec,
        run,
        libraries=[Library("packaging", pb.HAS_PACKAGING, pb.PACKAGING_IMPORT_ERROR)],
        errors={pb.ProbeError: lambda exc, module: {"msg": exc.msg, "build_output": exc.output_tail}},
        doing="while building the distributions",
        mutually_exclusive=[("probe", "source_dir")],
        required_one_of=[("probe", "source_dir")],
        supports_check_mode=True,
    )


if __name__ == "__main__":
    main()
