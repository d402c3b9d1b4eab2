# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The attributes every module documents. A module extends pypi_ops.pypiserver.attributes and states its own
    # check_mode support (with details where they help); diff mode is supported by none, and every module runs
    # on a POSIX host (the controller, in practice). A module's own keys win over the fragment's.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return a changed status prediction without modifying the target.
  diff_mode:
    description: Will return details on what has changed (or would change in check mode) when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
"""

    # With the above: the module only reads, so check mode runs it unchanged (changed is always false).
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: The module only reads, so it runs unchanged in check mode; C(changed) is always false.
"""
