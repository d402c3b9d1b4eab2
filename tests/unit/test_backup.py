"""module_utils/backup.py and the package_backup module on real files and a real S3 protocol server (moto's
standalone server on 127.0.0.1, stopped by PID).

Every expected sha256 is computed here with hashlib on the exact bytes written; every archive is opened with
tarfile here, independently of the code under test.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import uuid
from pathlib import Path

import pytest

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import backup as bk
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import s3
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import free_port
from ansible_collections.pypi_ops.pypiserver.plugins.modules import package_backup
from tests.helpers import rewrite_tar_member
from tests.unit.test_s3_objects import ANY_KEY, Moto, _start_moto, _stop, client_for

FILES = {
    "alpha-1.0-py3-none-any.whl": b"wheel bytes " * 100,
    "alpha-1.0.tar.gz": b"sdist bytes " * 50,
    "sub/beta-2.0-py3-none-any.whl": os.urandom(3000),
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fill(path, files=FILES) -> dict[str, str]:
    for name, data in files.items():
        full = path / name
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
    return {name: sha(data) for name, data in files.items()}


@pytest.fixture
def packages(tmp_path):
    store = tmp_path / "packages"
    fill(store)
    (store / ".hidden").write_bytes(b"not a package")
    return store


def take(packages, tmp_path) -> tuple[str, dict]:
    dest = str(tmp_path / "backup")
    return dest, bk.backup_tar(bk.DirStore(str(packages)), dest)


def rewrite_member(archive: str, name: str, data: bytes) -> None:
    """Rebuild the archive with ``name`` holding ``data`` (a file altered after the backup; the manifest is kept)."""
    rewrite_tar_member(Path(archive), name, data)


# --------------------------------------------------------------------------- backup


def test_backup_writes_a_tarball_and_a_manifest_of_every_file(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    want = {name: (len(data), sha(data)) for name, data in FILES.items()}
    assert {f["name"]: (f["size"], f["sha256"]) for f in manifest["files"]} == want  # .hidden left out
    on_disk = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert (
        on_disk == manifest
        and on_disk["format"] == "tar"
        and on_disk["total_bytes"] == sum(s for s, _ in want.values())
    )
    with tarfile.open(os.path.join(dest, "packages.tar.gz")) as tar:
        got = {m.name: sha(tar.extractfile(m).read()) for m in tar if m.isfile()}
    assert got == {name: digest for name, (_size, digest) in want.items()}
    assert not [n for n in os.listdir(dest) if n.endswith(".part")]


def test_backup_refuses_an_existing_backup_and_an_empty_store(packages, tmp_path):
    take(packages, tmp_path)
    with pytest.raises(bk.BackupError, match="already holds a backup"):
        bk.backup_tar(bk.DirStore(str(packages)), str(tmp_path / "backup"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(bk.BackupError, match="holds no file; there is nothing to back up"):
        bk.backup_tar(bk.DirStore(str(tmp_path / "empty")), str(tmp_path / "b2"))
    with pytest.raises(bk.BackupError, match="does not exist or is not a directory"):
        bk.backup_tar(bk.DirStore(str(tmp_path / "nowhere")), str(tmp_path / "b3"))
    assert not (tmp_path / "b2").exists() and not (tmp_path / "b3").exists()


# --------------------------------------------------------------------------- verify the backup


def test_an_intact_backup_has_no_problem(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    assert bk.check_backup(bk.read_manifest(dest), dest) == []


def test_a_file_altered_after_the_backup_is_named_with_both_sha256s(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    rewrite_member(os.path.join(dest, "packages.tar.gz"), "alpha-1.0.tar.gz", b"tampered")
    problems = bk.check_backup(bk.read_manifest(dest), dest)
    assert problems == [
        f"alpha-1.0.tar.gz has sha256 {sha(b'tampered')} in the backup, the manifest says {sha(FILES['alpha-1.0.tar.gz'])}"
    ]
    err = bk.backup_problem(dest, problems)
    assert "alpha-1.0.tar.gz" in err.msg and sha(b"tampered") in err.msg and "take a new backup" in err.msg


def test_a_corrupt_or_truncated_archive_is_one_sentence(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    archive = os.path.join(dest, "packages.tar.gz")
    raw = bytearray(open(archive, "rb").read())
    raw[len(raw) // 2] ^= 0xFF  # a flipped byte in the compressed stream
    open(archive, "wb").write(bytes(raw))
    with pytest.raises(bk.BackupError, match=r"The backup archive .*packages.tar.gz is corrupt \(") as caught:
        bk.check_backup(manifest, dest)
    assert "\n" not in caught.value.msg
    open(archive, "wb").write(bytes(raw[: len(raw) // 3]))
    with pytest.raises(bk.BackupError, match="is corrupt"):
        bk.check_backup(manifest, dest)
    os.unlink(archive)
    with pytest.raises(bk.BackupError, match="is missing; the backup is incomplete"):
        bk.check_backup(manifest, dest)


def test_missing_and_extra_members(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    with gzip.open(os.path.join(dest, "packages.tar.gz"), "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("intruder.whl")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    problems = bk.check_backup(manifest, dest)
    assert problems[0] == "intruder.whl is in the backup but not in the manifest"
    assert sorted(problems[1:]) == sorted(f"{n} is in the manifest but missing from the backup" for n in FILES)


def test_manifest_errors(tmp_path):
    with pytest.raises(bk.BackupError, match="manifest.json is missing"):
        bk.read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(bk.BackupError, match="cannot be read"):
        bk.read_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "tar", "files": [{"name": "x"}]}))
    with pytest.raises(bk.BackupError, match="not a pypi_ops backup manifest"):
        bk.read_manifest(str(tmp_path))


# --------------------------------------------------------------------------- restore


def test_restore_into_an_empty_directory_then_again_is_unchanged(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    target = tmp_path / "fresh"
    out = bk.restore(manifest, dest, bk.DirStore(str(target)))
    assert sorted(out["written"]) == sorted(FILES) and out["changed"]
    assert {n: sha((target / n).read_bytes()) for n in FILES} == {n: sha(d) for n, d in FILES.items()}
    assert not [p for p in target.rglob(".restore*")]
    again = bk.restore(manifest, dest, bk.DirStore(str(target)))
    assert again["written"] == [] and sorted(again["unchanged"]) == sorted(FILES) and not again["changed"]


def test_restore_refuses_an_altered_backup_before_writing_anything(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    rewrite_member(os.path.join(dest, "packages.tar.gz"), "sub/beta-2.0-py3-none-any.whl", b"evil")
    target = tmp_path / "fresh"
    with pytest.raises(bk.BackupError) as caught:
        bk.restore(manifest, dest, bk.DirStore(str(target)))
    msg = caught.value.msg
    assert "sub/beta-2.0-py3-none-any.whl has sha256 " + sha(b"evil") in msg
    assert sha(FILES["sub/beta-2.0-py3-none-any.whl"]) in msg and "do not restore it" in msg
    assert list(target.rglob("*")) == []  # nothing restored from a backup that cannot be trusted


def test_restore_refuses_to_replace_a_different_file(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    target = tmp_path / "fresh"
    fill(target, {"alpha-1.0.tar.gz": b"someone else's"})
    with pytest.raises(bk.BackupError, match="already holds different files: alpha-1.0.tar.gz"):
        bk.restore(manifest, dest, bk.DirStore(str(target)))
    assert (target / "alpha-1.0.tar.gz").read_bytes() == b"someone else's"


def test_an_unreachable_restore_target_is_one_sentence(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(bk.BackupError) as caught:
        bk.restore(manifest, dest, bk.DirStore(str(tmp_path / "a-file" / "packages")))
    assert caught.value.msg.startswith(f"The restore target {tmp_path / 'a-file' / 'packages'} is not reachable: ")
    assert "is writable" in caught.value.msg


def test_restore_in_check_mode_writes_nothing(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    target = tmp_path / "fresh"
    out = bk.restore(manifest, dest, bk.DirStore(str(target)), check_mode=True)
    assert sorted(out["written"]) == sorted(FILES) and list(target.rglob("*")) == []


def test_check_store_names_lost_and_altered_files(packages, tmp_path):
    dest, manifest = take(packages, tmp_path)
    (packages / "alpha-1.0.tar.gz").write_bytes(b"changed")
    os.unlink(packages / "sub" / "beta-2.0-py3-none-any.whl")
    problems = bk.check_store(manifest, bk.DirStore(str(packages)))
    assert problems == [
        f"alpha-1.0.tar.gz has sha256 {sha(b'changed')} in {packages}, the manifest says {sha(FILES['alpha-1.0.tar.gz'])}",
        "sub/beta-2.0-py3-none-any.whl is missing",
    ]


# --------------------------------------------------------------------------- the index


def test_check_snapshot(packages, tmp_path):
    _dest, manifest = take(packages, tmp_path)
    good = {
        "alpha": {n: f"sha256:{sha(FILES[n])}" for n in ("alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz")},
        "beta": {"beta-2.0-py3-none-any.whl": f"sha256:{sha(FILES['sub/beta-2.0-py3-none-any.whl'])}"},
    }
    assert bk.check_snapshot(manifest, {"projects": good}) == []
    bad = {
        "alpha": {"alpha-1.0-py3-none-any.whl": "sha256:" + "0" * 64, "alpha-1.0.tar.gz": "md5:abc"},
    }
    assert bk.check_snapshot(manifest, {"projects": bad}) == [
        f"alpha-1.0-py3-none-any.whl is served with sha256 {'0' * 64}, the backup has "
        f"{sha(FILES['alpha-1.0-py3-none-any.whl'])}",
        "alpha-1.0.tar.gz is listed without a sha256 (md5:abc)",
        "beta-2.0-py3-none-any.whl is not listed by the index",
    ]


# --------------------------------------------------------------------------- the module


def test_module_backup_check_mode_and_verify(run_module, packages, tmp_path):
    dest = str(tmp_path / "backup")
    args = {"state": "backup", "backup": dest, "store": {"kind": "dir", "path": str(packages)}}
    planned = run_module(package_backup, args, check_mode=True)
    assert planned["changed"] and planned["file_count"] == 3 and not os.path.exists(dest)
    done = run_module(package_backup, args)
    assert done["changed"] and {f["name"]: f["sha256"] for f in done["files"]} == {n: sha(d) for n, d in FILES.items()}
    ok = run_module(package_backup, {"state": "verify", "backup": dest})
    assert not ok.failed and ok["problems"] == [] and not ok["changed"]
    rewrite_member(os.path.join(dest, "packages.tar.gz"), "alpha-1.0.tar.gz", b"x")
    bad = run_module(package_backup, {"state": "verify", "backup": dest})
    assert bad.failed and "exception" not in bad
    assert bad["msg"].startswith("The backup does not match the backup manifest ")
    assert f"alpha-1.0.tar.gz has sha256 {sha(b'x')} in the backup" in bad["msg"]


def test_module_restore_into_an_unreachable_s3_endpoint_is_one_sentence(run_module, packages, tmp_path):
    dest = str(tmp_path / "backup")
    run_module(package_backup, {"state": "backup", "backup": dest, "store": {"kind": "dir", "path": str(packages)}})
    closed = f"http://127.0.0.1:{free_port()}"
    secret = "never-shown-restore-secret-0123"
    store = {"kind": "s3", "endpoint_url": closed, "bucket": "pypi", "access_key": "AK", "secret_key": secret}
    store["connect_timeout"] = 1
    out = run_module(package_backup, {"state": "restore", "backup": dest, "store": store})
    assert out.failed and "exception" not in out
    assert out["msg"].startswith(f"The restore target s3://pypi/ at {closed} is not reachable: ")
    assert "\n" not in out["msg"] and secret not in json.dumps(out)


# --------------------------------------------------------------------------- s3


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    proc, url = _start_moto(str(tmp_path_factory.mktemp("moto-backup") / "moto.log"))
    try:
        yield Moto(url, ANY_KEY["access_key"], ANY_KEY["secret_key"])
    finally:
        _stop(proc)


def s3_store(moto, bucket: str, prefix: str) -> bk.S3Store:
    return bk.S3Store(
        s3.S3Options.from_params(
            {
                "endpoint_url": moto.url,
                "bucket": bucket,
                "prefix": prefix,
                "access_key": moto.access_key,
                "secret_key": moto.secret_key,
            }
        )
    )


def test_s3_copy_backup_and_restore_into_another_bucket(moto, tmp_path):
    client = client_for(moto)
    src, fresh = f"src-{uuid.uuid4().hex[:8]}", f"fresh-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=src)
    client.create_bucket(Bucket=fresh)
    for name, data in FILES.items():
        client.put_object(Bucket=src, Key=f"packages/{name}", Body=data)
    dest = str(tmp_path / "backup")

    with pytest.raises(bk.BackupError, match="overlaps the package prefix"):
        bk.backup_s3_copy(s3_store(moto, src, "packages"), dest, "packages/old")
    manifest = bk.backup_s3_copy(s3_store(moto, src, "packages"), dest, "backups/r1")
    assert manifest["format"] == "s3_copy" and manifest["s3"]["prefix"] == "backups/r1/"
    copied = client.list_objects_v2(Bucket=src, Prefix="backups/r1/")["Contents"]
    assert {o["Key"]: sha(client.get_object(Bucket=src, Key=o["Key"])["Body"].read()) for o in copied} == {
        f"backups/r1/{n}": sha(d) for n, d in FILES.items()
    }
    source = s3_store(moto, src, "")
    with pytest.raises(bk.BackupError, match="give source"):
        bk.check_backup(manifest, dest)
    assert bk.check_backup(manifest, dest, source) == []

    out = bk.restore(manifest, dest, s3_store(moto, fresh, "packages"), source)
    assert sorted(out["written"]) == sorted(FILES)
    restored = {n: sha(client.get_object(Bucket=fresh, Key=f"packages/{n}")["Body"].read()) for n in FILES}
    assert restored == {n: sha(d) for n, d in FILES.items()}

    # an object of the copy altered after the backup: named, with both sha256s
    client.put_object(Bucket=src, Key="backups/r1/alpha-1.0.tar.gz", Body=b"swapped")
    assert bk.check_backup(manifest, dest, source) == [
        f"alpha-1.0.tar.gz has sha256 {sha(b'swapped')} in the backup, the manifest says {sha(FILES['alpha-1.0.tar.gz'])}"
    ]
