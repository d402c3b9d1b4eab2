"""The helm_test_verdict and helm_values_files filters (plugins/filter/), on helm's real output shapes."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pypi_ops.pypiserver.plugins.filter.helm_test import helm_test_verdict
from ansible_collections.pypi_ops.pypiserver.plugins.filter.helm_values import helm_values_files

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
Error from server (Forbidden): pods "pypi-pypiserver-5d9" is forbidden: User "system:serviceaccount:ns:pypi-pypiserver-test-persistence" cannot delete resource "pods" in API group "" in the namespace "ns"
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


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "cannot be read"), ("- a\n- b\n", "not a mapping"), ("a: [\n", "not valid YAML")],
)
def test_values_files_bad_input_is_one_sentence(tmp_path, content, words):
    path = tmp_path / "v.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(AnsibleFilterError, match=words):
        helm_values_files([str(path)])


def test_values_files_needs_a_list(tmp_path):
    with pytest.raises(AnsibleFilterError, match="list of paths"):
        helm_values_files(str(tmp_path / "v.yaml"))
