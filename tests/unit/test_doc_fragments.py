"""Doc fragments, shared argument specs and version metadata: every module renders with the real ansible-doc, its
documented options are exactly its real argument_spec (read from main() at run time), a shared spec and its doc
fragment go together, nothing a fragment documents is documented again, every fragment is used, and version_added
agrees with changelogs/changelog.yaml and galaxy.yml. antsibull-changelog's own lint passes and CHANGELOG.md is what
``antsibull-changelog generate`` writes.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import subprocess
import typing as t

import pytest
import yaml

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import args_common
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from tests.helpers import ROOT, VENV_BIN

MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("[!_]*.py"))
FRAGMENTS = sorted(p.stem for p in (ROOT / "plugins" / "doc_fragments").glob("[!_]*.py"))
NS = "pypi_ops.pypiserver"
# shared argument spec -> the fragment that documents it
SHARED = {
    "k8s": args_common.K8S_ARGS,
    "k8s.namespace": args_common.K8S_NAMESPACE_ARGS,
    "progress": args_common.PROGRESS_ARGS,
    "client": httputil.CLIENT_ARGS,
}


def _env() -> dict[str, str]:
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
    )


@functools.cache
def rendered() -> dict[str, t.Any]:
    """ansible-doc --json of every module, in one call (fragments merged in, as users see them)."""
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-doc"), "--json", *(f"{NS}.{m}" for m in MODULES)],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return {k.rpartition(".")[2]: v for k, v in json.loads(proc.stdout).items()}


def own_doc(name: str) -> dict[str, t.Any]:
    """The module's own DOCUMENTATION, before any fragment is merged in."""
    mod = importlib.import_module(f"ansible_collections.{NS}.plugins.modules.{name}")
    return yaml.safe_load(mod.DOCUMENTATION)


class Captured(Exception):
    pass


@functools.cache
def spec_of(name: str) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """(argument_spec, AnsibleModule keyword arguments) that main() hands to run_module."""
    mod = importlib.import_module(f"ansible_collections.{NS}.plugins.modules.{name}")
    got: dict[str, t.Any] = {}

    def capture(module_name: str, argument_spec: dict[str, t.Any], run: t.Any, **kwargs: t.Any) -> t.NoReturn:
        got.update(name=module_name, spec=argument_spec, kwargs=kwargs)
        raise Captured

    original = mod.run_module
    mod.run_module = capture
    try:
        with pytest.raises(Captured):
            mod.main()
    finally:
        mod.run_module = original
    assert got["name"] == name, f"{name}.main() passes {got['name']!r} as the module's name"
    return got["spec"], got["kwargs"]


def fragments_of(name: str) -> list[str]:
    return [f.removeprefix(f"{NS}.") for f in own_doc(name).get("extends_documentation_fragment", [])]


def fragment_docs(fragment: str) -> dict[str, str]:
    """{variant: YAML text} of a fragment file: DOCUMENTATION as '' and every other upper-case string."""
    mod = importlib.import_module(f"ansible_collections.{NS}.plugins.doc_fragments.{fragment}")
    cls = mod.ModuleDocFragment
    return {
        ("" if k == "DOCUMENTATION" else k.lower()): v
        for k, v in vars(cls).items()
        if k.isupper() and isinstance(v, str)
    }


# --------------------------------------------------------------------------- rendering and the argument spec


@pytest.mark.parametrize("name", MODULES)
def test_module_renders_and_documents_exactly_its_argument_spec(name):
    doc = rendered()[name]
    assert doc["doc"]["short_description"] and doc["examples"].strip() and doc["return"]
    yaml.safe_load(doc["examples"])
    spec, kwargs = spec_of(name)
    options = doc["doc"].get("options", {})
    assert set(options) == set(spec), f"documented {sorted(options)} != argument_spec {sorted(spec)}"
    for opt, entry in spec.items():
        documented = options[opt]
        assert documented.get("type", "str") == entry.get("type", "str"), (opt, documented.get("type"))
        assert bool(documented.get("required", False)) == bool(entry.get("required", False)), opt
        assert documented["description"], opt
        if entry.get("options"):
            assert set(documented["suboptions"]) == set(entry["options"]), opt
    support = doc["doc"]["attributes"]["check_mode"]["support"]
    assert (support != "none") == bool(kwargs.get("supports_check_mode")), (support, kwargs.get("supports_check_mode"))


def test_every_module_main_goes_through_run_module():
    for name in MODULES:
        spec, _ = spec_of(name)  # fails unless main() calls run_module with this module's name
        assert spec


# --------------------------------------------------------------------------- fragments and shared specs


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_the_attributes_fragment_and_no_copy_of_it(name):
    assert "attributes" in fragments_of(name)
    own = own_doc(name).get("attributes", {})
    assert "diff_mode" not in own, "diff_mode comes from pypi_ops.pypiserver.attributes"
    for attr in own.values():
        assert "description" not in attr, "the fragment describes the attribute; the module adds details"
    rendered_attrs = rendered()[name]["doc"]["attributes"]
    assert {"check_mode", "diff_mode", "platform"} <= set(rendered_attrs)
    assert rendered_attrs["diff_mode"]["support"] == "none"


@pytest.mark.parametrize("name", MODULES)
def test_a_shared_spec_and_its_fragment_go_together(name):
    spec, _ = spec_of(name)
    used = set(fragments_of(name))
    for fragment, shared in SHARED.items():
        if fragment == "client":  # client_args() may change a default (read_timeout): the keys say it
            has_spec = set(shared) <= set(spec)
        else:  # port_forward's namespace (optional, for kubectl) is its own, not K8S_NAMESPACE_ARGS
            has_spec = all(spec.get(key) == entry for key, entry in shared.items())
        assert has_spec == (fragment in used), (
            f"{name}: {'uses' if has_spec else 'does not use'} the {fragment} spec but "
            f"{'does not extend' if has_spec else 'extends'} pypi_ops.pypiserver.{fragment}"
        )


@pytest.mark.parametrize("name", MODULES)
def test_no_module_documents_again_what_a_fragment_documents(name):
    """A module may say what a fragment's option means for it (its own description, default or version_added), but
    repeats nothing: every key it sets differs from the fragment's."""
    own = own_doc(name).get("options") or {}
    for fragment in fragments_of(name):
        base, _, variant = fragment.partition(".")
        fdoc = yaml.safe_load(fragment_docs(base)[variant]) or {}
        for opt, fentry in (fdoc.get("options") or {}).items():
            for key, value in (own.get(opt) or {}).items():
                assert key in {"description", "default", "version_added"}, (name, opt, key, "set by the fragment")
                assert value != fentry.get(key), f"{name} repeats {opt}.{key} of {fragment}"


def test_every_fragment_and_variant_is_used():
    used = {f for m in MODULES for f in fragments_of(m)}
    for fragment in FRAGMENTS:
        for variant in fragment_docs(fragment):
            full = f"{fragment}.{variant}" if variant else fragment
            assert full in used, f"pypi_ops.pypiserver.{full} is extended by no module"
    assert {"attributes", "attributes.read_only", "k8s", "progress", "client"} <= used


def test_the_duplications_are_gone():
    """kubeconfig/context/namespace, progress_file and the attributes are written once, in the fragments."""
    for name in MODULES:
        text = (ROOT / "plugins" / "modules" / f"{name}.py").read_text()
        for option in ("kubeconfig", "context", "namespace", "progress_file"):
            if (name, option) == ("port_forward", "namespace"):  # kubectl's: optional, unlike the API modules' one
                continue
            if name == "package_backup" and option in ("kubeconfig", "context", "namespace"):
                continue  # suboptions of its pod store (store.kubeconfig ...): a fragment documents top-level options only

            assert f"{option}=dict(" not in text and f'"{option}": {{' not in text, (name, option)
        assert "diff_mode:" not in text, name


# --------------------------------------------------------------------------- version metadata


@functools.cache
def changelog() -> dict[str, t.Any]:
    return yaml.safe_load((ROOT / "changelogs" / "changelog.yaml").read_text())


def _v(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def galaxy_version() -> str:
    return yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


def test_galaxy_version_is_the_release_after_the_changelog():
    releases = sorted(changelog()["releases"], key=_v)
    assert galaxy_version() not in releases
    assert _v(galaxy_version()) > _v(releases[-1]), (galaxy_version(), releases[-1])


def test_each_module_was_added_in_the_release_whose_changelog_lists_it():
    listed: dict[str, str] = {}
    for version, release in changelog()["releases"].items():
        for entry in release.get("modules", []):
            assert entry["name"] not in listed, (
                f"{entry['name']} is listed in {listed.get(entry['name'])} and {version}"
            )
            listed[entry["name"]] = version
    new = set(MODULES) - set(listed)  # modules of the coming release are in its fragments, not yet in changelog.yaml
    for name in MODULES:
        added = str(own_doc(name)["version_added"])
        if name in new:
            assert added == galaxy_version(), (name, added)
        else:
            assert added == listed[name], f"{name}: version_added {added}, changelog.yaml lists it in {listed[name]}"
    assert set(listed) <= set(MODULES), set(listed) - set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_option_version_added_is_after_its_module_and_a_known_release(name):
    known = set(changelog()["releases"]) | {galaxy_version()}
    module_added = _v(str(own_doc(name)["version_added"]))

    def walk(options: dict[str, t.Any], path: str) -> t.Iterator[tuple[str, dict[str, t.Any]]]:
        for opt, entry in (options or {}).items():
            yield f"{path}{opt}", entry
            yield from walk(entry.get("suboptions") or {}, f"{path}{opt}.")

    own_options = own_doc(name).get("options") or {}
    for opt, entry in walk(own_options, ""):
        added = entry.get("version_added")
        if added is None:
            continue
        assert str(added) in known, (opt, added)
        assert _v(str(added)) > module_added, f"{name}.{opt}: version_added {added} is not after the module's"


# --------------------------------------------------------------------------- antsibull-changelog


def _antsibull(*args: str) -> subprocess.CompletedProcess[str]:
    exe = VENV_BIN / "antsibull-changelog"
    assert exe.exists(), "antsibull-changelog is missing: pip install -r requirements-dev.txt -c constraints.txt"
    return subprocess.run(
        [str(exe), *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120, env=_env()
    )


def test_antsibull_changelog_lint_passes():
    for args in (("lint",), ("lint-changelog-yaml", "changelogs/changelog.yaml")):
        proc = _antsibull(*args)
        assert proc.returncode == 0 and not proc.stdout.strip(), (args, proc.stdout, proc.stderr)


def test_changelog_md_is_generated_from_changelog_yaml(tmp_path):
    out = tmp_path / "CHANGELOG.md"
    proc = _antsibull("generate", "--output", str(out), "--output-format", "md")
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == (ROOT / "CHANGELOG.md").read_text(), (
        "CHANGELOG.md is not what changelogs/changelog.yaml gives: run antsibull-changelog generate"
    )


def test_the_changelog_keeps_every_entry_of_every_release():
    text = re.sub(r"\\(.)", r"\1", (ROOT / "CHANGELOG.md").read_text())
    for version, release in changelog()["releases"].items():
        assert f"v{version}" in text
        for entries in release.get("changes", {}).values():
            for entry in entries if isinstance(entries, list) else [entries]:
                first_words = re.sub(r"``|`", "", entry).split()[:4]
                assert " ".join(first_words) in re.sub(r"<code>|</code>", "", text), (version, first_words)
