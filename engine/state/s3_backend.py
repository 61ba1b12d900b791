"""The S3 backend: state in one S3 object, locked by a conditional write.

    s3://<bucket>/<key>               the state (one PutObject: S3 stores an object whole
                                      or not at all, so a crash never leaves it half written)
    s3://<bucket>/<key>.backup        the state before the last write (copied first)
    s3://<bucket>/<key>.lock          the lock: LockInfo JSON, created with
                                      `If-None-Match: *`, so only one writer can create it
    s3://<bucket>/<key>.journal/<seq>.json
                                      one object per journal entry (flat cost per entry),
                                      replayed on read exactly as the local backend does

The state itself is written unconditionally: the lock is what keeps two writers apart.
The flow is `ObjectStoreBackend`'s; this module maps boto3's calls and errors onto it.
boto3 is imported when a backend is made, never when this module is.
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import MlformError
from .object_store import Conflict, ObjectStoreBackend, Version

PRECONDITION_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
MISSING_CODES = ("NoSuchKey", "404", "NotFound")
CONTENT_TYPE = "application/json"


class S3Backend(ObjectStoreBackend):
    kind = "s3"
    version_word = "etag"

    def __init__(self, bucket: str, key: str, region: str | None = None,
                 endpoint_url: str | None = None, client: Any = None):
        self.bucket = bucket
        self.client = client or _client(region, endpoint_url)
        super().__init__(S3Store(self.client, bucket), key.lstrip("/"))


class S3Store:
    """One bucket, through a boto3 client."""

    compare_and_swap = False

    def __init__(self, client: Any, bucket: str):
        self.client = client
        self.bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def get(self, key: str) -> tuple[bytes, Version] | None:
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=key)
            return found["Body"].read(), found.get("ETag")
        except Exception as exc:
            if _code(exc) in MISSING_CODES:
                return None
            raise _error("read", key, exc) from None

    def put(self, key: str, data: bytes, what: str, *, if_version: Version = None,
            if_absent: bool = False) -> Version:
        # `if_version` is not sent: compare_and_swap is off (see the module's docstring).
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                          ContentType=CONTENT_TYPE, **condition).get("ETag")
        except Exception as exc:
            if if_absent and _code(exc) in PRECONDITION_CODES:
                raise Conflict(_error(what, key, exc)) from None
            raise _error(what, key, exc) from None

    def copy(self, source: str, target: str, data: bytes, what: str) -> None:
        self._call(what, target, self.client.copy_object, Bucket=self.bucket, Key=target,
                   CopySource={"Bucket": self.bucket, "Key": source})

    def delete(self, key: str, what: str, *, if_version: Version = None) -> None:
        self._call(what, key, self.client.delete_object, Bucket=self.bucket, Key=key)

    def delete_all(self, keys: list[str], what: str) -> None:
        for start in range(0, len(keys), 1000):
            self._call(what, "", self.client.delete_objects, Bucket=self.bucket,
                       Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]],
                               "Quiet": True})

    def list(self, prefix: str, what: str) -> list[str]:
        def keys() -> list[str]:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix)
            return [o["Key"] for page in pages for o in page.get("Contents", [])]

        return self._call(what, prefix, keys)

    def _call(self, what: str, key: str, call: Any, **kwargs: Any) -> Any:
        try:
            return call(**kwargs)
        except Exception as exc:
            raise _error(what, key, exc) from None


def _client(region: str | None, endpoint_url: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise MlformError.simple("the s3 backend needs boto3",
                                 help="pip install 'mlform[aws]'") from None
    return boto3.session.Session().client(
        "s3", region_name=region, endpoint_url=endpoint_url,
        config=Config(retries={"mode": "adaptive", "max_attempts": 10}))


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _error(what: str, key: str, exc: BaseException) -> MlformError:
    if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        return MlformError.simple(
            f"cannot {what} in S3: no AWS credentials found",
            help="set AWS_PROFILE (after `aws configure` or `aws sso login`), or "
                 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    code = _code(exc)
    if code in ("AccessDenied", "403"):
        return MlformError.simple(
            f"cannot {what}: access denied on '{key}'", detail=str(exc),
            help="grant s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on the "
                 "state bucket and key")
    return MlformError.simple(f"cannot {what} ('{key}'): {exc}")
