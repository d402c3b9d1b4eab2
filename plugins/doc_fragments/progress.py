# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # progress_file of the modules with an action plugin that prints their progress (module_utils/args_common.py
    # PROGRESS_ARGS; module_utils/progress.py writes it, plugin_utils/progress_action.py reads it).
    DOCUMENTATION = r"""
options:
  progress_file:
    description:
      - File this module rewrites with its progress while it runs (what it is doing and how far it got; the
        module's notes say what), as one small JSON object, atomically and at most once a second.
      - The collection's action plugin sets it when the connection is local and prints the progress while the task
        runs; there is no need to set it by hand.
    type: path
"""
