# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one command in a pod over the exec WebSocket (``kubernetes.stream``) and read a package
directory's inventory from it, in the storage interface's shape ``{filename: {size, sha256}}``.

Every failure becomes a :class:`K8sError` with one sentence saying what to do.
"""

from __future__ import annotations

import json
import re
import time
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import k8s_wait as kw

try:
    import websocket
    from kubernetes.stream import stream as k8s_stream
except ImportError:  # pragma: no cover - exercised only without the client
    websocket = None  # type: ignore[assignment]
    k8s_stream = None

# Run as ``sh -c INVENTORY_SCRIPT sh <path>``: the path is "$1", never spliced into the script.
# One line per regular file directly in the directory: "<sha256> <size> <name>" (names may hold spaces;
# dot files are skipped, as ``for f in *`` does). Exit 3: no such directory; 4: no sha256sum; 5: unreadable.
INVENTORY_SCRIPT = (
    'cd "$1" 2>/dev/null || { echo "no such directory: $1" >&2; exit 3; }; '
    'command -v sha256sum >/dev/null 2>&1 || { echo "sha256sum is not installed" >&2; exit 4; }; '
    'for f in *; do [ -f "$f" ] || continue; '
    's=$(sha256sum < "$f") || exit 5; n=$(wc -c < "$f") || exit 5; '
    'printf \'%s %s %s\\n\' "${s%% *}" "$n" "$f"; done'
)
_LINE = re.compile(r"([0-9a-f]{64}) +(\d+) (.*)")


class ExecResult(t.NamedTuple):
    stdout: str
    stderr: str
    exit_code: int | None  # None when the status channel said nothing usable
    message: str  # the status message on failure


def inventory_script(path: str) -> list[str]:
    """The exec command listing ``path``."""
    return ["sh", "-c", INVENTORY_SCRIPT, "sh", path]


def parse_inventory(text: str) -> dict[str, dict[str, t.Any]]:
    """``{filename: {size, sha256}}`` from the script's output."""
    files: dict[str, dict[str, t.Any]] = {}
    for line in text.splitlines():
        m = _LINE.fullmatch(line.strip("\r"))
        if m:
            files[m.group(3)] = {"size": int(m.group(2)), "sha256": m.group(1)}
    return files


def _handshake_error(exc: BaseException, namespace: str, pod: str) -> kw.K8sError:
    """The client wraps a refused upgrade in ``ApiException(status=0)``; recover the HTTP status and body."""
    cause = exc.__cause__ or exc.__context__
    code = getattr(cause, "status_code", None)
    if not code:
        return kw.api_error(cause or exc, namespace, f"exec in pod {pod}")
    body = getattr(cause, "resp_body", None) or b""
    if code == 404:
        return kw.K8sError(f"pod {pod} does not exist in namespace {namespace}")
    if code == 403:
        try:
            message = json.loads(body).get("message", "")
        except (ValueError, AttributeError):
            message = ""
        m = re.search(r'User "([^"]*)" cannot (\S+) resource "([^"]+)"', message)
        user = f" for {m.group(1)}" if m else ""
        return kw.K8sError(f"RBAC forbids create pods/exec in {namespace}{user}: grant it to the service account/user")
    api = kw.ApiException(status=code, reason=getattr(cause, "status_message", "") or "")
    api.body = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return kw.api_error(api, namespace, f"exec in pod {pod}")


def exec_command(
    core: t.Any, namespace: str, pod: str, command: list[str], container: str | None = None, timeout: float = 30
) -> ExecResult:
    """Run ``command`` in ``pod`` and collect stdout/stderr until the server closes, or fail at ``timeout``."""
    if k8s_stream is None:
        raise kw.K8sError("the kubernetes Python client is not installed; pip install kubernetes")
    kwargs: dict[str, t.Any] = dict(
        command=command, stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False, binary=True
    )
    if container:
        kwargs["container"] = container
    previous = websocket.getdefaulttimeout()
    websocket.setdefaulttimeout(timeout)  # bounds the connect and each read; the loop bounds the total
    try:
        try:
            client = k8s_stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
        except kw.ApiException as exc:
            raise _handshake_error(exc, namespace, pod) from exc
        chunks: dict[int, bytes] = {1: b"", 2: b"", 3: b""}
        deadline = time.monotonic() + timeout
        try:
            while client.is_open():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise kw.K8sError(
                        f"exec in pod {pod} did not finish within {timeout:g}s; raise timeout or check the pod"
                    )
                client.update(timeout=min(remaining, 1.0))
                for channel in chunks:
                    if channel in client._channels:
                        chunks[channel] += client.read_channel(channel)
            for channel in chunks:
                chunks[channel] += client.read_channel(channel) if channel in client._channels else b""
        except (websocket.WebSocketException, OSError) as exc:
            raise kw.K8sError(f"exec in pod {pod} failed: {exc}; check the API server and the pod") from exc
        finally:
            client.close()
    finally:
        websocket.setdefaulttimeout(previous)
    code: int | None = None
    message = ""
    try:
        status = json.loads(chunks[3] or b"{}")
    except ValueError:
        status = {}
    if status.get("status") == "Success":
        code = 0
    elif status:
        message = status.get("message", "")
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
                code = int(cause["message"])
    return ExecResult(chunks[1].decode("utf-8", "replace"), chunks[2].decode("utf-8", "replace"), code, message)


def pod_inventory(
    core: t.Any, namespace: str, pod: str, path: str, container: str | None = None, timeout: float = 30
) -> dict[str, dict[str, t.Any]]:
    """Inventory of ``path`` in ``pod``."""
    res = exec_command(core, namespace, pod, inventory_script(path), container, timeout)
    if res.exit_code == 0:
        return parse_inventory(res.stdout)
    if res.exit_code == 3:
        raise kw.K8sError(
            f"package directory {path} does not exist in pod {pod}; check the storage path and volume mount"
        )
    if res.exit_code == 4:
        raise kw.K8sError(f"sha256sum is not installed in pod {pod}; use an image with coreutils or busybox")
    why = (res.stderr.strip() or res.message or "no exit status received").splitlines()[-1]
    raise kw.K8sError(f"listing {path} in pod {pod} failed (exit code {res.exit_code}): {why}")
