# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of module progress: run the module, print its progress file while it runs.

A module cannot print while it runs. The long modules of this collection write their state to
``progress_file`` (``plugins/module_utils/progress.py``); their action plugins derive from
:class:`ProgressActionBase`, which, when the connection is local (the module runs on this
machine and can write a file the controller reads):

- picks a fresh private temporary file and passes it as ``progress_file``;
- runs the module with ``_execute_module`` in the worker's main thread, exactly as the builtin
  ``normal`` action does, so the task ``timeout:`` keyword (SIGALRM, delivered to the main
  thread only) and every exception behave as without the plugin;
- meanwhile a daemon thread (``progress_display.ProgressWatcher``) reads the file every 2 s and, when it changed, prints one
  line such as ``  [load] uploads 37/100 (12.3 s)`` with ``Display().display`` (in a forked
  worker Display proxies the line to the main process, which prints it at once). The line goes to
  stdout when that is a terminal or unbuffered, else to stderr: ansible-playbook does not flush a
  piped stdout until the next task, and stderr is line buffered (``progress_display.use_stderr``);
- when the module returns (or raises), stops the thread (bounded join), deletes the file and
  returns the module's result unchanged, failures included.

Anything else (another connection, check mode, async, become, ``progress_file`` set by hand,
or the variable ``pypi_progress`` false) runs the module exactly as ``normal`` would.
"""

from __future__ import annotations

import os
import shutil
import typing as t

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.pypi_ops.pypiserver.plugins.plugin_utils import progress_display as pd

PROGRESS_VAR = "pypi_progress"


class ProgressActionBase(ActionBase):
    """Run the module like ``ansible.builtin.normal``, printing its progress file while it runs (local only)."""

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        task_vars = task_vars or {}
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        directory = self._progress_dir(task_vars)
        module_args = None
        watcher = None
        if directory:
            path = os.path.join(directory, "progress.json")
            module_args = dict(self._task.args)
            module_args["progress_file"] = path
            watcher = pd.ProgressWatcher(path, str(task_vars.get("inventory_hostname") or ""))
            watcher.start()
        try:
            result = merge_hash(
                result, self._execute_module(module_args=module_args, task_vars=task_vars, wrap_async=wrap_async)
            )
        finally:
            if watcher is not None:
                watcher.stop()
            if directory:
                shutil.rmtree(directory, ignore_errors=True)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _progress_dir(self, task_vars: dict[str, t.Any]) -> str | None:
        """A fresh private directory for the progress file, or None when progress cannot or should not be shown."""
        wanted = pd.progress_wanted(
            getattr(self._connection, "transport", None),
            self._task.check_mode,
            self._task.async_val,
            self._play_context.become,
            self._task.args,
            self._wanted(task_vars),
        )
        return pd.make_progress_dir() if wanted else None

    def _wanted(self, task_vars: dict[str, t.Any]) -> bool:
        value = task_vars.get(PROGRESS_VAR, True)
        try:
            value = self._templar.template(value)
            return boolean(value, strict=False)
        except Exception:  # noqa: BLE001 - an odd value must not break the task; show progress
            return True
