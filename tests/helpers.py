"""Helpers for tests that run whole playbooks with the real ansible-playbook."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
import typing as t
import xml.etree.ElementTree as ET
from pathlib import Path

if t.TYPE_CHECKING:
    import http.client
    from http.server import BaseHTTPRequestHandler

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"


class PlayRun(t.NamedTuple):
    rc: int
    output: str
    results: dict[str, dict[str, str]]
    report_dir: Path


def run_playbook(
    playbook: str | Path,
    tmp: Path,
    extra: dict[str, t.Any] | None = None,
    args: t.Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> PlayRun:
    """Run a playbook with its state, work and report dirs under ``tmp``; parse reports/junit.xml."""
    report_dir = tmp / "reports"
    variables = {
        "pypi_local_state_dir": str(tmp / "state"),
        "pypi_work_dir": str(tmp / "work"),
        "pypi_report_dir": str(report_dir),
    }
    variables.update(extra or {})
    child_env = dict(os.environ)
    child_env.update(
        {
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
        }
    )
    child_env.update(env or {})
    cmd = [str(VENV_BIN / "ansible-playbook"), str(playbook), "-e", json.dumps(variables), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=timeout, check=False)
    found = newest_report(report_dir)
    return PlayRun(proc.returncode, proc.stdout + proc.stderr, parse_junit(found / "junit.xml"), found)


def newest_report(report_dir: Path) -> Path:
    """``report_dir`` itself, or for runbooks (pypi_report_unique) its newest ``<name>/<time>-<target>-<id>/``."""
    if (report_dir / "junit.xml").exists():
        return report_dir
    runs = sorted(report_dir.glob("*/*/junit.xml"), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent if runs else report_dir


def parse_junit(path: Path) -> dict[str, dict[str, str]]:
    """{testcase name: {status, reason}} from a JUnit file; empty when there is none."""
    if not path.exists():
        return {}
    out: dict[str, dict[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        status, reason = "passed", (case.findtext("system-out") or "").split("\n")[0]
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                status = {"failure": "failed", "error": "interrupted", "skipped": "skipped"}[tag]
                reason = node.get("message", "")
        out[case.get("name")] = {"status": status, "reason": reason, "time": case.get("time")}
    return out


def wait_gone(pid: int, seconds: float, what: str = "the process") -> None:
    """Wait (bounded) until ``pid`` has exited (a zombie counts as gone); fail naming ``what`` otherwise."""
    from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.run_state import alive

    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(pid), f"{what} (pid {pid}) did not finish within {seconds:g} s"


def relay_body(req: BaseHTTPRequestHandler, conn: http.client.HTTPConnection | None, length: int) -> int:
    """Stream the next ``length`` bytes of ``req``'s body to ``conn`` in 1 MiB blocks, never the whole body in memory
    (``conn`` None: read and drop them); stops early when the client stops sending. Returns the bytes read."""
    remaining = length
    while remaining > 0:
        block = req.rfile.read(min(1 << 20, remaining))
        if not block:
            break
        if conn is not None:
            conn.send(block)
        remaining -= len(block)
    return length - remaining


def rewrite_tar_member(archive: Path, member: str, body: bytes) -> None:
    """Rewrite ``archive`` (tar.gz) with ``member``'s content replaced by ``body``: a backup altered after the fact."""
    with tarfile.open(archive) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]  # type: ignore[union-attr]
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members:
            content = body if name == member else data
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
