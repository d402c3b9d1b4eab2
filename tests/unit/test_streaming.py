"""The streamed multipart body and the threaded hashing: exact bytes, bounded memory, errors that surface."""

from __future__ import annotations

import email.parser
import hashlib
import os
import threading

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import digest, traffic, upload
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import http as httputil
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import simple_index as si


def _parse(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    message = email.parser.BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return {
        part.get_param("name", header="content-disposition"): (part.get_filename(), part.get_payload(decode=True))
        for part in message.get_payload()
    }


def test_multipart_body_is_exact_and_parses(tmp_path):
    data = os.urandom(3 * digest.CHUNK + 12345)  # several chunks and a partial one
    path = tmp_path / "demo_pkg-1.0-py3-none-any.whl"
    path.write_bytes(data)
    seen: list[tuple[int, int]] = []
    body = upload.MultipartBody(
        [("name", "demo-pkg"), ("version", "1.0")],
        "content",
        str(path),
        lambda d, total, detail="": seen.append((d, total)),
    )
    joined = b"".join(body)
    assert len(joined) == len(body)  # the Content-Length sent is the body's size
    assert b"".join(body) == joined  # iterating again (a retried request) gives the same bytes
    parts = _parse(joined, body.content_type)
    assert parts["name"] == (None, b"demo-pkg")
    assert parts["version"] == (None, b"1.0")
    assert parts["content"] == (path.name, data)
    assert seen[-1] == (len(body), len(body)) and len(seen) >= 4


def test_multipart_body_chunks_are_bounded(tmp_path):
    path = tmp_path / "big.whl"
    with open(path, "wb") as handle:
        handle.truncate(5 * digest.CHUNK)
    assert max(len(block) for block in upload.MultipartBody([], "content", str(path))) <= digest.CHUNK


def test_http_upload_streams_a_file_the_server_serves_back(pypiserver, tmp_path):
    rec = traffic.synthetic_wheel(str(tmp_path), "stream-probe", "1.0.0", payload_size=2 * digest.CHUNK + 7)
    opts = httputil.ClientOptions(None, None, True, None, 5, 30)
    session = httputil.make_session(opts)
    got = upload.http_upload(session, pypiserver.url, rec["path"], rec["name"], "1.0.0", rec["sha256"], opts)
    assert got.outcome == "uploaded", got
    sha, size = si.download_and_hash(session, f"{pypiserver.url}packages/{rec['filename']}", opts)
    assert (sha, size) == (rec["sha256"], rec["size"])
    again = upload.http_upload(session, pypiserver.url, rec["path"], rec["name"], "1.0.0", None, opts)
    assert again.outcome == "exists"


def test_http_upload_of_a_missing_file_is_one_sentence(pypiserver, tmp_path):
    opts = httputil.ClientOptions(None, None, True, None, 5, 30)
    got = upload.http_upload(
        httputil.make_session(opts), pypiserver.url, str(tmp_path / "gone.whl"), "gone", "1.0", None, opts
    )
    assert got.outcome == "error" and "cannot read" in got.detail


def test_sha256_chunks_matches_hashlib_and_feeds_extra():
    blocks = [os.urandom(n) for n in (0, 1, digest.CHUNK, 3, 2 * digest.CHUNK + 1)]
    md5 = hashlib.md5()  # noqa: S324 - an index may advertise md5; it is only compared
    sha, size = digest.sha256_chunks(iter(blocks), md5)
    joined = b"".join(blocks)
    assert (sha, size) == (hashlib.sha256(joined).hexdigest(), len(joined))
    assert md5.hexdigest() == hashlib.md5(joined).hexdigest()  # noqa: S324


def test_sha256_chunks_surfaces_a_stream_error_and_leaves_no_thread():
    before = threading.active_count()

    def broken():
        yield b"x" * 1000
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        digest.sha256_chunks(broken())
    assert threading.active_count() == before
