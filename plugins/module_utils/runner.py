# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run an external tool (twine, pip, python -m build, helm) with a hard deadline.

Inside a module the command goes through ``module.run_command`` with an argv
list; outside one (tests, benchmarks) through ``subprocess``. Both are wrapped
in coreutils ``timeout`` so that no child can hang the run. Secrets are passed
in ``env`` only, never in argv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import typing as t


class RunResult(t.NamedTuple):
    rc: int
    out: str
    err: str
    timed_out: bool

    @property
    def text(self) -> str:
        return (self.out or "") + (self.err or "")


def _timeout_prefix(timeout: float | None) -> list[str]:
    if not timeout:
        return []
    tool = shutil.which("timeout")
    if not tool:  # pragma: no cover - coreutils is everywhere Ansible runs
        return []
    return [tool, "--kill-after=5", f"{max(1.0, float(timeout)):g}"]


def run(
    module: t.Any | None,
    argv: list[str],
    timeout: float | None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    data: str | None = None,
) -> RunResult:
    """Run ``argv``; rc 124/137 from the timeout wrapper is reported as ``timed_out``."""
    full = _timeout_prefix(timeout) + [str(a) for a in argv]
    if module is not None:
        rc, out, err = module.run_command(full, environ_update=env or {}, cwd=cwd, data=data, check_rc=False)
    else:
        child_env = dict(os.environ)
        child_env.update(env or {})
        try:
            proc = subprocess.run(full, env=child_env, cwd=cwd, input=data, capture_output=True, text=True, check=False)
        except OSError as exc:
            return RunResult(127, "", f"{argv[0]}: {exc.strerror}", False)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    timed_out = bool(timeout) and rc in (124, 137) and bool(_timeout_prefix(timeout))
    return RunResult(rc, out or "", err or "", timed_out)


def tail(text: str, lines: int = 15) -> str:
    """The last lines of a tool's output, for an error message."""
    kept = [line.rstrip() for line in (text or "").splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
