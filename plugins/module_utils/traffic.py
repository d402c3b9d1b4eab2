# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many uploads and downloads inside one process: the load and concurrency tests.

The loop runs here, not as one Ansible task per operation, so that what is timed is
the server. Uploads go straight to the legacy upload API (``upload.http_upload``,
streamed from disk, one keep-alive session per worker); downloads are streamed GETs
of the file URLs the index lists, hashed on the fly (``simple_index.download_and_hash``).
Wheels are written directly (a valid minimal wheel, stored uncompressed) instead of
through a build backend, which would cost seconds per version.
"""

from __future__ import annotations

import math
import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import bounds, digest, probe, upload
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import progress as progressutil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si


class Op(t.NamedTuple):
    kind: str  # upload | download
    filename: str
    ok: bool
    status: int | None
    seconds: float
    size: int
    detail: str


def synthetic_wheel(dest_dir: str, name: str, version: str, payload_size: int = 0) -> dict[str, t.Any]:
    """Write a valid, minimal pure-Python wheel (``probe.write_wheel``); return its file record (name, version, kind)."""
    norm = si.normalize(name)
    spec = probe.ProbeSpec(norm, version, norm.replace("-", "_"), payload_size)
    metadata = f"Metadata-Version: 2.1\nName: {norm}\nVersion: {version}\n"
    rec = digest.file_record(probe.write_wheel(spec, dest_dir, metadata))
    rec.update(name=norm, version=version, kind="wheel")
    return rec


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


# Upper edges (ms) of the latency histogram buckets; a last bucket with ``le_ms: None`` takes the rest.
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def latency_histogram(seconds: list[float]) -> list[dict[str, t.Any]]:
    """Non-cumulative histogram of latencies: one ``{"le_ms": edge, "count": n}`` per bucket.

    A latency lands in the first bucket whose ``le_ms`` is >= its milliseconds (so each bucket counts
    previous edge < ms <= le_ms); the last bucket, ``le_ms: None`` (JSON null, "+Inf"), counts those above
    the highest edge. Every bucket is always present, so runs compare bucket by bucket.
    """
    counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    for secs in seconds:
        ms = secs * 1000.0
        index = next((i for i, edge in enumerate(LATENCY_BUCKETS_MS) if ms <= edge), len(LATENCY_BUCKETS_MS))
        counts[index] += 1
    edges: list[int | None] = [*LATENCY_BUCKETS_MS, None]
    return [{"le_ms": edge, "count": n} for edge, n in zip(edges, counts, strict=True)]


def summarize(ops: list[Op], wall: float) -> dict[str, t.Any]:
    times = [o.seconds for o in ops if o.ok]
    moved = sum(o.size for o in ops if o.ok)
    return {
        "total": len(ops),
        "ok": sum(1 for o in ops if o.ok),
        "failed": sum(1 for o in ops if not o.ok),
        "seconds": round(wall, 3),
        "p50_ms": round(percentile(times, 50) * 1000, 1),
        "p95_ms": round(percentile(times, 95) * 1000, 1),
        "p99_ms": round(percentile(times, 99) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1) if times else 0.0,
        "ops_per_s": round(len(times) / wall, 2) if wall > 0 else 0.0,
        "mib_per_s": round(moved / wall / 1048576, 2) if wall > 0 else 0.0,
        "histogram": latency_histogram(times),
    }


class _Sessions:
    """One keep-alive session per worker thread."""

    def __init__(self, opts: httputil.ClientOptions):
        self.opts = opts
        self.local = threading.local()
        self.all: list[t.Any] = []
        self.lock = threading.Lock()

    def get(self) -> t.Any:
        session = getattr(self.local, "session", None)
        if session is None:
            session = httputil.make_session(self.opts, pool=2)
            self.local.session = session
            with self.lock:
                self.all.append(session)
        return session

    def close(self) -> None:
        for session in self.all:
            session.close()


def _run(
    fn: t.Callable[[t.Any], Op],
    items: list[t.Any],
    parallel: int,
    on_progress: progressutil.Callback | None = None,
    breaker: bounds.Breaker | None = None,
    deadline: bounds.Deadline | None = None,
) -> tuple[list[Op], float]:
    """Run ``fn`` over ``items``; after each op, ``on_progress(done, total=len(items), detail="<n> failed")``.

    With a ``breaker``, no op starts once it has tripped (or once ``deadline`` has passed, which halts it): the ops
    returned are the ones that ran, and ``breaker.message`` says why the others did not.
    """
    lock = threading.Lock()
    counts = {"done": 0, "failed": 0}

    def step(item: t.Any) -> Op | None:
        if breaker is not None:
            if deadline is not None and deadline.passed():
                with lock:
                    done = counts["done"]
                breaker.halt(deadline.error(f"at {done}/{len(items)} {breaker.what}s").msg)
            if breaker.open:
                return None
        op = fn(item)
        if breaker is not None:
            breaker.record(op.ok, op.detail, op.status)
        if on_progress is not None:
            with lock:
                counts["done"] += 1
                counts["failed"] += 0 if op.ok else 1
                done, failed = counts["done"], counts["failed"]
            progressutil.notify(on_progress, done, len(items), f"{failed} failed" if failed else "")
        return op

    start = time.monotonic()
    if parallel <= 1:
        ran = [step(item) for item in items]
    else:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            ran = list(pool.map(step, items))
    return [op for op in ran if op is not None], time.monotonic() - start


def upload_all(
    files: list[dict[str, t.Any]],
    repository_url: str,
    opts: httputil.ClientOptions,
    parallel: int = 1,
    progress: progressutil.Callback | None = None,
    breaker: bounds.Breaker | None = None,
) -> tuple[list[Op], float]:
    """Upload every file; ``progress(done, total, detail)`` is called after each one (``_run`` for ``breaker``)."""
    sessions = _Sessions(opts)

    def one(rec: dict[str, t.Any]) -> Op:
        start = time.monotonic()
        got = upload.http_upload(
            sessions.get(), repository_url, rec["path"], rec["name"], rec["version"], rec["sha256"], opts
        )
        secs = time.monotonic() - start
        ok = got.outcome == "uploaded"
        status = f" (HTTP {got.status})" if got.status is not None else ""
        detail = (
            "" if ok else (got.detail if got.outcome == "stalled" else f"{got.outcome}{status} {got.detail}".strip())
        )
        return Op("upload", rec["filename"], ok, got.status, secs, rec["size"], detail)

    try:
        return _run(one, files, parallel, progress, breaker, opts.deadline)
    finally:
        sessions.close()


def download_all(
    files: list[dict[str, t.Any]],
    simple_url: str,
    opts: httputil.ClientOptions,
    parallel: int = 1,
    progress: progressutil.Callback | None = None,
    breaker: bounds.Breaker | None = None,
) -> tuple[list[Op], float]:
    """Resolve each file's URL from its project page (one listing per project), then GET and hash it.

    Returns (ops, wall seconds of the downloads); a file missing from the listing is a failed op.
    ``progress(done, total, detail)`` is called after each download.
    """
    listing_session = httputil.make_session(opts)
    urls: dict[str, str] = {}
    try:
        for project in sorted({f["name"] for f in files}):
            page = si.fetch_project(listing_session, simple_url, project, opts)
            urls.update({entry["filename"]: entry["url"] for entry in page["files"]})
    finally:
        listing_session.close()
    sessions = _Sessions(opts)

    def one(rec: dict[str, t.Any]) -> Op:
        url = urls.get(rec["filename"])
        if url is None:
            return Op("download", rec["filename"], False, None, 0.0, 0, "not listed in the index")
        start = time.monotonic()
        try:
            sha, size = si.download_and_hash(sessions.get(), url, opts)
        except si.IndexReadError as exc:
            return Op("download", rec["filename"], False, exc.status, time.monotonic() - start, 0, exc.msg)
        secs = time.monotonic() - start
        if sha != rec["sha256"]:
            return Op("download", rec["filename"], False, 200, secs, size, f"sha256 {sha} != uploaded {rec['sha256']}")
        return Op("download", rec["filename"], True, 200, secs, size, "")

    try:
        return _run(one, files, parallel, progress, breaker, opts.deadline)
    finally:
        sessions.close()
