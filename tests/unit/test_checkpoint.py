"""The run's checkpoints and its guardian (module_utils/run_state.py, action run_checkpoint), and the deadline filter.

The guardian test is real: a real pypiserver started the way the local target starts it, a real guardian process
watching a stand-in controller process, a real SIGTERM to that process. It proves the guardian stops the server
by PID and rewrites the report naming the interrupted test and the tests not run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ansible_collections.pypi_ops.pypiserver.plugins.filter import deadlines
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import run_state
from tests.helpers import ROOT, parse_junit, wait_gone

ROLE = ROOT / "roles" / "functional_tests"


def test_the_plan_is_main_yml_in_order_with_each_tests_tags():
    plan = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["pypi_test_plan"]
    main = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())[0]["block"]
    imports = [t["ansible.builtin.import_tasks"] for t in main if "ansible.builtin.import_tasks" in t]
    files = [name[:-4] for name in imports if not name.startswith("_")]
    assert [p["id"] for p in plan] == files
    for entry in plan:
        test = yaml.safe_load((ROLE / "tasks" / f"{entry['id']}.yml").read_text())[0]
        assert entry["tags"] == test["tags"], entry["id"]
        assert entry["priority"] == test["vars"]["pypi_test_priority"], entry["id"]
        assert entry["id"] in deadlines.DEFAULTS, f"{entry['id']} has no default deadline"


def test_tags_select_the_plan():
    plan = [{"id": "connection", "tags": ["p0", "connection"]}, {"id": "load", "tags": ["p2", "load"]}, "extra"]

    def ids(*args):
        return [e["id"] for e in run_state.selected(plan, *args)]

    assert ids(["all"], []) == ["connection", "load", "extra"]
    assert ids(["p0"], []) == ["connection"]
    assert ids(["all"], ["load"]) == ["connection", "extra"]
    assert ids(["extra", "load"], ["p2"]) == ["extra"]
    assert run_state.selected([{"id": "load", "priority": "p2", "tags": ["p2"]}], ["all"], []) == [
        {"id": "load", "priority": "p2"}
    ]


def test_provisional_marks_the_running_test_interrupted_and_the_rest_not_run():
    doc = {
        "results": [{"id": "connection", "priority": "p0", "status": "passed", "duration": 1.0, "reason": "ok"}],
        "current": "upload",
        "current_priority": "p0",
        "current_since": time.time() - 2,
        "plan": ["connection", "upload", {"id": "download", "priority": "p0"}],
    }
    got = {r["id"]: r for r in run_state.provisional(doc, "the run was stopped")}
    assert got["connection"]["status"] == "passed"
    assert got["upload"]["status"] == "interrupted" and got["upload"]["duration"] >= 2
    assert got["upload"]["reason"] == "interrupted: the run was stopped while this test ran"
    assert got["download"]["status"] == "not_run" and got["download"]["priority"] == "p0"


def test_deadline_defaults_overrides_and_the_run_cap():
    now = 1_000_000.0
    d = deadlines.test_deadline("load", {}, 300, 0, 0, now=now)
    assert d["at"] == now + 2 * 300 + 60 and "the deadline of test load (660 s, pypi_test_deadline)" == d["name"]
    assert d["timeout"] == 660 + 30 and d["run_passed"] is False
    d = deadlines.test_deadline("load", {"default": 100, "load": 50}, 300, 0, 0, now=now)
    assert d["at"] == now + 50 and d["name"].endswith("(50 s, pypi_test_deadline.load)")
    assert deadlines.test_deadline("clients", {"default": 100}, 300, now=now)["at"] == now + 100
    capped = deadlines.test_deadline("load", {}, 300, now + 10, 600, now=now)
    assert capped["at"] == now + 10 and capped["name"] == "the run deadline (600 s, pypi_run_deadline)"
    assert deadlines.test_deadline("load", {}, 300, now - 1, 600, now=now)["run_passed"] is True


BAD_INPUT = """
import json, sys
from ansible_collections.pypi_ops.pypiserver.plugins.filter import deadlines
out = {}
for name, args in json.loads(sys.argv[1]).items():
    try:
        deadlines.test_deadline("load", *args)
    except Exception as exc:
        out[name] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(out))
"""


def test_deadline_bad_input_is_one_sentence():
    """In a child process: raising AnsibleFilterError imports ansible.errors (see test_helm_filters.py)."""
    cases = {"number": [600, 300], "negative": [{"load": -1}, 300], "word": [{}, "soon"]}
    env = {**os.environ, "PYTHONPATH": str(ROOT / ".venv" / "collections")}
    proc = subprocess.run(
        [sys.executable, "-c", BAD_INPUT, json.dumps(cases)], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert (
        got["number"].startswith("Ansible")
        and "pypi_test_deadline must be a mapping of test id to seconds" in got["number"]
    )
    assert got["negative"].endswith("pypi_test_deadline.load must be 0 or more seconds, got -1")
    assert "pypi_op_timeout must be a number of seconds, got 'soon'" in got["word"]


def test_the_guardian_finishes_a_run_whose_controller_was_killed(tmp_path):
    state_dir = str(tmp_path / "server")
    _, info = ls.start(ls.Spec(package_dir=str(tmp_path / "packages")), state_dir, timeout=30)
    controller = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    dest = tmp_path / "reports"
    path = run_state.state_path(str(dest))
    doc = {
        "controller": controller.pid,
        "dest": str(dest),
        "suite": "pypi_ops.pypiserver",
        "properties": {"target": "local", "run_id": "r1"},
        "results": [{"id": "connection", "priority": "p0", "status": "passed", "duration": 0.5, "reason": "ok"}],
        "current": "load",
        "current_priority": "p2",
        "current_since": time.time(),
        "plan": ["connection", "load", "clients"],
        "teardown": {"target": "local", "cleanup": True, "local_state_dir": state_dir, "work_dir": ""},
    }
    run_state.write_state(path, doc)
    collections = str(Path(run_state.__file__).parents[5])
    guardian = run_state.start_guardian(controller.pid, path, collections)
    try:
        time.sleep(1.0)
        assert run_state.alive(guardian), Path(path + ".guardian.log").read_text()
        controller.send_signal(signal.SIGTERM)
        controller.wait(10)
        wait_gone(guardian, 60, "the guardian")
    finally:
        if run_state.alive(guardian):
            os.kill(guardian, signal.SIGKILL)
        if controller.poll() is None:
            controller.kill()
        ls.stop(state_dir)
    assert not run_state.alive(info["pid"]), "the guardian left the pypiserver running"
    cases = parse_junit(dest / "junit.xml")
    assert cases["connection"]["status"] == "passed"
    assert cases["load"]["status"] == "interrupted" and "interrupted" in cases["load"]["reason"]
    assert cases["clients"]["status"] == "skipped" and cases["clients"]["reason"].startswith("not run")
    summary = (dest / "summary.md").read_text()
    assert summary.startswith("# pypi_ops.pypiserver: INTERRUPTED")
    assert "stopped the local pypiserver" in summary
    results = json.loads((dest / "results.json").read_text())
    assert results["counts"]["interrupted"] == 1 and results["counts"]["not_run"] == 1
    assert results["properties"]["state"] == "interrupted"


def test_the_guardian_stands_down_after_the_final_report(tmp_path):
    controller = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    path = run_state.state_path(str(tmp_path))
    run_state.write_state(path, {"controller": controller.pid, "dest": str(tmp_path), "final": True})
    guardian = run_state.start_guardian(controller.pid, path, str(Path(run_state.__file__).parents[5]))
    try:
        wait_gone(guardian, 30, "the guardian")
        assert not (tmp_path / "junit.xml").exists()  # nothing rewritten over the final report
    finally:
        controller.kill()
        controller.wait(10)


def test_the_guardian_names_what_it_cannot_remove():
    """Production probes need the password the guardian never holds; a helm release it leaves to the operator."""
    done, left = run_state.teardown(
        {
            "target": "url",
            "cleanup": True,
            "probes": "pypiops-probe-r1, pypiops-probe-r1-mv",
            "probe_prefix": "pypiops-probe",
        }
    )
    assert done == []
    assert left == [
        "the probe projects this run uploaded, every version, are still on the index (pypiops-probe-r1, "
        "pypiops-probe-r1-mv): remove them with playbooks/cleanup_probes.yml -e pypi_url=<the index> "
        "-e pypi_probe_prefix=pypiops-probe -e pypi_cleanup_older_than=0"
    ]
    _, left = run_state.teardown(
        {"target": "kubernetes", "k8s_state_dir": "/nonexistent", "helm_release": "pypi", "namespace": "ns"}
    )
    assert "the helm release pypi in namespace ns: helm uninstall pypi -n ns" in left
    assert run_state.teardown({"cleanup": False})[1][0].startswith("nothing stopped: pypi_cleanup is false")


def test_the_guardian_stops_the_restore_drills_fresh_server_whatever_pypi_cleanup(tmp_path):
    """A restore drill stopped before its teardown: its fresh server (a real pypiserver) is stopped by PID and its
    state removed even with pypi_cleanup false (the target is meant to keep running, the fresh server never is);
    a fresh release the drill installed is named with the commands that remove it and its claim."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls

    drill = tmp_path / "state-restore"
    spec = ls.Spec(package_dir=str(drill / "packages"))
    ls.start(spec, str(drill / "server"), timeout=30)
    pid = ls.read_state(str(drill / "server"))["pid"]
    try:
        assert ls.pid_alive(pid)
        done, left = run_state.teardown(
            {"cleanup": False, "drill_state_dir": str(drill), "drill_release": "pypi-restore", "namespace": "ns"}
        )
        assert done == [f"stopped the restore drill's fresh pypiserver ({drill / 'server'})"]
        assert not ls.pid_alive(pid) and not drill.exists()
        assert left[0] == (
            "the restore drill's fresh release pypi-restore in namespace ns and its claim: helm uninstall pypi-restore "
            "-n ns, then kubectl delete pvc -n ns -l app.kubernetes.io/instance=pypi-restore"
        )
        assert left[1].startswith("nothing stopped: pypi_cleanup is false")
    finally:
        if ls.pid_alive(pid):
            ls.stop(str(drill / "server"))


def test_next_planned_is_the_first_later_test_without_a_result():
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import run_state

    plan = [
        {"id": "connection", "priority": "p0"},
        {"id": "upload", "priority": "p0"},
        {"id": "list", "priority": "p1"},
    ]
    assert run_state.next_planned(plan, [{"id": "connection"}], "connection") == plan[1]
    # a later test that already has a result (a rerun's row) is passed over
    assert run_state.next_planned(plan, [{"id": "connection"}, {"id": "upload"}], "connection") == plan[2]
    assert run_state.next_planned(plan, [], "list") == {}
    # a test outside the plan (a runbook's single test): the first planned test without a result
    assert run_state.next_planned(plan, [{"id": "connection"}], "persistence_drill") == plan[1]
    assert run_state.next_planned([], [], "upload") == {}
