"""The collection as a user installs it (issue 17, part 1): `ansible-galaxy collection build` of this checkout, the
tarball installed into an empty collections path, a venv made with pip from the installed collection's
requirements.txt (+ constraints.txt, pip isolated from all config), then `ansible-playbook pypi_ops.pypiserver.verify
--tags p0` by its FQCN from an empty directory, with no ANSIBLE_CONFIG, the checkout's ansible.cfg or its .venv in
sight. It must pass, write its state, scratch and reports into that directory, and write nothing into the installed
collection.

Offline, Galaxy cannot serve the kubernetes.core dependency (galaxy.yml: >=6.0.0). The install is still a real,
resolving `ansible-galaxy collection install --offline`: the dependency comes from the kubernetes.core that the
pinned `ansible` package of requirements-k8s.txt ships (in the checkout's .venv), given on the same command line, so
both land in the empty path. Without that copy it falls back to --no-deps (the local target does not use
kubernetes.core). One build, one venv, one playbook run, shared by the asserts; the durations are printed (-s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from tests.helpers import ROOT, VENV_BIN, parse_junit

# One worker builds, installs, makes the venv and runs once for all the tests of this file.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.xdist_group("installed_collection")]

K8S_CORE = ROOT / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
K8S_CORE = K8S_CORE / "ansible_collections" / "kubernetes" / "core"
# Top-level entries of the checkout that are local state, caches or run output: never in the tarball.
NOT_SHIPPED = {".venv", ".state", ".work", ".ansible", ".cluster", "reports", ".pytest_cache", ".ruff_cache", ".git"}
TARBALL_LIMIT = 2 * 1024 * 1024  # 0.6 MB when written; a stray venv or report tree would be far bigger


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any ANSIBLE_* setting, virtualenv or the checkout's .venv on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PIP_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and ROOT not in Path(p).parents and Path(p) != ROOT
    )
    env.update({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def _run(cmd: list[str], timeout: float, **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    return proc, time.monotonic() - start


def _tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every file (size, mtime in ns) and directory under ``path``. Python's own bytecode caches are left out: the
    interpreter writes __pycache__/*.pyc next to the plugins it imports (as for any installed package; skipped
    where the install is read-only), which is not the suite writing. A directory's mtime is left out too: it moves
    exactly when an entry is added or removed, which the listing itself shows."""
    out = {}
    for item in sorted(path.rglob("*")):
        if "__pycache__" in item.relative_to(path).parts:
            continue
        st = item.lstat()
        out[str(item.relative_to(path))] = (st.st_size, st.st_mtime_ns) if not item.is_dir() else (-1, 0)
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("installed")
    dist, colls, venv, work = tmp / "dist", tmp / "collections", tmp / "venv", tmp / "empty"
    for path in (dist, colls, work):
        path.mkdir()
    times: dict[str, float] = {}

    build, times["galaxy build"] = _run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(ROOT)],
        120,
        env=_clean_env(),
        cwd=tmp,
    )
    assert build.returncode == 0, f"ansible-galaxy collection build failed:\n{build.stdout}{build.stderr}"
    (tarball,) = dist.glob("pypi_ops-pypiserver-*.tar.gz")

    # Dependency resolution for real, offline; ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false so that the copy in the
    # checkout's venv does not count as installed already (it would then not be put into the empty path).
    deps = [str(K8S_CORE)] if (K8S_CORE / "MANIFEST.json").exists() else ["--no-deps"]
    install, times["galaxy install"] = _run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(colls), str(tarball), *deps],
        120,
        env=_clean_env(ANSIBLE_COLLECTIONS_PATH=str(colls), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false"),
        cwd=tmp,
    )
    assert install.returncode == 0, f"ansible-galaxy collection install failed:\n{install.stdout}{install.stderr}"
    coll = colls / "ansible_collections" / "pypi_ops" / "pypiserver"

    # The venv, from what the installed collection documents, with pip isolated from every config.
    pip_env = _clean_env(PIP_CONFIG_FILE="/dev/null", PIP_DISABLE_PIP_VERSION_CHECK="1")
    start = time.monotonic()
    made, _ = _run([sys.executable, "-m", "venv", str(venv)], 120, env=pip_env)
    assert made.returncode == 0, f"python -m venv failed:\n{made.stderr}"
    pip, _ = _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-r",
            str(coll / "requirements.txt"),
            "-c",
            str(coll / "constraints.txt"),
        ],
        600,
        env=pip_env,
    )
    times["venv from requirements.txt"] = time.monotonic() - start
    assert pip.returncode == 0, f"pip install -r requirements.txt failed (is PyPI reachable?):\n{pip.stderr[-3000:]}"

    before = _tree(coll)
    env = _clean_env(
        ANSIBLE_COLLECTIONS_PATH=str(colls),
        PATH=f"{venv / 'bin'}:{_clean_env()['PATH']}",
        HOME=os.environ.get("HOME", str(tmp)),
    )
    try:
        run, times["verify --tags p0"] = _run(
            [str(venv / "bin" / "ansible-playbook"), "pypi_ops.pypiserver.verify", "--tags", "p0"],
            600,
            env=env,
            cwd=work,
        )
    finally:  # the play stops its server; if it did not get that far, stop it here, by PID
        state = ls.read_state(str(work / ".state" / "local")) or {}
        if state.get("pid") and ls.pid_alive(state["pid"], state.get("pid_start")):
            ls.terminate(state["pid"], state.get("pid_start"))
    after = _tree(coll)
    print("\n" + json.dumps({k: round(v, 1) for k, v in times.items()} | {"tarball bytes": tarball.stat().st_size}))
    return {
        "tarball": tarball,
        "install": install,
        "coll": coll,
        "colls": colls,
        "work": work,
        "run": run,
        "before": before,
        "after": after,
        "deps": deps,
        "env": env,
        "venv": venv,
    }


def test_tarball_is_small_and_ships_no_local_state(installed):
    tarball = installed["tarball"]
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    tops = {name.split("/")[0] for name in names}
    assert not tops & NOT_SHIPPED, f"the tarball ships local state or caches: {sorted(tops & NOT_SHIPPED)}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")], "the tarball ships bytecode"
    assert {
        "playbooks/verify.yml",
        "verify.yml",
        "requirements.txt",
        "bindep.txt",
        "meta/execution-environment.yml",
    } <= set(names)
    assert tarball.stat().st_size < TARBALL_LIMIT, f"{tarball.name} is {tarball.stat().st_size} bytes"


def test_installed_into_an_empty_path_with_its_dependency(installed):
    found = sorted(
        p.relative_to(installed["colls"] / "ansible_collections").as_posix()
        for p in (installed["colls"] / "ansible_collections").glob("*/*")
    )
    expected = ["pypi_ops/pypiserver"] + (["kubernetes/core"] if installed["deps"] != ["--no-deps"] else [])
    assert found == sorted(expected), installed["install"].stdout


def test_verify_by_fqcn_from_an_empty_directory_passes_and_reports_there(installed):
    run, work = installed["run"], installed["work"]
    assert run.returncode == 0, (
        f"pypi_ops.pypiserver.verify --tags p0 failed:\n{run.stdout[-6000:]}{run.stderr[-3000:]}"
    )
    results = parse_junit(work / "reports" / "junit.xml")
    assert (work / "reports" / "summary.md").read_text().strip(), "summary.md is empty"
    # p0 is the core set; each must have run and passed (a skip would hide a broken install).
    for test_id in ("deploy", "connection", "simple_index", "upload", "download"):
        assert results.get(test_id, {}).get("status") == "passed", f"{test_id}: {results.get(test_id)}"
    assert all(r["status"] == "passed" for r in results.values()), results
    # state and scratch went to the working directory too (the local server's state, removed at teardown, and .work)
    assert (work / ".state").is_dir() and (work / ".work").is_dir()
    assert str(work / "reports" / "junit.xml") in run.stdout


def test_nothing_written_inside_the_installed_collection(installed):
    before, after = installed["before"], installed["after"]
    added = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    assert not added and not changed, f"the run wrote into the installed collection: added {added}, changed {changed}"


def test_every_runbook_runs_by_its_fqcn(installed, tmp_path):
    """The runbooks of playbooks/ resolve by name from the installed collection (vars files, roles, plugins)."""
    books = [
        f"pypi_ops.pypiserver.{name}" for name in ("smoke", "cleanup_probes", "persistence_drill", "rotate_credentials")
    ]
    proc, _ = _run(
        [str(installed["venv"] / "bin" / "ansible-playbook"), "--syntax-check", *books],
        300,
        env=installed["env"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("smoke", "cleanup_probes", "persistence_drill", "rotate_credentials"):
        assert f"{installed['coll']}/playbooks/{name}.yml" in proc.stdout, proc.stdout
    assert not list(tmp_path.iterdir()), "a syntax check wrote into the working directory"
