# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of pypi_ops.pypiserver.run_checkpoint: record the run's state and report on the controller.

It runs here, in the worker, not as a module: it writes files on the controller in a few milliseconds (it is
called at every test boundary), and it knows the ansible-playbook process it must watch (the worker's parent).
The logic is in plugins/module_utils/run_state.py.
"""

from __future__ import annotations

import os
import time
import typing as t

from ansible.plugins.action import ActionBase

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import run_state

EVENTS = ("begin", "end", "final")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        args = self._task.args
        event = str(args.get("event") or "")
        dest = str(args.get("dest") or "")
        if event not in EVENTS or not dest:
            return dict(result, failed=True, msg=f"run_checkpoint needs event (one of {', '.join(EVENTS)}) and dest.")
        path = run_state.state_path(os.path.abspath(os.path.expanduser(dest)))
        doc = run_state.read_state(path) or {}
        controller = os.getppid()
        if doc.get("controller") != controller or doc.get("final"):
            doc = {"controller": controller, "started_at": time.time()}  # a new run (or a stale file from another)
        doc.update(
            dest=os.path.dirname(path),
            suite=str(args.get("suite") or "pypi_ops.pypiserver"),
            properties=dict(args.get("properties") or {}),
            results=list(args.get("results") or []),
            plan=run_state.selected(
                args.get("plan") or [], args.get("run_tags") or ["all"], args.get("skip_tags") or []
            ),
            teardown=dict(args.get("teardown") or {}),
        )
        if event == "begin":
            doc.update(current=str(args.get("test") or ""), current_priority=str(args.get("priority") or ""))
            doc["current_since"] = time.time()
        elif event == "end":
            # the planned test that runs next is current from now on, so that its own begin checkpoint (a task
            # per test) can be left out: the report of a run stopped between the two names it as interrupted
            nxt = run_state.next_planned(doc["plan"], doc["results"], str(args.get("test") or ""))
            doc.update(current=nxt.get("id", ""), current_priority=nxt.get("priority", ""), current_since=time.time())
        else:
            doc.update(current="", current_priority="")
        if event == "final":
            doc["final"] = True
        try:
            if event != "final":
                # the report as if the run stopped now; the report role writes the real one at the end
                run_state.write_report(doc, "the run was stopped", {"state": "running (provisional report)"})
            run_state.write_state(path, doc)
            if event == "final":
                run_state.stop_guardian(doc.get("guardian_pid"))  # it would only see "final" and exit
                os.unlink(path)
                log = f"{path}.guardian.log"
                if os.path.exists(log) and os.path.getsize(log) == 0:
                    os.unlink(log)
            elif not doc.get("guardian_pid") or not run_state.alive(int(doc["guardian_pid"])):
                root = __file__.rsplit(os.sep + "ansible_collections" + os.sep, 1)[0]
                doc["guardian_pid"] = run_state.start_guardian(controller, path, root)
                run_state.write_state(path, doc)
        except OSError as exc:
            return dict(
                result,
                failed=True,
                msg=f"Cannot write the run's checkpoint in {doc['dest']}: {exc.strerror or exc}; "
                "choose a writable pypi_report_dir.",
            )
        return dict(result, changed=False, state=path, guardian_pid=doc.get("guardian_pid"), current=doc["current"])
