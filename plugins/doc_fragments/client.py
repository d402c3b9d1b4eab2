# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options of every module that talks to the index (module_utils/http.py CLIENT_ARGS).
    DOCUMENTATION = r"""
options:
  username:
    description: User for HTTP basic authentication.
    type: str
  password:
    description: Password or token for HTTP basic authentication. Never logged.
    type: str
  validate_certs:
    description:
      - Verify TLS certificates. V(false) works but prints a warning; prefer O(ca_path) for a private CA.
    type: bool
    default: true
  ca_path:
    description: CA bundle (PEM) used to verify the server's certificate.
    type: path
  connect_timeout:
    description: Seconds allowed to establish a connection.
    type: float
    default: 5
  read_timeout:
    description:
      - Seconds allowed without a byte, for an answer and within a transfer. A download or upload that moves no
        byte for this long has stalled and fails, naming how far it got; slow but moving is fine.
    type: float
    default: 30
  deadline:
    description:
      - Absolute time (seconds since the epoch) by which the module must end; V(0) for none. Every wait is cut
        to what is left of it, and a module past it fails naming O(deadline_name).
      - The functional_tests role sets it from C(pypi_test_deadline) and C(pypi_run_deadline).
    type: float
    default: 0
    version_added: 0.4.0
  deadline_name:
    description: What the deadline is, for the failure message (for example C(the deadline of test load)).
    type: str
    version_added: 0.4.0
"""
