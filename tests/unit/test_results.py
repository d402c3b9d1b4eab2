"""The result bookkeeping (plugins/module_utils/results.py) behind the result_row, failure_reason, skip_reason and
client_matrix filters, on results captured from real runs (tests/unit/data/results_captured.json).

The client matrix must be what the roles' Jinja made of the same registered results before it moved to Python
(the captured "matrix"), row for row and key for key: the report and summary.md read it.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.filter import results as results_filter
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import results
from tests.helpers import ROOT

DATA = json.loads((ROOT / "tests" / "unit" / "data" / "results_captured.json").read_text())
FAILED = DATA["failed"]
CLIENTS = DATA["clients"]
ROW_KEYS = ["id", "priority", "status", "duration", "reason", "figures"]
MATRIX_KEYS = ["status", "reason", "upload", "install", "package"]
DEADLINE = {"name": "the deadline of test load (660 s, pypi_test_deadline)", "at": 1.0}


# --------------------------------------------------------------------------- result_row


def test_a_passed_row_has_the_reports_keys_in_order_and_its_duration():
    row = results.result_row("download", "p0", 1000.0, reason="pip installed it", figures={"n": 1}, now=1002.34567)
    assert list(row) == ROW_KEYS
    assert row == {
        "id": "download",
        "priority": "p0",
        "status": "passed",
        "duration": 2.346,
        "reason": "pip installed it",
        "figures": {"n": 1},
    }


def test_a_skip_reason_makes_the_row_skipped_with_that_reason():
    row = results.result_row("replicas", "p1", "1000.5", reason="not used", skip="needs 2 replicas", now=1001.0)
    assert (row["status"], row["reason"], row["duration"], row["figures"]) == ("skipped", "needs 2 replicas", 0.5, {})


def test_an_explicit_status_and_duration_win():
    row = results.result_row("proof", "rotate", status="skipped", reason="prerequisite rotate failed", duration=0.0)
    assert (row["status"], row["reason"], row["duration"]) == ("skipped", "prerequisite rotate failed", 0.0)
    failed = results.result_row("deploy", "setup", None, status="failed", reason="boom", skip="")
    assert (failed["status"], failed["duration"]) == ("failed", 0.0)


def test_the_duration_is_measured_without_now():
    import time

    row = results.result_row("x", "p2", time.time() - 1.5)
    assert 1.4 <= row["duration"] < 10


# --------------------------------------------------------------------------- failure_reason


def test_a_module_failure_is_its_first_line_and_the_task():
    got = results.failure_reason(FAILED["module_failure"]["result"], FAILED["module_failure"]["task"], DEADLINE)
    assert got == (
        "The index is unreachable: Connection refused by http://127.0.0.1:9/simple/probe-x/: nothing listens there; "
        "check the port and that the server is running. Last lines of pip's output:"
        " [task: Download | pip install from the server only]"
    )
    assert "\n" not in got


def test_a_failed_loop_names_its_first_failed_item():
    case = FAILED["loop_failure"]
    assert case["result"]["msg"] == "One or more items failed"
    got = results.failure_reason(case["result"], case["task"], DEADLINE)
    assert got == (
        "Connection refused by http://127.0.0.1:9/: nothing listens there; check the port and that the server is "
        "running. [task: Clients | check each URL]"
    )
    # deploy and the rotation read the loop's own message, as they always did
    assert results.failure_reason(case["result"], default="deploy failed", items=False) == "One or more items failed"


def test_a_failed_item_with_an_empty_message_gives_an_empty_first_line():
    """failed_when on a command: the failed item's msg is "", whose first line is the default."""
    case = FAILED["loop_failure_no_msg"]
    assert results.failure_reason(case["result"], case["task"]) == "task failed [task: Loop | command per item]"


def test_a_timed_out_task_names_the_tests_deadline():
    case = FAILED["timeout"]
    assert "timedout" in case["result"]
    assert results.failure_reason(case["result"], case["task"], DEADLINE) == (
        'the deadline of test load (660 s, pypi_test_deadline) passed: the task "Load | a task stopped by its '
        'timeout" was stopped by its Ansible timeout (the backstop); the server is too slow or hangs'
    )
    assert results.failure_reason(case["result"], case["task"], {}).startswith("the test's deadline passed: ")
    # without a deadline (deploy, rotation) the message is read as it is
    assert results.failure_reason(case["result"], case["task"]) == (
        "Task failed: Timed out after 1 second(s). [task: Load | a task stopped by its timeout]"
    )


def test_only_the_first_line_of_a_multiline_message():
    case = FAILED["assert_multiline"]
    assert results.failure_reason(case["result"], case["task"]) == (
        "first line of the message [task: Clients | every client pair works]"
    )
    assert results.failure_reason(case["result"]) == "first line of the message"


def test_defaults_for_what_a_result_does_not_say():
    assert results.failure_reason({}, default="deploy failed", items=False) == "deploy failed"
    assert results.failure_reason({"msg": ""}, default="deploy failed") == "deploy failed"
    assert results.failure_reason({"msg": None}) == "None"  # what Jinja's `| string` made of it
    assert results.failure_reason(None, {}) == "task failed [task: ?]"
    assert results.failure_reason(FAILED["fail"]["result"], "Url | by name") == (
        "The url target is a server this collection does not manage, so it cannot change its credentials."
        " [task: Url | by name]"
    )


# --------------------------------------------------------------------------- skip_reason


def test_skip_reason_names_the_prerequisite():
    assert results.skip_reason("current_credentials") == "prerequisite current_credentials failed"
    assert results.skip_reason("upload", "skipped") == "prerequisite upload skipped"


# --------------------------------------------------------------------------- client_matrix


TIMES = ("upload_seconds", "install_seconds")


def _matrix(case: dict, times: bool = False) -> list[dict]:
    """The matrix of a captured case; without ``times``, the rows as the Jinja made them (it had no times)."""
    got = results.client_matrix(
        case["upload_results"], case["install_results"], case["install_clients"], case["break_on"]
    )
    return got if times else [{k: v for k, v in row.items() if k not in TIMES} for row in got]


@pytest.mark.parametrize("name", ["pass", "install_missing", "upload_missing"])
def test_the_matrix_is_what_the_jinja_made_of_the_same_results(name):
    case = CLIENTS[name]
    got = _matrix(case)
    assert got == case["matrix"]
    assert all(list(row) == MATRIX_KEYS for row in got)


def test_the_matrix_of_a_healthy_server_passes_every_pair_in_order():
    got = _matrix(CLIENTS["pass"])
    assert [(r["upload"], r["install"], r["status"]) for r in got] == [
        ("twine", "pip", "passed"),
        ("twine", "uv", "passed"),
        ("uv", "pip", "passed"),
        ("uv", "uv", "passed"),
    ]
    assert got[0]["reason"].startswith("pip installed 1.0.0 from http://127.0.0.1:")
    assert got[0]["package"].endswith("-via-twine")


def test_a_missing_client_skips_its_pairs_naming_it():
    upload_missing = _matrix(CLIENTS["upload_missing"])
    assert [r["status"] for r in upload_missing] == ["passed", "passed", "skipped", "skipped"]
    assert upload_missing[2]["reason"].startswith("upload client uv is not installed: uv is not at /nonexistent/uv")
    install_missing = _matrix(CLIENTS["install_missing"])
    assert [r["status"] for r in install_missing] == ["passed", "skipped", "passed", "skipped"]
    assert install_missing[1]["reason"].startswith("install client uv is not installed: uv is not at /nonexistent/uv")


def test_a_failed_upload_fails_its_pairs_with_its_message():
    case = copy.deepcopy(CLIENTS["pass"])
    up = case["upload_results"][1]  # uv's upload, as a refusing proxy leaves it
    up.update(failed=True, uploaded=[], msg="Upload of x.whl: expected HTTP 200, got 403")
    case["install_results"] = [r for r in case["install_results"] if r["item"][0]["item"] != "uv"]
    got = _matrix(case)
    assert [r["status"] for r in got] == ["passed", "passed", "failed", "failed"]
    assert got[2]["reason"] == "upload with uv failed: Upload of x.whl: expected HTTP 200, got 403"
    del up["msg"]
    assert _matrix(case)[3]["reason"] == "upload with uv failed: nothing uploaded"


def test_an_install_without_an_origin_fails_with_its_message():
    case = copy.deepcopy(CLIENTS["pass"])
    bad = case["install_results"][1]
    del bad["origin"]
    bad.update(failed=True, msg="uv installed 9.9.9, not 1.0.0")
    got = _matrix(case)
    assert (got[1]["status"], got[1]["reason"]) == ("failed", "install with uv failed: uv installed 9.9.9, not 1.0.0")
    del bad["msg"]
    assert _matrix(case)[1]["reason"] == "install with uv failed: no result"


def test_pairs_after_the_circuit_breaker_say_why_they_did_not_run():
    case = copy.deepcopy(CLIENTS["pass"])
    first = case["install_results"][0]
    del first["origin"]
    first.update(failed=True, msg="The index is unreachable: Connection refused by http://127.0.0.1:9/simple/")
    case["install_results"] = [first]  # break_when stopped the loop after it
    got = _matrix(case)
    assert got[0]["status"] == "failed" and got[0]["reason"].startswith("install with pip failed: The index is")
    assert {r["reason"] for r in got[1:]} == {
        "not run: the matrix stopped after a pair failed with: The index is unreachable: Connection refused by "
        "http://127.0.0.1:9/simple/"
    }
    first["msg"] = "something else"
    assert {r["reason"] for r in _matrix(case)[1:]} == {"install with uv did not run", "install with pip did not run"}
    untimed = [
        {k: v for k, v in r.items() if k != "install_seconds"}
        for r in results.client_matrix(case["upload_results"], [], ["pip"])
    ]
    upload_seconds = [round(up["results"][0]["seconds"], 2) for up in case["upload_results"]]
    assert untimed == [
        dict(
            status="failed", reason="install with pip did not run", upload=u, install="pip", package=p, upload_seconds=s
        )
        for u, p, s in zip(("twine", "uv"), (got[0]["package"], got[2]["package"]), upload_seconds, strict=True)
    ]


def test_each_pair_carries_the_seconds_of_its_upload_and_of_its_install():
    case = copy.deepcopy(CLIENTS["pass"])
    for i, up in enumerate(case["upload_results"]):
        up["results"][0]["seconds"] = 0.25 + i
    for i, done in enumerate(case["install_results"]):
        done["seconds"] = 1.04 + i
    got = _matrix(case, times=True)
    assert [(r["upload_seconds"], r["install_seconds"]) for r in got] == [
        (0.25, 1.04),
        (0.25, 2.04),
        (1.25, 3.04),
        (1.25, 4.04),
    ]
    case["install_results"] = case["install_results"][:1]  # the loop stopped: the others have no install time
    assert [r["install_seconds"] for r in _matrix(case, times=True)] == [1.04, None, None, None]


def test_all_stands_for_every_client_in_matrix_order():
    assert results.client_set(["all"], "upload") == ["twine", "uv", "poetry", "pdm", "hatch"]
    assert results.client_set("all", "install") == ["pip", "uv", "uv-lock", "poetry", "pdm"]
    assert results.client_set(["http", "all", "twine"], "upload") == ["http", "twine", "uv", "poetry", "pdm", "hatch"]
    assert results.client_set(["uv", "pip", "uv"], "install") == ["uv", "pip"]
    assert results.client_set([], "install") == [] and results.client_set(None, "upload") == []


# --------------------------------------------------------------------------- the filters


def test_the_filter_plugin_exposes_the_four_filters():
    filters = results_filter.FilterModule().filters()
    assert sorted(filters) == ["client_matrix", "client_set", "failure_reason", "result_row", "skip_reason"]
    assert filters["client_set"]("all", "install") == list(results.INSTALL_CLIENTS)
    case = FAILED["loop_failure"]
    assert filters["failure_reason"](case["result"], case["task"]) == results.failure_reason(
        case["result"], case["task"]
    )
    assert filters["result_row"]("x", "p0", status="skipped", duration=0.0, reason="r")["reason"] == "r"
    got = filters["client_matrix"](
        **{k: CLIENTS["pass"][k] for k in ("install_results", "install_clients")},
        upload_results=CLIENTS["pass"]["upload_results"],
    )
    assert [{k: v for k, v in r.items() if k not in TIMES} for r in got] == CLIENTS["pass"]["matrix"]


PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    who: world
  tasks:
    - block:
        - name: "Greet {{ who }} | each"
          ansible.builtin.assert:
            that: item != 'b'
            fail_msg: "item {{ item }} is bad\\nsecond line"
          loop: [a, b]
      rescue:
        - ansible.builtin.set_fact:
            rows: >-
              {{ ['x' | pypi_ops.pypiserver.result_row('p0', none, status='failed',
                   reason=ansible_failed_result | pypi_ops.pypiserver.failure_reason(ansible_failed_task, deadline={}))]
                 + (['s1', 's2'] | map('pypi_ops.pypiserver.result_row', 'rotate', status='skipped', duration=0.0,
                                       reason='x' | pypi_ops.pypiserver.skip_reason) | list) }}
        - ansible.builtin.copy:
            content: "{{ rows | to_json }}"
            dest: "{{ out }}"
            mode: "0600"
"""


def test_the_filters_in_a_real_play(tmp_path):
    """Through ansible-playbook: ansible_failed_task's templated name is rendered, map() takes the FQCN filter."""
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    out = tmp_path / "rows.json"
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
    )
    proc = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "ansible-playbook"),
            "play.yml",
            "-e",
            f"out={out}",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert rows == [
        {
            "id": "x",
            "priority": "p0",
            "status": "failed",
            "duration": 0.0,
            "reason": "item b is bad [task: Greet world | each]",
            "figures": {},
        },
        {
            "id": "s1",
            "priority": "rotate",
            "status": "skipped",
            "duration": 0.0,
            "reason": "prerequisite x failed",
            "figures": {},
        },
        {
            "id": "s2",
            "priority": "rotate",
            "status": "skipped",
            "duration": 0.0,
            "reason": "prerequisite x failed",
            "figures": {},
        },
    ]
