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

google-cloud-storage is imported when a backend is made, never when this module is.
Credentials are Application Default Credentials; with `endpoint_url` (an emulator, a private
endpoint) and no credentials found, requests go unauthenticated.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from ..diagnostics import Diagnostic, MlformError
from .backend import Backend, JournalEntry, LockHeld, LockInfo
from .local_backend import journal_line, parse_journal_line, replay_journal
from .model import State
from .statefile import decode, encode

POLL_SECONDS = 1.0
SEQ_DIGITS = 10
STATE_NAME = "state.json"
ROLE_HELP = ("grant the caller roles/storage.objectUser on the bucket (storage.objects.get, "
             "create, delete and list)")


class GenerationMismatch(MlformError):
    """The state object is not the one this backend read: someone else wrote it."""


class GcsBackend(Backend):
    def __init__(self, bucket: str, prefix: str | None = None,
                 endpoint_url: str | None = None, client: Any = None):
        self.bucket_name = bucket
        self.prefix = (prefix or "").strip("/")
        self.name = object_name(prefix)
        self.lock_name = f"{self.name}.lock"
        self.backup_name = f"{self.name}.backup"
        self.journal_prefix = f"{self.name}.journal/"
        self.client = client or _client(endpoint_url)
        self.bucket = self.client.bucket(bucket)
        self._generation: int | None = None
        """The state's generation when last read or written (0: there was none); None
        before the first read."""
        self._held: str | None = None
        self._seq: int | None = None
        self._seq_mutex = threading.Lock()

    def describe(self) -> str:
        return f"gcs state 'gs://{self.bucket_name}/{self.name}'"

    # --- state ----------------------------------------------------------------------

    def read(self) -> State | None:
        entries = self.journal_read()
        data, self._generation = self._get(self.name)
        if data is None:
            return replay_journal(None, entries)
        where = self._uri(self.name)
        try:
            state = decode(data, where)
        except MlformError:
            # Damaged: say so again, suggesting the backup only if there is a readable one.
            backup, _ = self._get(self.backup_name)
            good = self._uri(self.backup_name) \
                if backup is not None and _readable(backup) else None
            state = decode(data, where, good)
        return replay_journal(state, entries)

    def write(self, state: State) -> None:
        """Store `state` if the state object is still the one last read, else raise
        `GenerationMismatch` (and keep the journal, which still describes this apply)."""
        data = encode(state)
        previous, generation = self._get(self.name)
        # A backend that never read compares against what is there now.
        expected = generation if self._generation is None else self._generation
        if generation != expected:
            raise self._mismatch(expected, generation)
        if previous is not None and _readable(previous):
            # A damaged state must not push the last good copy out of the backup.
            self._call("copy the state to its backup", self.backup_name,
                       lambda: self.bucket.blob(self.backup_name).upload_from_string(
                           previous, content_type="application/json"))
        blob = self.bucket.blob(self.name)
        try:
            blob.upload_from_string(data, content_type="application/json",
                                    if_generation_match=expected)
        except Exception as exc:
            if not _is(exc, "PreconditionFailed"):
                raise _error("write the state", self._uri(self.name), exc) from None
            # Our own upload may have landed before a retry was refused: that is success.
            now, written = self._get(self.name)
            if now != data:
                raise self._mismatch(expected, written) from None
        else:
            written = int(blob.generation or 0)
        self._generation = written
        self._clear_journal()

    def _mismatch(self, expected: int, found: int) -> GenerationMismatch:
        def gen(g: int) -> str:
            return f"generation {g}" if g else "no state"

        return GenerationMismatch(Diagnostic(
            f"the state in {self.describe()} was written by someone else since this command "
            f"read it; this command's state was not written",
            detail=f"read {gen(expected)}, found {gen(found)} (was its lock removed with "
                   "'mlform state unlock' while this command ran?)",
            help="run 'mlform plan' to see the state as it is now, and apply again"))

    # --- lock -----------------------------------------------------------------------

    def lock(self, info: LockInfo, timeout: float = 0.0) -> None:
        deadline = time.monotonic() + max(timeout, 0.0)
        body = json.dumps(info.to_json()).encode()
        while True:
            try:
                self.bucket.blob(self.lock_name).upload_from_string(
                    body, content_type="application/json", if_generation_match=0)
                self._held = info.id
                return
            except Exception as exc:
                if not _is(exc, "PreconditionFailed"):
                    raise _error("take the lock", self._uri(self.lock_name), exc) from None
            holder = self.holder()
            if holder is not None and holder.id == info.id:
                self._held = info.id  # our create landed, and a retry of it was refused
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockHeld(holder, self.describe())
            time.sleep(min(POLL_SECONDS, left))

    def unlock(self, lock_id: str, force: bool = False) -> None:
        """Release our lock; with `force`, remove whichever lock carries `lock_id`."""
        if not force and self._held != lock_id:
            raise ValueError(f"lock {lock_id} is not held by this process")
        recorded, generation = self._holder()
        if recorded is None and force:
            raise MlformError.simple(f"no lock is recorded on {self.describe()}",
                                     help="there is nothing to unlock")
        if recorded is not None and recorded.id != lock_id:
            raise MlformError.simple(
                f"lock ID '{lock_id}' does not match the lock on {self.describe()}",
                detail=f"the lock is {recorded.describe()}",
                help=f"to remove that lock, run: mlform state unlock {recorded.id}")
        if recorded is not None:
            try:
                # Only the lock object read: one taken since by someone else stays.
                self.bucket.blob(self.lock_name).delete(if_generation_match=generation)
            except Exception as exc:
                if not _is(exc, "NotFound"):
                    raise _error("release the lock", self._uri(self.lock_name), exc) from None
        if self._held == lock_id:
            self._held = None

    def holder(self) -> LockInfo | None:
        return self._holder()[0]

    def _holder(self) -> tuple[LockInfo | None, int]:
        data, generation = self._get(self.lock_name)
        if data is None:
            return None, 0
        try:
            doc = json.loads(data)
            return LockInfo(id=str(doc["id"]), pid=int(doc["pid"]), host=str(doc["host"]),
                            user=str(doc["user"]), command=str(doc["command"]),
                            since=float(doc["since"])), generation
        except (ValueError, KeyError, TypeError):
            return None, generation

    # --- journal --------------------------------------------------------------------

    def journal_append(self, entry: JournalEntry) -> None:
        """One new object per entry, created only if absent (a clash of two writers is an
        error, not an overwrite); GCS acknowledges an upload once it is durable."""
        with self._seq_mutex:
            if self._seq is None:
                names = self._journal_names("append to the journal")
                self._seq = names[-1][1] if names else 0
            self._seq += 1
            name = f"{self.journal_prefix}{self._seq:0{SEQ_DIGITS}d}.json"
        self._call("append to the journal", name,
                   lambda: self.bucket.blob(name).upload_from_string(
                       journal_line(entry), content_type="application/json",
                       if_generation_match=0))

    def journal_read(self) -> list[JournalEntry]:
        entries = []
        for name, _ in self._journal_names():
            data, _ = self._get(name)
            if data is not None:
                entries.append(parse_journal_line(data.rstrip(b"\n"), self._uri(name)))
        return entries

    def _journal_names(self, what: str = "read the state") -> list[tuple[str, int]]:
        blobs = self._call(what, self.journal_prefix,
                           lambda: list(self.client.list_blobs(self.bucket,
                                                               prefix=self.journal_prefix)))
        found = []
        for blob in blobs:
            stem = blob.name[len(self.journal_prefix):].removesuffix(".json")
            if stem.isdigit():
                found.append((blob.name, int(stem)))
        return sorted(found, key=lambda item: item[1])

    def _clear_journal(self) -> None:
        for name, _ in self._journal_names("clear the journal"):
            try:
                self.bucket.blob(name).delete()
            except Exception as exc:
                if not _is(exc, "NotFound"):
                    raise _error("clear the journal", self._uri(name), exc) from None
        with self._seq_mutex:
            self._seq = None

    # --- plumbing -------------------------------------------------------------------

    def _uri(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{name}"

    def _get(self, name: str) -> tuple[bytes | None, int]:
        """The object's content and generation; (None, 0) when there is none."""
        blob = self.bucket.blob(name)
        try:
            data = blob.download_as_bytes()
        except Exception as exc:
            if _is(exc, "NotFound"):
                return None, 0
            raise _error("read", self._uri(name), exc) from None
        return data, int(blob.generation or 0)

    def _call(self, what: str, name: str, call: Any) -> Any:
        try:
            return call()
        except Exception as exc:
            raise _error(what, self._uri(name), exc) from None


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


def _readable(data: bytes) -> bool:
    try:
        decode(data, "state")
    except MlformError:
        return False
    return True
