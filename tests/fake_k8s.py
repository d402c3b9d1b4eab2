"""A small fake Kubernetes API server for contract tests (a documented stand-in, not a cluster).

It speaks real HTTP on 127.0.0.1 and answers with real Kubernetes JSON objects, so the real
``kubernetes`` Python client talks to it unmodified: no part of the client is patched.

Served (core/v1 and apps/v1, JSON only):

* ``GET /api/v1/namespaces/{ns}`` (404 Status for an unknown namespace)
* ``GET /api/v1/namespaces/{ns}/pods?labelSelector=...`` (an unknown namespace lists empty, as a real API server does)
* ``GET|DELETE /api/v1/namespaces/{ns}/pods/{name}`` (DELETE honours ``preconditions.uid`` -> 409, and ``gracePeriodSeconds``)
* ``GET|PATCH /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}``
* ``GET /api/v1/namespaces/{ns}/pods/{name}/exec`` as a WebSocket upgrade (``v4.channel.k8s.io``,
  binary frames: channel 1 stdout, 2 stderr, 3 status). It runs no command: it recognises only
  ``pod_exec.INVENTORY_SCRIPT`` and answers it from the in-memory files set with ``set_files``;
  anything else exits 127. ``("create", "pods/exec")`` in ``forbidden`` gives the 403.

It also plays the ReplicaSet/StatefulSet controllers, lazily on each request:

* a deleted pod goes Terminating (``deletionTimestamp`` set, still listed and, by default, still
  Ready) for ``terminate_seconds`` (or the grace period when shorter), then vanishes;
* a Deployment's replacement pod (new name, NEW uid) appears at once; a StatefulSet's
  replacement (same name, NEW uid) appears when the old one has vanished. Either becomes Ready
  ``ready_delay`` seconds after it appears, unless ``replacement_fault`` keeps it from ever being
  Ready: ``ImagePullBackOff``, ``CrashLoopBackOff``, ``Unschedulable`` or ``MultiAttach``;
* a PATCH that changes ``spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]``
  replaces every pod of the workload the same way.

Authentication: a bearer token is required (401 Status without it). RBAC: ``forbidden`` holds
``(verb, resource)`` pairs answered with a 403 Status worded like the real API server's.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import os
import re
import struct
import threading
import time
import typing as t
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
USER = "system:serviceaccount:ci:deployer"
FAULT_REASONS = ("ImagePullBackOff", "CrashLoopBackOff", "Unschedulable", "MultiAttach")


def _ts(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Pod:
    namespace: str
    name: str
    labels: dict[str, str]
    owner: tuple[str, str] | None  # (kind, name) of the workload
    node: str
    created: float
    ready_at: float
    fault: str | None = None
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    deleted_at: float | None = None
    gone_at: float | None = None
    restarts: int = 0


@dataclass
class Workload:
    kind: str  # Deployment | StatefulSet
    namespace: str
    name: str
    labels: dict[str, str]
    replicas: int
    annotations: dict[str, str] = field(default_factory=dict)
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    generation: int = 1


class FakeKube:
    """The fake API server. Use as a context manager; ``kubeconfig`` is written on start."""

    def __init__(
        self,
        workdir: str | Path,
        *,
        token: str = "fake-token",
        namespaces: t.Iterable[str] = ("default",),
        default_namespace: str = "default",
        terminate_seconds: float = 0.3,
        terminating_ready: bool = True,
        ready_delay: float = 0.3,
        replacement_fault: str | None = None,
        forbidden: t.Iterable[tuple[str, str]] = (),
    ) -> None:
        if replacement_fault not in (None, *FAULT_REASONS):
            raise ValueError(f"replacement_fault must be one of {FAULT_REASONS}")
        self.workdir = Path(workdir)
        self.token = token
        self.namespaces = set(namespaces)
        self.default_namespace = default_namespace
        self.terminate_seconds = terminate_seconds
        self.terminating_ready = terminating_ready
        self.ready_delay = ready_delay
        self.replacement_fault = replacement_fault
        self.forbidden = set(forbidden)
        self.pods: dict[tuple[str, str], Pod] = {}
        self.workloads: dict[tuple[str, str, str], Workload] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.files: dict[tuple[str, str], dict[str, dict[str, bytes]]] = {}  # (ns, pod) -> {dir: {name: bytes}}
        self.execs: list[list[str]] = []  # commands received on pods/exec
        self.volumes: dict[tuple[str, str], str] = {}  # (ns, path) -> a real local directory every pod mounts
        self.deletes: list[dict[str, t.Any]] = []  # DeleteOptions bodies received
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self._resource_version = itertools.count(1000)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.kubeconfig = self.workdir / "kubeconfig"

    # -- set-up helpers -------------------------------------------------------------------------

    def add_workload(
        self, kind: str, namespace: str, name: str, replicas: int = 2, labels: dict[str, str] | None = None
    ) -> Workload:
        """A Deployment or StatefulSet with ``replicas`` Ready pods labelled app=<name> (or ``labels``)."""
        with self.lock:
            self.namespaces.add(namespace)
            wl = Workload(kind, namespace, name, dict(labels or {"app": name}), replicas)
            self.workloads[(kind, namespace, name)] = wl
            now = time.time() - 60
            for i in range(replicas):
                self._new_pod(wl, now, index=i, ready_at=now)
            return wl

    def add_pod(self, namespace: str, name: str, labels: dict[str, str], fault: str | None = None) -> Pod:
        """A bare pod (no controller): deleting it does not bring it back."""
        with self.lock:
            self.namespaces.add(namespace)
            now = time.time() - 60
            pod = Pod(namespace, name, dict(labels), None, "node-0", now, now, fault)
            self.pods[(namespace, name)] = pod
            return pod

    def set_files(self, namespace: str, pod: str, files: dict[str, bytes], path: str = "/data/packages") -> None:
        """The files the exec inventory script finds in ``path`` of that pod (a directory not set does not exist)."""
        with self.lock:
            self.files.setdefault((namespace, pod), {})[path] = dict(files)

    def mount_dir(self, namespace: str, path: str, real_dir: str) -> None:
        """Every pod of the namespace sees the real local directory ``real_dir`` at ``path`` (like a shared PVC):
        the exec inventory reads the real files at the time of the call."""
        with self.lock:
            self.volumes[(namespace, path)] = str(real_dir)

    def live_pods(self, namespace: str, app: str) -> list[Pod]:
        with self.lock:
            self._tick()
            return sorted(
                (p for p in self.pods.values() if p.namespace == namespace and p.labels.get("app") == app),
                key=lambda p: p.name,
            )

    # -- controller simulation ------------------------------------------------------------------

    def _new_pod(self, wl: Workload, now: float, index: int | None = None, ready_at: float | None = None, fault=None):
        n = next(self._seq)
        if wl.kind == "StatefulSet":
            name = f"{wl.name}-{index}"
        else:
            name = f"{wl.name}-{uuid.uuid4().hex[:5]}"
        pod = Pod(
            wl.namespace,
            name,
            dict(wl.labels),
            (wl.kind, wl.name),
            f"node-{n % 3}",
            now,
            now + self.ready_delay if ready_at is None else ready_at,
            fault,
        )
        self.pods[(wl.namespace, name)] = pod
        return pod

    def _terminate(self, pod: Pod, now: float, grace: float | None) -> None:
        if pod.deleted_at is not None:
            return
        linger = self.terminate_seconds if grace is None else min(grace, self.terminate_seconds)
        pod.deleted_at = now
        pod.gone_at = now + linger
        wl = self._owner(pod)
        if wl is not None and wl.kind == "Deployment":
            self._new_pod(wl, now, fault=self.replacement_fault)
        self._tick()

    def _owner(self, pod: Pod) -> Workload | None:
        if pod.owner is None:
            return None
        return self.workloads.get((pod.owner[0], pod.namespace, pod.owner[1]))

    def _tick(self) -> None:
        now = time.time()
        for key, pod in list(self.pods.items()):
            if pod.gone_at is not None and now >= pod.gone_at:
                del self.pods[key]
                wl = self._owner(pod)
                if wl is not None and wl.kind == "StatefulSet":
                    index = int(pod.name.rsplit("-", 1)[1])
                    self._new_pod(wl, pod.gone_at, index=index, fault=self.replacement_fault)

    # -- JSON rendering -------------------------------------------------------------------------

    def _pod_ready(self, pod: Pod, now: float) -> bool:
        if pod.fault is not None or now < pod.ready_at:
            return False
        return pod.deleted_at is None or self.terminating_ready

    def pod_json(self, pod: Pod) -> dict[str, t.Any]:
        now = time.time()
        meta: dict[str, t.Any] = {
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
            "resourceVersion": str(next(self._resource_version)),
            "creationTimestamp": _ts(pod.created),
            "labels": pod.labels,
        }
        if pod.owner:
            kind = "ReplicaSet" if pod.owner[0] == "Deployment" else "StatefulSet"
            meta["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": kind,
                    "name": pod.owner[1],
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, pod.owner[1])),
                    "controller": True,
                }
            ]
        if pod.deleted_at is not None:
            meta["deletionTimestamp"] = _ts(pod.deleted_at)
            meta["deletionGracePeriodSeconds"] = max(0, int(round((pod.gone_at or now) - pod.deleted_at)))
        spec: dict[str, t.Any] = {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
        ready = self._pod_ready(pod, now)
        conditions = []
        status: dict[str, t.Any] = {}
        cstate: dict[str, t.Any]
        if pod.fault == "Unschedulable":
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient memory.",
                }
            )
            status.update(phase="Pending", conditions=conditions)
            return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": status}
        spec["nodeName"] = pod.node
        phase = "Running"
        extra: dict[str, t.Any] = {}
        if pod.fault == "ImagePullBackOff":
            phase = "Pending"
            cstate = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": 'Back-off pulling image "registry.example/app:does-not-exist"',
                }
            }
        elif pod.fault == "CrashLoopBackOff":
            pod.restarts += 1
            cstate = {
                "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container=app"}
            }
            extra["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
        elif pod.fault == "MultiAttach":
            phase = "Pending"
            cstate = {
                "waiting": {
                    "reason": "ContainerCreating",
                    "message": 'Multi-Attach error for volume "pvc-data" Volume is already exclusively attached to one node',
                }
            }
        elif now < pod.ready_at:
            phase = "Pending"
            cstate = {"waiting": {"reason": "ContainerCreating"}}
        else:
            cstate = {"running": {"startedAt": _ts(pod.ready_at)}}
        conditions.append({"type": "PodScheduled", "status": "True"})
        ready_cond = {"type": "Ready", "status": "True" if ready else "False"}
        if not ready:
            ready_cond.update(reason="ContainersNotReady", message="containers with unready status: [app]")
        conditions.append(ready_cond)
        status.update(
            phase=phase,
            conditions=conditions,
            containerStatuses=[
                {
                    "name": "app",
                    "image": "registry.example/app:1",
                    "imageID": "",
                    "ready": ready,
                    "restartCount": pod.restarts,
                    "started": ready,
                    "state": cstate,
                    **extra,
                }
            ],
        )
        return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": status}

    def workload_json(self, wl: Workload) -> dict[str, t.Any]:
        template = {
            "metadata": {"labels": wl.labels, "annotations": wl.annotations},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
        }
        spec: dict[str, t.Any] = {"replicas": wl.replicas, "selector": {"matchLabels": wl.labels}, "template": template}
        if wl.kind == "StatefulSet":
            spec["serviceName"] = wl.name
        return {
            "kind": wl.kind,
            "apiVersion": "apps/v1",
            "metadata": {
                "name": wl.name,
                "namespace": wl.namespace,
                "uid": wl.uid,
                "generation": wl.generation,
                "resourceVersion": str(next(self._resource_version)),
                "labels": wl.labels,
            },
            "spec": spec,
            "status": {"replicas": wl.replicas, "observedGeneration": wl.generation},
        }

    # -- server lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeKube:
        self.start()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.stop()

    def start(self) -> None:
        fake = self

        class Handler(_Handler):
            kube = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-k8s", daemon=True)
        self._thread.start()
        self.write_kubeconfig(self.kubeconfig)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: Path, token: str | None = None) -> Path:
        """kubeconfig with context ``fake`` (current) and ``fake-other``; JSON is valid YAML."""
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "deployer", "user": {"token": self.token if token is None else token}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "deployer", "namespace": self.default_namespace},
                },
                {"name": "fake-other", "context": {"cluster": "fake", "user": "deployer", "namespace": "default"}},
            ],
            "current-context": "fake",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cfg, indent=2))
        return path


# -- request handling ----------------------------------------------------------------------------

_PLURAL_KIND = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
_GROUP = {"pods": "", "namespaces": "", "deployments": "apps", "statefulsets": "apps"}


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict[str, t.Any]:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _match(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (s.strip() for s in re.split(r",(?![^()]*\))", selector or ""))):
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            if (labels.get(m.group(1)) in values) != (m.group(2) == "in"):
                return False
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)", term)
        if m:
            key, op, value = m.groups()
            if (labels.get(key) == value) != (op != "!="):
                return False
            continue
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _merge(dst: dict, src: dict) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        else:
            dst[key] = value


class _Handler(BaseHTTPRequestHandler):
    kube: FakeKube
    server_version = "fake-kube/1"

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, code: int, body: dict[str, t.Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, t.Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else {}

    def do_GET(self) -> None:
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec", urlsplit(self.path).path)
        if m and self.headers.get("Upgrade", "").lower() == "websocket":
            return self._exec(m.group(1), m.group(2))
        self._dispatch("GET")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        kube = self.kube
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self._body() if method in ("DELETE", "PATCH") else {}
        with kube.lock:
            kube.requests.append((method, self.path))
            if self.headers.get("Authorization") != f"Bearer {kube.token}":
                return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            kube._tick()
            m = re.fullmatch(r"/api/v1/namespaces/([^/]+)(?:/(pods)(?:/([^/]+))?)?", url.path) or re.fullmatch(
                r"/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)/([^/]+)", url.path
            )
            if not m:
                return self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
            ns, resource, name = m.group(1), m.group(2) or "namespaces", m.group(3)
            if resource == "namespaces":
                name = ns
            verb = {"GET": "get" if name else "list", "DELETE": "delete", "PATCH": "patch"}[method]
            if (verb, resource) in kube.forbidden:
                what = f"{resource}{'.' + _GROUP[resource] if _GROUP[resource] else ''}"
                subject = f'{what} "{name}"' if name else what
                msg = (
                    f'{subject} is forbidden: User "{USER}" cannot {verb} resource "{resource}" '
                    f'in API group "{_GROUP[resource]}" in the namespace "{ns}"'
                )
                return self._send(403, _status(403, "Forbidden", msg, {"name": name or "", "kind": resource}))
            if resource == "namespaces":
                if method != "GET":
                    return self._send(405, _status(405, "MethodNotAllowed", "method not allowed"))
                if ns not in kube.namespaces:
                    return self._send(
                        404,
                        _status(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}),
                    )
                meta = {"name": ns, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, ns)), "resourceVersion": "1"}
                return self._send(
                    200, {"kind": "Namespace", "apiVersion": "v1", "metadata": meta, "status": {"phase": "Active"}}
                )
            if resource == "pods":
                return self._pods(method, ns, name, query, body)
            return self._workload(method, ns, resource, name, body)

    def _pods(self, method: str, ns: str, name: str | None, query: dict[str, str], body: dict[str, t.Any]) -> None:
        kube = self.kube
        if name is None:
            if method != "GET":
                return self._send(405, _status(405, "MethodNotAllowed", "method not allowed"))
            items = [
                kube.pod_json(p)
                for p in sorted(kube.pods.values(), key=lambda p: p.name)
                if p.namespace == ns and _match(p.labels, query.get("labelSelector", ""))
            ]
            meta = {"resourceVersion": str(next(kube._resource_version))}
            return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": items})
        pod = kube.pods.get((ns, name))
        if pod is None:
            return self._send(404, _status(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"}))
        if method == "GET":
            return self._send(200, kube.pod_json(pod))
        kube.deletes.append(body)
        want = (body.get("preconditions") or {}).get("uid")
        if want and want != pod.uid:
            msg = (
                f'Operation cannot be fulfilled on pods "{name}": Precondition failed: UID in precondition: {want}, '
                f"UID in object meta: {pod.uid}"
            )
            return self._send(409, _status(409, "Conflict", msg, {"name": name, "kind": "pods"}))
        grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        kube._terminate(pod, time.time(), None if grace is None else float(grace))
        if (ns, name) in kube.pods and kube.pods[(ns, name)] is pod:
            return self._send(200, kube.pod_json(pod))
        return self._send(
            200, _status(200, "", "", {"name": name, "kind": "pods", "uid": pod.uid}) | {"status": "Success"}
        )

    def _workload(self, method: str, ns: str, resource: str, name: str, body: dict[str, t.Any]) -> None:
        kube = self.kube
        wl = kube.workloads.get((_PLURAL_KIND[resource], ns, name))
        if wl is None:
            msg = f'{resource}.apps "{name}" not found'
            return self._send(404, _status(404, "NotFound", msg, {"name": name, "group": "apps", "kind": resource}))
        if method == "GET":
            return self._send(200, kube.workload_json(wl))
        if method != "PATCH":
            return self._send(405, _status(405, "MethodNotAllowed", "method not allowed"))
        current = json.loads(json.dumps(kube.workload_json(wl)))  # a copy: merging must not touch wl
        _merge(current, body)
        annotations = ((current.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
        changed = annotations.get(RESTARTED_AT) != wl.annotations.get(RESTARTED_AT)
        wl.annotations = dict(annotations)
        if changed:
            wl.generation += 1
            now = time.time()
            for pod in list(kube.pods.values()):
                if pod.owner == (wl.kind, wl.name) and pod.namespace == ns:
                    kube._terminate(pod, now, None)
        return self._send(200, kube.workload_json(wl))

    # -- pods/exec over a WebSocket (self-contained) --------------------------------------------

    def _exec(self, ns: str, name: str) -> None:
        from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.pod_exec import INVENTORY_SCRIPT

        kube = self.kube
        query = parse_qs(urlsplit(self.path).query)
        command = query.get("command", [])
        with kube.lock:
            kube.requests.append(("GET", self.path))
            if self.headers.get("Authorization") != f"Bearer {kube.token}":
                return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            if ("create", "pods/exec") in kube.forbidden:
                msg = (
                    f'pods "{name}" is forbidden: User "{USER}" cannot create resource "pods/exec" '
                    f'in API group "" in the namespace "{ns}"'
                )
                return self._send(403, _status(403, "Forbidden", msg, {"name": name, "kind": "pods"}))
            pod = kube.pods.get((ns, name))
            if pod is None:
                return self._send(404, _status(404, "NotFound", f'pods "{name}" not found', {"name": name}))
            container = query.get("container", ["app"])[0]
            if container != "app":
                msg = f"container {container} is not valid for pod {name}"
                return self._send(400, _status(400, "BadRequest", msg))
            kube.execs.append(command)
            dirs = dict(kube.files.get((ns, name), {}))
            for (vol_ns, vol_path), real in kube.volumes.items():
                if vol_ns == ns and os.path.isdir(real):
                    dirs[vol_path] = {
                        entry.name: open(entry.path, "rb").read() for entry in os.scandir(real) if entry.is_file()
                    }
        out, err, code = b"", b"", 127
        if command[:3] == ["sh", "-c", INVENTORY_SCRIPT] and len(command) == 5:
            path = command[4]
            if path not in dirs:
                err, code = f"no such directory: {path}\n".encode(), 3
            else:
                lines = [
                    f"{hashlib.sha256(data).hexdigest()} {len(data)} {fname}\n"
                    for fname, data in sorted(dirs[path].items())
                    if not fname.startswith(".")
                ]
                out, code = "".join(lines).encode(), 0
        else:
            err = f"sh: {command[0] if command else ''}: not found\n".encode()
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
        self.end_headers()
        if code == 0:
            status: dict[str, t.Any] = {"metadata": {}, "status": "Success"}
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": f"command terminated with non-zero exit code: exit status {code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
            }
        for channel, data in ((1, out), (2, err), (3, json.dumps(status).encode())):
            if data:
                self._frame(0x2, bytes([channel]) + data)
        self._frame(0x8, struct.pack("!H", 1000))
        self.wfile.flush()
        self.close_connection = True
        try:  # wait briefly for the client's close frame, as a real server would
            self.connection.settimeout(2)
            self.rfile.read(2)
        except OSError:
            pass

    def _frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        self.wfile.write(head + payload)
