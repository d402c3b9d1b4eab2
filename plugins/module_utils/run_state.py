# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A report whatever happens: the run's checkpoint and the guardian that finishes an interrupted run.

At every test boundary the ``run_checkpoint`` action writes, on the controller:

- ``<report dest>/.run-state.json``: what is known (results so far, the test running, the tests still planned,
  the report properties, and what the teardown would have to stop);
- the report itself (junit.xml, summary.md, results.json, report.html) *as if the run stopped now*: the test
  running is marked ``interrupted`` and the tests still planned ``not_run``.

So even a run killed with SIGKILL leaves a complete report of what it did. The report role rewrites the report
at the end and marks the state ``final``.

The first checkpoint also starts the guardian: a small process in its own session (a CI runner that signals the
job's process group does not reach it) that watches the ansible-playbook process. When that ends without a final
report (SIGTERM from a CI runner, Ctrl-C, a crash), the guardian stops what the run started on this machine (the
local pypiserver, its S3 server and mount, a port-forward), writes the report once more saying that the run was
interrupted and what it stopped or left behind, and exits. It never holds a secret: the state has no password.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import typing as t

STATE_NAME = ".run-state.json"
POLL = 0.5


def state_path(dest: str) -> str:
    return os.path.join(dest, STATE_NAME)


def read_state(path: str) -> dict[str, t.Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def write_state(path: str, doc: dict[str, t.Any]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(doc, handle)
    os.replace(tmp, path)


def selected(plan: list[t.Any], run_tags: list[str], skip_tags: list[str]) -> list[dict[str, str]]:
    """{id, priority} of the planned tests that --tags/--skip-tags select (entries: an id, or {id, priority, tags})."""
    run, skip = set(run_tags), set(skip_tags)
    out = []
    for entry in plan:
        if isinstance(entry, str):
            entry = {"id": entry}
        test_id = str(entry.get("id"))
        tags = set(entry.get("tags") or []) | {test_id}
        if ("all" in run or run & tags) and not (skip & tags):
            out.append({"id": test_id, "priority": str(entry.get("priority") or "")})
    return out


def next_planned(plan: list[dict[str, str]], results: list[dict[str, t.Any]], after: str) -> dict[str, str]:
    """The first selected planned test after ``after`` that has no result yet ({} when none is left)."""
    done = {str(r.get("id")) for r in results} | {after}
    ids = [entry["id"] for entry in plan]
    start = ids.index(after) + 1 if after in ids else 0
    for entry in plan[start:]:
        if entry["id"] not in done:
            return entry
    return {}


def provisional(doc: dict[str, t.Any], why: str) -> list[dict[str, t.Any]]:
    """The results as if the run stopped now: those recorded, the running test interrupted, the rest not run."""
    results = [dict(r) for r in doc.get("results") or []]
    done = {r.get("id") for r in results}
    current = doc.get("current") or ""
    if current and current not in done:
        elapsed = max(0.0, time.time() - float(doc.get("current_since") or time.time()))
        results.append(
            {
                "id": current,
                "priority": doc.get("current_priority") or "",
                "status": "interrupted",
                "duration": round(elapsed, 3),
                "reason": f"interrupted: {why} while this test ran",
                "figures": {},
            }
        )
        done.add(current)
    for entry in doc.get("plan") or []:
        test_id, priority = (entry, "") if isinstance(entry, str) else (entry.get("id"), entry.get("priority") or "")
        if test_id not in done:
            results.append(
                {
                    "id": test_id,
                    "priority": priority,
                    "status": "not_run",
                    "duration": 0.0,
                    "reason": f"not run: {why} before this test",
                    "figures": {},
                }
            )
    return results


def write_report(doc: dict[str, t.Any], why: str, extra: dict[str, t.Any] | None = None) -> dict[str, str]:
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import report

    results = report.normalize(provisional(doc, why))
    properties = dict(doc.get("properties") or {})
    properties.update(extra or {})
    return report.write(doc["dest"], results, doc.get("suite") or "pypi_ops.pypiserver", properties)


# ------------------------------------------------------------------------------------------------ guardian


def alive(pid: int) -> bool:
    """Running and not a zombie: the one check of local_server (a zombie our parent has not reaped is gone)."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import pid_alive

    return pid_alive(pid)


def start_guardian(controller_pid: int, path: str, collections_root: str) -> int:
    """Start the guardian for ``controller_pid`` (own session, no terminal, output to a log next to the state)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (collections_root, env.get("PYTHONPATH", "")) if p)
    log = open(f"{path}.guardian.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", __name__, str(controller_pid), path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            env=env,
            cwd="/",
        )
    finally:
        log.close()
    return proc.pid


def _stop_drill(
    drill: str, release: str, namespace: str, done: list[str], left: list[str], ls: t.Any, s3mod: t.Any, pf: t.Any
) -> None:
    """Stop the restore drill's fresh server, its bucket and port-forward (by PID), remove its state directory, and
    name a fresh release the drill installed."""
    for sub, what, stop in (
        ("server", "the restore drill's fresh pypiserver", ls.stop),
        ("s3", "the restore drill's fresh bucket and S3 server", s3mod.stop),
        ("forward", "the port-forward to the restore drill's fresh release", pf.stop),
    ):
        path = os.path.join(drill, sub)
        if not os.path.isdir(path):
            continue
        try:
            stop(path)
            done.append(f"stopped {what} ({path})")
        except Exception as exc:  # noqa: BLE001
            left.append(f"{what} of {path} ({exc}); stop it by hand")
    if not _mounted_under(drill):  # never delete through a mount that is still there
        shutil.rmtree(drill, ignore_errors=True)
    if release:
        left.append(
            f"the restore drill's fresh release {release} in namespace {namespace} and its claim: helm uninstall "
            f"{release} -n {namespace}, then kubectl delete pvc -n {namespace} -l app.kubernetes.io/instance={release}"
        )


def teardown(plan: dict[str, t.Any]) -> tuple[list[str], list[str]]:
    """Stop what the run started on this machine; (what was done, what is left behind and how to remove it)."""
    done: list[str] = []
    left: list[str] = []
    try:
        from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_s3 as s3mod
        from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
        from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import port_forward as pf
    except Exception as exc:  # noqa: BLE001 - report what could not be done instead
        return done, [f"the teardown could not load its code ({exc}); stop the run's processes by hand"]
    # the restore drill's fresh server (or its port-forward) is always the drill's own: stopped whatever pypi_cleanup
    drill = plan.get("drill_state_dir") or ""
    if drill and os.path.isdir(drill):
        _stop_drill(drill, plan.get("drill_release") or "", plan.get("namespace") or "", done, left, ls, s3mod, pf)
    if not plan.get("cleanup", True):
        return done, [*left, "nothing stopped: pypi_cleanup is false (the server is meant to keep running)"]
    target = plan.get("target") or ""
    state_dir = plan.get("local_state_dir") or ""
    if target in ("local", "local_s3") and state_dir:
        try:
            ls.stop(state_dir)
            done.append(f"stopped the local pypiserver ({state_dir})")
        except Exception as exc:  # noqa: BLE001
            left.append(f"the local pypiserver of {state_dir} ({exc}); stop it with local_server state=stopped")
        if target == "local_s3":
            try:
                s3mod.stop(os.path.join(state_dir, "s3"))
                done.append("unmounted the bucket and stopped the S3 server")
            except Exception as exc:  # noqa: BLE001
                left.append(f"the S3 server or mount of {state_dir}/s3 ({exc}); fusermount -u it and stop moto")
        if not _mounted_under(state_dir):  # never delete through a mount that is still there
            shutil.rmtree(state_dir, ignore_errors=True)
    k8s_state = plan.get("k8s_state_dir") or ""
    if target == "kubernetes" and k8s_state:
        try:
            pf.stop(k8s_state)
            done.append("stopped the port-forward")
        except Exception as exc:  # noqa: BLE001
            left.append(f"the port-forward of {k8s_state} ({exc}); kill its kubectl by hand")
        if plan.get("helm_release"):
            left.append(
                f"the helm release {plan['helm_release']} in namespace {plan.get('namespace')}: "
                f"helm uninstall {plan['helm_release']} -n {plan.get('namespace')}"
            )
        if plan.get("s3_node_mount"):
            try:
                s3mod.stop(os.path.join(k8s_state, "s3"))
                done.append("unmounted the node's S3 bucket and stopped its server")
            except Exception as exc:  # noqa: BLE001
                left.append(f"the node S3 mount of {k8s_state}/s3 ({exc})")
    work = plan.get("work_dir") or ""
    if work and not plan.get("keep_work"):
        shutil.rmtree(work, ignore_errors=True)
    if plan.get("probes"):
        left.append(
            f"the probe projects this run uploaded, every version, are still on the index ({plan['probes']}): "
            f"remove them with playbooks/cleanup_probes.yml -e pypi_url=<the index> "
            f"-e pypi_probe_prefix={plan.get('probe_prefix')} -e pypi_cleanup_older_than=0"
        )
    return done, left


def stop_guardian(pid: t.Any, wait: float = 5.0) -> None:
    """End the guardian of a run that wrote its final report (SIGTERM, bounded wait): nothing outlives the run."""
    try:
        pid = int(pid or 0)
    except (TypeError, ValueError):
        return
    if pid <= 1 or not alive(pid):
        return
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if __name__.encode() not in handle.read():
                return  # the pid was reused by another process: leave it alone
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + wait
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _mounted_under(path: str) -> bool:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            return any(line.split()[4].startswith(path.rstrip("/") + "/") for line in handle)
    except OSError:
        return False


def guard(controller_pid: int, path: str, poll: float = POLL) -> int:
    """Wait for the controller to end; finish its run unless it wrote its final report."""
    while alive(controller_pid):
        doc = read_state(path)
        if doc is not None and doc.get("final"):
            return 0
        time.sleep(poll)
    doc = read_state(path)
    if doc is None or doc.get("final"):
        return 0
    why = "the run was stopped (ansible-playbook ended before its report: SIGTERM, Ctrl-C or a crash)"
    done, left = teardown(doc.get("teardown") or {})
    extra = {
        "state": "interrupted",
        "interrupted": why,
        "teardown_done": "; ".join(done) or "nothing to stop",
        "left_behind": "; ".join(left) or "nothing",
    }
    write_report(doc, "the run was stopped", extra)
    doc["final"] = True
    doc["guardian"] = extra
    write_state(path, doc)
    print(json.dumps(extra), flush=True)  # pylint: disable=ansible-bad-function  # the guardian process's output
    return 0


if __name__ == "__main__":  # the guardian process: python -m ...run_state <controller pid> <state path>
    sys.exit(guard(int(sys.argv[1]), sys.argv[2]))  # pylint: disable=ansible-bad-function  # a process, not a module
