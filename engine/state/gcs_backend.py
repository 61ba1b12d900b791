"""The GCS backend: state in one Cloud Storage object, written by compare-and-swap and locked
by a create-only object.

    gs://<bucket>/<prefix>/state.json      the state. An upload replaces an object whole or not
                                           at all, so a crash never leaves it half written;
                                           each write is conditional on the generation this
                                           backend last read (`ifGenerationMatch`), so a state
                                           that someone else wrote meanwhile is never overwritten
    gs://<bucket>/<prefix>/state.json.backup
                                           the state before the last write
    gs://<bucket>/<prefix>/state.json.lock the lock: LockInfo JSON (who, host, pid, command,
                                           since), created with `ifGenerationMatch=0`, so only
                                           one writer can create it
    gs://<bucket>/<prefix>/state.json.journal/<seq>.json
                                           one object per journal entry, replayed on read as
                                           the local backend does

The flow is `ObjectStoreBackend`'s; this module maps google-cloud-storage's calls and errors
onto it. google-cloud-storage is imported when a backend is made, never when this module is.
Credentials are Application Default Credentials; with `endpoint_url` (an emulator, a private
endpoint) and no credentials found, requests go unauthenticated.
"""

from __future__ import annotations

import logging
from typing import Any

from ..diagnostics import MlformError
from .object_store import Conflict, ObjectStoreBackend, Version, VersionMismatch

STATE_NAME = "state.json"
CONTENT_TYPE = "application/json"
ROLE_HELP = ("grant the caller roles/storage.objectUser on the bucket (storage.objects.get, "
             "create, delete and list)")


class GenerationMismatch(VersionMismatch):
    """The state object is not the one this backend read: someone else wrote it."""


class GcsBackend(ObjectStoreBackend):
    kind = "gcs"
    version_word = "generation"
    mismatch = GenerationMismatch

    def __init__(self, bucket: str, prefix: str | None = None,
                 endpoint_url: str | None = None, client: Any = None):
        self.bucket_name = bucket
        self.prefix = (prefix or "").strip("/")
        self.name = object_name(prefix)
        self.client = client or _client(endpoint_url)
        self.bucket = self.client.bucket(bucket)
        super().__init__(GcsStore(self.client, self.bucket, bucket), self.name)


class GcsStore:
    """One bucket; a version is an object's generation (`ifGenerationMatch`, 0: absent)."""

    compare_and_swap = True

    def __init__(self, client: Any, bucket: Any, bucket_name: str):
        self.client = client
        self.bucket = bucket
        self.bucket_name = bucket_name

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{key}"

    def get(self, key: str) -> tuple[bytes, Version] | None:
        blob = self.bucket.blob(key)
        try:
            data = blob.download_as_bytes()
        except Exception as exc:
            if _is(exc, "NotFound"):
                return None
            raise _error("read", self.uri(key), exc) from None
        return data, int(blob.generation or 0)

    def put(self, key: str, data: bytes, what: str, *, if_version: Version = None,
            if_absent: bool = False) -> Version:
        condition = {"if_generation_match": 0 if if_absent else if_version} \
            if if_absent or if_version is not None else {}
        blob = self.bucket.blob(key)
        try:
            blob.upload_from_string(data, content_type=CONTENT_TYPE, **condition)
        except Exception as exc:
            if condition and _is(exc, "PreconditionFailed"):
                raise Conflict(_error(what, self.uri(key), exc)) from None
            raise _error(what, self.uri(key), exc) from None
        return int(blob.generation or 0)

    def copy(self, source: str, target: str, data: bytes, what: str) -> None:
        self.put(target, data, what)

    def delete(self, key: str, what: str, *, if_version: Version = None) -> None:
        condition = {"if_generation_match": if_version} if if_version is not None else {}
        try:
            self.bucket.blob(key).delete(**condition)
        except Exception as exc:
            if condition and _is(exc, "PreconditionFailed"):
                raise Conflict(_error(what, self.uri(key), exc)) from None
            if not _is(exc, "NotFound"):
                raise _error(what, self.uri(key), exc) from None

    def delete_all(self, keys: list[str], what: str) -> None:
        for key in keys:
            self.delete(key, what)

    def list(self, prefix: str, what: str) -> list[str]:
        try:
            return [blob.name for blob in self.client.list_blobs(self.bucket, prefix=prefix)]
        except Exception as exc:
            raise _error(what, self.uri(prefix), exc) from None


def object_name(prefix: str | None) -> str:
    """The state object's name for a backend's `prefix`."""
    prefix = (prefix or "").strip("/")
    return f"{prefix}/{STATE_NAME}" if prefix else STATE_NAME


def _client(endpoint_url: str | None) -> Any:
    try:
        import google.auth
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import storage
    except ImportError:
        raise MlformError.simple("the gcs backend needs google-cloud-storage",
                                 help="pip install 'mlform[gcp]'") from None
    # google.auth logs each place it looked in vain; the error below says it once.
    quiet = logging.getLogger("google.auth._default")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        credentials, project = google.auth.default()
    except DefaultCredentialsError as exc:
        if not endpoint_url:
            raise no_credentials(str(exc)) from None
        # An emulator takes unauthenticated requests.
        credentials, project = AnonymousCredentials(), None
    finally:
        quiet.setLevel(level)
    options = {"api_endpoint": endpoint_url} if endpoint_url else None
    return storage.Client(project=project, credentials=credentials, client_options=options)


def no_credentials(detail: str = "") -> MlformError:
    return MlformError.simple(
        "the gcs backend found no Google Cloud credentials", detail=detail,
        help="run 'gcloud auth application-default login', or set "
             "GOOGLE_APPLICATION_CREDENTIALS to a service account key file (on Google Cloud, "
             "the attached service account is used)")


def _is(exc: BaseException, name: str) -> bool:
    """Whether `exc` is the google.api_core exception `name` (checked by class name, so this
    module needs no import of it)."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _error(what: str, uri: str, exc: BaseException) -> MlformError:
    if _is(exc, "DefaultCredentialsError") or _is(exc, "RefreshError"):
        return no_credentials(str(exc))
    message = getattr(exc, "message", None) or str(exc)
    if _is(exc, "Forbidden") or _is(exc, "Unauthorized"):
        return MlformError.simple(f"cannot {what}: permission denied on '{uri}'",
                                  detail=message, help=ROLE_HELP)
    if _is(exc, "NotFound"):
        bucket = uri.removeprefix("gs://").split("/", 1)[0]
        return MlformError.simple(f"cannot {what}: the bucket '{bucket}' does not exist",
                                  detail=message,
                                  help=f"create it first (gcloud storage buckets create "
                                       f"gs://{bucket}), or fix 'bucket' in 'backend:'")
    return MlformError.simple(f"cannot {what} ('{uri}'): {message}")

