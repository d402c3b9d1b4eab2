# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A round-robin HTTP front (Debian's nginx) on 127.0.0.1 for the local target's pypiserver replicas.

nginx runs with its own prefix and configuration in a state directory (no system config, no port 80, no
/var/log), in the foreground of a detached session, and is stopped by PID like every other process the
collection starts. The configuration is pure text (``render_conf``) so that it can be tested on its own.
Uploads stream through (no body size limit, no request buffering), and the timeouts are generous: the
front must never be the reason a big upload or a slow replica fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import time
import typing as t
from urllib.parse import urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls

STATE_FILE = "front.json"
CONF_FILE = "nginx.conf"
LOG_FILE = "front.log"
NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx")


def nginx_binary() -> str | None:
    """The nginx executable (Debian puts it in /usr/sbin, which a non-root PATH often lacks), or None."""
    found = shutil.which("nginx")
    if found:
        return found
    for path in NGINX_PATHS:
        if os.access(path, os.X_OK):
            return path
    return None


def upstream_address(url: str) -> str:
    """``host:port`` of a replica's base URL; ServerError for anything nginx could not proxy to."""
    parts = urlsplit(url.strip())
    if parts.scheme != "http" or not parts.hostname or parts.port is None or parts.path not in ("", "/"):
        raise ls.ServerError(f"Replica URL {url!r} is not of the form http://HOST:PORT/; give each replica's base URL.")
    return f"{parts.hostname}:{parts.port}"


def render_conf(
    port: int, upstreams: t.Sequence[str], prefix: str, host: str = "127.0.0.1", user: str | None = None
) -> str:
    """The whole nginx.conf: one upstream block (round robin, the default), one server proxying everything to it."""
    if not upstreams:
        raise ls.ServerError("The front needs at least one replica to send requests to; give upstreams.")
    if not 0 < port <= 65535:
        raise ls.ServerError(f"Front port {port} is out of range; use 1-65535.")
    servers = "".join(f"        server {upstream_address(u)} max_fails=0;\n" for u in upstreams)
    tmp = os.path.join(prefix, "tmp")
    user_line = f"user {user};\n" if user else ""
    return (
        "# Written by pypi_ops.pypiserver (module_utils/front.py): round robin over the local replicas.\n"
        f"{user_line}"
        "daemon off;\n"
        "worker_processes 1;\n"
        f"pid {os.path.join(prefix, 'nginx.pid')};\n"
        "error_log stderr warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log {os.path.join(prefix, 'access.log')};\n"
        f"    client_body_temp_path {tmp}/client_body;\n"
        f"    proxy_temp_path {tmp}/proxy;\n"
        f"    fastcgi_temp_path {tmp}/fastcgi;\n"
        f"    uwsgi_temp_path {tmp}/uwsgi;\n"
        f"    scgi_temp_path {tmp}/scgi;\n"
        "    upstream pypi_replicas {\n"
        f"{servers}"
        "    }\n"
        "    server {\n"
        f"        listen {host}:{port};\n"
        "        client_max_body_size 0;\n"
        "        proxy_request_buffering off;\n"
        "        proxy_buffering off;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $http_host;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        proxy_connect_timeout 30s;\n"
        "        proxy_send_timeout 600s;\n"
        "        proxy_read_timeout 600s;\n"
        "        send_timeout 600s;\n"
        "        client_body_timeout 600s;\n"
        "        proxy_next_upstream off;\n"
        "        location / {\n"
        "            proxy_pass http://pypi_replicas;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def _worker_user() -> str | None:
    """As root, nginx would switch its worker to ``nobody``, which cannot enter the 0700 state directory:
    keep the worker as the user running the collection. Not root: nginx ignores ``user``; leave it out."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwuid(os.geteuid()).pw_name


def read_state(state_dir: str) -> dict[str, t.Any] | None:
    return ls.read_state(state_dir, STATE_FILE)


def describe(state: dict[str, t.Any] | None) -> dict[str, t.Any]:
    if not state:
        return {"running": False, "upstreams": []}
    host = state.get("host", "127.0.0.1")
    port = state.get("port")
    return {
        "running": ls.pid_alive(state.get("pid"), state.get("pid_start")),
        "pid": state.get("pid"),
        "port": port,
        "url": f"http://{host}:{port}/",
        "upstreams": state.get("upstreams", []),
        "conf": state.get("conf"),
        "log_file": state.get("log_file"),
    }


def start(
    state_dir: str,
    upstreams: t.Sequence[str],
    port: int = 0,
    host: str = "127.0.0.1",
    health_path: str = "/health",
    timeout: float = 30.0,
) -> tuple[bool, dict[str, t.Any]]:
    """Ensure an nginx front on ``host:port`` sends requests round robin to ``upstreams``. (changed, state)."""
    for url in upstreams:
        upstream_address(url)
    if not upstreams:
        raise ls.ServerError("The front needs at least one replica to send requests to; give upstreams.")
    nginx = nginx_binary()
    if not nginx:
        raise ls.ServerError(
            "nginx is not installed, and the replicas' round-robin front needs it (Debian: apt-get install nginx)."
        )
    ls.make_private_dirs(state_dir)
    state = read_state(state_dir) or {}
    running = bool(state) and ls.pid_alive(state.get("pid"), state.get("pid_start"))
    port = port or (state.get("port") if state else 0) or 0
    if running and state.get("upstreams") == list(upstreams) and state.get("port") == port:
        return False, describe(state)
    if running:
        ls.terminate(state["pid"], state.get("pid_start"))
        ls.wait_port_free(port, host, 5.0)
    if not port:
        port = ls.free_port(host)
    elif ls.port_in_use(port, host):
        raise ls.ServerError(
            f"Port {port} on {host} is already in use by another process; choose another front port, or 0 for a free one."
        )
    os.makedirs(os.path.join(state_dir, "tmp"), mode=0o700, exist_ok=True)
    conf_path = os.path.join(state_dir, CONF_FILE)
    with open(conf_path, "w", encoding="utf-8") as handle:
        handle.write(render_conf(port, upstreams, state_dir, host, _worker_user()))
    log_path = os.path.join(state_dir, LOG_FILE)
    argv = [nginx, "-e", "stderr", "-p", state_dir + "/", "-c", conf_path]
    proc, token, offset = ls.spawn_detached(argv, log_path, state_dir)
    state = {
        "argv": argv,
        "host": host,
        "port": port,
        "upstreams": list(upstreams),
        "conf": conf_path,
        "pid": proc.pid,
        "pid_start": token,
        "log_file": log_path,
        "started_at": time.time(),
    }
    ls.write_state(state_dir, state, STATE_FILE)
    try:
        waited = ls.wait_healthy(f"http://{host}:{port}{health_path}", timeout, alive=lambda: proc.poll() is None)
    except ls.ServerError as exc:
        if proc.poll() is None:
            ls.terminate(proc.pid, token)
        proc.poll()
        raise ls.ServerError(
            f"The nginx front did not pass requests to the replicas: {exc.msg} See the log tail below.",
            ls.tail_since(log_path, offset),
        ) from None
    proc.returncode = 0  # it keeps running, detached; no ResourceWarning
    out = describe(state)
    out["startup_seconds"] = round(waited, 3)
    return True, out


def stop(state_dir: str, timeout: float = 10.0) -> tuple[bool, dict[str, t.Any]]:
    return ls.stop_recorded(state_dir, STATE_FILE, describe, timeout, {"running": False, "upstreams": []})
