"""The helm_test_verdict and helm_values_files filters (plugins/filter/), on helm's real output shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ansible_collections.pypi_ops.pypiserver.plugins.filter.helm_test import helm_test_verdict
from ansible_collections.pypi_ops.pypiserver.plugins.filter.helm_values import helm_values_files
from tests.helpers import ROOT

PASSING = """NAME: pypi
LAST DEPLOYED: Fri Dec  4 20:33:21 2026
NAMESPACE: t1
STATUS: deployed
REVISION: 1
TEST SUITE:     pypi-pypiserver-test-connection
Last Started:   Fri Dec  4 20:34:45 2026
Last Completed: Fri Dec  4 20:34:51 2026
Phase:          Succeeded
TEST SUITE:     pypi-pypiserver-test-persistence
Last Started:   Fri Dec  4 20:35:22 2026
Last Completed: Fri Dec  4 20:35:28 2026
Phase:          Succeeded

POD LOGS: pypi-pypiserver-test-connection
GET /health -> Ok
"""

RBAC = """TEST SUITE:     pypi-pypiserver-test-connection
Phase:          Succeeded
TEST SUITE:     pypi-pypiserver-test-persistence
Phase:          Failed

POD LOGS: pypi-pypiserver-test-connection
GET /health -> Ok

POD LOGS: pypi-pypiserver-test-persistence
before restart:
chart_smoke_pkg-1.0.1-py3-none-any.whl
deleting server pods: 1234
Error from server (Forbidden): pods "pypi-pypiserver-5d9" is forbidden: \
User "system:serviceaccount:ns:pypi-pypiserver-test-persistence" cannot delete resource "pods" in API group "" in the namespace "ns"
"""

TRACEBACK = """TEST SUITE:     pypi-pypiserver-test-download-package
Phase:          Failed

POD LOGS: pypi-pypiserver-test-download-package
ERROR: No matching distribution found for chart-smoke-pkg==1.0.1
Traceback (most recent call last):
  File "<string>", line 20, in <module>
subprocess.CalledProcessError: Command '['pip']' returned non-zero exit status 1.
"""


def test_all_succeeded_passes():
    v = helm_test_verdict({"rc": 0, "stdout": PASSING, "stderr": ""})
    assert v["ok"] is True
    assert [s["phase"] for s in v["suites"]] == ["Succeeded", "Succeeded"]
    assert v["message"] == "2 test hook(s), all Succeeded"


def test_rbac_denial_is_named_with_verb_and_resource():
    v = helm_test_verdict({"rc": 1, "stdout": RBAC, "stderr": "Error: pod pypi-pypiserver-test-persistence failed"})
    assert v["ok"] is False
    assert v["message"].startswith("helm test hook pypi-pypiserver-test-persistence Failed: RBAC denied")
    assert "cannot delete pods" in v["message"] and "persistenceVerbs" in v["message"]


def test_other_failure_names_the_last_useful_log_line():
    v = helm_test_verdict({"rc": 1, "stdout": TRACEBACK, "stderr": ""})
    assert v["ok"] is False
    assert "test-download-package Failed" in v["message"]
    assert "CalledProcessError" in v["message"]


def test_rc_zero_without_any_suite_is_not_a_pass():
    v = helm_test_verdict({"rc": 0, "stdout": "NAME: pypi\n", "stderr": ""})
    assert v["ok"] is False and "no test hook" in v["message"]


def test_nonzero_rc_with_all_succeeded_is_not_a_pass():
    v = helm_test_verdict({"rc": 1, "stdout": PASSING, "stderr": "Error: unable to get pod logs for x"})
    assert v["ok"] is False and "unable to get pod logs" in v["message"]


def test_values_files_merge_like_helm(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.json"
    a.write_text("image: {repository: r, tag: '1'}\ntests: {pythonImage: p}\n")
    b.write_text('{"image": {"tag": "2", "pullPolicy": "Never"}}')
    assert helm_values_files([str(a), str(b)]) == {
        "image": {"repository": "r", "tag": "2", "pullPolicy": "Never"},
        "tests": {"pythonImage": "p"},
    }
    assert helm_values_files([]) == {}


BAD_INPUT = """
import json, sys
from ansible_collections.pypi_ops.pypiserver.plugins.filter.helm_values import helm_values_files
out = {}
for name, arg in json.loads(sys.argv[1]).items():
    try:
        helm_values_files(arg)
        out[name] = "no error"
    except Exception as exc:
        out[name] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(out))
"""


def test_values_files_bad_input_is_one_sentence(tmp_path):
    """In a child process: raising AnsibleFilterError imports ansible.errors, which would mark this test process
    as the controller and change module warnings for every later test in it."""
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "broken.yaml").write_text("a: [\n")
    cases = {
        "missing": [str(tmp_path / "nope.yaml")],
        "list": [str(tmp_path / "list.yaml")],
        "broken": [str(tmp_path / "broken.yaml")],
        "string": str(tmp_path / "list.yaml"),
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT / ".venv" / "collections")}
    proc = subprocess.run(
        [sys.executable, "-c", BAD_INPUT, json.dumps(cases)], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["missing"].startswith("Ansible") and "chart values file" in got["missing"]
    assert "cannot be read" in got["missing"]
    assert "make cluster-up" in got["missing"]
    assert "not a mapping" in got["list"] and "not valid YAML" in got["broken"]
    assert "list of paths" in got["string"]
