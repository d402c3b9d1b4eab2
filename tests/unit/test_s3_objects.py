"""s3_objects and module_utils.s3 against a real S3 protocol server (moto's standalone server on 127.0.0.1).

Two servers, each one process stopped by PID at teardown: ``moto`` accepts any credentials; ``auth_moto``
enforces them (INITIAL_NO_AUTH_ACTION_COUNT=4: the fixture spends the 4 unauthenticated calls on an IAM user,
its access key, an allow-all policy and a bucket). Objects are put with boto3 and their sha256 is computed
here with hashlib on the exact bytes put.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import typing as t
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils import s3
from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.local_server import free_port
from ansible_collections.pypi_ops.pypiserver.plugins.modules import s3_objects

MiB = 1024 * 1024
WRONG_SECRET = "Wr0ng-S3cret-Never-Shown-4242"
# no_log masks these values anywhere in a result: keep them long and unlike any word in a message
ANY_KEY = {"access_key": "AKIAANYKEYFORTESTS01", "secret_key": "any-secret-for-moto-tests-0123"}
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


class Moto(t.NamedTuple):
    url: str
    access_key: str
    secret_key: str


def _start_moto(log_path: str, extra_env: dict[str, str] | None = None, tls: bool = False) -> tuple[t.Any, str]:
    port = free_port()
    env = dict(os.environ, **(extra_env or {}))
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)] + (["-s"] if tls else [])
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto exited with {proc.returncode}: {_tail(log_path)}")
            try:  # the dashboard data is not an AWS action: it does not use up unauthenticated calls
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1, context=insecure) as resp:
                    if resp.status == 200:
                        return proc, url
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto did not answer on {url} within 30s: {_tail(log_path)}")
            time.sleep(0.1)
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: t.Any) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _tail(path: str) -> str:
    with open(path, "rb") as handle:
        return handle.read()[-2000:].decode(errors="replace")


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """A moto server that accepts any credentials."""
    proc, url = _start_moto(str(tmp_path_factory.mktemp("moto") / "moto.log"))
    try:
        yield Moto(url, ANY_KEY["access_key"], ANY_KEY["secret_key"])
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def auth_moto(tmp_path_factory):
    """A moto server that enforces credentials after 4 calls; yields the admin key and the bucket ``secured``."""
    proc, url = _start_moto(
        str(tmp_path_factory.mktemp("moto-auth") / "moto.log"), {"INITIAL_NO_AUTH_ACTION_COUNT": "4"}
    )
    try:
        anon = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
        iam = boto3.client("iam", **anon)
        iam.create_user(UserName="ci")  # 1
        key = iam.create_access_key(UserName="ci")["AccessKey"]  # 2
        iam.put_user_policy(UserName="ci", PolicyName="all", PolicyDocument=ALLOW_ALL)  # 3
        boto3.client("s3", **anon).create_bucket(Bucket="secured")  # 4
        yield Moto(url, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        _stop(proc)


def client_for(server: Moto, secret: str | None = None, access: str | None = None) -> t.Any:
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=access or server.access_key,
        aws_secret_access_key=secret or server.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@pytest.fixture
def bucket(moto):
    """A fresh bucket on ``moto``; yields (name, boto3 client)."""
    name = f"pkgs-{uuid.uuid4().hex[:12]}"
    client = client_for(moto)
    client.create_bucket(Bucket=name)
    return name, client


def put(client: t.Any, bucket: str, key: str, data: bytes) -> str:
    client.put_object(Bucket=bucket, Key=key, Body=data)
    return hashlib.sha256(data).hexdigest()


def args_for(server: Moto, bucket: str, **kw: t.Any) -> dict[str, t.Any]:
    args = {
        "endpoint_url": server.url,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "bucket": bucket,
        "connect_timeout": 2,
        "read_timeout": 10,
    }
    args.update(kw)
    return args


def assert_clean_failure(result: dict[str, t.Any], kind: str) -> str:
    assert result.get("failed"), result
    msg = result["msg"]
    assert "Traceback" not in msg and "\n" not in msg
    assert "exception" not in result
    assert result["error_kind"] == kind, result
    return msg


# --- a reachable bucket ---------------------------------------------------------------------------------------


def test_lists_objects_under_the_prefix_only(moto, bucket, run_module):
    name, client = bucket
    wheel = b"wheel bytes " * 100
    sdist = b"sdist bytes"
    wheel_sha = put(client, name, "packages/probe-1.0-py3-none-any.whl", wheel)
    put(client, name, "packages/probe-1.0.tar.gz", sdist)
    put(client, name, "packages/", b"")  # a 'directory' marker
    put(client, name, "other/unrelated-2.0.tar.gz", b"elsewhere")
    put(client, name, "packages-old/probe-0.9.tar.gz", b"similar prefix, other directory")

    result = run_module(
        s3_objects,
        args_for(moto, name, prefix="/packages", expect=[{"filename": "probe-1.0-py3-none-any.whl"}]),
    )

    assert not result.get("failed"), result
    assert result["changed"] is False and result["reachable"] is True
    assert result["bucket"] == name and result["prefix"] == "packages/" and result["endpoint_url"] == moto.url
    assert set(result["files"]) == {"probe-1.0-py3-none-any.whl", "probe-1.0.tar.gz"}
    assert result["count"] == 2
    assert result["files"]["probe-1.0-py3-none-any.whl"] == {
        "size": len(wheel),
        "sha256": wheel_sha,
        "key": "packages/probe-1.0-py3-none-any.whl",
    }
    # only the expected file is downloaded and hashed unless hash_all
    assert result["files"]["probe-1.0.tar.gz"] == {"size": len(sdist), "key": "packages/probe-1.0.tar.gz"}
    assert result["missing"] == [] and result["mismatched"] == []


def test_hash_all_hashes_every_object(moto, bucket, run_module):
    name, client = bucket
    shas = {f"f{i}.tar.gz": put(client, name, f"f{i}.tar.gz", os.urandom(1000 + i)) for i in range(3)}
    result = run_module(s3_objects, args_for(moto, name, hash_all=True))
    assert not result.get("failed"), result
    assert {n: f["sha256"] for n, f in result["files"].items()} == shas


def test_listing_follows_every_page(moto, bucket):
    name, client = bucket
    for i in range(7):
        put(client, name, f"pkg/p{i}-1.0.tar.gz", b"x" * i)
    opts = s3.S3Options.from_params(args_for(moto, name, prefix="pkg"))
    listed = s3.list_objects(s3.make_client(opts), opts, page_size=2)  # 4 pages
    assert {n: o["size"] for n, o in listed.items()} == {f"p{i}-1.0.tar.gz": i for i in range(7)}
    assert listed["p3-1.0.tar.gz"]["key"] == "pkg/p3-1.0.tar.gz"
    assert listed["p3-1.0.tar.gz"]["etag"] == hashlib.md5(b"xxx").hexdigest()


def test_expect_matches_size_and_sha256(moto, bucket, run_module):
    name, client = bucket
    data = os.urandom(5000)
    sha = put(client, name, "pkg/probe-1.0.tar.gz", data)
    expect = [{"filename": "probe-1.0.tar.gz", "size": len(data), "sha256": sha}]
    result = run_module(s3_objects, args_for(moto, name, prefix="pkg", expect=expect))
    assert not result.get("failed"), result
    assert result["missing"] == [] and result["mismatched"] == []
    assert result["files"]["probe-1.0.tar.gz"]["sha256"] == sha


def test_corrupted_object_fails_naming_file_and_sha256(moto, bucket, run_module):
    name, client = bucket
    data = b"A" * 4096
    sha = put(client, name, "pkg/probe-1.0.tar.gz", data)
    put(client, name, "pkg/probe-1.0.tar.gz", b"B" * 4096)  # same key, same size, other bytes
    expect = [{"filename": "probe-1.0.tar.gz", "size": len(data), "sha256": sha}]

    result = run_module(s3_objects, args_for(moto, name, prefix="pkg/", expect=expect))

    assert result.get("failed"), result
    assert "probe-1.0.tar.gz" in result["msg"] and "sha256" in result["msg"]
    assert f"s3://{name}/pkg/" in result["msg"]
    assert result["mismatched"] == [
        {
            "filename": "probe-1.0.tar.gz",
            "field": "sha256",
            "expected": sha,
            "found": hashlib.sha256(b"B" * 4096).hexdigest(),
        }
    ]
    assert result["reachable"] is True


def test_deleted_object_fails_missing(moto, bucket, run_module):
    name, client = bucket
    kept = put(client, name, "pkg/kept-1.0.tar.gz", b"kept")
    gone = put(client, name, "pkg/gone-1.0.tar.gz", b"gone")
    client.delete_object(Bucket=name, Key="pkg/gone-1.0.tar.gz")
    expect = [{"filename": "kept-1.0.tar.gz", "sha256": kept}, {"filename": "gone-1.0.tar.gz", "sha256": gone}]

    result = run_module(s3_objects, args_for(moto, name, prefix="pkg", expect=expect))

    assert result.get("failed"), result
    assert "missing" in result["msg"] and "gone-1.0.tar.gz" in result["msg"]
    assert result["missing"] == ["gone-1.0.tar.gz"] and result["mismatched"] == []


def test_fail_on_mismatch_false_reports_without_failing(moto, bucket, run_module):
    name, _ = bucket
    result = run_module(
        s3_objects, args_for(moto, name, expect=[{"filename": "absent-1.0.tar.gz"}], fail_on_mismatch=False)
    )
    assert not result.get("failed"), result
    assert result["missing"] == ["absent-1.0.tar.gz"] and result["count"] == 0


def test_check_mode_runs_the_same_read_only_check(moto, bucket, run_module):
    name, client = bucket
    sha = put(client, name, "probe-1.0.tar.gz", b"check mode")
    ok = run_module(s3_objects, args_for(moto, name, expect=[{"filename": "probe-1.0.tar.gz", "sha256": sha}]), True)
    assert not ok.get("failed"), ok
    assert ok["changed"] is False and ok["files"]["probe-1.0.tar.gz"]["sha256"] == sha
    bad = run_module(s3_objects, args_for(moto, name, expect=[{"filename": "nope-1.0.tar.gz"}]), check_mode=True)
    assert bad.get("failed") and bad["missing"] == ["nope-1.0.tar.gz"]


def test_large_object_hashes_correctly_in_chunks(moto, bucket, run_module, monkeypatch):
    name, client = bucket
    data = os.urandom(3 * MiB + 123)
    sha = put(client, name, "big/probe-1.0-py3-none-any.whl", data)

    result = run_module(
        s3_objects,
        args_for(moto, name, prefix="big", expect=[{"filename": "probe-1.0-py3-none-any.whl", "size": len(data)}]),
    )
    assert not result.get("failed"), result
    assert result["files"]["probe-1.0-py3-none-any.whl"]["sha256"] == sha

    # the body is consumed in pieces of at most 1 MiB, never read whole
    opts = s3.S3Options.from_params(args_for(moto, name))
    s3_client = s3.make_client(opts)
    real_get = s3_client.get_object
    pieces: list[int] = []

    class SpyBody:
        def __init__(self, body: t.Any) -> None:
            self.body = body

        def iter_chunks(self, chunk_size: int) -> t.Iterator[bytes]:
            for block in self.body.iter_chunks(chunk_size):
                pieces.append(len(block))
                yield block

        def read(self, amt: int | None = None) -> bytes:  # pragma: no cover - fails the test if used
            raise AssertionError("object body read whole")

        def close(self) -> None:
            self.body.close()

    def spy_get(**kw: t.Any) -> dict[str, t.Any]:
        response = real_get(**kw)
        response["Body"] = SpyBody(response["Body"])
        return response

    monkeypatch.setattr(s3_client, "get_object", spy_get)
    assert s3.object_sha256(s3_client, opts, "big/probe-1.0-py3-none-any.whl") == (sha, len(data))
    assert len(pieces) >= 4 and max(pieces) <= MiB and sum(pieces) == len(data)


# --- the bucket cannot be read --------------------------------------------------------------------------------


def test_missing_bucket_says_it_does_not_exist(moto, run_module):
    result = run_module(s3_objects, args_for(moto, "no-such-bucket-here"))
    msg = assert_clean_failure(result, "no_bucket")
    assert "no-such-bucket-here does not exist" in msg and moto.url in msg
    assert result["reachable"] is False


def test_right_credentials_are_accepted_by_the_auth_server(auth_moto, run_module):
    client = client_for(auth_moto)
    sha = put(client, "secured", "pkg/probe-1.0.tar.gz", b"secured bytes")
    assert client.get_object(Bucket="secured", Key="pkg/probe-1.0.tar.gz")["Body"].read() == b"secured bytes"
    result = run_module(
        s3_objects, args_for(auth_moto, "secured", prefix="pkg", expect=[{"filename": "probe-1.0.tar.gz"}])
    )
    assert not result.get("failed"), result
    assert result["files"]["probe-1.0.tar.gz"]["sha256"] == sha


def test_wrong_secret_is_403_and_never_shown(auth_moto, run_module):
    with pytest.raises(Exception) as raw:  # the server really enforces it: 403 on HeadBucket
        client_for(auth_moto, secret=WRONG_SECRET).head_bucket(Bucket="secured")
    assert raw.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    result = run_module(s3_objects, args_for(auth_moto, "secured", secret_key=WRONG_SECRET))

    msg = assert_clean_failure(result, "access_denied")
    assert "403" in msg and "credentials" in msg and "secured" in msg
    assert WRONG_SECRET not in json.dumps(result)


def test_unknown_key_on_listing_is_bad_credentials(auth_moto):
    """Past HeadBucket, S3 answers with a body, so a wrong key is told apart from a missing permission."""
    opts = s3.S3Options.from_params(args_for(auth_moto, "secured", access_key="AKIAUNKNOWN000000000"))
    with pytest.raises(s3.S3CheckError) as err:
        s3.list_objects(s3.make_client(opts), opts)
    assert err.value.kind == "bad_credentials" and "InvalidAccessKeyId" in err.value.msg


def test_missing_permission_on_objects_is_access_denied(auth_moto, run_module):
    admin_iam = boto3.client(
        "iam",
        endpoint_url=auth_moto.url,
        region_name="us-east-1",
        aws_access_key_id=auth_moto.access_key,
        aws_secret_access_key=auth_moto.secret_key,
    )
    admin_iam.create_user(UserName="lister")
    key = admin_iam.create_access_key(UserName="lister")["AccessKey"]
    # AWS authorizes HeadBucket with s3:ListBucket; moto names it s3:HeadBucket: allow both, not s3:GetObject
    list_only = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket", "s3:HeadBucket"], "Resource": "*"}],
    }
    admin_iam.put_user_policy(UserName="lister", PolicyName="list", PolicyDocument=json.dumps(list_only))
    put(client_for(auth_moto), "secured", "ro/probe-1.0.tar.gz", b"cannot read me")

    result = run_module(
        s3_objects,
        args_for(
            auth_moto,
            "secured",
            access_key=key["AccessKeyId"],
            secret_key=key["SecretAccessKey"],
            prefix="ro",
            expect=[{"filename": "probe-1.0.tar.gz"}],
        ),
    )

    msg = assert_clean_failure(result, "access_denied")
    assert "s3:GetObject" in msg and "ro/probe-1.0.tar.gz" in msg
    assert result["reachable"] is True  # HeadBucket and listing worked; reading the object did not


def test_credentials_from_the_environment_and_a_profile(auth_moto, run_module, monkeypatch, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[ci]\naws_access_key_id = {auth_moto.access_key}\naws_secret_access_key = {auth_moto.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", auth_moto.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", auth_moto.secret_key)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    base = {"endpoint_url": auth_moto.url, "bucket": "secured", "connect_timeout": 2}

    from_env = run_module(s3_objects, base)
    assert not from_env.get("failed"), from_env
    assert from_env["reachable"] is True

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)  # the profile must win over the environment
    from_profile = run_module(s3_objects, dict(base, profile="ci"))
    assert not from_profile.get("failed"), from_profile

    no_profile = run_module(s3_objects, dict(base, profile="absent"))
    msg = assert_clean_failure(no_profile, "bad_credentials")
    assert "'absent'" in msg and "profile" in msg


def test_no_credentials_anywhere(moto, run_module, monkeypatch, tmp_path):
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
    ):
        monkeypatch.delenv(var, raising=False)
    for var in (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    result = run_module(s3_objects, {"endpoint_url": moto.url, "bucket": "any-bucket"})

    msg = assert_clean_failure(result, "bad_credentials")
    assert "no credentials found" in msg.lower() and "access_key/secret_key" in msg


def test_half_the_key_pair_is_refused(moto, run_module):
    result = run_module(s3_objects, {"endpoint_url": moto.url, "bucket": "any-bucket", "access_key": "only-id"})
    msg = assert_clean_failure(result, "bad_credentials")
    assert "secret_key" in msg


def test_nothing_listening_is_bad_endpoint_and_fast(run_module):
    endpoint = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_module(
        s3_objects,
        {"endpoint_url": endpoint, "bucket": "b", **ANY_KEY, "connect_timeout": 1},
    )
    elapsed = time.monotonic() - started
    msg = assert_clean_failure(result, "bad_endpoint")
    assert endpoint in msg and "endpoint_url" in msg
    assert elapsed < 15, f"retries are not bounded: {elapsed:.1f}s"


def test_server_that_never_answers_is_a_timeout(run_module):
    with socket.socket() as silent:  # the kernel accepts the connection; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = run_module(
            s3_objects,
            {"endpoint_url": endpoint, "bucket": "b", **ANY_KEY, "read_timeout": 0.5},
        )
        elapsed = time.monotonic() - started
    msg = assert_clean_failure(result, "timeout")
    assert "0.5s" in msg and "read_timeout" in msg
    assert elapsed < 15


def test_invalid_endpoint_url(run_module):
    result = run_module(s3_objects, {"endpoint_url": "not a url", "bucket": "b", **ANY_KEY})
    msg = assert_clean_failure(result, "bad_endpoint")
    assert "'not a url'" in msg


def test_self_signed_tls_is_refused_unless_validation_is_off(tmp_path, run_module):
    proc, url = _start_moto(str(tmp_path / "moto-tls.log"), tls=True)
    try:
        args = {"endpoint_url": url, "bucket": "tls-bucket", **ANY_KEY}
        refused = run_module(s3_objects, args)
        msg = assert_clean_failure(refused, "tls")
        assert "self-signed" in msg and "ca_path" in msg

        insecure = run_module(s3_objects, dict(args, validate_certs=False))
        assert insecure["error_kind"] == "no_bucket", insecure  # TLS passed; the bucket simply is not there
        assert "validate_certs is false" in json.dumps(insecure.get("warnings", [])), insecure
    finally:
        _stop(proc)


# --- pure helpers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, expected",
    [(None, ""), ("", ""), ("/", ""), ("packages", "packages/"), ("/packages/", "packages/"), ("a/b", "a/b/")],
)
def test_normalize_prefix(given, expected):
    assert s3.normalize_prefix(given) == expected


def test_options_from_params():
    opts = s3.S3Options.from_params(
        {"bucket": "b", "endpoint_url": "http://h:9000/", "region": "", "access_key": "", "ca_path": "/ca.pem"}
    )
    assert opts.endpoint_url == "http://h:9000" and opts.region == "us-east-1" and opts.access_key is None
    assert opts.verify == "/ca.pem" and opts.where == "s3://b/"
    assert opts._replace(validate_certs=False).verify is False
    assert s3.S3Options.from_params({"bucket": "b"}).verify is True
    scrubbed = s3.S3Options.from_params({"bucket": "b", "secret_key": "topsecret"}).scrub("x topsecret y")
    assert "topsecret" not in scrubbed
