"""The cwd lookup (plugins/lookup/cwd.py), which the roles' state, work and report directories default under: the
real ansible, in child processes (ansible.errors stays out of the pytest process), started from a directory that
differs from $PWD, so the answer must come from the process's working directory and not from the shell's variable."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import ROOT, VENV_BIN


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"),
            "ANSIBLE_NOCOLOR": "1",
        }
    )
    env.update(extra)
    return env


def _debug(expr: str, cwd, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-m", "ansible.builtin.debug", "-a", f"msg={{{{ {expr} }}}}"],
        cwd=cwd,
        env=_env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_working_directory_of_the_process_not_pwd(tmp_path):
    run = _debug("lookup('pypi_ops.pypiserver.cwd')", tmp_path, PWD="/nonexistent/stale-pwd")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"msg: {tmp_path}\n" in run.stdout


def test_terms_are_refused_in_one_sentence(tmp_path):
    run = _debug("lookup('pypi_ops.pypiserver.cwd', 'reports')", tmp_path)
    assert run.returncode != 0
    assert "The cwd lookup takes no terms" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_a_removed_working_directory_names_the_variables_to_set(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    code = (
        "import os, sys\n"
        "from ansible_collections.pypi_ops.pypiserver.plugins.lookup.cwd import LookupModule\n"
        "from ansible.errors import AnsibleLookupError\n"
        f"os.chdir({str(gone)!r}); os.rmdir({str(gone)!r})\n"
        "try:\n    LookupModule().run([])\nexcept AnsibleLookupError as exc:\n    print(exc)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(PYTHONPATH=str(ROOT / ".venv" / "collections")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("The current working directory is gone")
    assert "pypi_local_state_dir, pypi_work_dir and pypi_report_dir" in run.stdout
