# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upload-size ladder: uploads of growing size, each downloaded back and hash-checked, until one is refused.

A single very large upload cannot tell *where* an index stops taking files; a ladder can (64 KiB, 256 KiB,
1 MiB, 16 MiB, then the large file). The first step that is not accepted ends the climb, and the one message
names the last size accepted, the first refused and the limit that usually sits between them (nginx's 1 MiB
``client_max_body_size`` default, ingress-nginx's ``proxy-body-size``, pypiserver 2.3.x's ~100 kB bottle bug,
a cloud load balancer's cap).

The steps' wheels are written directly (``traffic.synthetic_wheel``: a valid minimal wheel, stored, random
payload), one just before its upload, so a refusal at a small step costs no time writing the big ones. Uploads
are the streamed legacy-API POST (``upload.http_upload``, with its stall and deadline bounds); downloads are
streamed GETs of the URL the index lists, hashed on the fly (``simple_index.download_and_hash``).
"""

from __future__ import annotations

import os
import re
import time
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import progress as progressutil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import traffic, upload

KIB = 1024
MIB = 1024 * 1024
UNITS = {"": 1, "b": 1, "k": KIB, "kib": KIB, "m": MIB, "mib": MIB, "g": 1024 * MIB, "gib": 1024 * MIB}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
MAX_STEP = 8 * 1024 * MIB  # a larger step is a typo, not a test

# Limits that sit in front of package indexes, with the size they refuse above (request body bytes).
BOTTLE_MEMFILE_MAX = 102400
KNOWN_LIMITS: tuple[tuple[int, str], ...] = (
    (
        MIB,
        "nginx's client_max_body_size defaults to 1m, and ingress-nginx applies the same 1m unless the ingress has "
        "the nginx.ingress.kubernetes.io/proxy-body-size annotation",
    ),
    (10 * MIB, "AWS API Gateway takes request bodies up to 10 MB"),
    (32 * MIB, "Google Cloud Run takes HTTP/1 request bodies up to 32 MiB"),
    (100 * 1000 * 1000, "Cloudflare's Free and Pro plans take request bodies up to 100 MB"),
)
GENERIC_LIMIT = (
    "a body-size limit in front of the server: a reverse proxy's client_max_body_size, the ingress annotation "
    "nginx.ingress.kubernetes.io/proxy-body-size, or a load balancer's request-size cap"
)


class LadderError(Exception):
    """Bad ladder input, with one sentence naming the value and the fix."""

    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg


class Step(t.NamedTuple):
    """One rung's outcome. ``size`` is the nominal size (the payload, or the top file's size); ``body`` the file."""

    label: str
    size: int
    filename: str
    body: int
    outcome: str  # uploaded | an upload.OUTCOMES value | download_failed | deadline (not started)
    status: int | None
    detail: str
    upload_s: float
    download_s: float

    @property
    def accepted(self) -> bool:
        return self.outcome == "uploaded"

    def figures(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {"step": self.label, "bytes": self.body, "outcome": self.outcome}
        if self.accepted:
            out.update(
                upload_s=round(self.upload_s, 3),
                download_s=round(self.download_s, 3),
                upload_mib_s=rate(self.body, self.upload_s),
                download_mib_s=rate(self.body, self.download_s),
            )
        elif self.status is not None:
            out["status"] = self.status
        return out


# --------------------------------------------------------------------------- sizes


def parse_size(value: t.Any) -> int:
    """Bytes from an int (65536) or a string with a binary unit ('64 KiB', '16MiB', '1m'); LadderError if not."""
    bad = LadderError(
        f"Invalid size step {value!r} in the ladder (pypi_size_ladder): give bytes (65536) or a number with "
        "KiB, MiB or GiB ('64 KiB', '16 MiB'), each more than 0 and at most 8 GiB."
    )
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int):
        size = value
    elif isinstance(value, float) and value.is_integer():
        size = int(value)
    elif isinstance(value, str):
        match = SIZE_RE.match(value)
        unit = match.group(2).lower() if match else None
        if not match or unit not in UNITS:
            raise bad
        size = int(float(match.group(1)) * UNITS[unit])
    else:
        raise bad
    if not 0 < size <= MAX_STEP:
        raise bad
    return size


def parse_steps(values: t.Any) -> list[int]:
    """The ladder's sizes in bytes, smallest first, duplicates dropped; [] for an empty list (no ladder)."""
    if values is None:
        return []
    if not isinstance(values, list | tuple):
        raise LadderError(
            f"The ladder (pypi_size_ladder) must be a list of sizes such as ['64 KiB', '1 MiB'], not {values!r}; "
            "give [] to run no ladder."
        )
    return sorted({parse_size(v) for v in values})


def label(size: int) -> str:
    """'64 KiB', '1 MiB', '110.0 MiB', '1.5 KiB', '900 B': exact binary multiples without decimals."""
    if size >= MIB:
        return f"{size // MIB} MiB" if size % MIB == 0 else f"{size / MIB:.1f} MiB"
    if size >= KIB:
        return f"{size // KIB} KiB" if size % KIB == 0 else f"{size / KIB:.1f} KiB"
    return f"{size} B"


def rate(size: int, seconds: float) -> float:
    """MiB/s, one decimal; a near-zero time counts as 1 ms."""
    return round(size / MIB / max(seconds, 0.001), 1)


# --------------------------------------------------------------------------- judging the climb


def limit_hint(accepted_body: int | None, refused_body: int, status: int | None, detail: str = "") -> str:
    """The usual limit(s) between the last body accepted and the first refused, as one clause."""
    low = accepted_body or 0
    said = (detail or "").lower()
    if "memory limit reached" in said or (status == 400 and low <= BOTTLE_MEMFILE_MAX < refused_body):
        return (
            "pypiserver 2.3.x refuses uploads above about 100 kB with 'MultipartError: Memory limit reached' "
            "(HTTP 400, its bottle MEMFILE_MAX bug): run a pypiserver release without it (this collection tests "
            "2.4.2)"
        )
    found = [text for limit, text in KNOWN_LIMITS if low <= limit < refused_body]
    if found:
        return "; ".join(found) + ": raise that limit above the largest file you publish"
    return f"usually {GENERIC_LIMIT}: raise it above the largest file you publish"


def first_refusal(steps: t.Sequence[Step]) -> tuple[Step | None, Step | None]:
    """(last accepted step, first step not accepted); either is None when there is none."""
    last_ok = None
    for step in steps:
        if not step.accepted:
            return last_ok, step
        last_ok = step
    return last_ok, None


def _what(step: Step) -> str:
    return f"HTTP {step.status}" if step.status is not None else "no answer"


def refusal_message(steps: t.Sequence[Step]) -> str:
    """The one failure sentence for a climb that stopped; '' when every step was accepted."""
    last_ok, bad = first_refusal(steps)
    if bad is None:
        return ""
    said = " ".join((bad.detail or "").split())
    if bad.outcome == "deadline":  # the test's time ran out between steps: no size was refused
        done = f"accepted up to {last_ok.label}, then stopped" if last_ok else "stopped"
        return f"Size ladder: {done} before the {bad.label} step: {said}"
    if bad.outcome == "download_failed":
        return f"Size ladder: the {bad.label} upload was accepted but downloading it back failed: {said}"
    if last_ok is None:  # the smallest step already failed: not a size limit, the upload itself is broken
        got = upload.Outcome(bad.outcome, bad.status, bad.detail)
        return f"Size ladder: the first step ({bad.label}) was not accepted, so no size was: " + upload.explain(
            bad.filename, got, ["uploaded"]
        )
    if bad.outcome == "stalled":  # the stall sentence names the bytes sent, the limit and the next step
        return f"Size ladder: accepted up to {last_ok.label}, then the {bad.label} upload stalled: {said}"
    head = f"Size ladder: accepted up to {last_ok.label}, {_what(bad)} from {bad.label}"
    hint = limit_hint(last_ok.body, bad.body, bad.status, said)
    if bad.outcome == "unreachable":
        # a proxy that refuses a body often just closes the connection while the client is still sending
        return f"{head}; {hint}, or the connection broke: {said}"
    tail = f" Server said: {said}" if said else ""
    return f"{head}; {hint}.{tail}"


def summary(steps: t.Sequence[Step]) -> str:
    """'64 KiB 12.3 MiB/s up 40.1 MiB/s down, 256 KiB ...' for the accepted steps."""
    return ", ".join(
        f"{s.label} {rate(s.body, s.upload_s)} MiB/s up {rate(s.body, s.download_s)} MiB/s down"
        for s in steps
        if s.accepted
    )


# --------------------------------------------------------------------------- running it


class Rung(t.NamedTuple):
    """What to upload at one step: a size to write a wheel for (``make``), or a file already built."""

    label: str
    size: int
    make: t.Callable[[], dict[str, t.Any]]  # returns a file record (path, filename, size, sha256, name, version)


def synthetic_rungs(scratch: str, project: str, sizes: t.Sequence[int]) -> list[Rung]:
    """One rung per size: version 1.0.<i> of ``project`` with a payload of that size, written when it is due."""

    def maker(i: int, size: int) -> t.Callable[[], dict[str, t.Any]]:
        return lambda: traffic.synthetic_wheel(scratch, project, f"1.0.{i}", size)

    return [Rung(label(size), size, maker(i, size)) for i, size in enumerate(sizes)]


def file_rung(record: dict[str, t.Any]) -> Rung:
    """The top rung: a file built elsewhere (the large probe wheel); ``record`` needs path, name and version."""
    path = record["path"]
    size = os.path.getsize(path)
    return Rung(label(size), size, lambda: dict(record, filename=os.path.basename(path), size=size))


def _download(session: t.Any, simple_url: str, rec: dict[str, t.Any], opts: httputil.ClientOptions, prog: t.Any):
    """(seconds, problem or '') of fetching ``rec`` from the URL its project page lists and checking its sha256."""
    start = time.monotonic()
    try:
        page = si.fetch_project(session, simple_url, rec["name"], opts)
        url = next((f["url"] for f in page["files"] if f["filename"] == rec["filename"]), None)
        if url is None:
            return time.monotonic() - start, f"{rec['filename']} is not listed on the project page after its upload"
        start = time.monotonic()
        sha, size = si.download_and_hash(session, url, opts, progress=prog)
    except si.IndexReadError as exc:
        return time.monotonic() - start, exc.msg
    secs = time.monotonic() - start
    if sha != rec["sha256"] or size != rec["size"]:
        return secs, (
            f"{rec['filename']} came back with sha256 {sha} ({size} bytes), not the uploaded {rec['sha256']} "
            f"({rec['size']} bytes): something between the client and the storage altered or cut it"
        )
    return secs, ""


def climb(
    rungs: t.Sequence[Rung],
    repository_url: str,
    simple_url: str,
    opts: httputil.ClientOptions,
    progress: progressutil.Progress | None = None,
) -> list[Step]:
    """Upload, download and hash-check each rung in order; stop at the first that is not accepted."""
    steps: list[Step] = []
    session = httputil.make_session(opts)
    try:
        for i, rung in enumerate(rungs, 1):
            where = f"step {i}/{len(rungs)} {rung.label}"
            if opts.deadline.passed():
                msg = opts.deadline.error(f"before the size ladder's {where}").msg
                steps.append(Step(rung.label, rung.size, "", 0, "deadline", None, msg, 0.0, 0.0))
                break
            try:
                rec = rung.make()
            except OSError as exc:
                raise LadderError(
                    f"Size ladder: cannot write the {rung.label} step's wheel: {exc.strerror or exc}; free space "
                    "in the work directory (pypi_work_dir) or lower the step."
                ) from None
            if progress is not None:
                progress.phase("bytes", rec["size"], f"{where} upload")
            start = time.monotonic()
            got = upload.http_upload(
                session,
                repository_url,
                rec["path"],
                rec["name"],
                rec["version"],
                rec["sha256"],
                opts,
                progress=progress.bound(f"{where} upload") if progress is not None else None,
            )
            up_s = time.monotonic() - start
            if got.outcome != "uploaded":
                steps.append(
                    Step(
                        rung.label,
                        rung.size,
                        rec["filename"],
                        rec["size"],
                        got.outcome,
                        got.status,
                        got.detail,
                        up_s,
                        0.0,
                    )
                )
                break
            if progress is not None:
                progress.phase("bytes", rec["size"], f"{where} download")
            bound = progress.bound(f"{where} download") if progress is not None else None
            down_s, problem = _download(session, simple_url, rec, opts, bound)
            outcome = "download_failed" if problem else "uploaded"
            steps.append(
                Step(rung.label, rung.size, rec["filename"], rec["size"], outcome, None, problem, up_s, down_s)
            )
            if problem:
                break
    finally:
        session.close()
    return steps
