"""Every module's DOCUMENTATION/EXAMPLES/RETURN render with the real ansible-doc and match its argument_spec."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, VENV_BIN

MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def _spec_keys(path: Path) -> set[str]:
    """Option names of the argument_spec literal in main() (a dict(...) call or {...}, maybe with **CLIENT_ARGS)."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.http import CLIENT_ARGS

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if not any(getattr(t, "id", "") == "argument_spec" for t in targets):
                continue
            value = node.value
            if isinstance(value, ast.Call):
                keys = {kw.arg for kw in value.keywords if kw.arg}
                spread = any(kw.arg is None for kw in value.keywords)
            else:
                keys = {k.value for k in value.keys if isinstance(k, ast.Constant)}
                spread = any(k is None for k in value.keys)
            return keys | (set(CLIENT_ARGS) if spread else set())
    raise AssertionError(f"no argument_spec in {path}")


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_renders_and_matches_argument_spec(name):
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
    )
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "--json", f"pypi_ops.pypiserver.{name}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)[f"pypi_ops.pypiserver.{name}"]
    assert doc["doc"]["short_description"]
    assert doc["examples"].strip()
    assert doc["return"]
    assert "attributes" in doc["doc"]
    documented = set(doc["doc"].get("options", {}))
    assert documented == _spec_keys(ROOT / "plugins" / "modules" / f"{name}.py")
    yaml.safe_load(doc["examples"])  # examples are valid YAML


def test_every_module_is_in_a_known_set():
    assert {"local_server", "package_build", "package_upload", "package_install", "index_list"} <= set(MODULES)
