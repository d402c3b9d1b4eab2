# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the project-based clients (poetry, pdm, hatch) share: finding their program, and running it isolated.

- ``find_tool``: the program next to the interpreter running the module (the Makefile links ``.venv/bin/poetry``,
  ``pdm`` and ``hatch`` to their own venvs under ``.venv/clients/``), else on PATH; a missing one raises
  ``ToolNotFound`` with one sentence naming it and how to install it (the clients test turns it into a named skip);
- ``scrubbed``: the argv behind ``env -u NAME`` for every inherited variable with a client's prefix (``POETRY_``,
  ``PDM_``, ``HATCH_``, ``UV_``, ``PIP_``, ``TWINE_``), so the controller's settings never reach the child;
- ``isolated_env``: a throwaway HOME with empty XDG config, cache and data directories (and no system config
  directory), an empty netrc, pip's config off and keyring's null backend, so no user config, stored credential or
  cache is read or written.
"""

from __future__ import annotations

import os
import shutil
import sys
import typing as t

SCRUB_PREFIXES = ("POETRY_", "PDM_", "HATCH_", "UV_", "PIP_", "TWINE_")
TOOLS = ("poetry", "pdm", "hatch")


class ToolNotFound(Exception):
    """No program for a client: one sentence naming where it was looked for and how to install it."""

    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg


def install_hint(tool: str) -> str:
    return (
        f"run 'make clients' (it installs {tool}, pinned in requirements-{tool}.txt, into .venv) or drop {tool} "
        "from the client set"
    )


def find_tool(
    tool: str,
    explicit: str | None = None,
    python: str | None = None,
    hint: str | None = None,
    error: type[ToolNotFound] = ToolNotFound,
) -> str:
    """The program ``tool``: ``explicit`` if given (it must be executable), else next to ``python`` or the running
    interpreter, else the first one on PATH. ``hint`` (how to install it) ends the ``error`` raised otherwise."""
    hint = hint or install_hint(tool)
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise error(f"{tool} is not at {explicit} (no executable file there); {hint}.")
    looked = []
    for interpreter in dict.fromkeys(p for p in (python, sys.executable) if p):
        candidate = os.path.join(os.path.dirname(interpreter), tool)
        looked.append(os.path.dirname(interpreter))
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which(tool)
    if on_path:
        return on_path
    raise error(f"{tool} is not installed on the controller: not in {', '.join(looked)} and not on PATH; {hint}.")


def scrubbed(
    argv: list[str],
    keep: t.Iterable[str] = (),
    environ: t.Mapping[str, str] | None = None,
    prefixes: tuple[str, ...] = SCRUB_PREFIXES,
) -> list[str]:
    """``argv`` behind ``env -u NAME`` for every inherited variable with one of ``prefixes`` not in ``keep``."""
    keep = set(keep)
    source = os.environ if environ is None else environ
    names = sorted(k for k in source if k.startswith(prefixes) and k not in keep)
    unset = [arg for name in names for arg in ("-u", name)]
    return (["env", *unset, "--"] + argv) if unset else argv


def isolated_env(private_dir: str) -> dict[str, str]:
    """A throwaway home under ``private_dir`` (made 0700): no user config, keyring, netrc or cache is read."""
    home = os.path.join(private_dir, "home")
    dirs = {name: os.path.join(home, sub) for name, sub in (
        ("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache"), ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
    )}  # fmt: skip
    for path in (home, *dirs.values()):
        os.makedirs(path, mode=0o700, exist_ok=True)
    system = os.path.join(private_dir, "xdg-system")  # XDG_CONFIG_DIRS: no /etc/xdg site config (pdm reads one)
    os.makedirs(system, mode=0o700, exist_ok=True)
    netrc = os.path.join(private_dir, "netrc")
    fd = os.open(netrc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    return {
        "HOME": home,
        **dirs,
        "XDG_CONFIG_DIRS": system,
        "NETRC": netrc,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "PYTHONUNBUFFERED": "1",
    }
