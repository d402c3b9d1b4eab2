# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diagnostics bundle of a failed run: ``<report dest>/diagnostics/``, written before the teardown.

What it holds depends on the target (see :func:`collect`):

- local, local_s3: each pypiserver process's state (PID, command line, start time, alive or not, health), the tail
  of its log, ``df`` of the package store, the nginx front's logs (replicas), the S3 server's and s3fs's state and
  log tails (local_s3);
- url (and every target with a base URL): the requests the failing tests would have made (the root, ``/simple/``,
  the probe project's page, ``/health``), redirects not followed, with status, headers and the first 4 KiB of the
  body;
- kubernetes: the release pods' logs (current and previous container), the namespace's events sorted by time,
  ``kubectl describe`` of the pods, PVCs and PVs, ``helm status`` and ``helm history``, the helm test pods' logs.

Rules: nothing written may hold a secret (every text goes through :meth:`Redactor.redact`: the run's secrets in
every form a log or a header could carry them, Authorization/Cookie headers, Basic/Bearer tokens, passwords in
URLs and ``key=value`` pairs), each file is capped (a tail for logs, a head for bodies) and so is the whole bundle,
and collection stops at a deadline: whatever was collected by then is written, with the rest named in index.md.
Nothing here raises to the caller; problems become notes.
"""

from __future__ import annotations

import base64
import datetime
import functools
import glob
import html
import json
import os
import re
import shutil
import threading
import time
import typing as t
import urllib.parse

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_s3, local_server

BUNDLE_DIR = "diagnostics"
INDEX = "index.md"
FILE_CAP = 64 * 1024
TOTAL_CAP = 2 * 1024 * 1024
INDEX_RESERVE = 32 * 1024  # index.md's share of the total cap
BODY_HEAD = 4096
PROBE_TIMEOUT = 8.0  # one HTTP probe in all (connect, headers, the body's head)
LOG_LINES = 200
REDACTED = "[REDACTED]"
REMOVED = "[removed]"
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
MIN_PARTIAL = 4  # a cut that leaves this many characters of a secret's start (or end) trims them too

_HEADER_LINE = re.compile(r"(?im)^(\s*(?:proxy-)?authorization|\s*set-cookie|\s*cookie)(\s*:\s*)[^\r\n]*$")
_TOKEN = re.compile(r"(?i)\b(basic|bearer|token)(\s+)[A-Za-z0-9+/=._~-]{8,}")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@:]*:[^/\s@]*@")
_KEY_VALUE = re.compile(
    r"(?i)\b(password|passwd|secret[_-]?key|secret[_-]?access[_-]?key|aws[_-]?secret[_-]?access[_-]?key"
    r"|session[_-]?token|api[_-]?key)([\"']?\s*[:=]\s*[\"']?)[^\s\"',&;]+"
)


# ---------------------------------------------------------------- redaction


def secret_forms(secrets: t.Iterable[str | None], usernames: t.Iterable[str | None] = ()) -> list[str]:
    """Every spelling of each secret that a log, a header, a URL or a JSON document could carry: the secret itself,
    URL-quoted, JSON- and HTML-escaped, base64, and base64 of ``user:secret`` (an HTTP Basic header) for each user
    name (and an empty one). Longest first, so that a longer form is replaced before a shorter one inside it."""
    users = {u for u in usernames if u is not None} | {""}
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        secret = str(secret)
        forms.update(
            {
                secret,
                urllib.parse.quote(secret, safe=""),
                urllib.parse.quote_plus(secret),
                json.dumps(secret)[1:-1],
                html.escape(secret, quote=True),
            }
        )
        for user in users:
            for raw in (secret, f"{user}:{secret}"):  # base64 with its padding, and without (a cut header)
                encoded = base64.b64encode(raw.encode()).decode()
                forms.update({encoded, encoded.rstrip("=")})
    return sorted((f for f in forms if f), key=lambda f: (-len(f), f))


class Redactor:
    """Removes the run's secrets and anything that looks like a credential from a text."""

    def __init__(self, secrets: t.Iterable[str | None] = (), usernames: t.Iterable[str | None] = ()):
        self.forms = secret_forms(secrets, usernames)
        self._pattern = re.compile("|".join(re.escape(f) for f in self.forms)) if self.forms else None

    def redact(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        text = _HEADER_LINE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REMOVED}", text)
        text = _TOKEN.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
        return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)

    def trim_partials(self, text: str, start: bool, end: bool) -> str:
        """After a cut: drop a secret's first (``end``) or last (``start``) characters left at the cut."""
        for form in self.forms:
            for k in range(len(form) - 1, MIN_PARTIAL - 1, -1):
                if end and text.endswith(form[:k]):
                    text = text[:-k]
                    break
                if start and text.startswith(form[-k:]):
                    text = text[k:]
                    break
        return text

    def headers(self, items: t.Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """HTTP headers with Authorization, Cookie and Set-Cookie values removed and secrets redacted in the rest."""
        out = []
        for key, value in items:
            if key.lower() in SENSITIVE_HEADERS:
                out.append((key, REMOVED))
            else:
                out.append((key, self.redact(str(value))))
        return out


def redact_argv(argv: t.Sequence[str], redactor: Redactor) -> list[str]:
    """A command line without secrets: options that take a password or key lose their value too."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        arg = str(arg)
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if re.fullmatch(r"--?(password|passwd|secret[-_]?key|token|api[-_]?key)", arg, re.I):
            hide_next = True
        out.append(redactor.redact(arg))
    return out


# ---------------------------------------------------------------- the bundle


def cut(data: bytes, cap: int, keep: str) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of ``data``: its end (``keep='tail'``, from a line start) or its start (``head``)."""
    if len(data) <= cap:
        return data, False
    if keep == "tail":
        piece = data[-cap:]
        newline = piece.find(b"\n")
        if 0 <= newline < len(piece) - 1 and newline < 4096:
            piece = piece[newline + 1 :]
        return piece, True
    return data[:cap], True


class Bundle:
    """The files of one diagnostics bundle, each redacted and capped; thread safe; closed at the deadline."""

    def __init__(
        self,
        root: str,
        redactor: Redactor,
        file_cap: int = FILE_CAP,
        total_cap: int = TOTAL_CAP,
    ):
        self.root = root
        self.redactor = redactor
        self.file_cap = max(1024, int(file_cap))
        self.total_cap = max(self.file_cap, int(total_cap))
        self.used = 0
        self.files: list[dict[str, t.Any]] = []
        self.skipped: list[dict[str, str]] = []
        self.notes: list[str] = []
        self.causes: list[str] = []
        self.closed = False
        self.lock = threading.RLock()

    def note(self, text: str) -> None:
        with self.lock:
            if not self.closed:
                self.notes.append(self.redactor.redact(" ".join(str(text).split())))

    def cause(self, text: str) -> None:
        with self.lock:
            if not self.closed:
                self.causes.append(self.redactor.redact(" ".join(str(text).split())))

    def amend(self, prefix: str, text: str) -> bool:
        """Add ``text`` to the first finding that starts with ``prefix`` (a crash loop and its container's last log
        line in one sentence); False when there is none."""
        with self.lock:
            for n, found in enumerate(self.causes):
                if not self.closed and found.startswith(prefix):
                    self.causes[n] = found + self.redactor.redact(" ".join(str(text).split()))
                    return True
        return False

    def add(self, name: str, what: str, text: str, keep: str = "tail") -> str | None:
        """Write ``text`` (redacted, capped) as ``name`` under the bundle; its path, or None when not written."""
        clean = self.redactor.redact(text)
        data = clean.encode("utf-8", "replace")
        with self.lock:
            if self.closed:
                return None
            room = self.total_cap - INDEX_RESERVE - self.used
            cap = min(self.file_cap, room)
            if cap < 512:
                self.skipped.append(
                    {"name": name, "what": what, "why": f"the bundle's total cap ({self.total_cap} bytes)"}
                )
                return None
            by_total = cap < self.file_cap and len(data) > cap
            marker_room = 200
            body, truncated = cut(data, cap - marker_room if len(data) > cap else cap, keep)
            if truncated:
                piece = body.decode("utf-8", "ignore")
                piece = self.redactor.trim_partials(piece, start=keep == "tail", end=keep == "head")
                which = (
                    f"the bundle's total cap ({self.total_cap} bytes)"
                    if by_total
                    else f"the per-file cap ({self.file_cap} bytes)"
                )
                kept = "last" if keep == "tail" else "first"
                marker = f"[truncated: kept the {kept} {len(piece.encode())} of {len(data)} bytes; {which}]\n"
                text_out = (
                    marker + piece if keep == "tail" else piece + ("\n" if not piece.endswith("\n") else "") + marker
                )
                data = text_out.encode("utf-8", "replace")
            path = os.path.join(self.root, name)
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as handle:
                    handle.write(data)
            except OSError as exc:
                self.notes.append(f"{name} could not be written: {exc.strerror or exc}.")
                return None
            self.used += len(data)
            self.files.append({"name": name, "what": what, "bytes": len(data), "truncated": truncated})
            return path

    def close(self) -> None:
        with self.lock:
            self.closed = True


# ---------------------------------------------------------------- small readers


def utc(ts: float | None) -> str:
    if not ts:
        return "unknown"
    try:
        return datetime.datetime.fromtimestamp(float(ts), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return "unknown"


def read_tail(path: str, max_bytes: int, lines: int = LOG_LINES) -> tuple[str, int] | None:
    """The last ``lines`` lines (at most ``max_bytes`` plus a margin) of a file, and its size; None if unreadable.
    A line cut at the start of the window is dropped whole (it could be the end of a secret)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            start = max(0, size - max_bytes - 4096)
            handle.seek(start)
            raw = handle.read()
    except OSError:
        return None
    text = raw.decode("utf-8", "replace")
    parts = text.splitlines()
    if start > 0 and parts:
        parts = parts[1:]
    return "\n".join(parts[-lines:]) + ("\n" if parts else ""), size


_KUBECTL_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) ?")


def last_line(text: str) -> str:
    """The last line with content, without the RFC 3339 stamp ``kubectl logs --timestamps`` puts before each line
    (a stamp alone is an empty line: a program's final newline)."""
    for line in reversed(text.splitlines()):
        line = _KUBECTL_STAMP.sub("", line)
        if line.strip() and not line.startswith("[truncated"):
            return " ".join(line.split())[:300]
    return ""


def _read_json(path: str) -> dict[str, t.Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def process_state(pid: t.Any, token: t.Any, redactor: Redactor) -> dict[str, t.Any]:
    """What /proc says of a recorded process: alive (same start token), state, RSS, its live command line."""
    out: dict[str, t.Any] = {"pid": pid, "alive": False}
    if not isinstance(pid, int) or pid <= 0:
        out["why"] = "no PID recorded"
        return out
    current = local_server.proc_start_token(pid)
    if current is None:
        out["why"] = "no such process (exited)"
        return out
    if token is not None and str(current) != str(token):
        out["why"] = "the PID now belongs to another process (the recorded one exited)"
        return out
    out["alive"] = True
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _sep, value = line.partition(":")
                if key in ("State", "VmRSS", "Threads"):
                    out[key.lower()] = " ".join(value.split())
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
        out["cmdline"] = redact_argv([a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")], redactor)
    except OSError:
        pass
    return out


def statvfs_text(path: str) -> tuple[str, str | None]:
    """``df`` of ``path`` as text, and a cause when it is full or unreachable."""
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return (
            f"path: {path}\nerror: {exc.strerror or exc}\n",
            f"the package store {path} is unreachable ({exc.strerror or exc})",
        )
    total = st.f_blocks * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    free = st.f_bfree * st.f_frsize
    used = total - free
    pct = (100.0 * used / total) if total else 0.0
    lines = [
        f"path: {path}",
        f"size: {total} bytes ({total / 2**30:.2f} GiB)",
        f"used: {used} bytes ({pct:.1f}%)",
        f"available: {avail} bytes ({avail / 2**30:.2f} GiB)",
        f"inodes: {st.f_files} total, {st.f_ffree} free",
        f"read-only: {bool(st.f_flag & os.ST_RDONLY)}",
    ]
    cause = None
    if total and avail < 1024 * 1024:
        cause = f"the package store {path} is full ({avail} bytes available)"
    elif st.f_flag & os.ST_RDONLY:
        cause = f"the package store {path} is mounted read-only"
    return "\n".join(lines) + "\n", cause


def dir_listing(path: str, deadline: float, limit: int = 500) -> str:
    """The package directory's files with sizes (at most ``limit`` entries, bounded in time)."""
    rows: list[str] = []
    count = 0
    total = 0
    try:
        for base, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(base, name)
                try:
                    size = os.lstat(full).st_size
                except OSError:
                    size = -1
                count += 1
                total += max(size, 0)
                if len(rows) < limit:
                    rows.append(f"{size:>12}  {os.path.relpath(full, path)}")
                if time.monotonic() > deadline:
                    rows.append("[listing stopped at its time bound]")
                    return "\n".join(rows) + "\n"
    except OSError as exc:
        return f"cannot list {path}: {exc.strerror or exc}\n"
    more = f"\n[{count - limit} more not listed]" if count > limit else ""
    return f"{count} files, {total} bytes\n" + "\n".join(rows) + more + "\n"


# ---------------------------------------------------------------- local and local_s3


def _process_md(title: str, state: dict[str, t.Any] | None, proc: dict[str, t.Any], extra: list[str]) -> str:
    lines = [f"# {title}", ""]
    if state is None:
        lines.append("No state record: the process was never started from this state directory, or was torn down.")
        return "\n".join(lines) + "\n"
    lines += [
        f"- PID: {proc.get('pid')}",
        f"- alive: {'yes' if proc.get('alive') else 'no'}" + (f" ({proc['why']})" if proc.get("why") else ""),
    ]
    for key in ("state", "vmrss", "threads"):
        if proc.get(key):
            lines.append(f"- {key}: {proc[key]}")
    lines += extra
    return "\n".join(lines) + "\n"


class Collector:
    """Runs the collection steps of one bundle in a worker thread, each step guarded; the caller waits for the
    deadline at most."""

    def __init__(self, bundle: Bundle, deadline: float, module: t.Any = None):
        self.bundle = bundle
        self.deadline = deadline
        self.module = module
        self.steps: list[tuple[str, t.Callable[[], t.Any]]] = []
        self.current = ""
        self.done: list[str] = []

    def remaining(self, cap: float = 1e9) -> float:
        return max(0.0, min(cap, self.deadline - time.monotonic()))

    def step(self, label: str, func: t.Callable[[], t.Any]) -> None:
        self.steps.append((label, func))

    def _work(self) -> None:
        for label, func in self.steps:
            if self.remaining() <= 0:
                return
            self.current = label
            try:
                func()
            except Exception as exc:  # noqa: BLE001 - a failing step is a note, never a failed collection
                self.bundle.note(f"{label}: {type(exc).__name__}: {exc}")
            self.done.append(label)
        self.current = ""

    def run(self) -> list[str]:
        """Run the steps until the deadline; the labels of the steps that did not finish."""
        worker = threading.Thread(target=self._work, name="diagnostics", daemon=True)
        worker.start()
        worker.join(self.remaining())
        self.bundle.close()
        return [label for label, _func in self.steps if label not in self.done]

    # ---- shared pieces

    def log_tail(self, path: str, name: str, what: str) -> str:
        got = read_tail(path, self.bundle.file_cap)
        if got is None:
            self.bundle.skipped.append({"name": name, "what": what, "why": f"{path} does not exist or is unreadable"})
            return ""
        text, size = got
        header = f"# tail of {path} ({size} bytes in all; last {LOG_LINES} lines at most)\n"
        self.bundle.add(name, what, header + text)
        return self.bundle.redactor.redact(text)

    def run_tool(self, argv: list[str], timeout: float = 20.0, env: dict[str, str] | None = None) -> tuple[int, str]:
        from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import runner

        budget = self.remaining(timeout)
        if budget < 1:
            return 124, "not run: the diagnostics deadline passed"
        if not shutil.which(argv[0]) and not os.access(argv[0], os.X_OK):
            return 127, f"{argv[0]} is not installed (not on PATH)"
        res = runner.run(self.module, argv, budget, env=env)
        text = (res.out or "") + (("\n--- stderr ---\n" + res.err) if res.err and res.err.strip() else "")
        if res.timed_out:
            text += f"\n[stopped after {budget:.0f} s]"
        return res.rc, text


def collect_server(c: Collector, state_dir: str, prefix: str, title: str) -> None:
    """One pypiserver's state record, process, health and log tail (``<prefix>process.md``, ``<prefix>server.log``)."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls

    state = _read_json(os.path.join(state_dir, ls.STATE_FILE))
    proc = process_state((state or {}).get("pid"), (state or {}).get("pid_start"), c.bundle.redactor) if state else {}
    extra: list[str] = []
    health = ""
    if state:
        extra += [
            f"- started: {utc(state.get('started_at'))}",
            f"- recorded command line: {' '.join(redact_argv(state.get('argv') or [], c.bundle.redactor))}",
        ]
        if proc.get("cmdline"):
            extra.append(f"- live command line: {' '.join(proc['cmdline'])}")
        extra += [f"- package directory: {state.get('package_dir')}", f"- port: {state.get('port')}"]
        if proc.get("alive"):
            host, port = state.get("host", "127.0.0.1"), state.get("port")
            url = f"http://{host}:{port}{state.get('health_endpoint', '/health')}"
            probe = http_probe("GET", url, c.bundle.redactor, c.remaining(3.0))
            health = f"{probe.get('status') or ''} {probe.get('reason') or probe.get('error') or ''}".strip()
            extra.append(f"- health {url}: {health}")
    c.bundle.add(
        f"{prefix}process.md",
        f"{title}: PID, command line, start time, alive or not, health",
        _process_md(title, state, proc, extra),
    )
    log = (state or {}).get("log_file") or os.path.join(state_dir, ls.LOG_FILE)
    tail = c.log_tail(log, f"{prefix}server.log", f"{title}: the last lines of its log")
    if state and not proc.get("alive"):
        line = last_line(tail)
        c.bundle.cause(
            f"{title} process {proc.get('pid')} is not running ({proc.get('why')}); last log line: {line or '(empty log)'}"
        )
    elif state and health and not health.startswith("200"):
        c.bundle.cause(f"{title} process {proc.get('pid')} is running but its health check answered: {health}")


def collect_local(c: Collector, state_dir: str, storage_path: str) -> None:
    if not state_dir or not os.path.isdir(state_dir):
        c.bundle.note(f"the local state directory {state_dir or '(none)'} does not exist: nothing local to collect")
        c.bundle.cause(f"no local server state in {state_dir or '(none)'}: the server never started or was removed")
        return
    c.step("pypiserver", lambda: collect_server(c, state_dir, "local/", "pypiserver"))
    for replica in sorted(glob.glob(os.path.join(state_dir, "replica-*"))):
        n = os.path.basename(replica)
        c.step(n, functools.partial(collect_server, c, replica, f"local/{n}/", f"pypiserver {n}"))
    front = os.path.join(state_dir, "front")
    if os.path.isdir(front):
        c.step("nginx front", lambda: collect_front(c, front))
    s3_dir = os.path.join(state_dir, "s3")
    if os.path.isdir(s3_dir):
        c.step("s3", lambda: collect_s3(c, s3_dir))
    package_dir = storage_path or (_read_json(os.path.join(state_dir, "server.json")) or {}).get("package_dir") or ""
    if package_dir:
        c.step("df", lambda: collect_df(c, package_dir))


def collect_df(c: Collector, path: str) -> None:
    text, cause = statvfs_text(path)
    listing = dir_listing(path, time.monotonic() + c.remaining(5.0)) if os.path.isdir(path) else ""
    c.bundle.add(
        "local/df.txt", "df of the package store, and its files with sizes", text + "\n" + listing, keep="head"
    )
    if cause:
        c.bundle.cause(cause)


def collect_front(c: Collector, front_dir: str) -> None:
    state = _read_json(os.path.join(front_dir, "front.json"))
    proc = process_state((state or {}).get("pid"), (state or {}).get("pid_start"), c.bundle.redactor) if state else {}
    extra = [f"- upstreams: {', '.join(map(str, (state or {}).get('upstreams') or []))}"] if state else []
    c.bundle.add(
        "local/front/process.md", "the nginx front: PID, alive or not", _process_md("nginx front", state, proc, extra)
    )
    for path in sorted(glob.glob(os.path.join(front_dir, "*.log"))):
        name = os.path.basename(path)
        c.log_tail(path, f"local/front/{name}", f"the nginx front's {name} (tail)")
    if state and not proc.get("alive"):
        c.bundle.cause(f"the nginx front (process {proc.get('pid')}) before the replicas is not running")


def collect_s3(c: Collector, s3_dir: str) -> None:
    state = _read_json(os.path.join(s3_dir, "s3.json"))
    lines = ["# S3 storage (moto + s3fs)", ""]
    if not state:
        lines.append("No s3.json state record: the S3 server was never started or was torn down.")
    else:
        mounts = [(state.get("s3fs_pid"), state.get("s3fs_token"), state.get("mountpoint"))]
        mounts += [
            (m.get("s3fs_pid"), m.get("s3fs_token"), m.get("mountpoint")) for m in state.get("extra_mounts") or []
        ]
        moto = process_state(state.get("moto_pid"), state.get("moto_token"), c.bundle.redactor)
        lines += [
            f"- S3 endpoint: http://127.0.0.1:{state.get('port')}",
            f"- bucket: {state.get('bucket')}, prefix: {state.get('prefix')}",
            f"- moto PID {moto.get('pid')}: {'alive' if moto.get('alive') else 'NOT running (' + str(moto.get('why')) + ')'}",
        ]
        if not moto.get("alive"):
            c.bundle.cause(f"the S3 server (moto, process {moto.get('pid')}) is not running")
        for pid, token, mnt in mounts:
            proc = process_state(pid, token, c.bundle.redactor)
            mounted = bool(mnt) and local_s3.is_mount(str(mnt))
            dead = mounted and not os.path.ismount(str(mnt))  # in the mount table, but nothing answers behind it
            lines.append(
                f"- s3fs PID {pid}: {'alive' if proc.get('alive') else 'NOT running (' + str(proc.get('why')) + ')'}; "
                f"{mnt}: {('a dead mount (nothing serves it)' if dead else 'mounted') if mounted else 'NOT mounted'}"
            )
            if not proc.get("alive"):
                c.bundle.cause(f"s3fs process {pid} (mount {mnt}) is not running")
            elif not mounted:
                c.bundle.cause(f"the bucket is not mounted at {mnt}")
    c.bundle.add(
        "s3/state.md", "the S3 server and s3fs mounts: PIDs, alive or not, mounted or not", "\n".join(lines) + "\n"
    )
    for path in sorted(glob.glob(os.path.join(s3_dir, "*.log"))):
        name = os.path.basename(path)
        c.log_tail(path, f"s3/{name}", f"{name} (tail)")


# ---------------------------------------------------------------- HTTP probes (every target with a URL)


def http_probe(
    method: str,
    url: str,
    redactor: Redactor,
    timeout: float,
    auth: tuple[str, str] | None = None,
    validate_certs: bool = True,
    ca_path: str | None = None,
    body_head: int = BODY_HEAD,
) -> dict[str, t.Any]:
    """One request, redirects not followed, every wait bounded by ``timeout``: status, headers and the body's head."""
    import http.client
    import ssl

    parts = urllib.parse.urlsplit(url)
    safe_url = redactor.redact(url)
    out: dict[str, t.Any] = {"method": method, "url": safe_url, "request_headers": []}
    if timeout <= 0.2:
        out["error"] = "not sent: the diagnostics deadline passed"
        return out
    headers = {"User-Agent": "pypi_ops.pypiserver diagnostics", "Accept": "text/html, */*"}
    if auth and auth[0]:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    out["request_headers"] = redactor.headers(headers.items())
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host = parts.hostname or ""
    start = time.monotonic()
    conn: t.Any = None
    try:
        if parts.scheme == "https":
            ctx = ssl.create_default_context(cafile=ca_path or None)
            if not validate_certs:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=ctx)
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
        else:
            out["error"] = f"not an http(s) URL: {safe_url}"
            return out
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        out["status"] = resp.status
        out["reason"] = resp.reason
        out["headers"] = redactor.headers(resp.getheaders())
        data = b""
        end = start + timeout
        while len(data) < body_head + 512 and time.monotonic() < end and method != "HEAD":
            block = resp.read1(body_head + 512 - len(data))
            if not block:
                break
            data += block
        out["body_bytes_read"] = len(data)
        text = redactor.redact(data.decode("utf-8", "replace"))
        head = text.encode("utf-8")[:body_head].decode("utf-8", "ignore")
        if len(head) < len(text):
            head = redactor.trim_partials(head, start=False, end=True)
            out["body_truncated"] = True
        out["body_head"] = head
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        out["error"] = f"{type(exc).__name__}: {reason}" if str(reason) else type(exc).__name__
    finally:
        out["seconds"] = round(time.monotonic() - start, 3)
        if conn is not None:
            conn.close()
    return out


def probe_text(probe: dict[str, t.Any]) -> str:
    lines = [f"{probe['method']} {probe['url']}"]
    lines += [f"> {k}: {v}" for k, v in probe.get("request_headers", [])]
    if "error" in probe:
        lines.append(f"error: {probe['error']}")
    if "status" in probe:
        lines.append(f"< HTTP {probe['status']} {probe.get('reason', '')}")
        lines += [f"< {k}: {v}" for k, v in probe.get("headers", [])]
    lines.append(f"time: {probe.get('seconds')} s")
    if "body_head" in probe:
        more = " (truncated)" if probe.get("body_truncated") else ""
        lines += ["", f"--- body: first {len(probe['body_head'].encode())} bytes{more} ---", probe["body_head"]]
    return "\n".join(lines) + "\n"


def probe_urls(server: dict[str, t.Any], probe_project: str) -> list[tuple[str, str]]:
    base = str(server.get("base_url") or "")
    if not base:
        return []
    base = base if base.endswith("/") else base + "/"
    simple = str(server.get("simple_url") or base + "simple/")
    simple = simple if simple.endswith("/") else simple + "/"
    out = [("root", base), ("simple", simple)]
    if probe_project:
        name = re.sub(r"[-_.]+", "-", probe_project).lower()
        out.append(("project", f"{simple}{urllib.parse.quote(name)}/"))
    health = str(server.get("health_url") or "")
    if health:
        out.append(("health", health))
    return out


def collect_http(
    c: Collector, server: dict[str, t.Any], probe_project: str, auth: tuple[str, str] | None, tls: dict[str, t.Any]
) -> None:
    urls = probe_urls(server, probe_project)
    if not urls:
        c.bundle.note("no base URL is known for the target (the deploy failed before publishing it): no HTTP probes")
        return
    hung = ""
    for n, (label, url) in enumerate(urls, 1):
        if hung:  # a server that let one request time out would hold each of the others as long
            c.bundle.skipped.append(
                {"name": f"http/{n:02d}-{label}.txt", "what": f"GET {c.bundle.redactor.redact(url)}", "why": hung}
            )
            continue
        probe = http_probe(
            "GET",
            url,
            c.bundle.redactor,
            c.remaining(PROBE_TIMEOUT),
            auth,
            bool(tls.get("validate_certs", True)),
            tls.get("ca_path") or None,
        )
        if "timed out" in str(probe.get("error", "")) or "TimeoutError" in str(probe.get("error", "")):
            hung = f"not sent: GET {probe['url']} timed out, so the server is not answering"
        c.bundle.add(
            f"http/{n:02d}-{label}.txt",
            f"GET {probe['url']}: request, response status, headers, body head",
            probe_text(probe),
            keep="head",
        )
        if "error" in probe:
            c.bundle.cause(f"GET {probe['url']} failed: {probe['error']}")
        elif int(probe.get("status") or 0) >= 500:
            c.bundle.cause(f"GET {probe['url']} answered HTTP {probe['status']} {probe.get('reason', '')}".strip())
        elif label in ("simple", "health") and int(probe.get("status") or 0) not in (200, 401, 403):
            c.bundle.cause(f"GET {probe['url']} answered HTTP {probe['status']} {probe.get('reason', '')}".strip())


# ---------------------------------------------------------------- kubernetes


class K8s(t.NamedTuple):
    namespace: str
    release: str
    selector: str
    kubeconfig: str = ""
    context: str = ""
    kubectl: str = "kubectl"
    helm: str = "helm"

    def kubectl_argv(self, *args: str) -> list[str]:
        argv = [self.kubectl or "kubectl"]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.context:
            argv += ["--context", self.context]
        return argv + ["--request-timeout=15s", "-n", self.namespace, *args]

    def helm_argv(self, *args: str) -> list[str]:
        argv = [self.helm or "helm", *args]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.context:
            argv += ["--kube-context", self.context]
        return argv + ["-n", self.namespace]


MAX_PODS = 10


def pod_summary(pod: dict[str, t.Any]) -> tuple[list[str], list[str]]:
    """Lines describing a pod's containers, and causes (CrashLoopBackOff, ImagePullBackOff, OOMKilled, ...)."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name = meta.get("name", "?")
    lines = [f"## pod {name}: {status.get('phase', '?')}"]
    causes = []
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            lines.append(
                f"- condition {cond.get('type')}: {cond.get('status')} {cond.get('reason') or ''} {cond.get('message') or ''}".rstrip()
            )
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        waiting = state.get("waiting") or {}
        text = f"- container {cs.get('name')}: ready={cs.get('ready')} restarts={cs.get('restartCount', 0)}"
        if waiting:
            text += f" waiting: {waiting.get('reason')} {waiting.get('message') or ''}".rstrip()
        if state.get("terminated"):
            term = state["terminated"]
            text += f" terminated: {term.get('reason')} exit {term.get('exitCode')}"
        if last:
            text += f"; last terminated: {last.get('reason')} exit {last.get('exitCode')} at {last.get('finishedAt')}"
        lines.append(text)
        reason = waiting.get("reason") or ""
        if reason in (
            "CrashLoopBackOff",
            "ImagePullBackOff",
            "ErrImagePull",
            "CreateContainerConfigError",
            "RunContainerError",
        ):
            why = f"pod {name} container {cs.get('name')} is in {reason} (restarts {cs.get('restartCount', 0)})"
            if last:
                why += f", last exit {last.get('exitCode')} ({last.get('reason')})"
            causes.append(why)
        elif last.get("reason") == "OOMKilled":
            causes.append(f"pod {name} container {cs.get('name')} was OOMKilled")
        elif str((state.get("terminated") or {}).get("exitCode") or 0) != "0":  # a failed helm test pod, say
            term = state["terminated"]
            causes.append(f"pod {name} container {cs.get('name')} exited {term.get('exitCode')} ({term.get('reason')})")
    if status.get("phase") == "Pending" and not causes:
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") != "True":
                causes.append(f"pod {name} is not scheduled: {cond.get('message') or cond.get('reason')}")
    return lines, causes


def restarted_containers(pod: dict[str, t.Any]) -> list[tuple[str, int]]:
    """(name, restarts) of each container of ``pod`` that has a previous instance to read the log of."""
    status = pod.get("status") or {}
    out = []
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        restarts = int(cs.get("restartCount") or 0)
        if restarts > 0 and cs.get("name"):
            out.append((str(cs["name"]), restarts))
    return out


def _stamp_seconds(value: t.Any) -> float:
    """An RFC 3339 time (Time or MicroTime) as epoch seconds; 0 when absent or unreadable."""
    text = str(value or "").strip()
    if not text:
        return 0.0
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def event_time(event: dict[str, t.Any]) -> str:
    """When an event last happened: a core/v1 event has lastTimestamp, one written through events.k8s.io (the
    scheduler's, the kubelet's newer ones) only eventTime or its series' lastObservedTime."""
    series = event.get("series") or {}
    for value in (
        series.get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ):
        if value:
            return str(value)
    return ""


def events_text(events: t.Iterable[dict[str, t.Any]]) -> str:
    """The events oldest first by :func:`event_time` (``kubectl get events --sort-by=.lastTimestamp`` puts every
    event without a lastTimestamp first), one line each: time, type, reason, object, count, message."""
    rows = sorted(
        (e for e in events if isinstance(e, dict)),
        key=lambda e: (_stamp_seconds(event_time(e)), str((e.get("metadata") or {}).get("name") or "")),
    )
    lines = []
    for e in rows:
        obj = e.get("involvedObject") or e.get("regarding") or {}
        count = int(e.get("count") or (e.get("series") or {}).get("count") or 1)
        message = " ".join(str(e.get("message") or e.get("note") or "").split())
        lines.append(
            f"{event_time(e) or '?'} {e.get('type') or '?'} {e.get('reason') or '?'} "
            f"{str(obj.get('kind') or '?').lower()}/{obj.get('name') or '?'}"
            f"{f' (x{count})' if count > 1 else ''}: {message}"
        )
    return "\n".join(lines) + "\n" if lines else "No events.\n"


def _items(c: Collector, k8s: K8s, *args: str) -> tuple[list[dict[str, t.Any]], str]:
    rc, text = c.run_tool(k8s.kubectl_argv("get", *args, "-o", "json"))
    if rc != 0:
        return [], text
    try:
        doc = json.loads(text.split("\n--- stderr ---\n")[0])
    except ValueError:
        return [], text
    return [i for i in doc.get("items") or [] if isinstance(i, dict)], ""


def _is_test_pod(pod: dict[str, t.Any], release: str) -> bool:
    meta = pod.get("metadata") or {}
    hook = str((meta.get("annotations") or {}).get("helm.sh/hook") or "")
    labels = meta.get("labels") or {}
    instance = labels.get("app.kubernetes.io/instance")
    # the release's instance label; a chart that does not label its test pods: the release's name prefix
    mine = instance == release if instance else str(meta.get("name", "")).startswith(f"{release}-")
    return bool({"test", "test-success"} & {h.strip() for h in hook.split(",")}) and mine


def collect_kubernetes(c: Collector, k8s: K8s) -> None:
    pods: list[dict[str, t.Any]] = []
    tests: list[dict[str, t.Any]] = []

    def list_pods() -> None:
        found, err = _items(c, k8s, "pods", "-l", k8s.selector)
        allp, err2 = _items(c, k8s, "pods")
        if err and err2:
            c.bundle.add("kubernetes/pods.md", "the release's pods (kubectl get pods failed)", err)
            c.bundle.cause(f"kubectl could not list the pods in namespace {k8s.namespace}: {last_line(err)}")
            return
        pods.extend(p for p in found if not _is_test_pod(p, k8s.release))
        tests.extend(p for p in allp if _is_test_pod(p, k8s.release))
        lines = [f"# pods of release {k8s.release} in namespace {k8s.namespace} (selector {k8s.selector})", ""]
        if not pods:
            lines.append("No pod matches the selector.")
            c.bundle.cause(f"no pod of release {k8s.release} exists in namespace {k8s.namespace}")
        for pod in pods + tests:
            plines, causes = pod_summary(pod)
            lines += plines + [""]
            for cause in causes:
                c.bundle.cause(cause)
        c.bundle.add(
            "kubernetes/pods.md",
            "every release pod and helm test pod: phase, containers, restarts, waiting reasons",
            "\n".join(lines) + "\n",
        )

    def pod_logs() -> None:
        for pod in (pods + tests)[:MAX_PODS]:
            name = pod.get("metadata", {}).get("name", "?")
            argv = k8s.kubectl_argv("logs", name, "--all-containers", f"--tail={LOG_LINES}", "--timestamps")
            rc, text = c.run_tool(argv)
            label = "helm test pod" if pod in tests else "pod"
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            line = last_line(text.split("\n--- stderr ---\n")[0]) if rc == 0 and len(statuses) == 1 else ""
            if line:  # one container: the log's last line is that container's
                c.bundle.amend(
                    f"pod {name} container {statuses[0].get('name')} exited ", f"; its last log line: {line}"
                )
            c.bundle.add(
                f"kubernetes/logs/{name}.log",
                f"{label} {name}: the current containers' logs (last {LOG_LINES} lines)",
                f"$ {' '.join(argv)}\n(rc {rc})\n{text}",
            )

    def previous_logs() -> None:
        # per container: `--all-containers --previous` fails as a whole when one of them has not restarted
        for pod in (pods + tests)[:MAX_PODS]:
            name = pod.get("metadata", {}).get("name", "?")
            restarted = restarted_containers(pod)
            if not restarted:
                continue
            parts = []
            for container, restarts in restarted:
                argv = k8s.kubectl_argv(
                    "logs", name, "-c", container, "--previous", f"--tail={LOG_LINES}", "--timestamps"
                )
                rc, text = c.run_tool(argv)
                parts.append(f"$ {' '.join(argv)}\n(rc {rc})\n{text}")
                line = last_line(text.split("\n--- stderr ---\n")[0]) if rc == 0 else ""
                if line:
                    said = f"; the previous container's last log line: {line}"
                    if not c.bundle.amend(f"pod {name} container {container} ", said):
                        c.bundle.cause(f"pod {name} container {container} restarted {restarts} time(s){said}")
            c.bundle.add(
                f"kubernetes/logs/{name}.previous.log",
                f"pod {name}: the previous (crashed or restarted) containers' logs (last {LOG_LINES} lines each)",
                "\n".join(parts),
            )

    def events() -> None:
        argv = k8s.kubectl_argv("get", "events", "-o", "json")
        found, err = _items(c, k8s, "events")
        text = err or events_text(found)
        c.bundle.add(
            "kubernetes/events.txt",
            f"the events of namespace {k8s.namespace}, oldest first",
            f"$ {' '.join(argv)} (sorted by last time seen)\n{text}",
        )

    def command(name: str, what: str, argv: list[str]) -> None:
        rc, text = c.run_tool(argv)
        c.bundle.add(name, what, f"$ {' '.join(argv)}\n(rc {rc})\n{text}")

    def describe_storage() -> None:
        command(
            "kubernetes/describe-pvc.txt",
            "kubectl describe of the release's PVCs",
            k8s.kubectl_argv("describe", "pvc", "-l", k8s.selector),
        )
        pvcs, _err = _items(c, k8s, "pvc", "-l", k8s.selector)
        volumes = [
            str((p.get("spec") or {}).get("volumeName")) for p in pvcs if (p.get("spec") or {}).get("volumeName")
        ]
        for pvc in pvcs:
            if (pvc.get("status") or {}).get("phase") not in (None, "Bound"):
                c.bundle.cause(f"PVC {pvc.get('metadata', {}).get('name')} is {pvc['status'].get('phase')}, not Bound")
        if volumes:
            argv = [a for a in k8s.kubectl_argv("describe", "pv", *volumes) if a not in ("-n", k8s.namespace)]
            command("kubernetes/describe-pv.txt", "kubectl describe of the PVs bound to those PVCs", argv)

    c.step("kubernetes pods", list_pods)
    c.step("kubernetes events", events)
    c.step("kubernetes logs", pod_logs)
    c.step("kubernetes previous logs", previous_logs)
    c.step(
        "kubernetes describe pods",
        lambda: command(
            "kubernetes/describe-pods.txt",
            "kubectl describe of the release's pods",
            k8s.kubectl_argv("describe", "pods", "-l", k8s.selector),
        ),
    )
    c.step("kubernetes storage", describe_storage)
    c.step(
        "helm status",
        lambda: command(
            "kubernetes/helm-status.txt", f"helm status {k8s.release}", k8s.helm_argv("status", k8s.release)
        ),
    )
    c.step(
        "helm history",
        lambda: command(
            "kubernetes/helm-history.txt",
            f"helm history {k8s.release}",
            k8s.helm_argv("history", k8s.release, "--max", "20"),
        ),
    )


# ---------------------------------------------------------------- the whole bundle


FAILED = ("failed", "interrupted")


def failed_results(results: t.Iterable[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    return [r for r in results if isinstance(r, dict) and str(r.get("status")) in FAILED]


def _fallback_cause(failed: list[dict[str, t.Any]]) -> str:
    if not failed:
        return "not identified; read the files below"
    first = failed[0]
    reason = " ".join(str(first.get("reason") or "").split())[:300]
    return f"not identified by the collection; the first failure is {first.get('id')}: {reason}"


def index_md(
    bundle: Bundle, target: str, failed: list[dict[str, t.Any]], unfinished: list[str], timeout: float, seconds: float
) -> str:
    cause = bundle.causes[0] if bundle.causes else ""
    lines = [
        "# Diagnostics of a failed run",
        "",
        f"- **target**: {target}",
        f"- **written**: {utc(time.time())} (UTC), in {seconds:.1f} s (deadline {timeout:g} s)",
        f"- **cause**: {cause or _fallback_cause(failed)}",
    ]
    if len(bundle.causes) > 1:
        lines += ["", "## Other findings", ""] + [f"- {x}" for x in bundle.causes[1:20]]
    if failed:
        lines += ["", "## Failed tests", ""]
        lines += [f"- **{r.get('id')}**: {' '.join(str(r.get('reason') or '').split())[:500]}" for r in failed[:50]]
    lines += ["", "## Files", "", "| file | what it holds | bytes |", "|---|---|---:|"]
    for f in bundle.files:
        mark = " (truncated)" if f["truncated"] else ""
        lines.append(f"| [{f['name']}]({f['name']}) | {f['what'].replace('|', '/')}{mark} | {f['bytes']} |")
    if bundle.skipped:
        lines += ["", "## Not collected", ""] + [f"- {s['name']} ({s['what']}): {s['why']}" for s in bundle.skipped]
    if unfinished:
        lines += ["", f"Collection stopped at the deadline ({timeout:g} s) before: {', '.join(unfinished)}."]
    if bundle.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in bundle.notes[:50]]
    lines += [
        "",
        f"Every file is capped at {bundle.file_cap} bytes (logs keep their end, bodies their start) and the bundle at "
        f"{bundle.total_cap} bytes. Secrets, Authorization and Cookie headers are removed.",
    ]
    return "\n".join(lines) + "\n"


class Request(t.NamedTuple):
    dest: str
    target: str
    server: dict[str, t.Any]
    results: list[dict[str, t.Any]]
    state_dir: str = ""
    probe_project: str = ""
    username: str = ""
    password: str = ""
    secrets: tuple[str, ...] = ()
    validate_certs: bool = True
    ca_path: str = ""
    k8s: K8s | None = None
    timeout: float = 60.0
    file_cap: int = FILE_CAP
    total_cap: int = TOTAL_CAP


def prepare_dir(root: str) -> str | None:
    """Empty a previous bundle at ``root`` (one with our index.md) and create it; a sentence when that fails."""
    try:
        if os.path.isdir(root) and os.path.isfile(os.path.join(root, INDEX)):
            shutil.rmtree(root)
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        return f"cannot create {root} ({exc.strerror or exc}); choose a writable pypi_report_dir"
    return None


def collect(req: Request, module: t.Any = None) -> dict[str, t.Any]:
    """Write the bundle; never raises. Returns path, index, files, cause, causes, notes, timed_out, bytes."""
    started = time.monotonic()
    root = os.path.join(req.dest, BUNDLE_DIR)
    out: dict[str, t.Any] = {"path": root, "index": "", "files": [], "cause": "", "causes": [], "timed_out": False}
    redactor = Redactor([req.password, *req.secrets], [req.username, (req.server or {}).get("username")])
    problem = prepare_dir(root)
    if problem:
        out["notes"] = [problem]
        return out
    bundle = Bundle(root, redactor, req.file_cap, req.total_cap)
    c = Collector(bundle, started + max(1.0, float(req.timeout)), module)
    server = req.server or {}
    failed = failed_results(req.results)
    target = req.target
    if target in ("local", "local_s3"):
        storage = server.get("storage") or {}
        collect_local(c, req.state_dir, str(storage.get("path") or ""))
    elif target == "kubernetes" and req.k8s is not None:
        collect_kubernetes(c, req.k8s)
        if req.state_dir and os.path.isdir(os.path.join(req.state_dir, "s3")):
            c.step("s3", lambda: collect_s3(c, os.path.join(req.state_dir, "s3")))
        pf = os.path.join(req.state_dir, "port-forward.log") if req.state_dir else ""
        if pf and os.path.isfile(pf):
            c.step(
                "port-forward log",
                lambda: c.log_tail(
                    pf, "kubernetes/port-forward.log", "the collection's kubectl port-forward log (tail)"
                ),
            )
    tls = {"validate_certs": req.validate_certs, "ca_path": req.ca_path}
    auth = (req.username, req.password) if req.username and req.password else None
    c.step("http probes", lambda: collect_http(c, server, req.probe_project, auth, tls))
    unfinished = c.run()
    seconds = time.monotonic() - started
    text = index_md(bundle, target, failed, unfinished, float(req.timeout), seconds)
    data = redactor.redact(text).encode("utf-8")
    if len(data) > INDEX_RESERVE:
        data = data[: INDEX_RESERVE - 100] + b"\n[truncated: index.md cap]\n"
    index = os.path.join(root, INDEX)
    try:
        with open(index, "wb") as handle:
            handle.write(data)
        out["index"] = index
    except OSError as exc:
        bundle.notes.append(f"index.md could not be written: {exc.strerror or exc}")
    out.update(
        files=[f["name"] for f in bundle.files],
        cause=bundle.causes[0] if bundle.causes else "",
        causes=list(bundle.causes),
        notes=list(bundle.notes),
        skipped=[s["name"] for s in bundle.skipped],
        timed_out=bool(unfinished),
        unfinished=unfinished,
        bytes=bundle.used + len(data),
        seconds=round(seconds, 3),
    )
    return out
