# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming digests: one place that hashes files and byte streams."""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import typing as t

CHUNK = 1024 * 1024
_IN_FLIGHT = 4  # chunks queued between a stream and its hashing thread


def sha256_file(path: str, chunk: int = CHUNK) -> tuple[str, int]:
    """Return (sha256 hex digest, size in bytes) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def sha256_chunks(chunks: t.Iterable[bytes], extra: t.Any = None) -> tuple[str, int]:
    """Return (sha256, size) of an iterable of byte chunks (e.g. a streamed HTTP body); ``extra`` also gets every chunk.

    Hashing runs in a second thread, so that receiving the next chunk overlaps hashing this one (hashlib releases
    the GIL on large buffers): a download is then as fast as the slower of the two, not their sum. At most
    ``_IN_FLIGHT`` chunks wait in between, so memory stays bounded.
    """
    hashers = [hashlib.sha256()] + ([extra] if extra is not None else [])
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=_IN_FLIGHT)

    def consume() -> None:
        while True:
            block = pending.get()
            if block is None:
                return
            for hasher in hashers:
                hasher.update(block)

    worker = threading.Thread(target=consume, name="sha256", daemon=True)
    worker.start()
    size = 0
    try:
        for block in chunks:
            if block:
                pending.put(block)
                size += len(block)
    finally:
        pending.put(None)
        worker.join()
    return hashers[0].hexdigest(), size


def file_record(path: str) -> dict[str, t.Any]:
    """Path, basename, size and sha256 of one file: the shape every module returns."""
    sha, size = sha256_file(path)
    return {"path": os.path.abspath(path), "filename": os.path.basename(path), "size": size, "sha256": sha}
