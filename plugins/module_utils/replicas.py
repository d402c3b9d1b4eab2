# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-after-write across replicas: after an upload through the front, every replica, asked directly, must list
the file with its sha256 within a bounded wait. A replica that does not is stale: it answers from a listing it
cached before the upload (pypiserver's cached-dir backend relies on inotify, which never hears of a file written
through another node's mount), and a client sent to it gets a 404 or an old page.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si

FIX = (
    "run pypiserver with --backend simple-dir (the chart sets it when replicaCount > 1; the local targets: "
    "pypi_local_backend: simple-dir), or give the replicas shared storage that notifies every reader of new files"
)


def judge(files: list[dict[str, t.Any]], filename: str, sha256: str) -> tuple[str, str]:
    """(state, detail) of one replica's project page: ``ok``, ``missing`` or ``differing``."""
    for entry in files:
        if entry.get("filename") != filename:
            continue
        if entry.get("hash_algo") != "sha256" or not entry.get("hash_digest"):
            return "differing", f"lists {filename} without a sha256 (#{entry.get('hash_algo') or 'no hash'})"
        if entry["hash_digest"].lower() != sha256.lower():
            return "differing", f"lists {filename} with sha256 {entry['hash_digest'][:12]}… instead of {sha256[:12]}…"
        return "ok", f"lists {filename} with its sha256"
    return "missing", f"does not list {filename}"


def stale_message(stale: list[dict[str, t.Any]], total: int, filename: str, wait: float) -> str:
    """One sentence naming every stale replica, what it answered, and the fix."""
    names = "; ".join(f"{r['url']} {r['detail']}" for r in stale)
    one = len(stale) == 1
    if all(r["state"] in ("missing", "differing") for r in stale):
        cause = f"{'it serves' if one else 'they serve'} a listing from before the upload"
    else:
        cause = f"{'it does' if one else 'they do'} not answer with the project page"
    return (
        f"{len(stale)} of {total} replicas {'is' if one else 'are'} stale: {filename} uploaded through the front is "
        f"still not listed with its sha256 after {wait:g}s ({names}); {cause}, so a client sent there gets a 404 "
        f"or an old page; {FIX}."
    )


def check(
    urls: t.Sequence[str],
    project: str,
    filename: str,
    sha256: str,
    wait: float,
    opts: httputil.ClientOptions,
    session_factory: t.Callable[[], t.Any] | None = None,
    clock: t.Callable[[], float] = time.monotonic,
    sleep: t.Callable[[float], None] = time.sleep,
) -> dict[str, t.Any]:
    """Poll each replica's ``/simple/<project>/`` until it lists ``filename`` with ``sha256``, for at most ``wait``
    seconds (and never past the test's deadline). Returns ``replicas`` (url, state, detail, seconds, polls),
    ``stale`` (the urls still not ok) and ``seconds``. A replica that is ok is not asked again."""
    start = clock()
    limit = start + max(0.0, wait)
    left = opts.deadline.remaining()
    if left is not None:  # the test's deadline cuts the wait
        limit = min(limit, start + max(0.0, left))
    make = session_factory or (lambda: httputil.make_session(opts))
    session = make()
    state: dict[str, dict[str, t.Any]] = {
        u: {"url": u, "state": "pending", "detail": "not asked yet", "seconds": None, "polls": 0} for u in urls
    }
    delay = 0.1
    try:
        while True:
            for url, rec in state.items():
                if rec["state"] == "ok":
                    continue
                rec["polls"] += 1
                try:
                    page = si.fetch_project(session, url.rstrip("/") + "/simple/", project, opts)
                except si.IndexReadError as exc:
                    if exc.status == 404:
                        rec["state"], rec["detail"] = "missing", f"answers 404 for {project}"
                    else:
                        rec["state"], rec["detail"] = "error", exc.msg.rstrip(".")
                    continue
                rec["state"], rec["detail"] = judge(page["files"], filename, sha256)
                if rec["state"] == "ok":
                    rec["seconds"] = round(clock() - start, 3)
            pending = [r for r in state.values() if r["state"] != "ok"]
            remaining = limit - clock()
            if not pending or remaining <= 0:
                break
            sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
    finally:
        session.close()
    replicas = list(state.values())
    return {
        "replicas": replicas,
        "stale": [r["url"] for r in replicas if r["state"] != "ok"],
        "seconds": round(clock() - start, 3),
    }
