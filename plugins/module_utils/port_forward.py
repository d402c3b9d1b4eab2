# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A ``kubectl port-forward`` owned by the collection: start, wait, re-open, stop.

The forwarder runs detached (own session, output in ``port-forward.log``) and its
PID, start token, local port and arguments are kept in ``port-forward.json``
(mode 0600) in a state directory, so a later task can check it, re-open it or stop it.

A port-forward is bound to the one pod kubectl picked when it started: after that
pod restarts the forward is dead even if the process lingers, so it has to be
re-opened (:func:`reopen`), which keeps the same local port when it is still free.

``argv_override`` exists only so tests can run a stand-in forwarder (a real local
process) instead of kubectl; ``{local}`` and ``{remote}`` in it are replaced by the
ports. Never use it in a playbook.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import time
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import (
    ServerError,
    free_port,
    pid_alive,
    port_in_use,
    spawn_detached,
    tail_since,
    terminate,
)

STATE_FILE = "port-forward.json"
LOG_FILE = "port-forward.log"
HOST = "127.0.0.1"
TARGET_RE = re.compile(r"^(svc|service|pod|po|deployment|deploy|statefulset|sts)/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Arguments that define a forward; a running forward with the same ones is left alone.
ARG_KEYS = ("namespace", "target", "remote_port", "kubeconfig", "context", "kubectl", "argv_override")

__all__ = ["ServerError", "start", "stop", "reopen", "status", "read_state", "same_args", "make_args"]


# ---------------------------------------------------------------- arguments


def make_args(
    namespace: str,
    target: str,
    remote_port: int,
    kubeconfig: str | None = None,
    context: str | None = None,
    kubectl: str = "kubectl",
    argv_override: list[str] | None = None,
) -> dict[str, t.Any]:
    """Validated forward arguments (what the state file records)."""
    if not namespace or not NAMESPACE_RE.match(namespace):
        raise ServerError(f"Namespace {namespace!r} is not a valid Kubernetes namespace name.")
    if not target or not TARGET_RE.match(target):
        raise ServerError(f"Target {target!r} is not valid; use svc/NAME, pod/NAME or deployment/NAME.")
    if not 1 <= int(remote_port) <= 65535:
        raise ServerError(f"remote_port {remote_port} is out of range; use 1-65535.")
    return {
        "namespace": namespace,
        "target": target,
        "remote_port": int(remote_port),
        "kubeconfig": kubeconfig or None,
        "context": context or None,
        "kubectl": kubectl or "kubectl",
        "argv_override": list(argv_override) if argv_override else None,
    }


# kubectl port-forward exits for good ("lost connection to pod") when one forwarded connection breaks, e.g. when
# pypiserver closes a refused upload before reading its body (found on a real cluster: every test after `auth`
# then met a dead port). The forward runs under this supervisor, which passes kubectl's output on to the log and
# starts kubectl again when it exits after it had been forwarding ("Forwarding from" seen), at most MAX_RESTARTS
# times. A kubectl that never forwarded (no pod, RBAC, bad kubeconfig, pod-running timeout) ends the supervisor
# with kubectl's own exit code and last words, as before. kubectl gets SIGTERM when the supervisor dies, even by
# SIGKILL (PR_SET_PDEATHSIG).
#
# The local port is the supervisor's own: once kubectl first forwards (on an internal port), the supervisor
# listens on the local port and relays every connection to kubectl. While kubectl is started again, the local
# port stays open: a connection made in that gap waits (up to RELAY_WAIT seconds) for kubectl instead of being
# refused (a kubernetes run once failed its `auth` test on "Connection refused" in that gap).
MAX_RESTARTS = 20
RELAY_WAIT = 20
SUPERVISOR = r"""
import ctypes, signal, socket, subprocess, sys, threading, time
restarts, host, public, internal, wait = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
argv = sys.argv[6:]
child = None
listener = None
def stop(*_):
    if listener is not None:
        listener.close()
    if child is not None and child.poll() is None:
        child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
    sys.exit(0)
def pdeathsig():
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
def closed(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
def relay(client):
    upstream = None
    give_up = time.monotonic() + wait
    while upstream is None:
        try:
            upstream = socket.create_connection((host, internal), timeout=5)
        except OSError:
            if time.monotonic() > give_up:
                closed(client)
                return
            time.sleep(0.05)
    upstream.settimeout(None)
    def back():
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        closed(client)
        closed(upstream)
    threading.Thread(target=back, daemon=True).start()
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            upstream.sendall(data)
        upstream.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def serve():
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=relay, args=(conn,), daemon=True).start()
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
while True:
    child = subprocess.Popen(argv, preexec_fn=pdeathsig, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    forwarded = False
    for raw in child.stdout:
        line = raw.decode(errors="replace")
        if line.startswith("Forwarding from") and listener is None:
            try:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((host, public))
                listener.listen(128)
            except OSError as exc:
                print("pypi_ops port-forward supervisor: cannot listen on %s:%d: %s" % (host, public, exc), flush=True)
                stop()
            threading.Thread(target=serve, daemon=True).start()
            print("pypi_ops port-forward supervisor: %s:%d relays to kubectl on port %d" % (host, public, internal),
                  flush=True)
        forwarded = forwarded or line.startswith("Forwarding from")
        sys.stdout.write(line)
        sys.stdout.flush()
    rc = child.wait()
    if not forwarded or restarts <= 0:
        if listener is not None:
            listener.close()
        sys.exit(rc)
    restarts -= 1
    print("pypi_ops port-forward supervisor: kubectl exited with code %d after forwarding; starting it again (the "
          "local port stays open)" % rc, flush=True)
    time.sleep(0.3)
"""


def supervised(argv: list[str], public: int, internal: int) -> list[str]:
    """``argv`` (kubectl forwarding ``internal``) under the supervisor above, which serves ``public``."""
    return [
        sys.executable,
        "-c",
        SUPERVISOR,
        str(MAX_RESTARTS),
        HOST,
        str(public),
        str(internal),
        str(RELAY_WAIT),
        *argv,
    ]


def build_argv(args: dict[str, t.Any], local_port: int, timeout: float | None = None) -> list[str]:
    """kubectl's argv. With ``timeout``, kubectl gives up waiting for a running pod a second before the module does,
    so that its own reason (no pod behind the Service) ends up in the message instead of a silent timeout."""
    if args.get("argv_override"):
        ports = {"{local}": str(local_port), "{remote}": str(args["remote_port"])}
        out = []
        for item in args["argv_override"]:
            for key, value in ports.items():
                item = item.replace(key, value)
            out.append(item)
        return out
    argv = [args["kubectl"], "port-forward", "--address", HOST, "-n", args["namespace"]]
    if args.get("kubeconfig"):
        argv += ["--kubeconfig", args["kubeconfig"]]
    if args.get("context"):
        argv += ["--context", args["context"]]
    if timeout is not None:
        argv.append(f"--pod-running-timeout={max(0.5, timeout - 1.0):g}s")
    argv += [args["target"], f"{local_port}:{args['remote_port']}"]
    return argv


# kubectl's last words -> what to do (first match wins). {ns}, {target}, {user}, {verb}, {resource} are filled in.
_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r'context "[^"]*" does not exist|context was not found'),
        "the context is not in the kubeconfig: check context (pypi_k8s_context) against kubectl config get-contexts",
    ),
    (
        re.compile(r"error loading config file|stat .*: no such file|invalid configuration|no configuration has been"),
        "the kubeconfig cannot be used: check kubeconfig (pypi_k8s_kubeconfig) and that the file is a valid kubeconfig",
    ),
    (
        re.compile(r'namespaces "[^"]*" not found'),
        "namespace {ns} does not exist: check the namespace (pypi_k8s_namespace) and the kubeconfig context",
    ),
    (
        re.compile(r'(services|pods|deployments\.apps|statefulsets\.apps) "[^"]*" not found'),
        "{target} does not exist in namespace {ns}: check the release name (pypi_k8s_release) and namespace; the "
        "forward also needs RBAC get services and pods and create pods/portforward",
    ),
    (
        re.compile(r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'),
        "RBAC forbids {verb} {resource} in {ns} for {user}: grant it to the service account/user",
    ),
    (
        re.compile(r"pod is not running\. Current status=(?P<phase>\w+)"),
        "the pod behind {target} is not running ({phase}): check kubectl describe pod -n {ns} (image pull, "
        "scheduling, volumes), or use the pod_restart module's wait mode to see why",
    ),
    (
        re.compile(r"timed out waiting for the condition"),
        "no running pod behind {target} appeared: the Service's selector matches no pod, or none starts; check "
        "kubectl get pods,endpoints -n {ns}",
    ),
    (
        re.compile(r"You must be logged in|Unauthorized|provide credentials"),
        "the API server rejected the credentials: renew the token or certificate of the kubeconfig user",
    ),
    (
        re.compile(r"connection refused|Unable to connect to the server|no such host|i/o timeout|x509"),
        "the API server is unreachable: check the server address and CA of the kubeconfig context and the network",
    ),
)
_GENERIC_HINT = "check the service name, namespace, that the cluster is reachable and RBAC (pods/portforward)"


def hint(tail: list[str], args: dict[str, t.Any]) -> str:
    """What to do next, read from kubectl's output (the generic advice when nothing is recognised)."""
    text = "\n".join(tail)
    for pattern, advice in _HINTS:
        m = pattern.search(text)
        if m:
            fields = {"ns": args["namespace"], "target": args["target"], "user": "", "verb": "", "resource": ""}
            fields.update({k: v for k, v in m.groupdict().items() if v})
            return advice.format(**fields)
    return _GENERIC_HINT


def check_kubeconfig(path: str | None) -> None:
    """A given kubeconfig must be a readable file (kubectl would only say 'stat ...')."""
    if not path:
        return
    if not os.path.isfile(path):
        raise ServerError(f"kubeconfig {path} does not exist or is not a file; check kubeconfig (pypi_k8s_kubeconfig).")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ServerError(f"kubeconfig {path} is unreadable ({exc.strerror}); check its permissions.") from None


def same_args(state: dict[str, t.Any] | None, args: dict[str, t.Any], local_port: int = 0) -> bool:
    """True when ``state`` records a forward with these arguments (and this local port, unless 0)."""
    if not state:
        return False
    if any(state.get("args", {}).get(k) != args.get(k) for k in ARG_KEYS):
        return False
    return not local_port or state.get("local_port") == local_port


# ---------------------------------------------------------------- state


def _state_path(state_dir: str) -> str:
    return os.path.join(state_dir, STATE_FILE)


def read_state(state_dir: str) -> dict[str, t.Any] | None:
    return ls.read_state(state_dir, STATE_FILE)


def _write_state(state_dir: str, data: dict[str, t.Any]) -> None:
    ls.write_state(state_dir, data, STATE_FILE)


def _remove_state(state_dir: str) -> None:
    try:
        os.unlink(_state_path(state_dir))
    except FileNotFoundError:
        pass


def describe(state: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """Public view of a state record (what the module returns)."""
    if not state:
        return {"running": False}
    port = state.get("local_port")
    args = state.get("args", {})
    return {
        "running": pid_alive(state.get("pid"), state.get("pid_start")),
        "pid": state.get("pid"),
        "local_port": port,
        "url": f"http://{HOST}:{port}/",
        "namespace": args.get("namespace"),
        "target": args.get("target"),
        "remote_port": args.get("remote_port"),
        "log_file": state.get("log_file"),
        "started_at": state.get("started_at"),
    }


# ---------------------------------------------------------------- lifecycle


def _accepts(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _what(args: dict[str, t.Any]) -> str:
    return f"kubectl port-forward to {args['target']} in ns {args['namespace']}"


def _launch(args: dict[str, t.Any], port: int, state_dir: str, timeout: float) -> dict[str, t.Any]:
    check_kubeconfig(args.get("kubeconfig"))
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    log_path = os.path.join(state_dir, LOG_FILE)
    # tests' stand-in forwarders (argv_override) run as given on the local port; kubectl runs supervised, on an
    # internal port the supervisor relays the local one to
    internal = port
    while internal == port and not args.get("argv_override"):
        internal = free_port(HOST)
    argv = build_argv(args, internal, timeout)
    run_argv = argv if args.get("argv_override") else supervised(argv, port, internal)
    if run_argv is not argv and shutil.which(argv[0]) is None:
        raise ServerError(f"Cannot run {argv[0]!r}: No such file or directory; check that it is installed.")
    proc, token, offset = spawn_detached(run_argv, log_path, state_dir)
    state = {
        "args": args,
        "argv": argv,
        "local_port": port,
        "pid": proc.pid,
        "pid_start": token,
        "log_file": log_path,
        "started_at": time.time(),
    }
    _write_state(state_dir, state)
    start = time.monotonic()
    deadline = start + timeout
    delay = 0.05
    problem = None
    while True:
        if proc.poll() is not None:
            problem = f"exited with code {proc.returncode}"
            break
        if _accepts(port, min(1.0, max(0.05, deadline - time.monotonic()))):
            # The process may have died while we connected to someone else's listener.
            if proc.poll() is None:
                break
            continue
        if time.monotonic() >= deadline:
            problem = f"did not accept connections on {HOST}:{port} within {timeout:g}s"
            break
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.5)
    if problem:
        if proc.poll() is None:
            terminate(proc.pid, token, timeout=5.0)
        proc.poll()
        _remove_state(state_dir)
        tail = tail_since(log_path, offset)
        last = tail[-1].strip() if tail else "no output"
        raise ServerError(f"{_what(args)} {problem} (last log line: {last}); {hint(tail, args)}.", tail)
    out = describe(state)
    out["startup_seconds"] = round(time.monotonic() - start, 3)
    proc.returncode = 0  # the process keeps running; avoid a ResourceWarning when the Popen goes away
    return out


def start(
    state_dir: str,
    namespace: str,
    target: str,
    remote_port: int,
    local_port: int = 0,
    kubeconfig: str | None = None,
    context: str | None = None,
    kubectl: str = "kubectl",
    timeout: float = 30,
    argv_override: list[str] | None = None,
) -> dict[str, t.Any]:
    """Start a forward (replacing any recorded one) and wait until its local port accepts.

    ``local_port=0`` picks a free port, preferring the one the previous forward in
    ``state_dir`` used. ``argv_override`` is for tests only (see module docstring).
    """
    args = make_args(namespace, target, remote_port, kubeconfig, context, kubectl, argv_override)
    if not 0 <= int(local_port) <= 65535:
        raise ServerError(f"local_port {local_port} is out of range; use 1-65535, or 0 for a free port.")
    previous = read_state(state_dir)
    stop(state_dir)
    port = int(local_port)
    if not port and previous and previous.get("local_port") and not port_in_use(previous["local_port"], HOST):
        port = previous["local_port"]
    if port and port_in_use(port, HOST):
        raise ServerError(
            f"Local port {port} on {HOST} is already in use by another process; choose another local_port, or 0."
        )
    return _launch(args, port or free_port(HOST), state_dir, timeout)


def stop(state_dir: str, timeout: float = 5.0) -> tuple[bool, dict[str, t.Any]]:
    """Terminate the recorded forward by PID and forget it. Returns (stopped a process, last view)."""
    state = read_state(state_dir)
    if not state:
        return False, {"running": False}
    stopped = terminate(state.get("pid"), state.get("pid_start"), timeout)
    _remove_state(state_dir)
    out = describe(state)
    out["running"] = False
    return stopped, out


def reopen(state_dir: str, timeout: float = 30) -> dict[str, t.Any]:
    """Stop and start the recorded forward again on the same local port (a new one if it was taken)."""
    state = read_state(state_dir)
    if not state or not state.get("args"):
        raise ServerError(f"No port-forward is recorded in {state_dir}; start one first.")
    previous_port = state["local_port"]
    previous_pid = state.get("pid")
    stop(state_dir)
    port = previous_port if not port_in_use(previous_port, HOST) else free_port(HOST)
    out = _launch(state["args"], port, state_dir, timeout)
    out.update(previous_port=previous_port, previous_pid=previous_pid, port_changed=port != previous_port)
    return out


def status(state_dir: str) -> dict[str, t.Any]:
    """The recorded forward, whether its process lives and whether its local port accepts now."""
    out = describe(read_state(state_dir))
    out["accepting"] = bool(out["running"]) and _accepts(out["local_port"], 1.0)
    return out
