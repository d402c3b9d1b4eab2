"""What ansible-test sanity does not require of the modules' docs: every module documents RETURN and attributes.

validate-modules (make lint, scripts/sanity.py) checks the rest, and more strictly than the AST parse that lived
here: short_description, EXAMPLES present and valid YAML, the documented options against the argument_spec the
module really builds (names, types, defaults, choices, elements, no_log), and the ansible-doc sanity test renders
every plugin. Two things it lets pass: a module without RETURN is only a warning (missing-return-legacy) outside a
git change set, and attributes are optional in its schema. Both are this collection's rule, so they stay here,
read from the real ansible-doc output of the collection as Ansible finds it (.venv/collections).
"""

from __future__ import annotations

import json
import os
import subprocess

from tests.helpers import ROOT, VENV_BIN

MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def test_every_module_documents_return_and_attributes():
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
    )
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "--json", *(f"pypi_ops.pypiserver.{name}" for name in MODULES)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert sorted(docs) == [f"pypi_ops.pypiserver.{name}" for name in MODULES]
    missing = []
    for fqcn, doc in sorted(docs.items()):
        if not doc.get("return"):
            missing.append(f"{fqcn}: no RETURN")
        attributes = doc["doc"].get("attributes") or {}
        for name in ("check_mode", "diff_mode", "platform"):  # validate-modules checks each entry's fields
            if name not in attributes:
                missing.append(f"{fqcn}: attributes.{name} missing")
    assert not missing, "\n".join(missing)


def test_every_module_is_in_a_known_set():
    assert {"local_server", "package_build", "package_upload", "package_install", "index_list"} <= set(MODULES)
