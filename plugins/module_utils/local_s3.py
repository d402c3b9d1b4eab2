# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local S3-backed storage: an S3 protocol server (moto) on 127.0.0.1 with one bucket,
mounted with s3fs (FUSE) on a directory that the local pypiserver then serves. This is the
shape of a pod whose package volume is a bucket mounted by an S3 CSI driver.

Both processes run detached; their PIDs are kept in ``<state_dir>/s3.json``. Stopping unmounts
first, then stops s3fs and moto by PID. The s3fs credentials file is mode 0600; no secret is
in any argv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import local_server as ls

STATE_FILE = "s3.json"
REGION = "us-east-1"


class S3Spec(t.NamedTuple):
    state_dir: str
    bucket: str = "pypi"
    prefix: str = "packages"
    mountpoint: str = ""
    port: int = 0
    access_key: str = "pypi-ops"
    secret_key: str = "pypi-ops-secret"
    python: str = sys.executable
    mount_options: tuple[str, ...] = ()
    # More than 1: the same bucket mounted that many times, by separate s3fs processes (one per replica, the way
    # two nodes would each mount it); mount i > 0 is at <mount_dir>-<i>.
    mounts: int = 1

    @property
    def mount_dir(self) -> str:
        return self.mountpoint or os.path.join(self.state_dir, "mnt")

    @property
    def mount_dirs(self) -> list[str]:
        return [self.mount_dir] + [f"{self.mount_dir}-{i}" for i in range(1, max(1, self.mounts))]


def fuse_problem() -> str | None:
    """Why a FUSE mount cannot work here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "FUSE is not available (no /dev/fuse); S3-backed local storage needs it"
    if not shutil.which("s3fs"):
        return "s3fs is not installed (Debian: apt-get install s3fs)"
    return None


def read_state(state_dir: str) -> dict[str, t.Any] | None:
    return ls.read_state(state_dir, STATE_FILE)


def _write(state_dir: str, data: dict[str, t.Any]) -> None:
    ls.write_state(state_dir, data, STATE_FILE)


def describe(state: dict[str, t.Any] | None) -> dict[str, t.Any]:
    if not state:
        return {"running": False}
    moto_ok = ls.pid_alive(state.get("moto_pid"), state.get("moto_token"))
    s3fs_ok = ls.pid_alive(state.get("s3fs_pid"), state.get("s3fs_token"))
    mounted = is_mount(state.get("mountpoint", ""))
    extra = state.get("extra_mounts") or []
    extra_ok = all(
        ls.pid_alive(m.get("s3fs_pid"), m.get("s3fs_token")) and is_mount(m.get("mountpoint", "")) for m in extra
    )
    return {
        "running": moto_ok and s3fs_ok and mounted and extra_ok,
        "mountpoints": [state.get("mountpoint")] + [m.get("mountpoint") for m in extra],
        "endpoint_url": f"http://127.0.0.1:{state.get('port')}",
        "region": REGION,
        "bucket": state.get("bucket"),
        "prefix": state.get("prefix"),
        "mountpoint": state.get("mountpoint"),
        "mounted": mounted,
        "moto_pid": state.get("moto_pid"),
        "s3fs_pid": state.get("s3fs_pid"),
        "access_key": state.get("access_key"),
    }


def _client(endpoint: str, spec: S3Spec) -> t.Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=spec.access_key,
        aws_secret_access_key=spec.secret_key,
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2}, s3={"addressing_style": "path"}),
    )


def start(spec: S3Spec, timeout: float = 30.0) -> tuple[bool, dict[str, t.Any]]:
    problem = fuse_problem()
    if problem:
        raise ls.ServerError(problem + "; run on a machine with FUSE, or use the local target.")
    # its parent is the target's state directory, which will hold htpasswd and credentials
    ls.make_private_dirs(spec.state_dir)
    state = read_state(spec.state_dir) or {}
    current = describe(state)
    if (
        current["running"]
        and state.get("bucket") == spec.bucket
        and state.get("prefix") == spec.prefix
        and current["mountpoints"] == spec.mount_dirs
    ):
        return False, current
    stop(spec.state_dir)
    port = spec.port or ls.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    moto, moto_token, moto_off = ls.spawn_detached(
        [spec.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        os.path.join(spec.state_dir, "moto.log"),
        spec.state_dir,
    )
    state = {
        "port": port,
        "bucket": spec.bucket,
        "prefix": spec.prefix,
        "mountpoint": spec.mount_dir,
        "access_key": spec.access_key,
        "moto_pid": moto.pid,
        "moto_token": moto_token,
    }
    _write(spec.state_dir, state)
    try:
        ls.wait_healthy(endpoint + "/", max(1.0, deadline - time.monotonic()), alive=lambda: moto.poll() is None)
        client = _client(endpoint, spec)
        try:
            client.create_bucket(Bucket=spec.bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        passwd = os.path.join(spec.state_dir, "s3fs.passwd")
        fd = os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{spec.access_key}:{spec.secret_key}\n")
        source = f"{spec.bucket}:/{spec.prefix.strip('/')}" if spec.prefix.strip("/") else spec.bucket
        for index, mount_dir in enumerate(spec.mount_dirs):
            log = os.path.join(spec.state_dir, "s3fs.log" if index == 0 else f"s3fs-{index}.log")
            pid, token = _mount(spec, source, endpoint, passwd, mount_dir, log, deadline, timeout)
            if index == 0:
                state.update(s3fs_pid=pid, s3fs_token=token)
            else:
                state.setdefault("extra_mounts", []).append(
                    {"mountpoint": mount_dir, "s3fs_pid": pid, "s3fs_token": token}
                )
            _write(spec.state_dir, state)
    except ls.ServerError:
        stop(spec.state_dir)
        raise
    except Exception as exc:  # noqa: BLE001 - boto3/botocore errors become one sentence
        tail = ls.tail_since(os.path.join(spec.state_dir, "moto.log"), moto_off)
        stop(spec.state_dir)
        raise ls.ServerError(f"Could not prepare the bucket on {endpoint}: {exc}.", tail) from None
    moto.returncode = 0  # it stays running, detached; no ResourceWarning
    return True, describe(state)


def _mount(
    spec: S3Spec, source: str, endpoint: str, passwd: str, mount_dir: str, log: str, deadline: float, timeout: float
) -> tuple[int, str | None]:
    """One s3fs process mounting ``source`` on ``mount_dir``; waits for the mount. (pid, start token)."""
    os.makedirs(mount_dir, exist_ok=True)
    if os.listdir(mount_dir):
        raise ls.ServerError(f"Mountpoint {mount_dir} is not empty; empty it or choose another mountpoint.")
    s3fs, s3fs_token, s3fs_off = ls.spawn_detached(
        [
            "s3fs",
            source,
            mount_dir,
            "-f",
            "-o",
            f"url={endpoint}",
            "-o",
            "use_path_request_style",
            "-o",
            f"passwd_file={passwd}",
            "-o",
            "stat_cache_expire=1",
            "-o",
            f"endpoint={REGION}",
            *[arg for opt in spec.mount_options for arg in ("-o", opt)],
        ],
        log,
        spec.state_dir,
    )
    delay = 0.02
    while not os.path.ismount(mount_dir):
        if not ls.pid_alive(s3fs.pid, s3fs_token):
            raise ls.ServerError(
                "s3fs exited before the bucket was mounted; read its log below (FUSE, credentials, endpoint).",
                ls.tail_since(log, s3fs_off),
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if ls.pid_alive(s3fs.pid, s3fs_token):
                ls.terminate(s3fs.pid, s3fs_token)
            raise ls.ServerError(
                f"s3fs did not mount the bucket within {timeout:g}s; read its log below, or raise the timeout.",
                ls.tail_since(log, s3fs_off),
            )
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.5)
    s3fs.returncode = 0  # it stays running, detached; no ResourceWarning
    return s3fs.pid, s3fs_token


def is_mount(path: str) -> bool:
    """Whether ``path`` is a mount point, a dead FUSE mount included: os.path.ismount cannot stat one (its s3fs is
    gone, "Transport endpoint is not connected") and says False, so the kernel's mount table is read too."""
    if not path:
        return False
    if os.path.ismount(path):
        return True
    target = os.path.abspath(path)
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as table:
            for line in table:
                fields = line.split()
                # the table escapes space, tab, newline and backslash in octal
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1]) if len(fields) > 1 else ""
                if point == target:
                    return True
    except OSError:
        return False
    return False


def unmount(path: str) -> bool:
    """Unmount ``path`` (a lazy unmount if it is busy). True when it is no longer a mount."""
    if not is_mount(path):
        return True
    for argv in (["umount", path], ["fusermount3", "-u", path], ["fusermount", "-u", path], ["umount", "-l", path]):
        if shutil.which(argv[0]):
            subprocess.run(argv, capture_output=True, check=False, timeout=30)
            if not is_mount(path):
                return True
    return not is_mount(path)


def stop(state_dir: str) -> dict[str, t.Any]:
    """Unmount, stop s3fs and moto by PID, forget them. Never raises for a stuck mount: reports it."""
    state = read_state(state_dir)
    if not state:
        return {"changed": False, "unmounted": True, "running": False}
    extra = state.get("extra_mounts") or []
    tried = [unmount(m.get("mountpoint", "")) for m in extra]  # every mount, not only up to the first stuck one
    unmounted = all(tried)
    unmounted = unmount(state.get("mountpoint", "")) and unmounted
    stopped = False
    for mount in extra:
        if mount.get("s3fs_pid"):
            stopped = ls.terminate(mount["s3fs_pid"], mount.get("s3fs_token")) or stopped
    for key in ("s3fs", "moto"):
        if state.get(f"{key}_pid"):
            stopped = ls.terminate(state[f"{key}_pid"], state.get(f"{key}_token")) or stopped
    if unmounted:
        os.unlink(os.path.join(state_dir, STATE_FILE))
    out = describe(state)
    out.update(changed=stopped or not unmounted, unmounted=unmounted, running=False)
    return out
