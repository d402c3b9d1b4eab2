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
    description: Seconds allowed to wait for an answer.
    type: float
    default: 30
"""
