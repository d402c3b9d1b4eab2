# Copyright: pypi_ops.pypiserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cwd: the directory ansible-playbook was started in, for the default state, work and report directories."""

from __future__ import annotations

DOCUMENTATION = r"""
name: cwd
author: pypi_ops contributors (@pypi-ops)
short_description: The working directory of the ansible-playbook process (the directory it was started in)
version_added: "0.6.0"
description:
  - Returns the absolute path of the controller's current working directory, as C(os.getcwd()) gives it to the
    ansible-playbook process. The roles default their state, scratch and report directories under it
    (C(.state/), C(.work/), C(reports/)), so that a run of an installed collection
    (C(ansible-playbook pypi_ops.pypiserver.verify)) writes where it was started, never inside the collection.
  - Unlike the C(PWD) environment variable, it is right when the process was started by another program with a
    different working directory (C(PWD) is only kept up to date by shells); unlike a C(pipe) lookup of C(pwd), it
    runs no command.
  - Takes no terms.
"""

EXAMPLES = r"""
- name: Where this run keeps its reports unless pypi_report_dir says otherwise
  ansible.builtin.debug:
    msg: "{{ lookup('pypi_ops.pypiserver.cwd') }}/reports"
"""

RETURN = r"""
_raw:
  description: One element, the absolute path of the current working directory.
  type: list
  elements: path
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if terms:
            raise AnsibleLookupError(
                "The cwd lookup takes no terms; use lookup('pypi_ops.pypiserver.cwd') ~ '/sub/dir'."
            )
        try:
            return [os.getcwd()]
        except OSError as exc:  # the directory was removed under the running process
            raise AnsibleLookupError(
                f"The current working directory is gone ({exc.strerror}); start ansible-playbook from an existing "
                "directory or set pypi_local_state_dir, pypi_work_dir and pypi_report_dir."
            ) from None
