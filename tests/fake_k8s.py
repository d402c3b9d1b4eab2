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
  Ready: ``ImagePullBackOff`` (its image is ``BAD_IMAGE``), ``CrashLoopBackOff`` (restarts, last exit code 1),
  ``Unschedulable`` or ``MultiAttach``;
* a PATCH that changes ``spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]``
  replaces every pod of the workload the same way.

``tls=True`` serves HTTPS with a self-signed certificate (written into the kubeconfig as its CA): kubectl sends a
bearer token only over TLS.

Authentication: a bearer token is required (401 Status without it). RBAC: ``forbidden`` holds
``(verb, resource)`` pairs answered with a 403 Status worded like the real API server's.

For ``kubectl`` (``kubectl port-forward`` of the port_forward module) it also serves:

* discovery: ``GET /version``, ``/api``, ``/apis``, ``/api/v1``, ``/apis/apps/v1`` (legacy JSON discovery);
* ``GET /api/v1/namespaces/{ns}/services/{name}`` for Services set with ``add_service`` (404 otherwise);
* ``GET /api/v1/namespaces/{ns}/pods?watch=true``: a watch that stays open, sending nothing (no pod ever
  appears), until ``timeoutSeconds`` or ``watch_seconds`` pass;
* ``/api/v1/namespaces/{ns}/pods/{name}/portforward`` (POST or GET upgrade): the 403 of
  ``("create", "pods/portforward")`` in ``forbidden``, else a 400 Status saying the fake does not forward (a
  real forward needs a cluster: the kind scenario);
* ``GET|PATCH /api/v1/namespaces/{ns}/secrets/{name}`` for Secrets set with ``add_secret`` (a PATCH merges
  ``data``; a ``null`` value removes the key).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import itertools
import json
import os
import re
import ssl
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
GOOD_IMAGE = "registry.example/app:1"
BAD_IMAGE = "registry.example/app:does-not-exist"  # the image of an ImagePullBackOff pod


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
        tls: bool = False,
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
        self.tls = tls  # HTTPS with a self-signed certificate: kubectl sends a bearer token only over TLS
        self.pods: dict[tuple[str, str], Pod] = {}
        self.workloads: dict[tuple[str, str, str], Workload] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.files: dict[tuple[str, str], dict[str, dict[str, bytes]]] = {}  # (ns, pod) -> {dir: {name: bytes}}
        self.execs: list[list[str]] = []  # commands received on pods/exec
        self.volumes: dict[tuple[str, str], str] = {}  # (ns, path) -> a real local directory every pod mounts
        self.deletes: list[dict[str, t.Any]] = []  # DeleteOptions bodies received
        self.services: dict[tuple[str, str], dict[str, t.Any]] = {}  # (ns, name) -> {selector, port, target_port}
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}  # (ns, name) -> {key: base64 value}
        self.watch_seconds = 30.0  # how long a watch stays open at most when the client gives no timeoutSeconds
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

    def add_service(
        self, namespace: str, name: str, selector: dict[str, str], port: int = 8080, target_port: int = 8080
    ) -> None:
        """A ClusterIP Service selecting pods by ``selector`` (what ``kubectl port-forward svc/<name>`` resolves)."""
        with self.lock:
            self.namespaces.add(namespace)
            self.services[(namespace, name)] = {"selector": dict(selector), "port": port, "target_port": target_port}

    def add_secret(self, namespace: str, name: str, data: dict[str, bytes]) -> None:
        """An Opaque Secret holding ``data`` (raw bytes; served base64-encoded, as the API does)."""
        with self.lock:
            self.namespaces.add(namespace)
            self.secrets[(namespace, name)] = {k: base64.b64encode(v).decode() for k, v in data.items()}

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        with self.lock:
            return {k: base64.b64decode(v) for k, v in self.secrets[(namespace, name)].items()}

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
        image = (
            BAD_IMAGE if pod.fault == "ImagePullBackOff" else GOOD_IMAGE
        )  # a pull fails for an image that is not there
        spec: dict[str, t.Any] = {"containers": [{"name": "app", "image": image}]}
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
                    "message": f'Back-off pulling image "{BAD_IMAGE}"',
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
                    "image": image,
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

    def service_json(self, namespace: str, name: str) -> dict[str, t.Any]:
        svc = self.services[(namespace, name)]
        meta = {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"svc/{namespace}/{name}")),
            "resourceVersion": str(next(self._resource_version)),
        }
        port = {"name": "http", "port": svc["port"], "targetPort": svc["target_port"], "protocol": "TCP"}
        spec = {"type": "ClusterIP", "clusterIP": "10.96.0.10", "selector": svc["selector"], "ports": [port]}
        return {"kind": "Service", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": {}}

    def secret_json(self, namespace: str, name: str) -> dict[str, t.Any]:
        meta = {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, namespace + "/" + name)),
            "resourceVersion": str(next(self._resource_version)),
        }
        data = dict(self.secrets[(namespace, name)])
        return {"kind": "Secret", "apiVersion": "v1", "metadata": meta, "type": "Opaque", "data": data}

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
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*_self_signed(self.workdir))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
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
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _cluster(self) -> dict[str, str]:
        cluster = {"server": self.url}
        if self.tls:
            cert = (self.workdir / "tls" / "server.crt").read_bytes()
            cluster["certificate-authority-data"] = base64.b64encode(cert).decode()
        return cluster

    def write_kubeconfig(self, path: Path, token: str | None = None) -> Path:
        """kubeconfig with context ``fake`` (current) and ``fake-other``; JSON is valid YAML."""
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": self._cluster()}],
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


def _self_signed(workdir: Path) -> tuple[str, str]:
    """(certificate, key) files of a self-signed certificate for 127.0.0.1, its own CA (made once per workdir)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    tls = workdir / "tls"
    cert_path, key_path = tls / "server.crt", tls / "server.key"
    if cert_path.exists() and key_path.exists():
        return str(cert_path), str(key_path)
    tls.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kube")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)


# -- request handling ----------------------------------------------------------------------------

_PLURAL_KIND = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
_PORTFORWARD = re.compile(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/portforward")
_GROUP = {
    "pods": "",
    "namespaces": "",
    "services": "",
    "secrets": "",
    "pods/portforward": "",
    "deployments": "apps",
    "statefulsets": "apps",
}


def _resources(*items: tuple[str, str, bool, list[str], list[str]]) -> list[dict[str, t.Any]]:
    """APIResource entries: (name, kind, namespaced, verbs, short names)."""
    return [
        {"name": n, "singularName": "", "namespaced": ns, "kind": k, "verbs": v, **({"shortNames": sn} if sn else {})}
        for n, k, ns, v, sn in items
    ]


_RW = ["create", "delete", "get", "list", "patch", "update", "watch"]
_DISCOVERY: dict[str, dict[str, t.Any]] = {
    "/version": {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake", "platform": "linux/amd64"},
    "/api": {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    },
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            }
        ],
    },
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": _resources(
            ("namespaces", "Namespace", False, _RW, ["ns"]),
            ("pods", "Pod", True, _RW, ["po"]),
            ("pods/exec", "PodExecOptions", True, ["create", "get"], []),
            ("pods/portforward", "PodPortForwardOptions", True, ["create", "get"], []),
            ("secrets", "Secret", True, _RW, []),
            ("services", "Service", True, _RW, ["svc"]),
        ),
    },
    "/apis/apps/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": _resources(
            ("deployments", "Deployment", True, _RW, ["deploy"]),
            ("statefulsets", "StatefulSet", True, _RW, ["sts"]),
        ),
    },
}


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
        path = urlsplit(self.path).path
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec", path)
        if m and self.headers.get("Upgrade", "").lower() == "websocket":
            return self._exec(m.group(1), m.group(2))
        m = _PORTFORWARD.fullmatch(path)
        if m:
            return self._portforward(m.group(1), m.group(2))
        self._dispatch("GET")

    def do_POST(self) -> None:
        m = _PORTFORWARD.fullmatch(urlsplit(self.path).path)
        if m:
            return self._portforward(m.group(1), m.group(2))
        self._body()
        self._send(405, _status(405, "MethodNotAllowed", "method not allowed"))

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        kube = self.kube
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self._body() if method in ("DELETE", "PATCH") else {}
        watch = query.get("watch") in ("true", "1")
        with kube.lock:
            kube.requests.append((method, self.path))
            if self.headers.get("Authorization") != f"Bearer {kube.token}":
                return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            kube._tick()
            if method == "GET" and url.path in _DISCOVERY:
                return self._send(200, _DISCOVERY[url.path])
            m = re.fullmatch(
                r"/api/v1/namespaces/([^/]+)(?:/(pods|services|secrets)(?:/([^/]+))?)?", url.path
            ) or re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)/([^/]+)", url.path)
            if not m:
                return self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
            ns, resource, name = m.group(1), m.group(2) or "namespaces", m.group(3)
            if resource == "namespaces":
                name = ns
            verb = {"GET": "get" if name else ("watch" if watch else "list"), "DELETE": "delete", "PATCH": "patch"}[
                method
            ]
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
            if resource == "services":
                return self._service(method, ns, name)
            if resource == "secrets":
                return self._secret(method, ns, name, body)
            if resource == "pods" and not (watch and name is None and method == "GET"):
                return self._pods(method, ns, name, query, body)
            if resource != "pods":
                return self._workload(method, ns, resource, name, body)
        # a watch on pods: outside the lock, it stays open
        self._watch(query)

    def _watch(self, query: dict[str, str]) -> None:
        """A watch on which no event ever comes: open until timeoutSeconds (or ``watch_seconds``), then closed."""
        try:
            limit = float(query.get("timeoutSeconds") or self.kube.watch_seconds)
        except ValueError:
            limit = self.kube.watch_seconds
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        deadline = time.monotonic() + min(limit, self.kube.watch_seconds)
        while time.monotonic() < deadline and self.kube._server is not None:
            time.sleep(0.1)
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True

    def _service(self, method: str, ns: str, name: str | None) -> None:
        kube = self.kube
        if method != "GET" or name is None:
            return self._send(405, _status(405, "MethodNotAllowed", "method not allowed"))
        if (ns, name) not in kube.services:
            return self._send(
                404, _status(404, "NotFound", f'services "{name}" not found', {"name": name, "kind": "services"})
            )
        return self._send(200, kube.service_json(ns, name))

    def _secret(self, method: str, ns: str, name: str | None, body: dict[str, t.Any]) -> None:
        kube = self.kube
        if method not in ("GET", "PATCH") or name is None:
            return self._send(405, _status(405, "MethodNotAllowed", "method not allowed"))
        if (ns, name) not in kube.secrets:
            return self._send(
                404, _status(404, "NotFound", f'secrets "{name}" not found', {"name": name, "kind": "secrets"})
            )
        if method == "PATCH":
            data = kube.secrets[(ns, name)]
            for key, value in (body.get("data") or {}).items():
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
        return self._send(200, kube.secret_json(ns, name))

    def _portforward(self, ns: str, name: str) -> None:
        """The RBAC check and pod lookup of a port-forward; the forward itself is not emulated (400)."""
        kube = self.kube
        if self.command == "POST":
            self._body()
        with kube.lock:
            kube.requests.append((self.command, self.path))
            if self.headers.get("Authorization") != f"Bearer {kube.token}":
                return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            if ("create", "pods/portforward") in kube.forbidden:
                msg = (
                    f'pods "{name}" is forbidden: User "{USER}" cannot create resource "pods/portforward" '
                    f'in API group "" in the namespace "{ns}"'
                )
                return self._send(403, _status(403, "Forbidden", msg, {"name": name, "kind": "pods"}))
            if (ns, name) not in kube.pods:
                return self._send(404, _status(404, "NotFound", f'pods "{name}" not found', {"name": name}))
            msg = "the fake API server does not forward ports (a real forward needs a cluster)"
            return self._send(400, _status(400, "BadRequest", msg))

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
