# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounds on every operation, so that a run always ends: stalls, total time, deadlines, circuit breakers.

Three limits, kept apart because they mean different things:

- **stall**: a transfer that moves no byte for ``read_timeout`` (pypi_read_timeout) has stalled. Slow but moving
  is fine; stalled is not. Downloads read with ``read1`` (whatever has arrived, up to a chunk), so each socket
  read returns within the stall limit or fails; uploads send with the stall limit as the socket timeout.
- **operation total**: one operation (a download, an upload) may take ``timeout`` (pypi_op_timeout) in all.
- **deadline**: the test's deadline (pypi_test_deadline, capped by pypi_run_deadline), an absolute time. Every
  wait is cut to what is left of it, and loops stop at it.

A loop that repeats an operation (load, concurrency) also has a :class:`Breaker`: after a few consecutive
failures of the same kind it stops, with the first error and the count it saw, instead of waiting out every
remaining operation's timeout against a server that is not going to answer.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import typing as t

MIB = 1048576.0

DEFAULT_DEADLINE_NAME = "the test's deadline (pypi_test_deadline)"


class BoundError(Exception):
    """An operation stopped by one of the bounds; ``msg`` is the one sentence, ``short`` its kind in a few words."""

    def __init__(self, msg: str, kind: str, short: str):
        super().__init__(msg)
        self.msg = msg
        self.kind = kind  # stall | op_timeout | deadline | cut
        self.short = short


def mib(size: float | None) -> str:
    return "?" if size is None else f"{size / MIB:.1f}"


def of(done: float, total: float | None) -> str:
    """ "57.7 of 110.0 MiB", or in KiB for a small file ("2.0 of 4.1 KiB"); "12.0 MiB of ?" without a total."""
    unit, div = ("KiB", 1024.0) if (total if total is not None else done) < MIB else ("MiB", MIB)
    if total is None:
        return f"{done / div:.1f} {unit} of an unknown size"
    return f"{done / div:.1f} of {total / div:.1f} {unit}"


class Deadline:
    """An absolute deadline (epoch seconds, 0 for none) and the setting it comes from, for the messages."""

    def __init__(self, at: float | None = 0.0, name: str | None = None, clock: t.Callable[[], float] = time.time):
        self.at = float(at or 0.0)
        self.name = name or DEFAULT_DEADLINE_NAME
        self._clock = clock

    @classmethod
    def from_params(cls, params: dict[str, t.Any]) -> Deadline:
        return cls(params.get("deadline") or 0.0, params.get("deadline_name"))

    @property
    def set(self) -> bool:
        return self.at > 0

    def remaining(self) -> float | None:
        return None if not self.set else self.at - self._clock()

    def passed(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def cap(self, seconds: float, floor: float = 0.5) -> float:
        """``seconds``, or what is left of the deadline if that is less (never below ``floor``: a socket needs > 0)."""
        left = self.remaining()
        return seconds if left is None else max(floor, min(seconds, left))

    def error(self, where: str) -> BoundError:
        return BoundError(
            f"{self.name} passed {where}; the server is too slow for it (or hangs): look at why, or raise the deadline.",
            "deadline",
            "deadline passed",
        )

    def explain_timeout(self, msg: str, where: str) -> str:
        """``msg`` (a child that ran out of its timeout), or the deadline's sentence when the deadline cut it short."""
        return self.error(where).msg if self.passed() else msg

    def check(self, where: str) -> None:
        if self.passed():
            raise self.error(where)


def is_timeout(exc: BaseException) -> bool:
    """A socket timeout, however requests/urllib3 wrapped it."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (socket.timeout, TimeoutError)) or type(cur).__name__ in ("ReadTimeoutError", "ReadTimeout"):
            return True
        if "timed out" in str(cur).lower():
            return True
        nxt = cur.__context__ or cur.__cause__
        if nxt is None and cur.args and isinstance(cur.args[0], BaseException):
            nxt = cur.args[0]
        cur = nxt
    return False


def read_body(
    resp: t.Any,
    what: str,
    stall: float,
    total: float,
    deadline: Deadline | None = None,
    chunk: int = 1024 * 1024,
    clock: t.Callable[[], float] = time.monotonic,
) -> t.Iterator[bytes]:
    """Yield the body of a streamed requests response, within the three bounds (BoundError when one is hit).

    ``what`` names the transfer in messages ("download of foo-1.0.whl"). The socket's read timeout must already be
    ``stall`` (the ``timeout`` of the request); ``total`` is the whole operation's allowance (pypi_op_timeout).
    """
    deadline = deadline or Deadline()
    length = resp.headers.get("Content-Length", "")
    expected = int(length) if length.isdigit() else None
    raw = resp.raw
    reader = getattr(raw, "read1", None)
    start = clock()
    received = 0
    while True:
        if clock() - start > total:
            raise BoundError(
                f"{what} was still running after {total:g} s, the time allowed for one operation (pypi_op_timeout), "
                f"with {of(received, expected)} received; the link or the server is too slow: "
                "check the network path, or raise pypi_op_timeout.",
                "op_timeout",
                f"over {total:g} s",
            )
        if deadline.passed():
            raise deadline.error(f"during the {what} ({of(received, expected)} received)")
        try:
            block = reader(chunk, decode_content=True) if reader else raw.read(chunk, decode_content=True)
        except Exception as exc:  # noqa: BLE001 - transport errors become one sentence
            if is_timeout(exc) and deadline.passed():  # the socket wait was cut to the deadline: name that
                raise deadline.error(f"during the {what} ({of(received, expected)} received)") from None
            if is_timeout(exc):
                raise BoundError(
                    f"{what} stopped sending after {of(received, expected)}; no byte for {stall:g} s "
                    "(pypi_read_timeout): the server, or a proxy in front of it, hangs in the middle of a transfer "
                    "(a wedged proxy, a dying disk, a stalled S3 backend); check its log and storage.",
                    "stall",
                    f"no byte for {stall:g} s",
                ) from None
            raise BoundError(
                f"{what} was cut after {of(received, expected)}: {_short(exc)}; the server or a proxy "
                "closed the connection mid-transfer: check its log.",
                "cut",
                "connection cut mid-transfer",
            ) from None
        if not block:
            break
        received += len(block)
        yield block
    if expected is not None and received < expected:
        raise BoundError(
            f"{what} ended after {of(received, expected)} (the Content-Length); the server or a proxy "
            "closed the connection mid-transfer: check its log.",
            "cut",
            "connection cut mid-transfer",
        )


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------- circuit breaker

_KIND_PATTERNS = (
    (re.compile(r"no byte for [\d.]+ s"), None),
    (re.compile(r"connection refused", re.I), "connection refused"),
    (re.compile(r"sent no answer within [\d.]+s", re.I), None),
    (re.compile(r"no answer within [\d.]+ ?s", re.I), None),
    (re.compile(r"closed the connection", re.I), "connection closed"),
    (re.compile(r"cut after|ended after", re.I), "connection cut mid-transfer"),
    (re.compile(r"still running after [\d.]+ s", re.I), None),
    (re.compile(r"deadline.*passed", re.I), "deadline passed"),
    (re.compile(r"does not resolve", re.I), "DNS"),
    (re.compile(r"TLS", re.I), "TLS"),
    (re.compile(r"sha256", re.I), "wrong bytes (sha256)"),
    (re.compile(r"not listed", re.I), "not listed"),
)


def failure_kind(detail: str, status: int | None = None) -> str:
    """A few words that say what kind of failure a message is: the breaker counts failures of the same kind."""
    if status is not None and status >= 300 and status != 200:
        return f"HTTP {status}"
    for pattern, label in _KIND_PATTERNS:
        match = pattern.search(detail or "")
        if match:
            return label or match.group(0)
    return " ".join((detail or "failed").split()[:4])


class Breaker:
    """Stops a repeated operation after ``limit`` consecutive failures of the same kind (0: never).

    Thread-safe: parallel workers record into one breaker and ask ``open`` before starting an operation.
    """

    def __init__(self, limit: int, what: str, total: int):
        self.limit = max(0, int(limit))
        self.what = what
        self.total = total
        self.done = 0
        self.run_kind = ""
        self.run_count = 0
        self.run_first = ""
        self.message = ""
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """True once it tripped: no new operation should start."""
        return bool(self.message)

    def record(self, ok: bool, detail: str = "", status: int | None = None) -> None:
        with self._lock:
            self.done += 1
            if ok:
                self.run_kind, self.run_count, self.run_first = "", 0, ""
                return
            kind = failure_kind(detail, status)
            if kind == self.run_kind:
                self.run_count += 1
            else:
                self.run_kind, self.run_count, self.run_first = kind, 1, " ".join((detail or "").split())
            if self.limit and self.run_count >= self.limit and not self.message:
                self.message = (
                    f"stopped after {self.run_count} consecutive {self.what} failures ({kind}) at "
                    f"{self.done}/{self.total}; first: {self.run_first}"
                )

    def halt(self, message: str) -> None:
        """Stop for another reason (the deadline): the first message wins."""
        with self._lock:
            if not self.message:
                self.message = message
