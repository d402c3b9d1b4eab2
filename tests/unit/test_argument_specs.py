"""Each role's meta/argument_specs.yml against the role's own files: every variable in defaults/main.yml has a spec
entry with the same default, and every spec entry is a variable in defaults/main.yml (except the ones the lead is
still adding, listed in PENDING). The files are read on every run, so the check stays true as both change."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from tests.helpers import ROOT, VENV_BIN

ROLES = ["deploy", "functional_tests", "report"]

# Spec entries whose variable is announced but not yet in defaults/main.yml. An entry here only excuses the
# variable's absence from defaults; once it appears there, its default and type are checked like any other.
PENDING: dict[str, set[str]] = {
    "deploy": set(),
    "functional_tests": set(),
    "report": set(),
}

SECRET_WORDS = ("password", "secret")


def _yaml(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def _specs(role: str) -> dict:
    return _yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]


def _options(role: str) -> dict[str, dict]:
    return _specs(role)["main"]["options"]


def _defaults(role: str) -> dict:
    return _yaml(ROOT / "roles" / role / "defaults" / "main.yml")


def _templated(value) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, dict):
        return any(_templated(v) for v in value.values())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return False


@pytest.mark.parametrize("role", ROLES)
def test_every_default_has_a_spec_entry(role):
    missing = sorted(set(_defaults(role)) - set(_options(role)))
    assert not missing, f"{role}: variables in defaults/main.yml without an entry in meta/argument_specs.yml: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_every_spec_entry_is_a_default(role):
    extra = sorted(set(_options(role)) - set(_defaults(role)) - PENDING[role])
    assert not extra, f"{role}: spec entries with no variable in defaults/main.yml: {extra}"


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_are_the_role_defaults(role):
    defaults = _defaults(role)
    for name, option in _options(role).items():
        assert "default" in option, f"{role}: {name} has no default in the spec"
        if name in defaults:
            assert option["default"] == defaults[name], (role, name, option["default"], defaults[name])


@pytest.mark.parametrize("role", ROLES)
def test_every_option_is_typed_and_described(role):
    for name, option in _options(role).items():
        assert name.startswith("pypi_"), (role, name)
        assert option.get("type") in {"str", "path", "bool", "int", "float", "list", "dict"}, (role, name)
        if option["type"] == "list":
            assert option.get("elements"), (role, name)
        assert option.get("description"), (role, name)
        assert not option.get("required"), f"{role}: {name} is required but every variable has a default"
        if any(word in name for word in SECRET_WORDS):
            assert option.get("no_log") is True, f"{role}: {name} holds a secret and needs no_log: true"


@pytest.mark.parametrize("role", ROLES)
def test_literal_defaults_pass_their_own_spec(role):
    """What ansible-core does at the start of the role, on the defaults as written (templates are rendered by
    ansible-core before the check; the playbook runs in tests/integration cover them)."""
    options = {name: o for name, o in _options(role).items() if not _templated(o["default"])}
    literal = {name: o["default"] for name, o in options.items()}
    result = ArgumentSpecValidator(options).validate(literal, validate_role_argument_spec=True)
    assert not result.error_messages, (role, result.error_messages)


@pytest.mark.parametrize("role", ROLES)
def test_validate_entry_point_checks_the_same_options(role):
    specs = _specs(role)
    assert set(specs) == {"main", "validate"}, f"{role}: unexpected entry points {sorted(specs)}"
    assert specs["validate"]["options"] == specs["main"]["options"]
    task_file = ROOT / "roles" / role / "tasks" / "validate.yml"
    assert task_file.is_file(), f"{role}: the validate entry point needs {task_file.relative_to(ROOT)} (a no-op task)"


def test_target_choices_are_the_known_targets():
    known = _yaml(ROOT / "roles" / "deploy" / "vars" / "main.yml")["pypi_known_targets"]
    assert _options("deploy")["pypi_target"]["choices"] == known
    assert sorted(known) == sorted(p.parent.name for p in (ROOT / "roles/deploy/tasks").glob("*/deploy.yml"))


def test_auth_vocabulary_is_the_same_for_deploy_and_tests():
    assert (
        _options("deploy")["pypi_auth_actions"]["choices"]
        == _options("functional_tests")["pypi_auth_expect"]["choices"]
    )


def test_production_allow_choices_are_the_destructive_tests():
    """pypi_production_allow may name exactly the tests that declare themselves destructive."""
    tasks = ROOT / "roles" / "functional_tests" / "tasks"
    destructive = sorted(p.stem for p in tasks.glob("*.yml") if "pypi_test_destructive:" in p.read_text())
    assert sorted(_options("functional_tests")["pypi_production_allow"]["choices"]) == destructive


@pytest.mark.parametrize("role", ROLES)
def test_ansible_doc_renders_the_role(role):
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
    )
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "-t", "role", "--json", f"pypi_ops.pypiserver.{role}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    entry_points = json.loads(proc.stdout)[f"pypi_ops.pypiserver.{role}"]["entry_points"]
    assert set(entry_points) == {"main", "validate"}
    assert entry_points["main"]["options"] == _options(role)
