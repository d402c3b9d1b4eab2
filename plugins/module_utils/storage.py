# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage interface helpers: one inventory shape ({filename: {size, sha256}}) and one comparison,
whatever backs the index (a directory, a pod volume, a bucket)."""

from __future__ import annotations

import os
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.digest import sha256_file


def inventory_dir(path: str, hash_only: set[str] | None = None) -> dict[str, dict[str, t.Any]]:
    """Files directly in ``path`` (pypiserver also serves one level of sub-directories)."""
    out: dict[str, dict[str, t.Any]] = {}
    for root, dirs, names in os.walk(path):
        depth = os.path.relpath(root, path).count(os.sep) + (0 if root == path else 1)
        if depth >= 1:
            dirs[:] = []
        for name in names:
            if name.startswith("."):
                continue
            full = os.path.join(root, name)
            entry: dict[str, t.Any] = {"size": os.path.getsize(full), "path": full}
            if hash_only is None or name in hash_only:
                entry["sha256"] = sha256_file(full)[0]
            out[name] = entry
    return out


def probe_writable(path: str) -> tuple[bool, str]:
    probe = os.path.join(path, f".pypi_ops_write_probe.{os.getpid()}")
    try:
        with open(probe, "wb") as handle:
            handle.write(b"probe")
        os.unlink(probe)
    except OSError as exc:
        return False, exc.strerror or str(exc)
    return True, ""


def compare(files: dict[str, dict[str, t.Any]], expect: list[dict[str, t.Any]]) -> tuple[list[str], list[dict]]:
    """(missing filenames, mismatches) of ``expect`` against an inventory."""
    missing: list[str] = []
    mismatched: list[dict[str, t.Any]] = []
    for want in expect:
        name = want.get("filename") or os.path.basename(want.get("path", ""))
        have = files.get(name)
        if have is None:
            missing.append(name)
            continue
        for key in ("size", "sha256"):
            if want.get(key) is not None and have.get(key) is not None and want[key] != have[key]:
                mismatched.append({"filename": name, "field": key, "expected": want[key], "found": have[key]})
    return missing, mismatched


def mismatch_message(where: str, missing: list[str], mismatched: list[dict[str, t.Any]]) -> str:
    parts = []
    if missing:
        parts.append(f"missing from storage: {', '.join(missing)}")
    if mismatched:
        parts.append(
            "differs in storage: "
            + ", ".join(
                f"{m['filename']} ({m['field']} expected {m['expected']}, found {m['found']})" for m in mismatched
            )
        )
    return f"Storage {where}: " + "; ".join(parts) + ". The server lost or altered uploaded files; check its volume."


def verdict(
    files: dict[str, dict[str, t.Any]], expect: list[dict[str, t.Any]], where: str
) -> tuple[dict[str, t.Any], str | None]:
    """The storage interface's result (files, count, missing, mismatched) and the failure sentence, if any.

    Every storage backend (directory, pod volume, bucket) returns this same shape.
    """
    missing, mismatched = compare(files, expect)
    result = {"files": files, "count": len(files), "missing": missing, "mismatched": mismatched}
    return result, (mismatch_message(where, missing, mismatched) if missing or mismatched else None)
