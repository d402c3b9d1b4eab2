# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lifecycle of a pypiserver process on 127.0.0.1 (the embedded ``local`` target).

The server runs detached from whoever started it (its own session, stdio on a
log file), and its PID plus the settings it was started with are kept in a
state directory, so that a later Ansible task, a test fixture or a runbook can
find it, compare settings, restart it on the same package directory, or stop it.
No secret is ever put in the server's argv: credentials live in an htpasswd
file (mode 0600) that pypiserver reads and re-reads when it changes.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import typing as t
import urllib.error

from ansible.module_utils.urls import open_url

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import credentials as cred

STATE_FILE = "server.json"
LOG_FILE = "server.log"
VALID_ACTIONS = ("update", "download", "list")


class ServerError(Exception):
    """A lifecycle failure with one clear message and, when useful, the server log's tail."""

    def __init__(self, msg: str, log_tail: list[str] | None = None):
        super().__init__(msg)
        self.msg = msg
        self.log_tail = log_tail or []


class Spec(t.NamedTuple):
    package_dir: str
    port: int = 0
    host: str = "127.0.0.1"
    auth_actions: tuple[str, ...] = ()
    htpasswd: str | None = None
    overwrite: bool = False
    fallback_url: str | None = None  # None disables pypiserver's redirect to another index
    health_endpoint: str = "/health"
    hash_algo: str = "sha256"
    backend: str = "auto"
    python: str = sys.executable
    # Empty the package directory at every (re)start, like a pod whose volume is an emptyDir.
    # Models a deployment that loses data on restart; the persistence test must catch it.
    ephemeral: bool = False

    def argv(self, port: int) -> list[str]:
        args = [self.python, "-m", "pypiserver", "run", "-i", self.host, "-p", str(port)]
        if self.auth_actions:
            args += ["-a", ",".join(self.auth_actions), "-P", self.htpasswd or "."]
        else:
            args += ["-a", ".", "-P", "."]
        if self.overwrite:
            args.append("--overwrite")
        if self.fallback_url:
            args += ["--fallback-url", self.fallback_url]
        else:
            args.append("--disable-fallback")
        args += ["--health-endpoint", self.health_endpoint, "--hash-algo", self.hash_algo, "--backend", self.backend]
        args.append(self.package_dir)
        return args


def validate_spec(spec: Spec) -> None:
    bad = [a for a in spec.auth_actions if a not in VALID_ACTIONS]
    if bad:
        raise ServerError(
            f"Unknown auth action(s) {bad}; use any of {list(VALID_ACTIONS)} or an empty list for no auth."
        )
    if spec.auth_actions and not spec.htpasswd:
        raise ServerError(
            "Auth actions were given without credentials: pypiserver would refuse every upload. "
            "Give username/password (an htpasswd file is written) or an empty auth_actions list."
        )
    if not 0 <= spec.port <= 65535:
        raise ServerError(f"Port {spec.port} is out of range; use 1-65535, or 0 for a free port.")
    if not spec.health_endpoint.startswith("/"):
        raise ServerError(f"health_endpoint {spec.health_endpoint!r} must start with '/'.")


# ---------------------------------------------------------------- processes


def proc_start_token(pid: int) -> str | None:
    """The process start time from /proc (guards against PID reuse); None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int | None, token: str | None = None) -> bool:
    if not pid:
        return False
    current = proc_start_token(pid)
    if current is None:
        return False
    return token is None or current == token


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def terminate(pid: int | None, token: str | None, timeout: float = 10.0) -> bool:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. True if a process was stopped."""
    if not pid or not pid_alive(pid, token):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        delay = 0.01
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_alive(pid, token):
                return True
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.2)
        _reap(pid)
        if not pid_alive(pid, token):
            return True
    raise ServerError(f"Process {pid} did not exit after SIGKILL; check it with 'ps -p {pid}'.")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
        return False


def wait_port_free(port: int | None, host: str, seconds: float) -> None:
    """Wait (bounded) until nothing holds ``port``; returns either way (the caller reports a port still taken)."""
    if not port:
        return
    deadline = time.monotonic() + seconds
    delay = 0.02
    while port_in_use(port, host) and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


# ---------------------------------------------------------------- state


def make_private_dirs(path: str) -> None:
    """Create ``path`` and every missing parent with mode 0700, each in one step.

    ``os.makedirs(path, mode=0o700)`` gives the mode to the last component only; a parent it creates
    is 0755 (and ``file: state=directory mode=0700`` is mkdir, then chmod): either shows a state
    directory that will hold credentials to everyone for a moment.
    """
    path = os.path.abspath(path)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass


def read_state(state_dir: str, name: str = STATE_FILE) -> dict[str, t.Any] | None:
    """A JSON state record of a detached process (server, port-forward, S3 server); None if there is none."""
    path = os.path.join(state_dir, name)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ServerError(f"State file {path} is unreadable ({exc}); remove it and start again.") from exc
    return data if isinstance(data, dict) else None


def write_state(state_dir: str, data: dict[str, t.Any], name: str = STATE_FILE) -> None:
    """Write a state record atomically, mode 0600 (it may name credential files)."""
    path = os.path.join(state_dir, name)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def log_tail(path: str, lines: int = 20) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def describe(state: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """Public view of a state record (what modules return)."""
    if not state:
        return {"running": False}
    running = pid_alive(state.get("pid"), state.get("pid_start"))
    port = state.get("port")
    host = state.get("host", "127.0.0.1")
    return {
        "running": running,
        "pid": state.get("pid"),
        "port": port,
        "url": f"http://{host}:{port}/",
        "package_dir": state.get("package_dir"),
        "log_file": state.get("log_file"),
        "health_url": f"http://{host}:{port}{state.get('health_endpoint', '/health')}",
        "auth_actions": state.get("auth_actions", []),
        "overwrite": state.get("overwrite", False),
        "started_at": state.get("started_at"),
    }


# ---------------------------------------------------------------- health


def wait_healthy(url: str, timeout: float, alive: t.Callable[[], bool] | None = None) -> float:
    """Poll ``url`` until it answers 200, with bounded backoff. Returns seconds waited.

    Raises ServerError at the deadline, or at once if ``alive()`` says the process died.
    """
    start = time.monotonic()
    deadline = start + timeout
    delay = 0.05
    last = "no answer yet"
    while True:
        if alive is not None and not alive():
            raise ServerError(f"The server process exited before {url} answered.")
        try:
            with open_url(url, timeout=min(2.0, max(0.1, deadline - time.monotonic()))) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            last = str(getattr(exc, "reason", exc))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServerError(f"{url} did not answer 200 within {timeout:g}s (last: {last}).")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.5)


# ---------------------------------------------------------------- lifecycle


def _config_of(spec: Spec, port: int) -> dict[str, t.Any]:
    return {
        "argv": spec.argv(port),
        "host": spec.host,
        "port": port,
        "package_dir": spec.package_dir,
        "auth_actions": list(spec.auth_actions),
        "overwrite": spec.overwrite,
        "health_endpoint": spec.health_endpoint,
    }


def start(spec: Spec, state_dir: str, timeout: float = 30.0, force_restart: bool = False) -> tuple[bool, dict]:
    """Ensure a server with ``spec`` runs. Returns (changed, public state).

    Already running with the same settings -> (False, state). Different settings,
    or ``force_restart`` -> stopped and started again on the same port.
    """
    validate_spec(spec)
    make_private_dirs(state_dir)
    _prepare_package_dir(spec.package_dir)
    state = read_state(state_dir) or {}
    running = bool(state) and pid_alive(state.get("pid"), state.get("pid_start"))
    port = spec.port or (state.get("port") if state else 0) or 0
    if running and not force_restart:
        wanted = _config_of(spec, port or state["port"])
        if wanted["argv"] == state.get("argv"):
            return False, describe(state)
    if running:
        terminate(state["pid"], state.get("pid_start"))
        # the stopped server's port can stay taken for a moment after it exited (its sockets are still being torn
        # down, seen behind the replicas' nginx front): give it a short, bounded while
        wait_port_free(port, spec.host, 5.0)
    if not port:
        port = free_port(spec.host)
    elif port_in_use(port, spec.host):
        raise ServerError(
            f"Port {port} on {spec.host} is already in use by another process; "
            "choose another port, or 0 for a free one."
        )
    return True, _spawn(spec, port, state_dir, timeout)


def _prepare_package_dir(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise ServerError(f"Package directory {path} exists but is not a directory; choose another path.")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ServerError(f"Cannot create package directory {path}: {exc.strerror}; choose a writable path.") from exc
    if not os.path.isdir(path):
        raise ServerError(f"Package directory {path} exists but is not a directory; choose another path.")
    probe = os.path.join(path, f".pypi_ops_write_probe.{os.getpid()}")
    try:
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError as exc:
        raise ServerError(
            f"Package directory {path} is not writable ({exc.strerror}); uploads would fail. "
            "Fix its permissions or choose another path."
        ) from exc


def spawn_detached(
    argv: list[str], log_path: str, cwd: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str | None, int]:
    """Start ``argv`` in its own session with stdio on ``log_path`` (0600, appended).

    Returns (process, start token for PID-reuse checks, log offset where this run's output begins).
    """
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    offset = os.lseek(log_fd, 0, os.SEEK_END)
    child_env = None
    if env:
        child_env = dict(os.environ)
        child_env.update(env)
    try:
        proc = subprocess.Popen(  # detached on purpose: the process outlives its starter
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=cwd,
            env=child_env,
        )
    except OSError as exc:
        raise ServerError(f"Cannot run {argv[0]!r}: {exc.strerror}; check that it is installed.") from exc
    finally:
        os.close(log_fd)
    token = None
    for _attempt in range(50):  # at most 0.5 s: /proc has the entry as soon as the fork returned
        token = proc_start_token(proc.pid)
        if token:
            break
        time.sleep(0.01)
    return proc, token, offset


def _empty_dir(path: str) -> None:
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def _spawn(spec: Spec, port: int, state_dir: str, timeout: float) -> dict[str, t.Any]:
    if spec.ephemeral:
        _empty_dir(spec.package_dir)
    log_path = os.path.join(state_dir, LOG_FILE)
    config = _config_of(spec, port)
    proc, token, offset = spawn_detached(config["argv"], log_path, state_dir)
    state = dict(config, pid=proc.pid, pid_start=token, log_file=log_path, started_at=time.time())
    write_state(state_dir, state)
    health = f"http://{spec.host}:{port}{spec.health_endpoint}"
    try:
        waited = wait_healthy(health, timeout, alive=lambda: proc.poll() is None)
    except ServerError as exc:
        if proc.poll() is None:
            terminate(proc.pid, token)
        proc.poll()
        tail = tail_since(log_path, offset)
        raise ServerError(f"pypiserver did not become healthy: {exc.msg} See the log tail below.", tail) from None
    out = describe(state)
    out["startup_seconds"] = round(waited, 3)
    # Let the Popen object go without a ResourceWarning; the process keeps running.
    proc.returncode = 0
    return out


def tail_since(path: str, offset: int, lines: int = 20) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def stop_recorded(
    state_dir: str,
    name: str,
    describe_state: t.Callable[[dict[str, t.Any] | None], dict[str, t.Any]],
    timeout: float,
    empty: dict[str, t.Any],
) -> tuple[bool, dict[str, t.Any]]:
    """Stop the process a state file ``name`` records (by PID and start token) and remove the file; (stopped, its
    description with running false), or (False, ``empty``) when nothing is recorded."""
    state = read_state(state_dir, name)
    if not state:
        return False, dict(empty)
    stopped = terminate(state.get("pid"), state.get("pid_start"), timeout)
    try:
        os.unlink(os.path.join(state_dir, name))
    except FileNotFoundError:
        pass
    out = describe_state(state)
    out["running"] = False
    return stopped, out


def stop(state_dir: str, timeout: float = 10.0) -> tuple[bool, dict]:
    return stop_recorded(state_dir, STATE_FILE, describe, timeout, {"running": False})


def status(state_dir: str, timeout: float = 5.0) -> dict[str, t.Any]:
    state = read_state(state_dir)
    out = describe(state)
    out["healthy"] = False
    if out["running"]:
        try:
            wait_healthy(out["health_url"], timeout)
            out["healthy"] = True
        except ServerError as exc:
            out["health_error"] = exc.msg
    return out


# ---------------------------------------------------------------- htpasswd and credentials


def write_htpasswd(path: str, users: dict[str, str]) -> bool:
    """Write an htpasswd file holding exactly ``users`` (apr-md5 via passlib's default), mode 0600.

    Returns True when the file changed. Existing users with a matching password are kept as is.
    The file is replaced atomically and its mtime always moves, so a running pypiserver
    (which re-reads the file when its mtime changes) never sees half a file or misses a change.
    """
    try:
        existing = cred.read_bytes(path)
        data, changed = cred.render_htpasswd(users, existing)
        if changed:
            cred.atomic_write(path, data)
        else:
            os.chmod(path, 0o600)
    except cred.CredentialsError as exc:
        raise ServerError(exc.msg) from None
    return changed


def htpasswd_of(state: dict[str, t.Any] | None) -> str | None:
    """The htpasswd file a recorded server reads (its ``-P`` argument); None when it has no authentication."""
    argv = (state or {}).get("argv") or []
    for i, arg in enumerate(argv[:-1]):
        if arg == "-P" and argv[i + 1] != ".":
            return argv[i + 1]
    return None


def rotate_credentials(
    state_dir: str,
    username: str,
    password: str,
    credentials_file: str | None = None,
    check_mode: bool = False,
) -> dict[str, t.Any]:
    """Give the running server new credentials without restarting it.

    The new htpasswd replaces the file the server reads (the ``-P`` path in its recorded argv)
    atomically, with a new mtime, so pypiserver re-reads it at the next authenticated request.
    The password also goes to ``credentials_file`` (Ansible password-lookup format, mode 0600),
    so later runs that read it use the new one. Neither the password nor its hash is returned.
    """
    state = read_state(state_dir)
    server = describe(state)
    if not server.get("running"):
        raise ServerError(
            f"No pypiserver is running from state directory {state_dir}, so there is nothing to rotate; "
            "start it first (verify.yml with -e pypi_cleanup=false, or the deploy role) with the same state directory."
        )
    htpasswd = htpasswd_of(state)
    if not htpasswd:
        raise ServerError(
            f"The pypiserver at {server['url']} runs without authentication, so it has no credentials to rotate; "
            "deploy it with pypi_auth_actions set (for example [update])."
        )
    try:
        cred.check_password(password)
        existing = cred.read_bytes(htpasswd)
        content, ht_changed = cred.render_htpasswd({username: password}, existing)
        stored = cred.read_credentials_file(credentials_file) if credentials_file else None
        cf_changed = bool(credentials_file) and stored != password
        if not check_mode:
            # The stored copy first: if it cannot be written nothing has changed yet; if the htpasswd
            # then cannot be written, the stored copy is put back, so the two never disagree.
            if cf_changed:
                cred.atomic_write(t.cast(str, credentials_file), cred.credentials_file_content(password))
            if ht_changed:
                try:
                    cred.atomic_write(htpasswd, content)
                except cred.CredentialsError:
                    if cf_changed:
                        _restore_credentials(t.cast(str, credentials_file), stored)
                    raise
    except cred.CredentialsError as exc:
        raise ServerError(exc.msg) from None
    return {
        "changed": ht_changed or cf_changed,
        "htpasswd": htpasswd,
        "htpasswd_changed": ht_changed,
        "credentials_file": credentials_file,
        "credentials_file_changed": cf_changed,
        "server": server,
    }


def _restore_credentials(path: str, stored: str | None) -> None:
    try:
        if stored is None:
            os.unlink(path)
        else:
            cred.atomic_write(path, cred.credentials_file_content(stored))
    except (OSError, cred.CredentialsError):
        pass
