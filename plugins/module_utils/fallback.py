# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dependency confusion: does the index answer a project it cannot hold with a 404, or send clients elsewhere?

pypiserver redirects every project it does not hold to pypi.org (``--fallback-url``) unless it runs with
``--disable-fallback``; pip and uv follow that redirect silently, so a private name that is missing from the index
resolves on the public one. Three observers ask for a name under the probe prefix that no one uploaded:

- one GET of ``/simple/<name>/`` that never follows a redirect to another origin (same-origin hops, such as a
  redirect to the normalized name, are followed up to 5 times);
- isolated ``pip download`` and ``uv pip compile``, run with every proxy variable pointing at a *blocking proxy*
  (a socket here that records where a client wanted to go and answers 403), and ``NO_PROXY`` naming only the index's
  host. A redirect to another host therefore reaches nothing: the public index is never contacted, and the proxy's
  record says where the client was sent. pip's ``-vv`` and uv's ``-v`` logs name the origins they reached too, which
  also catches another port on the index's own host (not proxied).

Measured with pypiserver 2.4.2, pip 26.0 and uv 0.13.9: with its fallback on, pypiserver answers 303 to
``https://pypi.org/simple/<name>/``; pip then connects to pypi.org, uv logs "Redirecting to `...`". With
``--disable-fallback`` it answers 404 and both clients say the project was not found.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import typing as t
from urllib.parse import urljoin, urlsplit

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http, install, provenance, runner
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import pip_runner as pr
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import uv_runner as ur

try:
    import requests
except ImportError:  # pragma: no cover - the module reports missing requests first
    requests = None  # type: ignore[assignment]

ACCEPT = si.ACCEPT  # what pip and uv send
CLIENTS = ("pip", "uv")
FIX = (
    'start pypiserver with --disable-fallback (in the chart: fallbackUrl: ""), or set pypi_fallback_expected: true '
    "if this site wants unknown names sent there"
)
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

_PIP_CONNECT = re.compile(r"Starting new (HTTPS?) connection \(\d+\): ([^\s:]+)(?::(\d+))?", re.I)
_PIP_STATUS = re.compile(r'^(https?://\S+) "(?:GET|HEAD) (\S+) HTTP/[\d.]+" (\d{3})', re.M)
_UV_REDIRECT = re.compile(r"Redirecting to `([^`]+)`")
_UV_REQUEST = re.compile(r"(?:Sending fresh|Sending revalidation) GET request for: (\S+)")
_PIP_VERDICT = re.compile(r"^(ERROR|WARNING):")
_NOT_FOUND = {
    "pip": re.compile(r"No matching distribution found for|from versions: none"),
    "uv": re.compile(r"not found in the package registry|No solution found|was not found in the provided package"),
}


class BlockingProxy:
    """A proxy that lets nothing through: it records each request's target (``host:port``) and answers 403.

    Every wait is bounded: a client that connects and sends nothing is dropped after ``idle`` seconds.
    """

    def __init__(self, idle: float = 5.0) -> None:
        self.attempts: list[str] = []
        self._idle = idle
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="pypi-ops-blocking-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except OSError:  # timeout (poll the stop flag) or the socket closed
                continue
            try:
                conn.settimeout(self._idle)
                head = b""
                while b"\r\n" not in head and len(head) < 8192:
                    piece = conn.recv(1024)
                    if not piece:
                        break
                    head += piece
                target = request_target(head.split(b"\r\n", 1)[0].decode("latin-1", "replace"))
                if target:
                    self.attempts.append(target)
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def __enter__(self) -> BlockingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request_target(line: str) -> str:
    """``host:port`` from a proxy request line: ``CONNECT pypi.org:443 HTTP/1.1`` or ``GET http://h:8/x HTTP/1.1``."""
    parts = line.split()
    if len(parts) < 2:
        return ""
    if parts[0].upper() == "CONNECT":
        return parts[1]
    scheme, host, port = provenance.origin(parts[1])
    return f"{host}:{port}" if host else ""


def proxy_env(proxy_url: str, index_url: str) -> dict[str, str]:
    """Every proxy variable at the blocking proxy; only the index's host bypasses it."""
    host = urlsplit(index_url).hostname or ""
    env = {name: proxy_url for name in PROXY_VARS}
    env.update(NO_PROXY=host, no_proxy=host)
    return env


def name_for(prefix: str, run_id: str) -> str:
    """A run-unique project name under the probe prefix that no one uploads."""
    return si.normalize(f"{prefix}-{run_id}-absent")


# ---------------------------------------------------------------- the direct request


def ask_index(session: t.Any, simple_url: str, name: str, opts: http.ClientOptions) -> dict[str, t.Any]:
    """GET the project page of ``name``: same-origin redirects are followed (5 at most), another origin never.

    Returns url, status (None when no answer), location (the cross-origin or unfollowed redirect target),
    content_type, hops (the same-origin redirects followed) and error (why no answer came).
    """
    base = simple_url if simple_url.endswith("/") else simple_url + "/"
    url = urljoin(base, name + "/")
    want = provenance.origin(url)
    result: dict[str, t.Any] = {"url": http.redact_url(url), "status": None, "location": "", "hops": [], "error": ""}
    for _hop in range(6):
        try:
            resp = session.get(
                url, headers={"Accept": ACCEPT}, timeout=opts.timeout, allow_redirects=False, stream=True
            )
            resp.close()
        except requests.RequestException as exc:
            result["error"] = http.describe_error(exc, url, opts)
            return result
        result.update(status=resp.status_code, content_type=resp.headers.get("Content-Type", ""))
        location = resp.headers.get("Location", "")
        if not (300 <= resp.status_code < 400 and location):
            return result
        target = urljoin(url, location)
        result["location"] = http.redact_url(target)
        if provenance.origin(target) != want:
            return result
        result["hops"].append(http.redact_url(target))
        url = target
    return result


# ---------------------------------------------------------------- the clients


def pip_argv(python: str, index_url: str, name: str, dest: str, opts: http.ClientOptions) -> list[str]:
    argv = [
        python, "-m", "pip", "-vv", "download", *pr.ISOLATED, "--no-deps", "--dest", dest,
        "--index-url", index_url, "--retries", "0", "--timeout", f"{max(opts.connect_timeout, opts.read_timeout):g}",
    ]  # fmt: skip
    return argv + pr.tls_args(index_url, opts) + [name]


def uv_argv(uv: str, python: str, index_url: str, requirements: str, opts: http.ClientOptions) -> list[str]:
    argv = [
        uv, "-v", "pip", "compile", "--no-config", "--no-cache", "--no-build", "--no-header", "--quiet",
        "--python", python, *ur.default_index(index_url),
    ]  # fmt: skip
    return argv + ur.tls_args(index_url, opts) + [requirements]


def origins_in_log(client: str, text: str) -> list[str]:
    """Every origin the client's log says it reached or was redirected to (``scheme://host:port``)."""
    found: list[str] = []
    if client == "pip":
        for scheme, host, port in _PIP_CONNECT.findall(text or ""):
            found.append(provenance.origin_text(f"{scheme.lower()}://{host}" + (f":{port}" if port else "")))
        for origin_url, _path, _status in _PIP_STATUS.findall(text or ""):
            found.append(provenance.origin_text(origin_url))
    else:
        for url in _UV_REDIRECT.findall(text or "") + _UV_REQUEST.findall(text or ""):
            found.append(provenance.origin_text(url))
    unique: list[str] = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique


def verdict_lines(client: str, text: str) -> list[str]:
    """The client's own verdict: pip's ERROR/WARNING lines (not -vv's exception info), uv's output without its
    DEBUG/TRACE log (its error, causes and their wrapped continuations)."""
    lines = (text or "").splitlines()
    if client == "pip":
        return [ln for ln in lines if _PIP_VERDICT.match(ln)]
    return [ln for ln in lines if not ln.startswith(ur.LOG_PREFIXES)]


def judge_client(
    client: str, rc: int, text: str, timed_out: bool, index_url: str, attempts: list[str]
) -> dict[str, t.Any]:
    """One client's outcome: resolved (it found the name), elsewhere (origins it reached or tried), not_found, error."""
    own = provenance.origin_text(index_url)
    elsewhere = [o for o in origins_in_log(client, text) if o != own]
    stopped = sorted(set(attempts))
    for target in stopped:  # annotate the origin the log names, or add the proxy's record when the log had none
        match = [i for i, o in enumerate(elsewhere) if o.split("://", 1)[-1] == target]
        for i in match:
            elsewhere[i] += " (stopped at the blocking proxy)"
        if not match:
            elsewhere.append(f"{target} (stopped at the blocking proxy)")
    out: dict[str, t.Any] = {
        "rc": rc,
        "resolved": rc == 0 and not timed_out,
        "elsewhere": elsewhere,
        "stopped": bool(stopped),
        "not_found": bool(_NOT_FOUND[client].search(text or "")),
        "timed_out": timed_out,
        # the client's own verdict lines only: pip -vv prints its exception info, uv -v its DEBUG log
        "tail": runner.tail("\n".join(verdict_lines(client, text)), 6),
    }
    return out


def run_clients(
    module: t.Any | None,
    index_url: str,
    name: str,
    opts: http.ClientOptions,
    clients: t.Sequence[str] = CLIENTS,
    timeout: float = 120,
    python: str | None = None,
    uv: str | None = None,
    work_dir: str | None = None,
) -> dict[str, dict[str, t.Any]]:
    """Ask each client for ``name`` from ``index_url`` only, behind the blocking proxy; {client: outcome}."""
    python = python or sys.executable
    index = install.index_of(index_url, opts, blank_is_unset=True)
    index_clean, opts = index.url, index.opts
    results: dict[str, dict[str, t.Any]] = {}
    with install.work_dir("pypi_ops-fallback-", work_dir) as work:
        for client in clients:
            with BlockingProxy() as proxy:
                env = proxy_env(proxy.url, index_clean)
                if client == "pip":
                    env.update(pr.isolated_env(work.auth, index.host, opts))
                    argv = pip_argv(python, index_clean, name, os.path.join(work.path, "pip-dest"), opts)
                else:
                    try:
                        uv_bin = ur.find_uv(uv, python)
                    except ur.UvNotFound as exc:
                        results[client] = {"skipped": exc.msg}
                        continue
                    env.update(ur.install_env(work.auth, opts))
                    reqs = os.path.join(work.path, "requirements.in")
                    with open(reqs, "w", encoding="utf-8") as handle:
                        handle.write(name + "\n")
                    argv = ur.scrubbed(uv_argv(uv_bin, python, index_clean, reqs, opts), env)
                limit = opts.deadline.cap(timeout)
                res = runner.run(module, argv, limit, env=env, cwd=work.path)
            results[client] = judge_client(client, res.rc, res.text, res.timed_out, index_clean, list(proxy.attempts))
            results[client]["timeout"] = limit
    return results


# ---------------------------------------------------------------- the verdict


def _client_problem(client: str, out: dict[str, t.Any], name: str, index: str) -> str:
    """Why one client's outcome is a finding, or '' when it looked only at the index and found nothing."""
    if out.get("skipped"):
        return ""
    if out["elsewhere"]:
        return f"{client} was sent to {', '.join(out['elsewhere'])} while asking {index} for {name}"
    if out["resolved"]:
        return f"{client} resolved {name}, a project that was never uploaded, from {index}"
    if out["timed_out"]:
        return f"{client} did not finish within {out.get('timeout', 0):g} s asking {index} for {name}"
    if not out["not_found"]:
        return f"{client} could not ask {index} for {name} (rc={out['rc']}: {out['tail'].splitlines()[-1:] or ['no output']})"
    return ""


def verdict(
    direct: dict[str, t.Any], clients: dict[str, dict[str, t.Any]], index: str, name: str, expected: bool
) -> tuple[bool, str]:
    """(ok, one sentence) for the whole check."""
    status, location = direct.get("status"), direct.get("location", "")
    redirected = status is not None and 300 <= status < 400 and bool(location)
    problems = [p for p in (_client_problem(c, o, name, index) for c, o in clients.items()) if p]
    asked = ", ".join(c for c, o in clients.items() if not o.get("skipped")) or "no client"
    if direct.get("error"):
        return False, f"The index did not answer the request for {direct['url']}: {direct['error']}"
    if redirected:
        followed = [c for c, o in clients.items() if o.get("elsewhere")]
        blocked = all(clients[c].get("stopped") for c in followed)
        how = "a blocking proxy here stopped them before that host" if blocked else "and reached it"
        clients_text = f"; {' and '.join(followed)} followed it ({how})" if followed else ""
        if expected:
            return True, (
                f"the index redirects unknown projects to {location} (HTTP {status}), as pypi_fallback_expected says"
                f"{clients_text}"
            )
        return False, (
            f"The index redirects the unknown project {name} to {location} (HTTP {status}){clients_text}: a private "
            f"name that is missing from the index resolves on that index instead (dependency confusion); {FIX}."
        )
    if status == 404 or status == 410:
        if problems:
            return False, (
                f"The index answers HTTP {status} for {name}, but {'; '.join(problems)}: something other than the "
                "index (a redirect for this client, a link, a setting) answered it; check what sits in front of "
                "the index."
            )
        return (
            True,
            f"the index answers HTTP {status} for the unknown project {name}; {asked} found nothing and went nowhere else",
        )
    if status is not None and 200 <= status < 300:
        return False, (
            f"The index serves a page (HTTP {status}, {direct.get('content_type') or 'no content type'}) for the "
            f"unknown project {name} at {direct['url']}: a name it cannot hold must answer 404, or clients take "
            "whatever that page offers; check that the URL is the simple index and what answers unknown paths "
            "(a catch-all front, a proxy to another index)."
        )
    if status in (401, 403):
        return False, (
            f"The index answered HTTP {status} for {direct['url']}, so whether it falls back cannot be told; give "
            "credentials that may read (pypi_username/pypi_password)."
        )
    hint = http.http_status_hint(int(status or 0))
    return (
        False,
        f"The index answered HTTP {status} for the unknown project {name} at {direct['url']}, not 404; {hint}.",
    )
