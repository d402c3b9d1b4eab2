"""meta/execution-environment.yml, meta/requirements-ee.txt and bindep.txt (issue 17): the real, pinned
ansible-builder accepts the definition and writes a build context holding the Python requirements and the bindep
file; ansible-builder's own introspection script, run as a build runs it over installed collections, reads the same
files through the collection's metadata; and the EE's pins are the ones of requirements*.txt and galaxy.yml."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, VENV_BIN

EE_FILE = ROOT / "meta" / "execution-environment.yml"
BUILDER = VENV_BIN / "ansible-builder"
# Left to other parts of the EE definition: ansible-core (dependencies.ansible_core, which ansible-builder always
# strips from Python requirements) and the ansible package (only there to ship kubernetes.core: galaxy instead).
NOT_IN_EE = {"ansible", "ansible-core"}


def _pins(path: Path) -> dict[str, str]:
    """{normalised name: requirement line} of a requirements file, following its -r lines."""
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r"):
            out.update(_pins(path.parent / line.split(None, 1)[1]))
            continue
        name = re.split(r"[\[=<>!~; ]", line, maxsplit=1)[0]
        out[re.sub(r"[-_.]+", "-", name).lower()] = line
    return out


def _builder() -> Path:
    if not BUILDER.exists():
        pytest.fail(f"{BUILDER} is missing; run 'make dev' (ansible-builder is pinned in requirements-dev.txt).")
    return BUILDER


def _create(ee_file: Path, context: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(_builder()), "create", "-f", str(ee_file), "-c", str(context), "--output-filename", "Containerfile"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ee_requirements_are_every_feature_with_the_pins_of_the_requirements_files():
    ee = _pins(ROOT / "meta" / "requirements-ee.txt")
    features = {}
    for name in ("requirements.txt", "requirements-s3.txt", "requirements-k8s.txt"):
        features.update(_pins(ROOT / name))
    expected = {k: v for k, v in features.items() if k not in NOT_IN_EE}
    assert ee == expected
    assert not any(line.startswith("-") for line in (ROOT / "meta" / "requirements-ee.txt").read_text().splitlines())


def test_ee_definition_agrees_with_requirements_and_galaxy():
    ee = yaml.safe_load(EE_FILE.read_text())
    assert ee["version"] == 3
    deps = ee["dependencies"]
    assert deps["ansible_core"]["package_pip"] == _pins(ROOT / "requirements.txt")["ansible-core"]
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert {c["name"]: c["version"] for c in deps["galaxy"]["collections"]} == galaxy["dependencies"]
    # Both readers of the file find the same two files: the EE build (relative to meta/) and the collection
    # metadata ansible-builder reads from an installed collection (relative to the collection root).
    for key in ("python", "system"):
        assert (ROOT / "meta" / deps[key]).resolve() == (ROOT / deps[key]).resolve(), key
        assert (ROOT / deps[key]).is_file()


def test_ansible_builder_create_writes_a_context_with_the_requirements_and_bindep(tmp_path):
    proc = _create(EE_FILE, tmp_path / "context")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = tmp_path / "context" / "_build"
    # real files in the context (a symlink out of it would be dangling in the container build)
    for name in ("requirements.txt", "bindep.txt", "requirements.yml"):
        assert (build / name).is_file() and not (build / name).is_symlink(), name
    assert (build / "requirements.txt").read_text() == (ROOT / "meta" / "requirements-ee.txt").read_text()
    assert (build / "bindep.txt").read_text() == (ROOT / "bindep.txt").read_text()
    assert yaml.safe_load((build / "requirements.yml").read_text()) == {
        "collections": [{"name": "kubernetes.core", "version": ">=6.0.0"}]
    }
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    assert "--user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==' in containerfile
    assert "ansible-galaxy collection install" in containerfile and "pypi_ops-pypiserver-*.tar.gz" in containerfile


def test_the_collection_tarball_in_dist_goes_into_the_context(tmp_path):
    """The same definition in a copy of the layout, with a tarball in dist/: it is copied into the context."""
    (tmp_path / "meta").mkdir()
    (tmp_path / "dist").mkdir()
    for name in ("execution-environment.yml", "requirements-ee.txt", "bindep.txt"):
        shutil.copy(ROOT / "meta" / name, tmp_path / "meta" / name)
    (tmp_path / "dist" / "pypi_ops-pypiserver-9.9.9.tar.gz").write_bytes(b"stand-in")
    proc = _create(tmp_path / "meta" / "execution-environment.yml", tmp_path / "context")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    copied = tmp_path / "context" / "_build" / "collection" / "pypi_ops-pypiserver-9.9.9.tar.gz"
    assert copied.read_bytes() == b"stand-in"


def test_ansible_builder_introspection_reads_the_collection_metadata(tmp_path):
    """introspect.py, which an EE build runs over every installed collection, on this collection as installed."""
    proc = _create(EE_FILE, tmp_path / "context")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    colls = tmp_path / "collections" / "ansible_collections" / "pypi_ops"
    colls.mkdir(parents=True)
    (colls / "pypiserver").symlink_to(ROOT)
    script = tmp_path / "context" / "_build" / "scripts" / "introspect.py"
    out = subprocess.run(
        [sys.executable, str(script), "introspect", str(tmp_path / "collections")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    found = yaml.safe_load(out.stdout)
    python = {line.split("  #")[0] for line in found["python"]}
    system = {line.split("  #")[0] for line in found["system"]}
    assert python == set(_pins(ROOT / "meta" / "requirements-ee.txt").values())
    assert system == {ln for ln in (ROOT / "bindep.txt").read_text().splitlines() if ln and not ln.startswith("#")}
    assert all(line.endswith("# from collection pypi_ops.pypiserver") for line in found["python"] + found["system"])


def test_bindep_file_parses_with_both_platform_profiles():
    bindep = VENV_BIN / "bindep"
    if not bindep.exists():
        pytest.fail(f"{bindep} is missing; run 'make dev' (ansible-builder brings bindep).")
    text = (ROOT / "bindep.txt").read_text()
    assert "[platform:dpkg]" in text and "[platform:rpm]" in text
    listed = subprocess.run(
        [str(bindep), "-f", str(ROOT / "bindep.txt"), "-l", "newline"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    # -l lists every package that applies to this machine's platform: the dpkg names here, never the rpm ones
    if shutil.which("dpkg"):
        assert sorted(listed.stdout.split()) == ["ca-certificates", "fuse3", "mount", "nginx", "python3-venv", "s3fs"]
