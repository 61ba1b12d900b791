"""The S3 backend: state in one S3 object, locked by a conditional write.

    s3://<bucket>/<key>               the state (one PutObject: S3 stores an object whole
                                      or not at all, so a crash never leaves it half written)
    s3://<bucket>/<key>.backup        the state before the last write (copied first)
    s3://<bucket>/<key>.lock          the lock: LockInfo JSON, created with
                                      `If-None-Match: *`, so only one writer can create it
    s3://<bucket>/<key>.journal/<seq>.json
                                      one object per journal entry (flat cost per entry),
                                      replayed on read exactly as the local backend does

boto3 is imported when a backend is made, never when this module is.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..diagnostics import MlformError
from .backend import Backend, JournalEntry, LockHeld, LockInfo
from .local_backend import journal_line, parse_journal_line, replay_journal
from .model import State
from .statefile import decode, encode

POLL_SECONDS = 1.0
SEQ_DIGITS = 10
PRECONDITION_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
MISSING_CODES = ("NoSuchKey", "404", "NotFound")


class S3Backend(Backend):
    def __init__(self, bucket: str, key: str, region: str | None = None,
                 endpoint_url: str | None = None, client: Any = None):
        self.bucket = bucket
        self.key = key.lstrip("/")
        self.lock_key = f"{self.key}.lock"
        self.backup_key = f"{self.key}.backup"
        self.journal_prefix = f"{self.key}.journal/"
        self.client = client or _client(region, endpoint_url)
        self._held: str | None = None

    def describe(self) -> str:
        return f"s3 state 's3://{self.bucket}/{self.key}'"

    # --- state ----------------------------------------------------------------------

    def read(self) -> State | None:
        entries = self.journal_read()
        data = self._get(self.key)
        if data is None:
            return replay_journal(None, entries)
        try:
            state = decode(data, f"s3://{self.bucket}/{self.key}")
        except MlformError:
            # Damaged: say so again, suggesting the backup only if there is a readable one.
            backup = self._get(self.backup_key)
            good = f"s3://{self.bucket}/{self.backup_key}" \
                if backup is not None and _readable(backup) else None
            state = decode(data, f"s3://{self.bucket}/{self.key}", good)
        return replay_journal(state, entries)

    def write(self, state: State) -> None:
        data = encode(state)
        previous = self._get(self.key)
        if previous is not None and _readable(previous):
            # A damaged state must not push the last good copy out of the backup.
            self._call("copy the state to its backup", self.client.copy_object,
                       Bucket=self.bucket, Key=self.backup_key,
                       CopySource={"Bucket": self.bucket, "Key": self.key})
        self._call("write the state", self.client.put_object, Bucket=self.bucket,
                   Key=self.key, Body=data, ContentType="application/json")
        keys = [k for k, _ in self._journal_keys()]
        for start in range(0, len(keys), 1000):
            self._call("clear the journal", self.client.delete_objects, Bucket=self.bucket,
                       Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]],
                               "Quiet": True})

    # --- lock -----------------------------------------------------------------------

    def lock(self, info: LockInfo, timeout: float = 0.0) -> None:
        deadline = time.monotonic() + max(timeout, 0.0)
        body = json.dumps(info.to_json()).encode()
        while True:
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.lock_key, Body=body,
                                       IfNoneMatch="*", ContentType="application/json")
                self._held = info.id
                return
            except Exception as exc:
                if _code(exc) not in PRECONDITION_CODES:
                    raise _error("take the lock", self.lock_key, exc) from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockHeld(self.holder(), self.describe())
            time.sleep(min(POLL_SECONDS, left))

    def unlock(self, lock_id: str, force: bool = False) -> None:
        """Release our lock; with `force`, remove whichever lock carries `lock_id`."""
        if not force and self._held != lock_id:
            raise ValueError(f"lock {lock_id} is not held by this process")
        recorded = self.holder()
        if recorded is None and force:
            raise MlformError.simple(f"no lock is recorded on {self.describe()}",
                                     help="there is nothing to unlock")
        if recorded is not None and recorded.id != lock_id:
            raise MlformError.simple(
                f"lock ID '{lock_id}' does not match the lock on {self.describe()}",
                detail=f"the lock is {recorded.describe()}",
                help=f"to remove that lock, run: mlform state unlock {recorded.id}")
        self._call("release the lock", self.client.delete_object, Bucket=self.bucket,
                   Key=self.lock_key)
        if self._held == lock_id:
            self._held = None

    def holder(self) -> LockInfo | None:
        data = self._get(self.lock_key)
        if data is None:
            return None
        try:
            doc = json.loads(data)
            return LockInfo(id=str(doc["id"]), pid=int(doc["pid"]), host=str(doc["host"]),
                            user=str(doc["user"]), command=str(doc["command"]),
                            since=float(doc["since"]))
        except (ValueError, KeyError, TypeError):
            return None

    # --- journal --------------------------------------------------------------------

    def journal_append(self, entry: JournalEntry) -> None:
        """One new object per entry; `If-None-Match` makes a clash of two writers an error
        instead of a silent overwrite (S3 acknowledges a put only once it is durable)."""
        keys = self._journal_keys()
        seq = keys[-1][1] + 1 if keys else 1
        key = f"{self.journal_prefix}{seq:0{SEQ_DIGITS}d}.json"
        self._call("append to the journal", self.client.put_object, Bucket=self.bucket,
                   Key=key, Body=journal_line(entry), IfNoneMatch="*")

    def journal_read(self) -> list[JournalEntry]:
        entries = []
        for key, _ in self._journal_keys():
            data = self._get(key)
            if data is not None:
                entries.append(parse_journal_line(data.rstrip(b"\n"),
                                                  f"s3://{self.bucket}/{key}"))
        return entries

    def _journal_keys(self) -> list[tuple[str, int]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.journal_prefix)
        found = []
        for obj in (o for page in pages for o in page.get("Contents", [])):
            stem = obj["Key"][len(self.journal_prefix):].removesuffix(".json")
            if stem.isdigit():
                found.append((obj["Key"], int(stem)))
        return sorted(found, key=lambda item: item[1])

    # --- plumbing -------------------------------------------------------------------

    def _get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _code(exc) in MISSING_CODES:
                return None
            raise _error("read", key, exc) from None

    def _call(self, what: str, call: Any, **kwargs: Any) -> Any:
        try:
            return call(**kwargs)
        except Exception as exc:
            raise _error(what, kwargs.get("Key", ""), exc) from None


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


def _readable(data: bytes) -> bool:
    try:
        decode(data, "state")
    except MlformError:
        return False
    return True
