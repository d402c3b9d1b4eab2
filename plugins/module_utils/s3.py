# -*- coding: utf-8 -*-
# Copyright: pypi_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 implementation of the storage interface: the objects under a bucket prefix in the same shape
as a package directory's inventory ({filename: {size, sha256?, key}}).

One client factory (credentials, endpoint, TLS, timeouts, bounded retries) and one translation of
botocore errors into a single sentence that names the cause and the next step. Objects are hashed
while they stream; no object is ever held in memory whole.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.pypi_ops.pypiserver.plugins.module_utils.digest import CHUNK, sha256_chunks

try:
    import boto3
    from botocore import exceptions as bexc
    from botocore.config import Config

    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the controller
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = exc

DEFAULT_REGION = "us-east-1"
KINDS = frozenset({"no_bucket", "access_denied", "bad_credentials", "bad_endpoint", "tls", "timeout", "error"})


def normalize_prefix(prefix: str | None) -> str:
    """'' or 'some/path/': no leading slash, exactly one trailing slash."""
    prefix = (prefix or "").strip().lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


def _blank_none(value: t.Any) -> t.Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


class S3Options(t.NamedTuple):
    endpoint_url: str | None
    region: str
    access_key: str | None
    secret_key: str | None
    session_token: str | None
    profile: str | None
    bucket: str
    prefix: str
    validate_certs: bool
    ca_path: str | None
    connect_timeout: float
    read_timeout: float

    @classmethod
    def from_params(cls, params: dict[str, t.Any]) -> S3Options:
        """Build from module params; empty strings count as not given."""
        endpoint = _blank_none(params.get("endpoint_url"))
        return cls(
            endpoint_url=endpoint.strip().rstrip("/") if endpoint else None,
            region=_blank_none(params.get("region")) or DEFAULT_REGION,
            access_key=_blank_none(params.get("access_key")),
            secret_key=_blank_none(params.get("secret_key")),
            session_token=_blank_none(params.get("session_token")),
            profile=_blank_none(params.get("profile")),
            bucket=(params.get("bucket") or "").strip(),
            prefix=normalize_prefix(params.get("prefix")),
            validate_certs=bool(params.get("validate_certs", True)),
            ca_path=_blank_none(params.get("ca_path")),
            connect_timeout=float(params.get("connect_timeout") or 5.0),
            read_timeout=float(params.get("read_timeout") or 60.0),
        )

    @property
    def verify(self) -> bool | str:
        """botocore's ``verify``: False when validation is off, else the CA bundle or True."""
        if not self.validate_certs:
            return False
        return self.ca_path or True

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def endpoint(self) -> str:
        """The endpoint as shown in messages."""
        return self.endpoint_url or f"AWS S3 ({self.region})"

    def scrub(self, text: str) -> str:
        """Remove the secret key and session token from a text, should a library ever echo them."""
        for secret in (self.secret_key, self.session_token):
            if secret:
                text = text.replace(secret, "********")
        return text


class S3CheckError(Exception):
    """A storage check failure: ``msg`` is one sentence (cause and next step), ``kind`` one of KINDS."""

    def __init__(self, msg: str, kind: str = "error") -> None:
        super().__init__(msg)
        self.msg = msg
        self.kind = kind if kind in KINDS else "error"


def make_client(opts: S3Options) -> t.Any:
    """An S3 client: profile if given, else the explicit keys if given, else the standard AWS chain."""
    if bool(opts.access_key) != bool(opts.secret_key):
        raise S3CheckError(
            "Only one of access_key and secret_key is set; give both, or neither to use the AWS env/profile chain.",
            "bad_credentials",
        )
    if opts.validate_certs and opts.ca_path and not os.path.isfile(opts.ca_path):
        raise S3CheckError(f"ca_path {opts.ca_path} is not a readable file; give the CA bundle (PEM) path.", "tls")
    try:
        if opts.profile:
            session = boto3.session.Session(profile_name=opts.profile, region_name=opts.region)
        elif opts.access_key:
            session = boto3.session.Session(
                aws_access_key_id=opts.access_key,
                aws_secret_access_key=opts.secret_key,
                aws_session_token=opts.session_token,
                region_name=opts.region,
            )
        else:
            session = boto3.session.Session(region_name=opts.region)
        config = Config(
            connect_timeout=opts.connect_timeout,
            read_timeout=opts.read_timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"} if opts.endpoint_url else None,
        )
        return session.client("s3", endpoint_url=opts.endpoint_url, verify=opts.verify, config=config)
    except Exception as exc:  # noqa: BLE001 - boto3/botocore errors become one sentence
        raise describe_error(exc, opts) from None


def check_bucket(client: t.Any, opts: S3Options) -> None:
    """HeadBucket; raise S3CheckError (one sentence, a kind) when the bucket cannot be used."""
    try:
        client.head_bucket(Bucket=opts.bucket)
    except Exception as exc:  # noqa: BLE001 - boto3/botocore errors become one sentence
        raise describe_error(exc, opts, action="HeadBucket") from None


def list_objects(client: t.Any, opts: S3Options, page_size: int | None = None) -> dict[str, dict[str, t.Any]]:
    """{filename relative to the prefix: {key, size, etag}}, every page; 'directory' keys are skipped."""
    out: dict[str, dict[str, t.Any]] = {}
    paging = {"PageSize": page_size} if page_size else {}
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=opts.bucket, Prefix=opts.prefix, PaginationConfig=paging
        )
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                name = key[len(opts.prefix) :]
                if not name or key.endswith("/"):
                    continue
                out[name] = {"key": key, "size": int(obj.get("Size", 0)), "etag": (obj.get("ETag") or "").strip('"')}
    except Exception as exc:  # noqa: BLE001 - boto3/botocore errors become one sentence
        raise describe_error(exc, opts, action="ListObjectsV2") from None
    return out


def object_sha256(client: t.Any, opts: S3Options, key: str) -> tuple[str, int]:
    """(sha256, size) of one object, hashed while it streams in CHUNK-sized pieces."""
    try:
        body = client.get_object(Bucket=opts.bucket, Key=key)["Body"]
        try:
            return sha256_chunks(body.iter_chunks(CHUNK))
        finally:
            body.close()
    except Exception as exc:  # noqa: BLE001 - boto3/botocore errors become one sentence
        raise describe_error(exc, opts, action="GetObject", key=key) from None


def inventory(client: t.Any, opts: S3Options, hash_only: set[str] | None = None) -> dict[str, dict[str, t.Any]]:
    """The storage shape: {filename: {size, sha256?, key}}; sha256 for ``hash_only`` (None: every object)."""
    files: dict[str, dict[str, t.Any]] = {}
    for name, obj in list_objects(client, opts).items():
        entry: dict[str, t.Any] = {"size": obj["size"], "key": obj["key"]}
        if hash_only is None or name in hash_only:
            entry["sha256"] = object_sha256(client, opts, obj["key"])[0]
        files[name] = entry
    return files


def describe_error(exc: BaseException, opts: S3Options, action: str = "", key: str | None = None) -> S3CheckError:
    """Turn any exception from boto3/botocore into an S3CheckError; the text never holds a secret."""
    err = exc if isinstance(exc, S3CheckError) else _describe(exc, opts, action, key)
    return S3CheckError(opts.scrub(err.msg), err.kind)


def _describe(exc: BaseException, opts: S3Options, action: str, key: str | None) -> S3CheckError:
    ep = opts.endpoint
    bucket = opts.bucket
    target = f"s3://{bucket}/{key}" if key else opts.where
    if not HAS_BOTO3:  # pragma: no cover - the module stops earlier without boto3
        return S3CheckError(f"S3 request to {ep} failed: {_short(str(exc))}.")
    if isinstance(exc, bexc.NoCredentialsError):
        return S3CheckError(
            f"No credentials found for {ep}; give access_key/secret_key or set AWS env/profile.", "bad_credentials"
        )
    if isinstance(exc, bexc.PartialCredentialsError):
        return S3CheckError(
            f"Incomplete AWS credentials ({_short(str(exc))}); give both the access key and the secret key.",
            "bad_credentials",
        )
    if isinstance(exc, bexc.ProfileNotFound):
        return S3CheckError(
            f"AWS profile {opts.profile!r} is not in the AWS config/credentials files; fix profile or create it.",
            "bad_credentials",
        )
    if isinstance(exc, bexc.SSLError):
        low = str(exc).lower()
        if "self-signed" in low or "self signed" in low or "unable to get local issuer" in low:
            return S3CheckError(
                f"TLS verification failed for {ep}: the certificate is self-signed or from an unknown CA; "
                "pass ca_path with the CA bundle (or validate_certs: false for a throwaway test).",
                "tls",
            )
        if "hostname" in low or "doesn't match" in low or "not valid for" in low:
            return S3CheckError(
                f"TLS verification failed for {ep}: the certificate does not match the host name; "
                "use the name the certificate was issued for.",
                "tls",
            )
        if "wrong version number" in low or "record layer failure" in low:
            return S3CheckError(
                f"TLS handshake with {ep} failed: the server does not speak TLS there; "
                "use http:// in endpoint_url or the server's TLS port.",
                "tls",
            )
        return S3CheckError(f"TLS error talking to {ep}: {_short(str(exc))}; check the certificate and ca_path.", "tls")
    if isinstance(exc, bexc.ConnectTimeoutError):
        return S3CheckError(
            f"Timed out after {opts.connect_timeout:g}s connecting to {ep}; the host is not answering "
            "(firewall, wrong address, or server down); check endpoint_url and the network path.",
            "timeout",
        )
    if isinstance(exc, bexc.ReadTimeoutError):
        return S3CheckError(
            f"{ep} accepted the connection but sent no answer within {opts.read_timeout:g}s ({action or 'request'}); "
            "the S3 server is hung or overloaded; check it or raise read_timeout.",
            "timeout",
        )
    if isinstance(exc, bexc.EndpointConnectionError):
        cause = str(exc.kwargs.get("error", "")).lower()
        if "name or service not known" in cause or "nodename nor servname" in cause or "name resolution" in cause:
            return S3CheckError(
                f"The host of {ep} does not resolve (DNS); check endpoint_url (or region for AWS).", "bad_endpoint"
            )
        return S3CheckError(
            f"Could not connect to {ep}: nothing answers there (connection refused or unreachable); "
            "check endpoint_url and that the S3 server is running.",
            "bad_endpoint",
        )
    if isinstance(exc, bexc.ConnectionClosedError):
        return S3CheckError(
            f"{ep} closed the connection without an answer ({action or 'request'}); "
            "check the S3 server log and any proxy in front of it.",
            "bad_endpoint",
        )
    if isinstance(exc, bexc.ClientError):
        return _client_error(exc, opts, action, target)
    if isinstance(exc, ValueError) and "endpoint" in str(exc).lower():
        return S3CheckError(
            f"endpoint_url {opts.endpoint_url!r} is not a valid URL; give scheme and host, e.g. http://127.0.0.1:9000.",
            "bad_endpoint",
        )
    if isinstance(exc, bexc.BotoCoreError):
        return S3CheckError(
            f"S3 {action or 'request'} on {target} at {ep} failed: {_short(str(exc))}; check the S3 server."
        )
    return S3CheckError(
        f"Unexpected error during S3 {action or 'request'} on {target} at {ep}: "
        f"{type(exc).__name__}: {_short(str(exc))}; check the S3 settings and server."
    )


def _client_error(exc: t.Any, opts: S3Options, action: str, target: str) -> S3CheckError:
    error = exc.response.get("Error", {}) or {}
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    ep, bucket = opts.endpoint, opts.bucket
    if code in ("404", "NoSuchBucket") or (action == "HeadBucket" and status == 404):
        return S3CheckError(f"Bucket {bucket} does not exist at {ep}; create it or fix pypi_s3_bucket.", "no_bucket")
    if code == "NoSuchKey":
        return S3CheckError(
            f"Object {target} vanished while it was being read (deleted meanwhile?); run the check again.", "error"
        )
    if code == "InvalidAccessKeyId":
        return S3CheckError(
            f"The access key is unknown to {ep} (InvalidAccessKeyId, 403); check access_key or the AWS profile.",
            "bad_credentials",
        )
    if code == "SignatureDoesNotMatch":
        return S3CheckError(
            f"The secret key does not match the access key at {ep} (SignatureDoesNotMatch, 403); check secret_key.",
            "bad_credentials",
        )
    if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
        return S3CheckError(
            f"The session token was refused by {ep} ({code}); get fresh credentials or drop session_token.",
            "bad_credentials",
        )
    if code in ("403", "AccessDenied", "AllAccessDisabled") or status == 403:
        if action == "HeadBucket":
            # HeadBucket answers without a body: a wrong key and a missing permission look the same.
            return S3CheckError(
                f"Bucket {bucket} at {ep}: access denied (403): the credentials are wrong or lack s3:ListBucket on "
                f"{bucket}; check access_key/secret_key and the bucket policy.",
                "access_denied",
            )
        needed = "s3:GetObject" if action == "GetObject" else "s3:ListBucket"
        return S3CheckError(
            f"Access denied (403) for {action or 'request'} on {target} at {ep}: the credentials lack {needed}; "
            "grant it in the IAM or bucket policy.",
            "access_denied",
        )
    if code in ("301", "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException") or (
        status == 301
    ):
        region = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
        hint = f"set region: {region}" if region else "set region to the bucket's region"
        return S3CheckError(f"Bucket {bucket} is in another region than {opts.region} at {ep}; {hint}.", "error")
    message = _short(str(error.get("Message") or ""))
    return S3CheckError(
        f"S3 {action or 'request'} on {target} at {ep} failed with HTTP {status or '?'} {code}"
        f"{': ' + message if message else ''}; check the S3 server and the bucket settings.",
        "error",
    )


def _short(text: str, limit: int = 240) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
