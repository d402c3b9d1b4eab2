# Copyright: pypi_ops.pypiserver contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""helm_values_files: read chart values files into one mapping, merged the way helm merges -f files."""

from __future__ import annotations

import os
import typing as t

import yaml


def _error(msg: str) -> Exception:
    # Imported here: importing ansible.errors marks the process as the controller, which a module test process
    # importing this filter must not become.
    from ansible.errors import AnsibleFilterError

    return AnsibleFilterError(msg)


DOCUMENTATION = r"""
name: helm_values_files
short_description: Chart values files read and merged as C(helm -f a -f b) would (later files win, maps merge)
version_added: "0.4.0"
description:
  - The deploy role passes the result as C(values) to kubernetes.core.helm instead of C(values_files).
    kubernetes.core.helm 6.2 compares a release with its values files only, ignoring C(values), when both
    are given, so every run reported a change (found on a real cluster by molecule's idempotence step).
positional: _input
options:
  _input:
    description: Paths of YAML (or JSON) files, each a mapping.
    type: list
    elements: path
    required: true
"""

EXAMPLES = r"""
values: "{{ pypi_k8s_values_files | pypi_ops.pypiserver.helm_values_files | combine(pypi_k8s_values, recursive=true) }}"
"""

RETURN = r"""
_value:
  description: The merged values.
  type: dict
"""


def _merge(base: dict[str, t.Any], over: dict[str, t.Any]) -> dict[str, t.Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def helm_values_files(paths: t.Any) -> dict[str, t.Any]:
    if isinstance(paths, str) or not isinstance(paths, (list, tuple)):
        raise _error("pypi_k8s_values_files must be a list of paths; wrap a single file in [ ]")
    merged: dict[str, t.Any] = {}
    for path in paths:
        path = os.path.expanduser(str(path))
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except OSError as exc:
            raise _error(
                f"chart values file {path} cannot be read ({exc.strerror}); check pypi_k8s_values_files "
                "(for the local cluster: make cluster-up writes .cluster/values-local.yaml)"
            ) from None
        except yaml.YAMLError as exc:
            raise _error(f"chart values file {path} is not valid YAML ({exc}); fix the file") from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise _error(f"chart values file {path} holds a {type(data).__name__}, not a mapping of values")
        merged = _merge(merged, data)
    return merged


class FilterModule:
    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"helm_values_files": helm_values_files}
