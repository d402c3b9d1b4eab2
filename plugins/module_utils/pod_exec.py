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


class _Discard:
    """Stands in for the client's copy of everything it reads (it would hold a whole file in memory)."""

    def write(self, data: t.Any) -> None:
        del data

    def getvalue(self) -> bytes:
        return b""


STDIN_CHUNK = 256 * 1024
_STDERR_KEEP = 64 * 1024  # the tail of stderr kept for the message


def exec_command(
    core: t.Any,
    namespace: str,
    pod: str,
    command: list[str],
    container: str | None = None,
    timeout: float = 30,
    stdin: t.Any = None,
    stdout: t.Any = None,
) -> ExecResult:
    """Run ``command`` in ``pod`` and collect stdout/stderr until the server closes, or fail at ``timeout``.

    ``stdin``: a binary file whose whole content is sent to the command. This protocol cannot close stdin, so the
    command must stop reading on its own (``head -c SIZE``). ``stdout``: a binary file the command's standard output
    is written to (``ExecResult.stdout`` is then empty), so a large file never sits in memory.
    """
    if k8s_stream is None:
        raise kw.K8sError("the kubernetes Python client is not installed; pip install kubernetes")
    kwargs: dict[str, t.Any] = dict(
        command=command,
        stdin=stdin is not None,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
        binary=True,
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
        if hasattr(client, "_all"):
            client._all = _Discard()
        out: list[bytes] = []
        err = bytearray()
        status = bytearray()
        sending = stdin is not None
        deadline = time.monotonic() + timeout

        def drain() -> None:
            data = client.read_channel(1) if 1 in client._channels else b""
            if data:
                if stdout is not None:
                    stdout.write(data)
                else:
                    out.append(data)
            if 2 in client._channels:
                err.extend(client.read_channel(2))
                del err[:-_STDERR_KEEP]
            if 3 in client._channels:
                status.extend(client.read_channel(3))

        try:
            while client.is_open():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise kw.K8sError(
                        f"exec in pod {pod} did not finish within {timeout:g}s; raise timeout or check the pod"
                    )
                if sending:
                    data = stdin.read(STDIN_CHUNK)
                    if data:
                        client.write_channel(0, data)
                    else:
                        sending = False
                    client.update(timeout=0)
                else:
                    client.update(timeout=min(remaining, 1.0))
                drain()
            drain()
        except (websocket.WebSocketException, OSError) as exc:
            raise kw.K8sError(f"exec in pod {pod} failed: {exc}; check the API server and the pod") from exc
        finally:
            client.close()
    finally:
        websocket.setdefaulttimeout(previous)
    code: int | None = None
    message = ""
    try:
        parsed = json.loads(bytes(status) or b"{}")
    except ValueError:
        parsed = {}
    if parsed.get("status") == "Success":
        code = 0
    elif parsed:
        message = parsed.get("message", "")
        for cause in (parsed.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
                code = int(cause["message"])
    return ExecResult(b"".join(out).decode("utf-8", "replace"), err.decode("utf-8", "replace"), code, message)


def choose_pod(core: t.Any, namespace: str, pod: str | None, selector: str | None) -> str:
    """The named pod (which must exist), or the first Ready pod matching ``selector``."""
    if pod:
        try:
            core.read_namespaced_pod(pod, namespace, _request_timeout=kw.REQUEST_TIMEOUT)
        except (kw.urllib3.exceptions.HTTPError, OSError) as exc:  # first: ApiException is Exception without the client
            raise kw.api_error(exc, namespace) from exc
        except kw.ApiException as exc:
            if exc.status == 404:
                raise kw.K8sError(f"pod {pod} does not exist in namespace {namespace}") from exc
            raise kw.api_error(exc, namespace, f"get pod {pod}") from exc
        return pod
    pods = sorted(kw.list_pods(core, namespace, selector or ""), key=lambda x: x.metadata.name)
    ready = [x for x in pods if kw.pod_ready(x)]
    if not ready and not pods:
        raise kw.K8sError(
            f"no Ready pod matches {selector} in namespace {namespace} (none match); check the selector, that the "
            f"release is installed in {namespace} (kubectl get pods -n {namespace} --show-labels) and the kubeconfig context"
        )
    if not ready:
        seen = "; ".join(kw.diagnose(x) for x in pods)
        raise kw.K8sError(
            f"no Ready pod matches {selector} in namespace {namespace} ({seen}); next: {kw.next_step(pods, namespace)}"
        )
    return ready[0].metadata.name


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
