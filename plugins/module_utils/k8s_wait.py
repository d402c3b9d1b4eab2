# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart pods and wait for their replacements, with the real ``kubernetes`` client.

A replacement counts only when its uid was not there before, its Ready condition is True and it
is not terminating: an old pod that is terminating but still Ready (or a StatefulSet pod that
comes back under the same name) never satisfies the wait. Every API call carries a
``_request_timeout``; every failure becomes a :class:`K8sError` with one sentence saying what to do.
"""

from __future__ import annotations

import json
import os
import re
import time
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import progress as progressutil

try:
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException

    HAS_K8S = True
    K8S_IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - exercised only without the client
    HAS_K8S = False
    K8S_IMPORT_ERROR = str(exc)
    ApiException = Exception

REQUEST_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # (connect, read) seconds, for every API call
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


class K8sError(Exception):
    """A failure explained in one sentence (``msg``)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class WaitTimeout(K8sError):
    """The replacements were not Ready in time; ``diagnoses`` holds one line per pod."""

    def __init__(self, msg: str, diagnoses: list[str], ready: list[t.Any]) -> None:
        super().__init__(msg)
        self.diagnoses = diagnoses
        self.ready = ready


# -- client ------------------------------------------------------------------------------------


def load_client(kubeconfig: str | None, context: str | None) -> t.Any:
    """An ``ApiClient`` for ``kubeconfig``/``context``; in-cluster config when neither is given and no file exists."""
    if not HAS_K8S:
        raise K8sError(f"the kubernetes Python client is not installed ({K8S_IMPORT_ERROR}); pip install kubernetes")
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    if not kubeconfig and not os.path.exists(path) and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = k8s_client.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException as exc:
            raise K8sError(f"in-cluster configuration failed: {exc}; give kubeconfig") from exc
        return k8s_client.ApiClient(configuration)
    try:
        import yaml

        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        if not isinstance(data, dict) or not isinstance(data.get("contexts"), list):
            raise ValueError("no contexts list found")
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise K8sError(f"kubeconfig {path} is unreadable/invalid: {exc}; check the path") from exc
    names = [c.get("name") for c in data["contexts"] if isinstance(c, dict)]
    if context and context not in names:
        raise K8sError(
            f"context {context} is not in kubeconfig {path}; available: {', '.join(map(str, names)) or 'none'}"
        )
    try:
        return k8s_config.new_client_from_config(config_file=path, context=context, persist_config=False)
    except Exception as exc:  # the loader raises ConfigException, TypeError, KeyError... on odd files
        raise K8sError(f"kubeconfig {path} is unreadable/invalid: {exc}; check the path") from exc


def api_error(exc: BaseException, namespace: str, action: str = "") -> K8sError:
    """One sentence for an ``ApiException`` or a connection failure."""
    where = f" ({action})" if action else ""
    if isinstance(exc, ApiException) and getattr(exc, "status", None):
        message = ""
        try:
            message = json.loads(exc.body or "{}").get("message", "")
        except (ValueError, AttributeError):
            message = str(exc.body or "")
        status = exc.status
        if status == 401:
            return K8sError(
                f"the API server rejected the credentials (401){where}: check the kubeconfig user's token or certificate"
            )
        if status == 403:
            m = re.search(r'User "([^"]*)" cannot (\S+) resource "([^"]+)"', message)
            if m:
                user, verb, resource = m.groups()
                return K8sError(
                    f"RBAC forbids {verb} {resource} in {namespace} for {user}: grant it to the service account/user"
                )
            return K8sError(
                f"RBAC forbids this request{where} in {namespace} ({message}): grant it to the service account/user"
            )
        if status == 404:
            return K8sError(
                f"not found{where}: {message or exc.reason}; check the namespace, the names and the kubeconfig context"
            )
        return K8sError(
            f"the API server answered {status} {exc.reason}{where}: {message or exc.body}; "
            "retry, or check the API server's health and the kubeconfig context"
        )
    return K8sError(
        f"the Kubernetes API server is unreachable{where}: {_transport_reason(exc)}; "
        "check the server address of the kubeconfig context and the network to it"
    )


def _transport_reason(exc: BaseException) -> str:
    """The useful end of a urllib3/OSError chain (``[Errno 111] Connection refused``, a TLS or timeout error)."""
    text = str(getattr(exc, "reason", None) or exc)
    m = re.search(
        r"(\[Errno -?\d+\][^'\)\"]*|Read timed out[^'\)\"]*|timed out|CERTIFICATE_VERIFY_FAILED[^'\)\"]*)", text
    )
    where = re.search(r"host='([^']*)', port=(\d+)", text)
    reason = m.group(1).strip() if m else text
    return f"{reason} ({where.group(1)}:{where.group(2)})" if where and m else reason


def _call(namespace: str, action: str, fn: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    try:
        return fn(*args, **kwargs)
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # first: ApiException is Exception without the client
        raise api_error(exc, namespace, action) from exc
    except ApiException as exc:
        if exc.status:
            raise api_error(exc, namespace, action) from exc
        raise api_error(exc.__cause__ or exc, namespace, action) from exc


# -- selection ---------------------------------------------------------------------------------


def check_namespace(core: t.Any, namespace: str) -> None:
    """Fail when the namespace does not exist. A 403 on namespaces (common for deployers) is not fatal."""
    try:
        core.read_namespace(namespace, _request_timeout=REQUEST_TIMEOUT)
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # first: ApiException is Exception without the client
        raise api_error(exc, namespace) from exc
    except ApiException as exc:
        if exc.status == 404:
            raise K8sError(f"namespace {namespace} does not exist") from exc
        if exc.status == 403:
            return
        raise api_error(exc, namespace, f"get namespace {namespace}") from exc


def _selector_from_labels(match_labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((match_labels or {}).items()))


def workload(
    apps: t.Any, namespace: str, deployment: str | None, statefulset: str | None
) -> tuple[str, str | None, t.Any]:
    """(kind, name, object) of the Deployment or StatefulSet."""
    kind, name = ("deployment", deployment) if deployment else ("statefulset", statefulset)
    read = apps.read_namespaced_deployment if deployment else apps.read_namespaced_stateful_set
    try:
        obj = read(name, namespace, _request_timeout=REQUEST_TIMEOUT)
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # first: ApiException is Exception without the client
        raise api_error(exc, namespace) from exc
    except ApiException as exc:
        if exc.status == 404:
            raise K8sError(f"{kind} {name} does not exist in namespace {namespace}") from exc
        raise api_error(exc, namespace, f"get {kind} {name}") from exc
    return kind, name, obj


def select_pods(
    core: t.Any,
    namespace: str,
    selector: str | None = None,
    deployment: str | None = None,
    statefulset: str | None = None,
    apps: t.Any = None,
) -> tuple[str, list[t.Any]]:
    """(label selector, pods) for a selector or a workload's ``spec.selector.matchLabels``."""
    if not selector:
        if not (deployment or statefulset):
            raise K8sError("give one of label_selector, deployment or statefulset")
        kind, name, obj = workload(apps or k8s_client.AppsV1Api(core.api_client), namespace, deployment, statefulset)
        sel = obj.spec.selector
        selector = _selector_from_labels(sel.match_labels if sel else None)
        if not selector or (sel and sel.match_expressions):
            raise K8sError(f"{kind} {name} has no plain spec.selector.matchLabels; use label_selector instead")
    pods = list_pods(core, namespace, selector)
    return selector, pods


def request_timeout(remaining: float | None = None) -> tuple[float, float]:
    """``REQUEST_TIMEOUT``, shortened so that one call cannot outlast a wait's deadline (at least 1 s each)."""
    if remaining is None:
        return REQUEST_TIMEOUT
    left = max(1.0, remaining)
    return (min(REQUEST_TIMEOUT[0], left), min(REQUEST_TIMEOUT[1], left))


def list_pods(core: t.Any, namespace: str, selector: str, remaining: float | None = None) -> list[t.Any]:
    result = _call(
        namespace,
        "list pods",
        core.list_namespaced_pod,
        namespace,
        label_selector=selector,
        _request_timeout=request_timeout(remaining),
    )
    return list(result.items or [])


# -- pod state ---------------------------------------------------------------------------------


def terminating(pod: t.Any) -> bool:
    return pod.metadata.deletion_timestamp is not None


def pod_ready(pod: t.Any) -> bool:
    """Ready condition True and not terminating."""
    if terminating(pod):
        return False
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def pod_info(pod: t.Any) -> dict[str, t.Any]:
    return {
        "name": pod.metadata.name,
        "uid": pod.metadata.uid,
        "node": pod.spec.node_name if pod.spec else None,
    }


def diagnose(pod: t.Any) -> str:
    """One line: name, phase, conditions that are not True, container waiting reasons, scheduling/attach trouble."""
    status = pod.status
    parts = [f"phase {status.phase if status else 'unknown'}"]
    if terminating(pod):
        parts.append(f"terminating since {pod.metadata.deletion_timestamp.isoformat()}")
    texts: list[str] = []
    for cond in (status.conditions if status else None) or []:
        if cond.status != "True":
            why = ": ".join(x for x in (cond.reason, cond.message) if x)
            parts.append(f"{cond.type}={cond.status}" + (f" ({why})" if why else ""))
            texts.append(f"{cond.reason} {cond.message}")
            if cond.type == "PodScheduled" and cond.reason == "Unschedulable":
                parts.append("Unschedulable")
    statuses = list((status.init_container_statuses if status else None) or []) + list(
        (status.container_statuses if status else None) or []
    )
    for cs in statuses:
        waiting = cs.state.waiting if cs.state else None
        if waiting is not None:
            text = f"container {cs.name} waiting: {waiting.reason or 'unknown'}"
            if waiting.message:
                text += f" ({waiting.message})"
            if waiting.reason in PULL_REASONS and cs.image:
                text += f" [image {cs.image}]"
            parts.append(text)
            texts.append(f"{waiting.reason} {waiting.message}")
        if cs.restart_count:
            last = _last_exit(cs)
            parts.append(f"container {cs.name} restarted {cs.restart_count}x" + (f", {last}" if last else ""))
    if any("Multi-Attach" in (x or "") for x in texts):
        parts.append("Multi-Attach: the volume is still attached to another node")
    return f"{pod.metadata.name}: " + "; ".join(parts)


PULL_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


def _last_exit(cs: t.Any) -> str:
    """``last exit code 1 (Error)`` from a container status's lastState, or ``""``."""
    last = getattr(cs, "last_state", None)
    term = getattr(last, "terminated", None) if last else None
    if term is None:
        return ""
    why = f" ({term.reason})" if term.reason else ""
    return f"last exit code {term.exit_code}{why}"


def next_step(pods: t.Sequence[t.Any], namespace: str) -> str:
    """What to do about pods that are not Ready, from the most telling state among them (one clause)."""
    for pod in pods:
        if terminating(pod) or pod_ready(pod):
            continue
        name = pod.metadata.name
        status = pod.status
        statuses = list((status.init_container_statuses if status else None) or []) + list(
            (status.container_statuses if status else None) or []
        )
        for cs in statuses:
            waiting = cs.state.waiting if cs.state else None
            reason = waiting.reason if waiting else None
            if reason in PULL_REASONS:
                return (
                    f"image {cs.image or '?'} of container {cs.name} cannot be pulled: check the image name and tag "
                    "(chart values image.repository/image.tag), the registry and imagePullSecrets"
                )
            if reason == "CrashLoopBackOff" or (cs.restart_count and not cs.ready):
                last = _last_exit(cs)
                return (
                    f"container {cs.name} of pod {name} keeps crashing"
                    + (f" ({last})" if last else "")
                    + f": read kubectl logs --previous -n {namespace} {name} -c {cs.name}"
                )
            if reason in CONFIG_REASONS:
                return (
                    f"container {cs.name} of pod {name} cannot be created ({reason}): check the Secrets, ConfigMaps "
                    f"and volumes it references (kubectl describe pod -n {namespace} {name})"
                )
        for cond in (status.conditions if status else None) or []:
            if cond.type == "PodScheduled" and cond.reason == "Unschedulable":
                return (
                    f"no node can take pod {name}: free resources or fix its node selector, affinity, tolerations "
                    "or volume claim (kubectl describe pod)"
                )
        text = " ".join(
            f"{getattr(cs.state.waiting, 'message', '') or ''}" for cs in statuses if cs.state and cs.state.waiting
        )
        if "Multi-Attach" in text:
            return (
                "the volume is still attached to another node: use a ReadWriteMany claim, or strategy Recreate so the "
                "old pod releases it first"
            )
    return "check kubectl describe pod and the events in the namespace, or raise the timeout if the pods are only slow"


# -- actions -----------------------------------------------------------------------------------


def delete_pod(core: t.Any, namespace: str, pod: t.Any, grace_period: int | None) -> bool:
    """Delete this exact pod (uid precondition). False when it is already gone or was replaced."""
    body = k8s_client.V1DeleteOptions(
        preconditions=k8s_client.V1Preconditions(uid=pod.metadata.uid),
        grace_period_seconds=grace_period,
    )
    try:
        core.delete_namespaced_pod(pod.metadata.name, namespace, body=body, _request_timeout=REQUEST_TIMEOUT)
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # first: ApiException is Exception without the client
        raise api_error(exc, namespace) from exc
    except ApiException as exc:
        if exc.status in (404, 409):
            return False
        raise api_error(exc, namespace, f"delete pod {pod.metadata.name}") from exc
    return True


def rollout_restart(apps: t.Any, namespace: str, kind: str, name: str, stamp: str) -> None:
    """What ``kubectl rollout restart`` does: bump the restartedAt template annotation."""
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    fn = apps.patch_namespaced_deployment if kind == "deployment" else apps.patch_namespaced_stateful_set
    _call(namespace, f"patch {kind} {name}", fn, name, namespace, body)


def wait_for_new_ready(
    core: t.Any,
    namespace: str,
    selector: str,
    old_uids: t.Collection[str],
    expected: int,
    timeout: float,
    sleep: float = 0.5,
    max_sleep: float | None = None,
    progress: progressutil.Callback | None = None,
) -> list[t.Any]:
    """Poll until ``expected`` pods with a uid not in ``old_uids`` are Ready and not terminating.

    The sleep grows by half each round up to ``max_sleep`` (default 4x ``sleep``, at most 5 s) and
    never past the deadline. Raises :class:`WaitTimeout` with one diagnosis per pod.
    ``progress(new_ready, total=expected, detail=...)`` is called after each poll.
    """
    deadline = time.monotonic() + timeout
    old = set(old_uids)
    cap = max_sleep if max_sleep is not None else max(sleep, min(sleep * 4, 5.0))
    delay = sleep
    while True:
        pods = list_pods(core, namespace, selector, remaining=deadline - time.monotonic())
        remaining = deadline - time.monotonic()
        new_ready = [p for p in pods if p.metadata.uid not in old and pod_ready(p)]
        if progress is not None:
            waiting = sum(1 for p in pods if p.metadata.uid in old)
            progressutil.notify(progress, len(new_ready), expected, f"{len(pods)} pod(s) listed, {waiting} old")
        if len(new_ready) >= expected:
            return sorted(new_ready, key=lambda p: p.metadata.name)
        if remaining <= 0:
            break
        time.sleep(min(delay, max(remaining, 0.01)))
        delay = min(delay * 1.5, cap)
    lines = []
    for pod in sorted(pods, key=lambda p: p.metadata.name):
        tag = "old" if pod.metadata.uid in old else ("new, Ready" if pod_ready(pod) else "new")
        lines.append(f"[{tag}] {diagnose(pod)}")
    summary = " | ".join(lines) if lines else f"no pods match {selector}"
    fresh = [p for p in pods if p.metadata.uid not in old]
    if fresh:
        advice = next_step(sorted(fresh, key=lambda p: p.metadata.name), namespace)
    elif pods:
        advice = "no replacement pod was created: check the workload's controller and events (kubectl get events)"
    else:
        advice = "no pod matches at all: check the selector and the workload's controller and events"
    what = "new Ready pod(s)" if old else "Ready pod(s)"
    msg = (
        f"timed out after {timeout:g}s waiting for {expected} {what} matching {selector} in {namespace}; "
        f"{len(new_ready)} ready: {summary}; next: {advice}"
    )
    raise WaitTimeout(msg, lines, new_ready)
