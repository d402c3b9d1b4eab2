# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by several modules, each documented once by the doc fragment named beside it.

- ``K8S_ARGS`` (kubeconfig, context): fragment ``pypi_ops.pypiserver.k8s``; the Kubernetes API modules and
  port_forward (which hands them to kubectl).
- ``K8S_NAMESPACE_ARGS`` (namespace, required): fragment ``pypi_ops.pypiserver.k8s.namespace``; pod_restart,
  pod_storage, htpasswd_secret.
- ``PROGRESS_ARGS`` (progress_file): fragment ``pypi_ops.pypiserver.progress``; the modules whose action plugin
  prints their progress.
- ``http.CLIENT_ARGS`` (kept in ``http.py``, beside the code that reads it): fragment ``pypi_ops.pypiserver.client``.

Spread them into a module's ``argument_spec`` (``**K8S_ARGS``); tests/unit/test_doc_fragments.py checks that a module
using a spec extends its fragment, and the reverse.
"""

from __future__ import annotations

import typing as t

# How the Kubernetes modules find the cluster.
K8S_ARGS: dict[str, dict[str, t.Any]] = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
}

# The namespace the Kubernetes API modules work in.
K8S_NAMESPACE_ARGS: dict[str, dict[str, t.Any]] = {
    "namespace": {"type": "str", "required": True},
}

# The file a module rewrites with its progress, for the collection's action plugin to print.
PROGRESS_ARGS: dict[str, dict[str, t.Any]] = {
    "progress_file": {"type": "path"},
}
