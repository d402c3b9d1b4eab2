"""The chart's canary: one read-and-write check of the index, from inside the cluster, for a CronJob.

Steps, each with a deadline, in order; the first failure ends the run with exit 1 and one line naming the step, the
cause and what to check:

1. connection - GET /health (the chart runs pypiserver with --health-endpoint /health), else the root;
2. simple     - GET /simple/ answers 200;
3. upload     - a tiny run-unique wheel (stdlib only: nothing is installed at run time) is uploaded (legacy API);
4. download   - /simple/<name>/ lists it, and the bytes behind its link carry the uploaded sha256;
5. remove     - ``:action=remove_pkg`` removes the version (sent as the name pypiserver files the wheel under,
   its name part), and the project page no longer lists the file.

Environment: PYPI_URL (the Service URL), CANARY_NAME (the project name, default pypi-ops-canary), PYPI_USERNAME and
PYPI_PASSWORD (from the chart's credentials Secret when auth is on; never printed), CANARY_TIMEOUT (seconds per
request, default 30). Only the Service is contacted. Exit 0 when every step passed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

URL = os.environ.get("PYPI_URL", "http://127.0.0.1:8080").rstrip("/") + "/"
NAME = os.environ.get("CANARY_NAME", "pypi-ops-canary")
TIMEOUT = float(os.environ.get("CANARY_TIMEOUT", "30"))
USER = os.environ.get("PYPI_USERNAME", "")
# the wheel's name part, which is also the name pypiserver files it under (remove_pkg matches it exactly)
MOD = re.sub(r"[-.]+", "_", NAME).lower()
PASSWORD = os.environ.get("PYPI_PASSWORD", "")


class StepFailed(Exception):
    pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # never follow: a redirect is an answer to report
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


def _request(method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None):
    req = urllib.request.Request(urllib.parse.urljoin(URL, path), data=data, method=method, headers=headers or {})
    if USER:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    try:
        with OPENER.open(req, timeout=TIMEOUT) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()[:300].decode("utf-8", "replace")
        return exc.code, body.encode()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StepFailed(f"{method} {path} could not reach {URL}: {reason}; check the Service and the pods") from None


def _said(body: bytes) -> str:
    text = re.sub(r"<[^>]+>", " ", body.decode("utf-8", "replace"))
    return " ".join(text.split())[:200]


def _expect(status: int, body: bytes, what: str, hint: str) -> None:
    if status != 200:
        said = _said(body)
        raise StepFailed(f"{what} answered HTTP {status}{': ' + said if said else ''}; {hint}")


def wheel(version: str) -> tuple[str, bytes]:
    mod = MOD
    info = f"{mod}-{version}.dist-info"
    files = {
        f"{mod}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pypi-ops-canary\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = "".join(f"{p},sha256={b64(d)},{len(d)}\n" for p, d in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return f"{mod}-{version}-py3-none-any.whl", buf.getvalue()


def multipart(fields: list[tuple[str, str]], file: tuple[str, bytes] | None = None) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields]
    if file:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{file[0]}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + file[1]
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def links(page: bytes) -> dict[str, str]:
    """{filename: href} of a project page."""
    out = {}
    for href in re.findall(r'href="([^"]+)"', page.decode("utf-8", "replace")):
        out[urllib.parse.unquote(href.split("#", 1)[0].rsplit("/", 1)[-1])] = href
    return out


def project_page() -> bytes:
    status, body = _request("GET", f"simple/{NAME}/")
    if status == 404:
        return b""
    _expect(status, body, f"GET /simple/{NAME}/", "check the server log")
    return body


def run() -> list[str]:
    done = []
    version = f"1.{int(time.time())}.{secrets.randbelow(100000)}"
    filename, data = wheel(version)
    sha = hashlib.sha256(data).hexdigest()

    def step(name: str, fn) -> None:
        start = time.monotonic()
        try:
            detail = fn()
        except StepFailed as exc:
            raise StepFailed(f"canary step {name} failed: {exc}") from None
        done.append(f"{name} ok in {time.monotonic() - start:.2f}s{': ' + detail if detail else ''}")
        print(done[-1], flush=True)

    def connection() -> str:
        status, body = _request("GET", "health")
        if status == 404:  # a server without the health endpoint: its root must answer
            status, body = _request("GET", "")
        _expect(status, body, "the health endpoint", "the server is not serving; check the pod's log and events")
        return ""

    def simple() -> str:
        status, body = _request("GET", "simple/")
        _expect(status, body, "GET /simple/", "the index cannot list its packages; check the storage and the log")
        return ""

    def upload() -> str:
        body, ctype = multipart(
            [(":action", "file_upload"), ("name", NAME), ("version", version), ("sha256_digest", sha)],
            (filename, data),
        )
        status, said = _request("POST", "", body, {"Content-Type": ctype})
        hint = "the storage may be read-only or full, or the credentials Secret wrong; check the pod's log"
        _expect(status, said, f"the upload of {filename}", hint)
        return filename

    def download() -> str:
        href = links(project_page()).get(filename)
        if not href:
            raise StepFailed(f"/simple/{NAME}/ does not list {filename} after its upload; check the storage")
        status, got = _request("GET", urllib.parse.urljoin(urllib.parse.urljoin(URL, f"simple/{NAME}/"), href))
        _expect(status, got, f"the download of {filename}", "check the storage")
        served = hashlib.sha256(got).hexdigest()
        if served != sha:
            raise StepFailed(
                f"{filename} came back with sha256 {served}, not the uploaded {sha}; the storage is corrupt"
            )
        return f"sha256 {sha[:12]}"

    def remove() -> str:
        body, ctype = multipart([(":action", "remove_pkg"), ("name", MOD), ("version", version)])
        status, said = _request("POST", "", body, {"Content-Type": ctype})
        _expect(status, said, f"the removal of {NAME} {version}", "the storage may refuse deletes; check the log")
        if filename in links(project_page()):
            raise StepFailed(f"{filename} is still listed after its removal; check the storage")
        return ""

    for name, fn in (("connection", connection), ("simple", simple), ("upload", upload), ("download", download),
                     ("remove", remove)):  # fmt: skip
        step(name, fn)
    return done


def main() -> int:
    try:
        run()
    except StepFailed as exc:
        print(f"CANARY FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    print("CANARY OK: connection, /simple/, upload, download (sha256), remove", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
