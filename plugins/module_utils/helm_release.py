# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Helm release's state in words a drill can report, and a rollback that says where it left the release.

Reads ``helm history -o json`` (revision, status, chart, app version of each revision) and ``helm get manifest``
(the workloads' container images). Nothing here returns the release's values or its manifest: both carry the
chart's credentials (the auth Secret); only revisions, statuses, chart names and image references leave.

``run`` is a function of an argv list returning ``(rc, stdout, stderr)``: ``module.run_command`` in the module,
a plain subprocess in tests.
"""

from __future__ import annotations

import json
import typing as t

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core needs PyYAML
    HAS_YAML = False

Runner = t.Callable[[list[str]], tuple[int, str, str]]
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


class HelmError(Exception):
    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


def first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:400]
    return "no output"


def base_argv(helm: str, namespace: str, kubeconfig: str | None = None, context: str | None = None) -> list[str]:
    argv = [helm]
    if kubeconfig:
        argv += ["--kubeconfig", kubeconfig]
    if context:
        argv += ["--kube-context", context]
    return [*argv, "--namespace", namespace]


def images_in_manifest(manifest: str) -> list[str]:
    """The container images of the manifest's workloads (Deployment, StatefulSet, DaemonSet), in order, once each.
    Test hooks are not in ``helm get manifest``, so the chart's test images do not count."""
    out: list[str] = []
    for doc in yaml.safe_load_all(manifest or ""):
        if not isinstance(doc, dict) or doc.get("kind") not in WORKLOADS:
            continue
        spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in spec.get("containers") or []:
            image = str((container or {}).get("image") or "")
            if image and image not in out:
                out.append(image)
    return out


def _not_found(err: str) -> bool:
    return "not found" in err.lower()


def history(run: Runner, base: list[str], release: str, keep: int = 20) -> list[dict[str, t.Any]]:
    """The release's revisions, oldest first (empty when there is no such release)."""
    rc, out, err = run([*base, "history", release, "--max", str(keep), "-o", "json"])
    if rc != 0:
        if _not_found(err):
            return []
        raise HelmError(f"helm history {release} failed (exit {rc}): {first_line(err or out)}")
    try:
        rows = json.loads(out or "[]")
    except ValueError as exc:
        raise HelmError(f"helm history {release} -o json did not print JSON ({exc}): {first_line(out)}") from exc
    keys = ("revision", "status", "chart", "app_version", "description", "updated")
    return [{k: row.get(k) for k in keys} for row in rows if isinstance(row, dict)]


def info(run: Runner, base: list[str], release: str) -> dict[str, t.Any]:
    """``{exists, revision, status, chart, app_version, description, images, history}`` of the newest revision."""
    revs = history(run, base, release)
    if not revs:
        return {
            "exists": False,
            "revision": 0,
            "status": "",
            "chart": "",
            "app_version": "",
            "description": "",
            "images": [],
            "history": [],
        }
    last = revs[-1]
    rc, out, err = run([*base, "get", "manifest", release, "--revision", str(last["revision"])])
    if rc != 0:
        raise HelmError(f"helm get manifest {release} failed (exit {rc}): {first_line(err or out)}")
    return {
        "exists": True,
        "revision": int(last["revision"]),
        "status": str(last["status"] or ""),
        "chart": str(last["chart"] or ""),
        "app_version": str(last["app_version"] or ""),
        "description": str(last["description"] or ""),
        "images": images_in_manifest(out),
        "history": revs,
    }


def describe(state: dict[str, t.Any]) -> str:
    """One phrase: ``revision 3 (deployed, chart pypiserver-0.7.0, image repo:tag)``, or ``not installed``."""
    if not state.get("exists"):
        return "not installed"
    images = ", ".join(state.get("images") or []) or "no workload image"
    return f"revision {state['revision']} ({state['status']}, chart {state['chart']}, image {images})"


def rollback(
    run: Runner, base: list[str], release: str, revision: int, timeout: str = "300s", wait: bool = True
) -> dict[str, t.Any]:
    """``helm rollback RELEASE REVISION [--wait --timeout Ns]``; the state afterwards. A failed rollback raises one
    sentence naming the state the release is left in."""
    before = info(run, base, release)
    if not before["exists"]:
        raise HelmError(f"release {release} does not exist, so there is nothing to roll back")
    known = [int(r["revision"]) for r in before["history"]]
    if revision not in known:
        raise HelmError(
            f"release {release} has no revision {revision} to roll back to (its history holds "
            f"{', '.join(str(r) for r in known)}); choose one of those"
        )
    argv = [*base, "rollback", release, str(revision)]
    if wait:
        argv += ["--wait", "--timeout", str(timeout)]
    rc, out, err = run(argv)
    after = info(run, base, release)
    if rc != 0:
        raise HelmError(
            f"helm rollback of release {release} to revision {revision} failed (exit {rc}, --timeout {timeout}): "
            f"{first_line(err or out)}; "
            f"the release is now at {describe(after)}; look at kubectl get pods, then helm history {release}"
        )
    after["rolled_back_from"] = before["revision"]
    return after
