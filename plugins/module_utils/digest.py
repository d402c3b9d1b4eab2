# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming digests: one place that hashes files and byte streams."""

from __future__ import annotations

import hashlib
import os
import typing as t

CHUNK = 1024 * 1024


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


def sha256_chunks(chunks: t.Iterable[bytes]) -> tuple[str, int]:
    """Return (sha256, size) of an iterable of byte chunks (e.g. a streamed HTTP body)."""
    digest = hashlib.sha256()
    size = 0
    for block in chunks:
        if block:
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def file_record(path: str) -> dict[str, t.Any]:
    """Path, basename, size and sha256 of one file: the shape every module returns."""
    sha, size = sha256_file(path)
    return {"path": os.path.abspath(path), "filename": os.path.basename(path), "size": size, "sha256": sha}
