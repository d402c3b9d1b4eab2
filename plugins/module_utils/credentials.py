# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credential rotation: password rules, htpasswd content, atomic secret files, and the proof.

pypiserver (2.4.2, ``config.py`` ``get_auther``) checks every authenticated request with
passlib's ``HtpasswdFile.load_if_changed()``: it re-reads the htpasswd file whenever its mtime
differs from the one it last loaded. So a rotation needs no restart, provided that

* the file is replaced atomically (a reader never sees half a file), and
* its mtime really changes (on a file system with one-second mtime granularity, two writes in
  the same second would look unchanged; :func:`atomic_write` moves the mtime on when needed).

The proof uses a request that pypiserver authenticates *before* doing anything and that
changes nothing (``_app.py``: the ``auth`` decorator runs before the handler):

* ``update``: ``POST /`` with ``:action=verify``, which pypiserver answers 200 and ignores;
* ``list``: ``GET /simple/``;
* ``download``: ``GET /packages/<a name that cannot exist>``: 404 once authenticated.

Accepted credentials get the success status, refused ones 403 (401 without credentials).
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil

GENERATED_LENGTH = 24  # what the runbook generates when no new password is given
MIN_LENGTH = 12
HTPASSWD_KEY = ".htpasswd"
# A file name pypiserver can never hold (no version, so no package file matches it).
MISSING_FILE = "pypi-ops-credentials-probe-no-such-file"


class CredentialsError(Exception):
    """A failure explained in one sentence (``msg``)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


# ---------------------------------------------------------------- passwords


def password_problem(password: str | None, what: str = "the new password") -> str | None:
    """Why ``password`` cannot be used (None when it can). Never includes the password."""
    if not password:
        return f"{what} is empty"
    if len(password) < MIN_LENGTH:
        return f"{what} has {len(password)} characters, fewer than {MIN_LENGTH}"
    if password != password.strip():
        return f"{what} starts or ends with whitespace, which the credentials file would lose"
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        return f"{what} contains a control character (newline, tab, ...)"
    if " salt=" in password or " ident=" in password:
        return f"{what} contains ' salt=' or ' ident=', which Ansible's password lookup would cut off"
    return None


def check_password(password: str | None, what: str = "the new password") -> None:
    problem = password_problem(password, what)
    if problem:
        raise CredentialsError(
            f"{problem[0].upper()}{problem[1:]}; give another one, or leave it empty to have "
            f"{GENERATED_LENGTH} random letters and digits generated."
        )


# ---------------------------------------------------------------- htpasswd content


def _htpasswd_class() -> t.Any:
    try:
        from passlib.apache import HtpasswdFile
    except ImportError as exc:  # pragma: no cover - depends on the controller
        raise CredentialsError("passlib is missing on the controller; install pypiserver[passlib].") from exc
    return HtpasswdFile


def htpasswd_accepts(content: bytes | None, username: str, password: str) -> bool:
    """Whether htpasswd ``content`` accepts ``username``/``password``."""
    if not content:
        return False
    try:
        ht = _htpasswd_class().from_string(content)
        return bool(ht.check_password(username, password))
    except ValueError:
        return False


def htpasswd_users(content: bytes | None) -> list[str]:
    if not content:
        return []
    try:
        return list(_htpasswd_class().from_string(content).users())
    except ValueError:
        return []


def render_htpasswd(users: dict[str, str], existing: bytes | None = None) -> tuple[bytes, bool]:
    """htpasswd content holding exactly ``users``. Returns (content, changed against ``existing``).

    Entries of ``existing`` whose password already matches are kept as they are (same hash).
    """
    cls = _htpasswd_class()
    changed = existing is None
    try:
        ht = cls.from_string(existing) if existing else cls(new=True)
    except ValueError:
        ht, changed = cls(new=True), True
    for extra in set(ht.users()) - set(users):
        ht.delete(extra)
        changed = True
    for user, password in users.items():
        if ":" in user or not user:
            raise CredentialsError(f"Username {user!r} cannot be used in an htpasswd file; choose one without ':'.")
        try:
            matches = ht.check_password(user, password)
        except ValueError:  # this user's hash is malformed (a hand-edited file or Secret): it is replaced
            matches = False
        if not matches:
            ht.set_password(user, password)
            changed = True
    return ht.to_string(), changed


# ---------------------------------------------------------------- files


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"Cannot read {path}: {exc.strerror}; check its permissions.") from exc


def atomic_write(path: str, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically (temp file in the same directory, fsync, rename).

    The new file's mtime always differs from the old one's (as ``os.path.getmtime`` reports it,
    which is what passlib compares), even where the file system keeps mtimes in whole seconds.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        old_mtime = os.path.getmtime(path) if os.path.exists(path) else None
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    except OSError as exc:
        raise CredentialsError(
            f"Cannot write next to {path}: {exc.strerror}; check the directory's permissions."
        ) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CredentialsError(f"Cannot write {path}: {exc.strerror}; check the directory's permissions.") from exc
    if old_mtime is not None:
        bump = 1
        while os.path.getmtime(path) == old_mtime:
            if bump > 3:
                raise CredentialsError(
                    f"The mtime of {path} does not change on this file system, so pypiserver would not re-read it; "
                    "keep the file on a file system with working mtimes."
                )
            os.utime(path, (old_mtime + bump, old_mtime + bump))
            bump += 1


def read_credentials_file(path: str) -> str | None:
    """The password in a file of Ansible's password lookup format (None when there is none)."""
    raw = read_bytes(path)
    if raw is None:
        return None
    text = raw.decode("utf-8", "surrogateescape").rstrip()
    return text.split(" salt=", 1)[0] or None


def credentials_file_content(password: str) -> bytes:
    """What Ansible's password lookup writes (and reads back): the password and a newline."""
    return password.encode("utf-8") + b"\n"


# ---------------------------------------------------------------- Kubernetes Secret


def b64(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def unb64(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value)
    except ValueError:
        return None


def secret_patch(data: dict[str, str] | None, username: str, password: str) -> tuple[dict[str, str], list[str]]:
    """The ``data`` entries to patch into a pypiserver auth Secret, and the keys they touch.

    ``.htpasswd`` holds exactly ``username``; ``username``/``password`` (read by the chart's helm tests)
    are updated only where the Secret already has them, so no plaintext copy is added.
    Returns ({}, []) when the Secret already holds these credentials.
    """
    data = data or {}
    existing = unb64(data.get(HTPASSWD_KEY))
    content, changed = render_htpasswd({username: password}, existing)
    patch: dict[str, str] = {}
    if changed:
        patch[HTPASSWD_KEY] = b64(content)
    for key, value in (("username", username), ("password", password)):
        if key in data and unb64(data[key]) != value.encode("utf-8"):
            patch[key] = b64(value)
    return patch, sorted(patch)


def rotate_secret(
    core: t.Any, namespace: str, name: str, username: str, password: str, check_mode: bool = False
) -> dict[str, t.Any]:
    """Put new credentials into the pypiserver auth Secret ``namespace/name`` (a merge patch of its ``data``).

    ``core`` is a ``kubernetes.client.CoreV1Api``. Pods that mount the Secret as a volume (not with
    ``subPath``) see the new ``.htpasswd`` after the kubelet's next sync, without a restart.
    """
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import k8s_wait as kw

    check_password(password)
    where = f"Secret {namespace}/{name}"
    try:
        secret = core.read_namespaced_secret(name, namespace, _request_timeout=kw.REQUEST_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - ApiException, or urllib3/OSError: the API server is unreachable
        if isinstance(exc, kw.ApiException) and getattr(exc, "status", None) == 404:
            if _namespace_missing(core, namespace):
                raise CredentialsError(
                    f"Namespace {namespace} does not exist, so {where} cannot either; check pypi_k8s_namespace "
                    "and the kubeconfig context."
                ) from None
            raise CredentialsError(
                f"{where} does not exist; check pypi_k8s_namespace, pypi_k8s_release and auth.existingSecret."
            ) from None
        raise CredentialsError(k8s_sentence(kw.api_error(exc, namespace, f"get secret {name}"))) from None
    data = dict(secret.data or {})
    if HTPASSWD_KEY not in data:
        raise CredentialsError(
            f"{where} has no '{HTPASSWD_KEY}' key, so pypiserver does not read its credentials from it; "
            "give the Secret the chart mounts (auth.existingSecret, or <release>-pypiserver-auth)."
        )
    patch, keys = secret_patch(data, username, password)
    result: dict[str, t.Any] = {
        "changed": bool(patch),
        "secret": name,
        "namespace": namespace,
        "keys": keys,
        "resource_version": getattr(secret.metadata, "resource_version", None),
    }
    if patch and not check_mode:
        try:
            out = core.patch_namespaced_secret(name, namespace, {"data": patch}, _request_timeout=kw.REQUEST_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - ApiException, urllib3/OSError
            raise CredentialsError(k8s_sentence(kw.api_error(exc, namespace, f"patch secret {name}"))) from None
        result["resource_version"] = getattr(getattr(out, "metadata", None), "resource_version", None)
    return result


def _namespace_missing(core: t.Any, namespace: str) -> bool:
    """True only when the API server says the namespace does not exist (a 403 or an error proves nothing)."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import k8s_wait as kw

    try:
        core.read_namespace(namespace, _request_timeout=kw.REQUEST_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - an ApiException, or the API server is unreachable now: not-found stands
        return isinstance(exc, kw.ApiException) and getattr(exc, "status", None) == 404
    return False


def k8s_sentence(err: t.Any) -> str:
    """A K8sError's message as one sentence (capital first letter, final period)."""
    msg = str(getattr(err, "msg", err)).rstrip(".")
    return msg[:1].upper() + msg[1:] + "."


# ---------------------------------------------------------------- the proof


class Probe(t.NamedTuple):
    action: str  # the pypiserver auth action it exercises
    method: str
    path: str  # relative to the base URL
    data: dict[str, str] | None
    accepted: tuple[int, ...]  # status when authenticated
    label: str


def choose_probe(auth_actions: t.Sequence[str]) -> Probe:
    """A request pypiserver authenticates first and that changes nothing, for one of ``auth_actions``."""
    actions = [a.strip().lower() for a in auth_actions if a and a.strip()]
    if "update" in actions:
        return Probe("update", "POST", "", {":action": "verify"}, (200,), "POST / :action=verify (a no-op)")
    if "list" in actions:
        return Probe("list", "GET", "simple/", None, (200,), "GET /simple/")
    if "download" in actions:
        return Probe(
            "download", "GET", f"packages/{MISSING_FILE}", None, (404,), "GET of a package file that does not exist"
        )
    raise CredentialsError(
        "The server authenticates nothing (its auth actions are empty), so there are no credentials to rotate or prove; "
        "deploy it with pypi_auth_actions set (for example [update])."
    )


def probe_status(session: t.Any, base_url: str, probe: Probe, opts: httputil.ClientOptions, auth: t.Any) -> int:
    """One probe request; returns the HTTP status. Transport errors raise CredentialsError (one sentence)."""
    url = base_url.rstrip("/") + "/" + probe.path
    try:
        resp = session.request(
            probe.method, url, data=probe.data, auth=auth, timeout=opts.timeout, allow_redirects=False
        )
        resp.close()
    except Exception as exc:  # noqa: BLE001 - transport errors become one sentence
        raise CredentialsError(httputil.describe_error(exc, url, opts)) from None
    return resp.status_code


class ProofState(t.NamedTuple):
    accepted: int | None
    refused: int | None
    ok: bool
    problem: str


def _judge(probe: Probe, accepted: int | None, refused: int | None) -> ProofState:
    problems = []
    if accepted is not None and accepted not in probe.accepted:
        why = "refused" if accepted in (401, 403) else f"answered unexpectedly ({httputil.http_status_hint(accepted)})"
        problems.append(f"the credentials that must work are {why} (HTTP {accepted})")
    if refused is not None and refused not in (401, 403):
        problems.append(f"the credentials that must be refused still get HTTP {refused}")
    return ProofState(accepted, refused, not problems, " and ".join(problems))


def prove(
    base_url: str,
    username: str,
    opts: httputil.ClientOptions,
    auth_actions: t.Sequence[str],
    password: str | None = None,
    refused_password: str | None = None,
    wait: float = 0.0,
    consecutive: int = 1,
    hint: str = "",
    sleep: t.Callable[[float], None] = time.sleep,
) -> dict[str, t.Any]:
    """Poll until ``password`` is accepted and ``refused_password`` refused, ``consecutive`` times in a row.

    First checks that the probe is refused without credentials (401), so that an accepted answer
    means something. Raises CredentialsError with one sentence (ending with ``hint``) at the deadline.
    """
    if password is None and refused_password is None:
        raise CredentialsError("Nothing to prove: give the password that must work, the one that must fail, or both.")
    probe = choose_probe(auth_actions)
    session = httputil.make_session(opts._replace(username=None, password=None), pool=2)
    safe = httputil.redact_url(base_url)
    start = time.monotonic()
    deadline = start + max(0.0, wait)
    try:
        anonymous = probe_status(session, base_url, probe, opts, None)
        if 300 <= anonymous < 400:
            raise CredentialsError(
                f"{safe} answers {probe.label} with a redirect (HTTP {anonymous}); give the URL it redirects to "
                "(https, or with the path prefix) as the server's base URL."
            )
        if anonymous != 401:
            raise CredentialsError(
                f"{safe} answered HTTP {anonymous} to {probe.label} without credentials instead of 401, so it does not "
                f"authenticate '{probe.action}' and the proof would mean nothing; check pypi_auth_actions against the server."
            )
        attempts, streak, delay = 0, 0, 0.2
        while True:
            attempts += 1
            try:
                accepted = (
                    probe_status(session, base_url, probe, opts, (username, password)) if password is not None else None
                )
                refused = (
                    probe_status(session, base_url, probe, opts, (username, refused_password))
                    if refused_password is not None
                    else None
                )
                state = _judge(probe, accepted, refused)
                problem = f"{state.problem} for user {username!r} at {safe} ({probe.label})"
            except CredentialsError as exc:  # transport error: retried until the deadline
                accepted = refused = None
                state = ProofState(None, None, False, exc.msg)
                problem = exc.msg.rstrip(".")
            streak = streak + 1 if state.ok else 0
            if streak >= max(1, consecutive):
                return {
                    "probe": probe.label,
                    "action": probe.action,
                    "anonymous_status": anonymous,
                    "accepted_status": accepted,
                    "refused_status": refused,
                    "attempts": attempts,
                    "waited": round(time.monotonic() - start, 3),
                }
            if state.ok:
                sleep(0.2)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CredentialsError(
                    f"After {time.monotonic() - start:.1f}s and {attempts} attempt(s), {problem}"
                    + (f"; {hint}" if hint else ".")
                )
            sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)
    finally:
        session.close()
