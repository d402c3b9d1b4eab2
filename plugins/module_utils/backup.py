# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup, restore and verification of a pypiserver package store (the restore drill, package_backup).

A backup is a directory holding ``manifest.json`` (every file's name, size and sha256) and either
``packages.tar.gz`` (format ``tar``, for any store) or, for a bucket, a server-side copy of the package prefix
to a backup prefix in the same bucket (format ``s3_copy``). Nothing is trusted without its sha256: a backup is
checked against its manifest before anything is restored, every restored file is hashed on its way in, and the
restored store is read back.

Stores share one small interface (``files``, ``read``, ``put``, ``where``): :class:`DirStore` (a package
directory), :class:`S3Store` (a bucket prefix) and :class:`PodStore` (the package directory inside a pypiserver
pod, read and written through the pods/exec API as pod_storage reads it).

Every failure is a :class:`BackupError` (or s3.S3CheckError): one sentence with the cause and the next step.
"""

from __future__ import annotations

import datetime
import errno
import gzip
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import typing as t
import zlib

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import digest, pod_exec, s3
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import k8s_wait as kw
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.digest import CHUNK

MANIFEST = "manifest.json"
ARCHIVE = "packages.tar.gz"
FORMATS = ("tar", "s3_copy")
KINDS = ("dir", "s3", "pod")
MANIFEST_VERSION = 1
_FEW = 3  # problems named in one message


class BackupError(Exception):
    """A backup, restore or verification failure: ``msg`` is one sentence (cause and next step)."""

    def __init__(self, msg: str, problems: list[str] | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.problems = problems or []


def few(items: list[str]) -> str:
    more = f" (and {len(items) - _FEW} more)" if len(items) > _FEW else ""
    return "; ".join(items[:_FEW]) + more


def _strerror(exc: OSError) -> str:
    return exc.strerror or str(exc)


class _HashingReader:
    """A read-only stream over ``raw`` that hashes (sha256) and counts what passes through (tarfile reads it)."""

    def __init__(self, raw: t.Any) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else CHUNK)
        self.hash.update(data)
        self.size += len(data)
        return data


# --------------------------------------------------------------------------- stores


class DirStore:
    """A package directory: its files and those one level below (pypiserver serves both); dot files are not."""

    kind = "dir"

    def __init__(self, path: str) -> None:
        if not path:
            raise BackupError("The dir store needs a path; give store.path, the package directory.")
        self.path = os.path.abspath(path)

    @property
    def where(self) -> str:
        return self.path

    def files(self) -> dict[str, int]:
        if not os.path.isdir(self.path):
            raise BackupError(
                f"The package directory {self.path} does not exist or is not a directory; check store.path."
            )
        out: dict[str, int] = {}
        try:
            for entry in sorted(os.listdir(self.path)):
                full = os.path.join(self.path, entry)
                if entry.startswith("."):
                    continue
                if os.path.isdir(full):
                    for sub in sorted(os.listdir(full)):
                        if not sub.startswith(".") and os.path.isfile(os.path.join(full, sub)):
                            out[f"{entry}/{sub}"] = os.path.getsize(os.path.join(full, sub))
                elif os.path.isfile(full):
                    out[entry] = os.path.getsize(full)
        except OSError as exc:
            raise BackupError(
                f"Cannot read the package directory {self.path}: {_strerror(exc)}; check its permissions."
            ) from None
        return out

    def read(self, name: str) -> t.Any:
        try:
            return open(os.path.join(self.path, name), "rb")  # noqa: SIM115 - the caller closes it
        except OSError as exc:
            raise BackupError(f"Cannot read {name} in {self.path}: {_strerror(exc)}; check its permissions.") from None

    def put(self, name: str, src: str) -> None:
        dest = os.path.join(self.path, name)
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".restore.", dir=os.path.dirname(dest))
            os.close(fd)
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except OSError as exc:
            raise BackupError(
                f"Cannot write to the restore target {self.path}: {_strerror(exc)}; check that the directory "
                "exists, is mounted and is writable."
            ) from None

    def check_writable(self) -> None:
        try:
            os.makedirs(self.path, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".restore-probe.", dir=self.path)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise BackupError(
                f"The restore target {self.path} is not reachable: {_strerror(exc)}; check that the directory "
                "exists, is mounted and is writable."
            ) from None


class S3Store:
    """The objects under a bucket prefix (s3.py's client, errors and listing)."""

    kind = "s3"

    def __init__(self, opts: s3.S3Options, client: t.Any = None) -> None:
        if not opts.bucket:
            raise BackupError("The s3 store needs a bucket; give store.bucket.")
        self.opts = opts
        self.client = client or s3.make_client(opts)

    @property
    def where(self) -> str:
        return f"{self.opts.where} at {self.opts.endpoint}"

    def files(self) -> dict[str, int]:
        s3.check_bucket(self.client, self.opts)
        return {name: obj["size"] for name, obj in sorted(s3.list_objects(self.client, self.opts).items())}

    def read(self, name: str) -> t.Any:
        key = self.opts.prefix + name
        try:
            return self.client.get_object(Bucket=self.opts.bucket, Key=key)["Body"]
        except Exception as exc:  # noqa: BLE001 - boto3/botocore errors become one sentence
            raise s3.describe_error(exc, self.opts, action="GetObject", key=key) from None

    def put(self, name: str, src: str) -> None:
        key = self.opts.prefix + name
        try:
            self.client.upload_file(src, self.opts.bucket, key)
        except Exception as exc:  # noqa: BLE001 - boto3/botocore errors become one sentence
            raise s3.describe_error(exc, self.opts, action="PutObject", key=key) from None

    def copy(self, name: str, dest_prefix: str) -> None:
        """Server-side copy of one object to ``dest_prefix`` in the same bucket."""
        key = dest_prefix + name
        try:
            self.client.copy_object(
                Bucket=self.opts.bucket,
                Key=key,
                CopySource={"Bucket": self.opts.bucket, "Key": self.opts.prefix + name},
            )
        except Exception as exc:  # noqa: BLE001 - boto3/botocore errors become one sentence
            raise s3.describe_error(exc, self.opts, action="CopyObject", key=key) from None

    def check_writable(self) -> None:
        try:
            s3.check_bucket(self.client, self.opts)
        except s3.S3CheckError as exc:
            raise BackupError(f"The restore target {self.where} is not reachable: {exc.msg}") from None

    def with_prefix(self, prefix: str) -> S3Store:
        """The same bucket and client under another prefix."""
        return S3Store(self.opts._replace(prefix=s3.normalize_prefix(prefix)), self.client)


# Run as ``sh -c SCRIPT sh <args>``: paths are positional parameters, never spliced into the script.
# One line per regular file in the directory and one level below, as DirStore lists it: "<size> <relative name>".
_POD_LIST = (
    'cd "$1" 2>/dev/null || { echo "no such directory: $1" >&2; exit 3; }; '
    'for f in * */*; do [ -f "$f" ] || continue; n=$(wc -c < "$f") || exit 5; printf \'%s %s\\n\' "$n" "$f"; done'
)
# Write exactly $1 bytes of stdin to $2 (through a temporary file in the same directory, then rename): the exec
# protocol cannot close stdin, so head stops at the size.
_POD_PUT = (
    'd=$(dirname "$2"); mkdir -p "$d" || exit 5; tmp="$d/.restore.$$"; '
    'head -c "$1" > "$tmp" || { rm -f "$tmp"; exit 6; }; n=$(wc -c < "$tmp"); '
    '[ "$n" = "$1" ] || { rm -f "$tmp"; echo "wrote $n of $1 bytes" >&2; exit 7; }; '
    'chmod 644 "$tmp" && mv -f "$tmp" "$2"'
)
_POD_PROBE = 'mkdir -p "$1" && tmp="$1/.restore-probe.$$" && : > "$tmp" && rm -f "$tmp"'


class PodStore:
    """The package directory inside a pypiserver pod (one Ready pod of the release), through pods/exec."""

    kind = "pod"

    def __init__(
        self, core: t.Any, namespace: str, pod: str, path: str, container: str | None = None, timeout: float = 300
    ) -> None:
        if not path.startswith("/"):
            raise BackupError(f"The pod store needs an absolute path, not {path!r}; give store.path (/data/packages).")
        self.core, self.namespace, self.pod = core, namespace, pod
        self.path = path.rstrip("/") or "/"
        self.container = container
        self.timeout = timeout

    @property
    def where(self) -> str:
        return f"{self.path} in pod {self.pod} (namespace {self.namespace})"

    def _exec(self, command: list[str], **io: t.Any) -> pod_exec.ExecResult:
        try:
            return pod_exec.exec_command(
                self.core, self.namespace, self.pod, command, self.container, self.timeout, **io
            )
        except kw.K8sError as exc:
            raise BackupError(f"{exc} (the package store {self.where})") from None

    def _why(self, res: pod_exec.ExecResult) -> str:
        lines = (res.stderr.strip() or res.message or "no exit status received").splitlines()
        return f"exit code {res.exit_code}: {lines[-1]}"

    def files(self) -> dict[str, int]:
        res = self._exec(["sh", "-c", _POD_LIST, "sh", self.path])
        if res.exit_code == 3:
            raise BackupError(
                f"The package directory {self.path} does not exist in pod {self.pod}; check store.path and the "
                "volume mount."
            )
        if res.exit_code != 0:
            raise BackupError(f"Cannot list {self.where} ({self._why(res)}); check the pod and its volume.")
        out: dict[str, int] = {}
        for line in res.stdout.splitlines():
            size, _sep, name = line.partition(" ")
            if size.isdigit() and name:
                out[name] = int(size)
        return dict(sorted(out.items()))

    def read(self, name: str) -> t.Any:
        sink = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
        try:
            res = self._exec(["cat", "--", f"{self.path}/{name}"], stdout=sink)
            if res.exit_code != 0:
                raise BackupError(f"Cannot read {name} in {self.where} ({self._why(res)}); check the pod.")
            sink.seek(0)
        except BaseException:
            sink.close()
            raise
        return sink

    def put(self, name: str, src: str) -> None:
        with open(src, "rb") as data:
            size = os.fstat(data.fileno()).st_size
            res = self._exec(["sh", "-c", _POD_PUT, "sh", str(size), f"{self.path}/{name}"], stdin=data)
        if res.exit_code != 0:
            raise BackupError(
                f"Cannot write {name} to the restore target {self.where} ({self._why(res)}); check that the volume "
                "is mounted, writable by the pod's user and not full."
            )

    def check_writable(self) -> None:
        res = self._exec(["sh", "-c", _POD_PROBE, "sh", self.path])
        if res.exit_code != 0:
            raise BackupError(
                f"The restore target {self.where} is not writable ({self._why(res)}); check the volume mount and "
                "that the pod's user can write it."
            )


def pod_store(spec: dict[str, t.Any]) -> PodStore:
    """A PodStore from the module's store options: the named pod or the first Ready pod of ``label_selector``."""
    if not spec.get("namespace") or not (spec.get("pod") or spec.get("label_selector")):
        raise BackupError("The pod store needs namespace and pod or label_selector; give them in store.")
    timeout = float(spec.get("timeout") or 300)
    try:
        api = kw.load_client(spec.get("kubeconfig") or None, spec.get("context") or None)
        core = kw.k8s_client.CoreV1Api(api)
        name = pod_exec.choose_pod(core, spec["namespace"], spec.get("pod"), spec.get("label_selector"))
    except kw.K8sError as exc:
        raise BackupError(f"The pod store cannot be reached: {exc}") from None
    return PodStore(core, spec["namespace"], name, spec.get("path") or "/data/packages", spec.get("container"), timeout)


Store = t.Union[DirStore, S3Store, PodStore]  # noqa: UP007 - ansible-test's pylint evaluates this at run time


def make_store(spec: dict[str, t.Any] | None) -> Store:
    """A store from the module's ``store``/``source`` option (kind dir: path; kind s3: the s3_objects options)."""
    if not spec:
        raise BackupError(
            "No store given; give store with kind dir (path), s3 (bucket, endpoint_url ...) or pod (namespace, "
            "label_selector, path)."
        )
    kind = spec.get("kind")
    if kind == "dir":
        return DirStore(os.path.expanduser(spec.get("path") or ""))
    if kind == "s3":
        if not s3.HAS_BOTO3:
            raise BackupError(
                "A store of kind s3 needs the Python library boto3 on the controller; install requirements-s3.txt."
            )
        return S3Store(s3.S3Options.from_params(spec))
    if kind == "pod":
        return pod_store(spec)
    raise BackupError(f"Unknown store kind {kind!r}; use one of {', '.join(KINDS)}.")


def _chunks(stream: t.Any, sink: t.Any = None) -> t.Iterator[bytes]:
    """The chunks of a readable ``stream``, each also written to ``sink`` when given."""
    while True:
        data = stream.read(CHUNK)
        if not data:
            return
        if sink is not None:
            sink.write(data)
        yield data


def sha256_stream(stream: t.Any) -> tuple[str, int]:
    """(sha256, size) of a readable stream (digest.sha256_chunks: hashing overlaps reading)."""
    return digest.sha256_chunks(_chunks(stream))


# --------------------------------------------------------------------------- manifest


def manifest_path(backup_dir: str) -> str:
    return os.path.join(backup_dir, MANIFEST)


def read_manifest(backup_dir: str) -> dict[str, t.Any]:
    path = manifest_path(backup_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise BackupError(
            f"No backup at {backup_dir}: {MANIFEST} is missing; give the directory a backup wrote."
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"The backup manifest {path} cannot be read ({exc}); take a new backup.") from None
    files = data.get("files") if isinstance(data, dict) else None
    if (
        not isinstance(files, list)
        or data.get("format") not in FORMATS
        or not all(isinstance(f, dict) and {"name", "size", "sha256"} <= set(f) for f in files)
    ):
        raise BackupError(
            f"The backup manifest {path} is not a pypi_ops backup manifest (format and files with name, size and "
            "sha256); take a new backup."
        )
    return data


def write_json_atomic(path: str, data: dict[str, t.Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=os.path.dirname(path))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _manifest(fmt: str, store: Store, files: list[dict[str, t.Any]], **extra: t.Any) -> dict[str, t.Any]:
    return {
        "version": MANIFEST_VERSION,
        "format": fmt,
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": {"kind": store.kind, "where": store.where},
        "file_count": len(files),
        "total_bytes": sum(f["size"] for f in files),
        "files": files,
        **extra,
    }


def _prepare_dir(backup_dir: str) -> None:
    if os.path.exists(manifest_path(backup_dir)):
        raise BackupError(
            f"{backup_dir} already holds a backup ({MANIFEST}); give a new directory, backups are never overwritten."
        )
    try:
        os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise BackupError(
            f"Cannot create the backup directory {backup_dir}: {_strerror(exc)}; give a writable path."
        ) from None


# --------------------------------------------------------------------------- backup


def plan_backup(store: Store) -> dict[str, int]:
    files = store.files()
    if not files:
        raise BackupError(f"The package store {store.where} holds no file; there is nothing to back up.")
    return files


def backup_tar(store: Store, backup_dir: str) -> dict[str, t.Any]:
    """Stream every file of ``store`` into ``<backup_dir>/packages.tar.gz``, hashing it; then write the manifest."""
    names = plan_backup(store)
    _prepare_dir(backup_dir)
    archive = os.path.join(backup_dir, ARCHIVE)
    part = archive + ".part"
    files: list[dict[str, t.Any]] = []
    try:
        with tarfile.open(part, "w:gz", compresslevel=1) as tar:
            for name, size in names.items():
                stream = store.read(name)
                try:
                    reader = _HashingReader(stream)
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = size, 0o644, 0
                    tar.addfile(info, reader)
                finally:
                    stream.close()
                if reader.size != size:
                    raise BackupError(
                        f"{name} changed size while it was backed up ({size} -> {reader.size} bytes); stop writes "
                        "to the index and take the backup again."
                    )
                files.append({"name": name, "size": size, "sha256": reader.hash.hexdigest()})
        os.replace(part, archive)
    except OSError as exc:
        _unlink(part)
        raise BackupError(
            f"Cannot write the backup archive {archive}: {_strerror(exc)}; check the free space."
        ) from None
    except BaseException:
        _unlink(part)
        raise
    manifest = _manifest("tar", store, files, archive=ARCHIVE)
    write_json_atomic(manifest_path(backup_dir), manifest)
    return manifest


def backup_s3_copy(store: S3Store, backup_dir: str, backup_prefix: str) -> dict[str, t.Any]:
    """Copy the bucket prefix to ``backup_prefix`` (server side), hash every copy; the manifest goes to backup_dir."""
    dest = s3.normalize_prefix(backup_prefix)
    if not dest:
        raise BackupError("format s3_copy needs backup_prefix, a prefix of the bucket outside the package prefix.")
    src = store.opts.prefix
    if dest == src or dest.startswith(src) or src.startswith(dest):
        raise BackupError(
            f"backup_prefix {dest} overlaps the package prefix {src or '(the bucket root)'}; the server would list "
            "the copies. Give a prefix outside it."
        )
    names = plan_backup(store)
    _prepare_dir(backup_dir)
    copy = store.with_prefix(dest)
    if copy.files():
        raise BackupError(
            f"{copy.opts.where} already holds objects; give a new backup_prefix, backups are never overwritten."
        )
    files: list[dict[str, t.Any]] = []
    for name in names:
        body = store.read(name)
        try:
            source_sha, source_size = sha256_stream(body)
        finally:
            body.close()
        store.copy(name, dest)
        body = copy.read(name)
        try:
            copy_sha, copy_size = sha256_stream(body)
        finally:
            body.close()
        if (copy_sha, copy_size) != (source_sha, source_size):
            raise BackupError(
                f"The copy of {name} differs from the original (sha256 {copy_sha} vs {source_sha}); the index was "
                "written during the backup or the bucket is faulty: take the backup again."
            )
        files.append({"name": name, "size": source_size, "sha256": source_sha})
    manifest = _manifest(
        "s3_copy",
        store,
        files,
        s3={"endpoint_url": store.opts.endpoint_url or "", "bucket": store.opts.bucket, "prefix": dest},
    )
    write_json_atomic(manifest_path(backup_dir), manifest)
    return manifest


# --------------------------------------------------------------------------- verify the backup


def _expected(manifest: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    return {f["name"]: f for f in manifest["files"]}


def _differs(name: str, want: dict[str, t.Any], sha: str, size: int, where: str) -> str | None:
    if sha != want["sha256"]:
        return f"{name} has sha256 {sha} {where}, the manifest says {want['sha256']}"
    if size != want["size"]:
        return f"{name} has {size} bytes {where}, the manifest says {want['size']}"
    return None


def iter_backup(manifest: dict[str, t.Any], backup_dir: str, source: S3Store | None) -> t.Iterator[tuple[str, t.Any]]:
    """(name, stream) for every file of the backup, in its stored order. Raises BackupError on a corrupt archive."""
    if manifest["format"] == "tar":
        archive = os.path.join(backup_dir, manifest.get("archive") or ARCHIVE)
        try:
            with gzip.open(archive, "rb") as whole:  # the gzip CRC and length: tarfile stops before the end
                while whole.read(CHUNK):
                    pass
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    stream = tar.extractfile(member)
                    if stream is None:  # pragma: no cover - isfile() members always have one
                        continue
                    yield member.name, stream
        except FileNotFoundError:
            raise BackupError(
                f"The backup archive {archive} is missing; the backup is incomplete, take a new one."
            ) from None
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:  # gzip.BadGzipFile is an OSError
            raise BackupError(
                f"The backup archive {archive} is corrupt ({type(exc).__name__}: {exc}); it cannot be restored, "
                "take a new backup."
            ) from None
        return
    if source is None:
        where = manifest.get("s3", {})
        raise BackupError(
            f"This backup is a copy in s3://{where.get('bucket')}/{where.get('prefix')}; give source (kind s3) with "
            "that bucket's endpoint and credentials."
        )
    info = manifest.get("s3") or {}
    bucket = info.get("bucket") or source.opts.bucket
    opts = source.opts._replace(bucket=bucket, prefix=s3.normalize_prefix(info.get("prefix", "")))
    copy = S3Store(opts, source.client)
    present = copy.files()
    for name in sorted(present):
        yield name, copy.read(name)


def check_backup(
    manifest: dict[str, t.Any], backup_dir: str, source: S3Store | None = None, keep_dir: str | None = None
) -> list[str]:
    """Problems of the backup against its manifest (empty: every file present with its size and sha256).

    With ``keep_dir``, each verified file is also written there (named by its index in the manifest) for restore.
    """
    want = _expected(manifest)
    seen: set[str] = set()
    problems: list[str] = []
    try:
        for name, stream in iter_backup(manifest, backup_dir, source):
            _check_one(name, stream, want, seen, problems, keep_dir)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        archive = os.path.join(backup_dir, manifest.get("archive") or ARCHIVE)
        raise BackupError(
            f"The backup archive {archive} is corrupt ({type(exc).__name__}: {exc}); it cannot be restored, "
            "take a new backup."
        ) from None
    problems.extend(f"{name} is in the manifest but missing from the backup" for name in sorted(set(want) - seen))
    return problems


def _check_one(
    name: str, stream: t.Any, want: dict[str, t.Any], seen: set[str], problems: list[str], keep_dir: str | None
) -> None:
    """Hash one file of the backup (and keep it in ``keep_dir``); add what differs from the manifest to problems."""
    try:
        if name not in want:
            problems.append(f"{name} is in the backup but not in the manifest")
            return
        seen.add(name)
        sink = open(os.path.join(keep_dir, _slot(name)), "wb") if keep_dir else None  # noqa: SIM115
        try:
            sha, size = digest.sha256_chunks(_chunks(stream, sink))
        finally:
            if sink:
                sink.close()
        problem = _differs(name, want[name], sha, size, "in the backup")
        if problem:
            problems.append(problem)
    finally:
        stream.close()


def _slot(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def backup_problem(backup_dir: str, problems: list[str]) -> BackupError:
    return BackupError(
        f"The backup in {backup_dir} does not match its manifest: {few(problems)}; it was altered or corrupted "
        "after the backup, do not restore it: take a new backup.",
        problems,
    )


# --------------------------------------------------------------------------- restore


def check_target(store: Store, manifest: dict[str, t.Any]) -> tuple[list[str], list[str], list[str]]:
    """(to write, already there with the same content, conflicts) for restoring ``manifest`` into ``store``."""
    store.check_writable()
    present = store.files()
    write: list[str] = []
    same: list[str] = []
    conflicts: list[str] = []
    for f in manifest["files"]:
        name = f["name"]
        if name not in present:
            write.append(name)
            continue
        stream = store.read(name)
        try:
            sha, size = sha256_stream(stream)
        finally:
            stream.close()
        if sha == f["sha256"] and size == f["size"]:
            same.append(name)
        else:
            conflicts.append(f"{name} (sha256 {sha}, the backup has {f['sha256']})")
    return write, same, conflicts


def restore(
    manifest: dict[str, t.Any],
    backup_dir: str,
    store: Store,
    source: S3Store | None = None,
    check_mode: bool = False,
    scratch: str | None = None,
) -> dict[str, t.Any]:
    """Verify the whole backup, then write the files the store lacks, then read the store back."""
    write, same, conflicts = check_target(store, manifest)
    if conflicts:
        raise BackupError(
            f"The restore target {store.where} already holds different files: {few(conflicts)}; restore into an "
            "empty store, or remove them first."
        )
    tmp = tempfile.mkdtemp(prefix="pypi-restore-", dir=scratch)
    try:
        problems = check_backup(manifest, backup_dir, source, keep_dir=None if check_mode else tmp)
        if problems:
            raise backup_problem(backup_dir, problems)
        if not check_mode:
            for name in write:
                store.put(name, os.path.join(tmp, _slot(name)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"written": write, "unchanged": same, "changed": bool(write)}
    if not check_mode:
        problems = check_store(manifest, store)
        if problems:
            raise BackupError(
                f"After the restore, {store.where} does not hold the backup: {few(problems)}; check the target's "
                "storage.",
                problems,
            )
    return result


def check_store(manifest: dict[str, t.Any], store: Store) -> list[str]:
    """Problems of a store against the manifest (every manifest file there, same size and sha256)."""
    present = store.files()
    problems: list[str] = []
    for f in manifest["files"]:
        if f["name"] not in present:
            problems.append(f"{f['name']} is missing")
            continue
        stream = store.read(f["name"])
        try:
            sha, size = sha256_stream(stream)
        finally:
            stream.close()
        problem = _differs(f["name"], f, sha, size, f"in {store.where}")
        if problem:
            problems.append(problem)
    return problems


# --------------------------------------------------------------------------- the index


def check_snapshot(manifest: dict[str, t.Any], snapshot: dict[str, t.Any]) -> list[str]:
    """Problems of an index snapshot (index_snapshot's, depth files or bytes) against the manifest.

    Files are matched by filename (pypiserver lists the files of one sub-directory level by name); each must be
    listed with the manifest's sha256. A file the index lists without a hash is a problem: nothing proves it.
    """
    listed: dict[str, str] = {}
    for files in (snapshot.get("projects") or {}).values():
        for filename, served in (files or {}).items():
            listed[filename] = served or ""
    problems: list[str] = []
    for f in manifest["files"]:
        filename = f["name"].rsplit("/", 1)[-1]
        served = listed.get(filename)
        if served is None:
            problems.append(f"{filename} is not listed by the index")
        elif not served.startswith("sha256:"):
            problems.append(f"{filename} is listed without a sha256 ({served or 'no hash'})")
        elif served[len("sha256:") :] != f["sha256"]:
            problems.append(
                f"{filename} is served with sha256 {served[len('sha256:') :]}, the backup has {f['sha256']}"
            )
    return problems


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
