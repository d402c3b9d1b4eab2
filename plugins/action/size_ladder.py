# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of pypi_ops.pypiserver.size_ladder: runs the module and prints its progress while it runs.

See plugins/plugin_utils/progress_action.py; on a non-local connection it runs the module unchanged.
"""

from __future__ import annotations

from ansible_collections.pypi_ops.pypiserver.plugins.plugin_utils.progress_action import ProgressActionBase


class ActionModule(ProgressActionBase):
    pass
