"""Build the local cluster's images with no registry, as OCI archives, and import them into containerd.

One Debian 12 (bookworm) root filesystem made with debootstrap is the shared base layer; each image adds a
small layer on top:

- ``localhost/pypiops/pause:3.10``: a static ``pause`` (``pause.c`` beside this file), the pod sandbox;
- ``localhost/pypiops/pypiserver:2.4.2``: pypiserver 2.4.2 with passlib and bcrypt in ``/opt/pypiserver``,
  user 9898 and ``/data/packages`` as in the upstream image, entrypoint ``pypi-server``;
- ``localhost/pypiops/pypiserver:2.3.2``: the same with the older release, the upgrade drill's starting point
  (every ``pypiserver*`` entry of IMAGES is such an image; its tag is the pypiserver version, and each version's
  venv is built and cached on its own);
- ``localhost/pypiops/python:3.11``: the base as it is (python3, pip, curl), for the chart's helm tests;
- ``localhost/pypiops/kubectl:1.33``: the base plus ``kubectl`` (sh, curl, grep, sed and kubectl), likewise.

Usage: images.py build CACHE_DIR --kubectl PATH   writes CACHE_DIR/images/*.tar (kept when present)
       images.py import CACHE_DIR --address SOCK  ctr import of each archive (skipped when already there)

Everything is cached under CACHE_DIR; a second build reuses the archives.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

SUITE = "bookworm"
MIRROR = os.environ.get("PYPIOPS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ["python3", "python3-pip", "python3-venv", "curl", "ca-certificates"]
PYPISERVER_DEPS = ["passlib==1.7.4", "bcrypt==4.0.1"]  # with pypiserver==<the image's tag>
EPOCH = 0  # fixed mtimes: the same inputs give the same layer digests

IMAGES = {
    "pause": "localhost/pypiops/pause:3.10",
    "pypiserver": "localhost/pypiops/pypiserver:2.4.2",
    "pypiserver-2.3.2": "localhost/pypiops/pypiserver:2.3.2",  # the upgrade drill's older release
    "python": "localhost/pypiops/python:3.11",
    "kubectl": "localhost/pypiops/kubectl:1.33",
}
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
HERE = os.path.dirname(os.path.abspath(__file__))


class BuildError(Exception):
    pass


def run(argv: list[str], what: str, timeout: float, env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BuildError(
            f"{what} did not finish within {timeout:.0f} s; check the network to the package mirrors"
        ) from exc
    except FileNotFoundError as exc:
        raise BuildError(f"{what}: {argv[0]} is not installed (apt-get install {argv[0]})") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def chroot_env() -> dict[str, str]:
    # Nothing of the host's pip/uv configuration may reach the image build.
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
    }


def base_rootfs(cache: str) -> str:
    root = os.path.join(cache, "rootfs", "base")
    if os.path.exists(os.path.join(root, ".complete")):
        return root
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.dirname(root), exist_ok=True)
    log(f"debootstrap {SUITE} (minbase + {', '.join(BASE_PACKAGES)}) -> {root}")
    run(
        ["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES), SUITE, root, MIRROR],
        "debootstrap of the base image",
        1800,
    )
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for name in os.listdir(os.path.join(root, sub)):
            p = os.path.join(root, sub, name)
            if os.path.isfile(p):
                os.unlink(p)
    with open(os.path.join(root, ".complete"), "w") as fh:
        fh.write(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    return root


def pypiserver_images() -> dict[str, str]:
    """{IMAGES key: pypiserver version} of every pypiserver image (the version is the reference's tag)."""
    return {name: ref.rsplit(":", 1)[1] for name, ref in IMAGES.items() if name.split("-", 1)[0] == "pypiserver"}


def pypiserver_pins(version: str) -> list[str]:
    return [f"pypiserver=={version}", *PYPISERVER_DEPS]


def pypiserver_tree(cache: str, base: str, version: str) -> str:
    """pypiserver's venv, built inside a copy of the base (its own pip, its own python), then moved out; one
    cached tree per version (rootfs/pypiserver-<version>)."""
    pins = pypiserver_pins(version)
    out = os.path.join(cache, "rootfs", f"pypiserver-{version}")
    if os.path.exists(os.path.join(out, ".complete")):
        return out
    work = os.path.join(cache, "rootfs", f"pypiserver-{version}-build")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    log("pypiserver venv (" + ", ".join(pins) + ")")
    run(["cp", "-a", base, work], "copy of the base root", 600)
    shutil.copy("/etc/resolv.conf", os.path.join(work, "etc/resolv.conf"))
    try:
        run(
            ["chroot", work, "python3", "-m", "venv", "/opt/pypiserver"],
            "python3 -m venv in the image",
            300,
            chroot_env(),
        )
        # Wheels come through the host's pip (its CA bundle reaches PyPI); the image's pip installs them offline.
        wheels = os.path.join(work, "tmp/wheels")
        host_env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
        host_env["PIP_CONFIG_FILE"] = "/dev/null"
        cert = [] if not os.path.exists(HOST_CA) else ["--cert", HOST_CA]
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-cache-dir",
                *cert,
                "--only-binary",
                ":all:",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--abi",
                "cp311",
                "--platform",
                "manylinux2014_x86_64",
                "-d",
                wheels,
                *pins,
            ],
            "pip download of pypiserver's wheels",
            900,
            host_env,
        )
        run(
            [
                "chroot",
                work,
                "/opt/pypiserver/bin/pip",
                "install",
                "--no-cache-dir",
                "--no-index",
                "--find-links",
                "/tmp/wheels",
                *pins,
            ],
            "pip install of pypiserver in the image",
            900,
            chroot_env(),
        )
        os.makedirs(os.path.join(out, "opt"))
        shutil.move(os.path.join(work, "opt/pypiserver"), os.path.join(out, "opt/pypiserver"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(out, "data/packages"))
    open(os.path.join(out, ".complete"), "w").close()
    return out


def pause_binary(cache: str) -> str:
    out = os.path.join(cache, "rootfs", "pause", "pause")
    if os.path.exists(out):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    run(["gcc", "-Os", "-static", "-o", out + ".tmp", os.path.join(HERE, "pause.c")], "gcc of pause.c", 120)
    run(["strip", out + ".tmp"], "strip of pause", 60)
    os.replace(out + ".tmp", out)
    return out


# ---------------------------------------------------------------- OCI archive writing


def _norm(info: tarfile.TarInfo, uid: int | None = None) -> tarfile.TarInfo:
    info.mtime = EPOCH
    if uid is not None:
        info.uid = info.gid = uid
        info.uname = info.gname = ""
    return info


def layer_from_dir(root: str, skip: tuple[str, ...] = (".complete",), owner: dict[str, int] | None = None) -> bytes:
    """An uncompressed layer tar of ``root`` (paths relative, sorted, mtimes fixed)."""
    buf = io.BytesIO()
    owner = owner or {}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        entries: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in dirnames + sorted(filenames):
                entries.append(os.path.relpath(os.path.join(dirpath, name), root))
        for rel in sorted(entries):
            if rel in skip:
                continue
            path = os.path.join(root, rel)
            info = tf.gettarinfo(path, arcname=rel)
            uid = next((u for prefix, u in owner.items() if rel == prefix or rel.startswith(prefix + "/")), None)
            _norm(info, uid)
            if info.isreg():
                with open(path, "rb") as fh:
                    tf.addfile(info, fh)
            else:
                tf.addfile(info)
    return buf.getvalue()


def layer_from_files(files: dict[str, tuple[bytes, int]], dirs: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d, uid in sorted((dirs or {}).items()):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.uid = info.gid = uid
            tf.addfile(_norm(info))
        for path, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = mode
            tf.addfile(_norm(info), io.BytesIO(data))
    return buf.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes, media_type: str) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def write_oci_archive(path: str, ref: str, layers: list[bytes], config: dict[str, object]) -> None:
    """An OCI image layout as a tar: oci-layout, index.json (named ``ref``), manifest, config and layers."""
    blobs: dict[str, bytes] = {}
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    layer_descs = [_blob(blobs, layer, "application/vnd.oci.image.layer.v1.tar") for layer in layers]
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "1970-01-01T00:00:00Z", "created_by": "pypi_ops scripts/cluster/images.py"} for _ in layers
        ],
    }
    cfg = _blob(blobs, json.dumps(image_config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cfg,
        "layers": layer_descs,
    }
    man = _blob(blobs, json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
    tag = ref.rsplit(":", 1)[1]
    man["annotations"] = {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag}
    man["platform"] = {"architecture": "amd64", "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [man]}
    tmp = path + ".tmp"
    with tarfile.open(tmp, "w") as tf:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = EPOCH
            tf.addfile(info, io.BytesIO(data))

        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index, sort_keys=True).encode())
        for digest, data in blobs.items():
            add("blobs/sha256/" + digest.split(":", 1)[1], data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- commands


def log(msg: str) -> None:
    print(f"images: {msg}", file=sys.stderr, flush=True)


ETC_PASSWD_ADD = "pypiserver:x:9898:9898:pypiserver:/data:/usr/sbin/nologin\n"
ETC_GROUP_ADD = "pypiserver:x:9898:\n"


def build(cache: str, kubectl: str) -> None:
    out_dir = os.path.join(cache, "images")
    os.makedirs(out_dir, exist_ok=True)
    want = {name: os.path.join(out_dir, name + ".tar") for name in IMAGES}
    if all(os.path.exists(p) for p in want.values()):
        log("all image archives are cached")
        return
    if not os.access(kubectl, os.X_OK):
        raise BuildError(f"kubectl {kubectl} is not an executable file; run scripts/fetch-helm.sh .venv/bin first")
    env_path = ["PATH=/opt/pypiserver/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
    if not os.path.exists(want["pause"]):
        pause = pause_binary(cache)
        with open(pause, "rb") as fh:
            layer = layer_from_files({"pause": (fh.read(), 0o755)})
        write_oci_archive(want["pause"], IMAGES["pause"], [layer], {"Entrypoint": ["/pause"], "User": "65535:65535"})
        log(f"wrote {want['pause']}")
    base = base_rootfs(cache)
    base_layer_path = os.path.join(cache, "rootfs", "base.layer.tar")
    if os.path.exists(base_layer_path):
        with open(base_layer_path, "rb") as fh:
            base_layer = fh.read()
    else:
        base_layer = layer_from_dir(base)
        with open(base_layer_path + ".tmp", "wb") as fh:
            fh.write(base_layer)
        os.replace(base_layer_path + ".tmp", base_layer_path)
    with open(os.path.join(base, "etc/passwd"), "rb") as fh:
        passwd = fh.read()
    with open(os.path.join(base, "etc/group"), "rb") as fh:
        group = fh.read()
    for name, version in pypiserver_images().items():
        if os.path.exists(want[name]):
            continue
        t0 = time.monotonic()
        tree = pypiserver_tree(cache, base, version)
        top = layer_from_dir(tree, owner={"data": 9898})
        users = layer_from_files(
            {
                "etc/passwd": (passwd + ETC_PASSWD_ADD.encode(), 0o644),
                "etc/group": (group + ETC_GROUP_ADD.encode(), 0o644),
            }
        )
        write_oci_archive(
            want[name],
            IMAGES[name],
            [base_layer, top, users],
            {
                "Entrypoint": ["/opt/pypiserver/bin/pypi-server"],
                "Cmd": ["run", "-p", "8080", "/data/packages"],
                "User": "9898:9898",
                "WorkingDir": "/data",
                "Env": env_path,
                "ExposedPorts": {"8080/tcp": {}},
            },
        )
        log(f"wrote {want[name]} (pypiserver {version}) in {time.monotonic() - t0:.0f} s")
    if not os.path.exists(want["python"]):
        write_oci_archive(want["python"], IMAGES["python"], [base_layer], {"Cmd": ["python3"], "Env": env_path})
        log(f"wrote {want['python']}")
    if not os.path.exists(want["kubectl"]):
        with open(kubectl, "rb") as fh:
            top = layer_from_files({"usr/local/bin/kubectl": (fh.read(), 0o755)})
        write_oci_archive(want["kubectl"], IMAGES["kubectl"], [base_layer, top], {"Cmd": ["/bin/sh"], "Env": env_path})
        log(f"wrote {want['kubectl']}")


def import_images(cache: str, address: str, ctr: str = "ctr") -> None:
    have = run([ctr, "--address", address, "-n", "k8s.io", "images", "ls", "-q"], "ctr images ls", 60).split()
    for name, ref in IMAGES.items():
        if ref in have:
            continue
        path = os.path.join(cache, "images", name + ".tar")
        if not os.path.exists(path):
            raise BuildError(f"image archive {path} is missing; run 'make cluster-images' first")
        run(
            [ctr, "--address", address, "-n", "k8s.io", "images", "import", "--all-platforms", path],
            f"ctr import of {ref}",
            600,
        )
        log(f"imported {ref}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["build", "import", "refs"])
    ap.add_argument("cache")
    ap.add_argument("--kubectl", default="")
    ap.add_argument("--address", default="")
    args = ap.parse_args()
    try:
        if args.command == "build":
            build(args.cache, args.kubectl)
        elif args.command == "import":
            import_images(args.cache, args.address)
        else:
            print(json.dumps(IMAGES))
    except BuildError as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
