"""large_package's upload-size ladder against a real nginx with a 1 MiB body limit in front of a real pypiserver.

The verify playbook runs as the url target with ``--tags upload,large_package``: the probe upload (small) passes, and
the ladder climbs 64 KiB and 256 KiB, then nginx answers 413 to the 1 MiB step. The test must fail with the one
sentence that names where refusals began and nginx's 1m default, keep the figures of the steps climbed, and send
nothing larger after the refusal.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls
from tests.helpers import ROOT, run_playbook

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs it: apt-get install nginx)"),
]

CONF = """\
{user}worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 1m;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


def _wait_listening(port: int, proc: subprocess.Popen, seconds: float = 15) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nginx did not listen on 127.0.0.1:{port} within {seconds} s")


@pytest.fixture
def nginx_1m(tmp_path):
    """A real pypiserver (uploads authenticated) behind a real nginx with client_max_body_size 1m; both stopped by PID."""
    password = secrets.token_urlsafe(12)
    htpasswd = tmp_path / "htpasswd"
    ls.write_htpasswd(str(htpasswd), {"ladder-user": password})
    packages = tmp_path / "upstream-packages"
    spec = ls.Spec(package_dir=str(packages), auth_actions=("update",), htpasswd=str(htpasswd))
    state = tmp_path / "upstream"
    _, info = ls.start(spec, str(state), timeout=30)
    proc = None
    try:
        ngx = tmp_path / "nginx"
        ngx.mkdir()
        port = ls.free_port()
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp dirs under tmp_path
        conf = ngx / "nginx.conf"
        conf.write_text(CONF.format(user=user, tmp=ngx, port=port, upstream=info["port"]))
        proc = subprocess.Popen(
            [t.cast(str, NGINX), "-e", str(ngx / "error.log"), "-p", str(ngx), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _wait_listening(port, proc)
        yield {
            "url": f"http://127.0.0.1:{port}/",
            "password": password,
            "packages": packages,
            "error_log": ngx / "error.log",
        }
    finally:
        if proc is not None:
            proc.terminate()  # SIGTERM: nginx's fast shutdown; its worker exits with it
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        ls.stop(str(state))


def test_the_ladder_names_the_step_where_nginx_began_to_refuse(nginx_1m, tmp_path):
    run_id = f"ladder{secrets.token_hex(6)}"
    run = run_playbook(
        ROOT / "verify.yml",
        tmp_path / "run",
        {
            "pypi_target": "url",
            "pypi_url": nginx_1m["url"],
            "pypi_username": "ladder-user",
            "pypi_password": nginx_1m["password"],
            "pypi_auth_actions": ["update"],
            "pypi_run_id": run_id,
            "pypi_large_size_mib": 2,  # the ladder keeps 64 KiB, 256 KiB and 1 MiB below it
        },
        args=["--tags", "upload,large_package"],
    )
    assert run.rc != 0, run.output[-3000:]
    assert run.results["upload"]["status"] == "passed", run.results
    large = run.results["large_package"]
    assert large["status"] == "failed", run.results
    assert large["reason"].startswith(
        "Size ladder: accepted up to 256 KiB, HTTP 413 from 1 MiB; nginx's client_max_body_size defaults to 1m"
    ), large["reason"]
    assert "nginx.ingress.kubernetes.io/proxy-body-size" in large["reason"]
    assert "Server said: 413 Request Entity Too Large" in large["reason"]
    # the figures of the steps climbed are kept; nothing above the refused step was sent
    tests = json.loads((run.report_dir / "results.json").read_text())["tests"]
    ladder = next(r for r in tests if r["id"] == "large_package")["figures"]["ladder"]
    assert [(s["step"], s["outcome"]) for s in ladder] == [
        ("64 KiB", "uploaded"),
        ("256 KiB", "uploaded"),
        ("1 MiB", "too_large"),
    ]
    assert ladder[2]["status"] == 413 and ladder[0]["download_mib_s"] > 0
    stored = sorted(os.listdir(nginx_1m["packages"]))
    ladder_files = [f for f in stored if "_ladder-" in f]
    assert ladder_files == [
        f"pypiops_probe_{run_id}_ladder-1.0.0-py3-none-any.whl",
        f"pypiops_probe_{run_id}_ladder-1.0.1-py3-none-any.whl",
    ], stored
    assert not [f for f in stored if "_large-" in f], stored
    # nginx itself refused it (not the server, not the harness)
    assert "client intended to send too large body" in Path(nginx_1m["error_log"]).read_text()
