# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # How the Kubernetes modules find the cluster (module_utils/args_common.py K8S_ARGS).
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to the kubeconfig file. Defaults to E(KUBECONFIG) or C(~/.kube/config);
        inside a pod without either, the in-cluster service account is used.
    type: path
  context:
    description: Context in the kubeconfig. Defaults to its current context.
    type: str
"""

    # The namespace the Kubernetes API modules work in (module_utils/args_common.py K8S_NAMESPACE_ARGS).
    NAMESPACE = r"""
options:
  namespace:
    description: Namespace of the objects the module works on (the pods, the Secret). It must exist.
    type: str
    required: true
"""
