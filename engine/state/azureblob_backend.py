"""The Azure Blob backend: state in one block blob, written conditionally on the etag read
and locked by a create-only blob.

    <container>/<key>          the state. One Put Blob replaces a blob whole or not at all
                               (a body cut short is never committed), so a crash never leaves
                               it half written; each write is conditional on the etag this
                               backend last read (`If-Match: <etag>`, or `If-None-Match: *`
                               when there was no state), so a state someone else wrote
                               meanwhile is never overwritten
    <container>/<key>.backup   the state before the last write
    <container>/<key>.lock     the lock: LockInfo JSON (who, host, pid, command, since),
                               created with `If-None-Match: *`, so only one writer can
                               create it
    <container>/<key>.journal/<seq>.json
                               one blob per journal entry, replayed on read as the local
                               backend does

The lock is a create-only blob rather than a blob lease: a lease lasts 15 to 60 seconds
unless renewed (an apply that trains for an hour would need a renewing thread, and a
paused process would lose its lock without knowing), or is infinite, which is a create-only
lock with the holder kept apart from the lock; the blob's content is its holder, written in
the same request that takes it, and `mlform state unlock` deletes it as on S3 and GCS.

Credentials, in order: AZURE_STORAGE_CONNECTION_STRING (its endpoint must be the one
`backend:` names), AZURE_STORAGE_KEY (the account key), else DefaultAzureCredential.
azure-storage-blob and azure-identity are imported when a backend is made, never when this
module is.
"""

from __future__ import annotations

import json
import logging
import os
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
CONNECTION_ENV = "AZURE_STORAGE_CONNECTION_STRING"
KEY_ENV = "AZURE_STORAGE_KEY"
STORAGE_SCOPE = "https://storage.azure.com/.default"
ROLE_HELP = ("grant the caller the 'Storage Blob Data Contributor' role on the container (or "
             "its storage account); with an account key, check that it is the account's "
             "current key")
ABSENT = ""
"""The etag of a blob that is not there (a read that found no state, no lock)."""


class EtagMismatch(MlformError):
    """The state blob is not the one this backend read: someone else wrote it."""


class AzureBlobBackend(Backend):
    def __init__(self, storage_account: str, container: str, key: str,
                 account_url: str | None = None, client: Any = None):
        """`client`: a `ContainerClient` to use instead of one made from the environment."""
        self.storage_account = storage_account
        self.container_name = container
        self.account_url = endpoint(storage_account, account_url)
        self.name = key.lstrip("/")
        self.lock_name = f"{self.name}.lock"
        self.backup_name = f"{self.name}.backup"
        self.journal_prefix = f"{self.name}.journal/"
        self.container = client or _container(storage_account, container, self.account_url)
        self._etag: str | None = None
        """The state's etag when last read or written (ABSENT: there was none); None
        before the first read."""
        self._held: str | None = None
        self._seq: int | None = None
        self._seq_mutex = threading.Lock()

    def describe(self) -> str:
        return f"azureblob state '{self._url(self.name)}'"

    # --- state ----------------------------------------------------------------------

    def read(self) -> State | None:
        entries = self.journal_read()
        data, self._etag = self._get(self.name)
        if data is None:
            return replay_journal(None, entries)
        where = self._url(self.name)
        try:
            state = decode(data, where)
        except MlformError:
            # Damaged: say so again, suggesting the backup only if there is a readable one.
            backup, _ = self._get(self.backup_name)
            good = self._url(self.backup_name) \
                if backup is not None and _readable(backup) else None
            state = decode(data, where, good)
        return replay_journal(state, entries)

    def write(self, state: State) -> None:
        """Store `state` if the state blob is still the one last read, else raise
        `EtagMismatch` (and keep the journal, which still describes this apply)."""
        data = encode(state)
        previous, etag = self._get(self.name)
        # A backend that never read compares against what is there now.
        expected = etag if self._etag is None else self._etag
        if etag != expected:
            raise self._mismatch(expected, etag)
        if previous is not None and _readable(previous):
            # A damaged state must not push the last good copy out of the backup.
            self._call("copy the state to its backup", self.backup_name,
                       lambda: self._upload(self.backup_name, previous))
        try:
            written = self._upload(self.name, data, _only_if(expected))["etag"]
        except Exception as exc:
            if not _is(exc, "ResourceModifiedError", "ResourceExistsError"):
                raise self._error("write the state", self.name, exc) from None
            # Our own upload may have landed before a retry of it was refused: that is success.
            now, written = self._get(self.name)
            if now != data:
                raise self._mismatch(expected, written) from None
        self._etag = written
        self._clear_journal()

    def _mismatch(self, expected: str, found: str) -> EtagMismatch:
        def etag(tag: str) -> str:
            return f"etag {tag}" if tag else "no state"

        return EtagMismatch(Diagnostic(
            f"the state in {self.describe()} was written by someone else since this command "
            f"read it; this command's state was not written",
            detail=f"read {etag(expected)}, found {etag(found)} (was its lock removed with "
                   "'mlform state unlock' while this command ran?)",
            help="run 'mlform plan' to see the state as it is now, and apply again"))

    # --- lock -----------------------------------------------------------------------

    def lock(self, info: LockInfo, timeout: float = 0.0) -> None:
        deadline = time.monotonic() + max(timeout, 0.0)
        body = json.dumps(info.to_json()).encode()
        while True:
            try:
                self._upload(self.lock_name, body, _only_if(ABSENT))
                self._held = info.id
                return
            except Exception as exc:
                if not _is(exc, "ResourceExistsError", "ResourceModifiedError"):
                    raise self._error("take the lock", self.lock_name, exc) from None
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
        recorded, etag = self._holder()
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
                # Only the lock blob read: one taken since by someone else stays.
                self.container.get_blob_client(self.lock_name).delete_blob(**_only_if(etag))
            except Exception as exc:
                if _is(exc, "ResourceModifiedError"):
                    raise MlformError.simple(
                        f"the lock on {self.describe()} changed while it was being removed",
                        help="someone else holds it now: run 'mlform plan' to see who") \
                        from None
                if not _is(exc, "ResourceNotFoundError"):
                    raise self._error("release the lock", self.lock_name, exc) from None
        if self._held == lock_id:
            self._held = None

    def holder(self) -> LockInfo | None:
        return self._holder()[0]

    def _holder(self) -> tuple[LockInfo | None, str]:
        data, etag = self._get(self.lock_name)
        if data is None:
            return None, ABSENT
        try:
            doc = json.loads(data)
            return LockInfo(id=str(doc["id"]), pid=int(doc["pid"]), host=str(doc["host"]),
                            user=str(doc["user"]), command=str(doc["command"]),
                            since=float(doc["since"])), etag
        except (ValueError, KeyError, TypeError):
            return None, etag

    # --- journal --------------------------------------------------------------------

    def journal_append(self, entry: JournalEntry) -> None:
        """One new blob per entry, created only if absent (a clash of two writers is an
        error, not an overwrite); Azure acknowledges a Put Blob once it is durable."""
        with self._seq_mutex:
            if self._seq is None:
                names = self._journal_names("append to the journal")
                self._seq = names[-1][1] if names else 0
            self._seq += 1
            name = f"{self.journal_prefix}{self._seq:0{SEQ_DIGITS}d}.json"
        self._call("append to the journal", name,
                   lambda: self._upload(name, journal_line(entry), _only_if(ABSENT)))

    def journal_read(self) -> list[JournalEntry]:
        entries = []
        for name, _ in self._journal_names():
            data, _ = self._get(name)
            if data is not None:
                entries.append(parse_journal_line(data.rstrip(b"\n"), self._url(name)))
        return entries

    def _journal_names(self, what: str = "read the state") -> list[tuple[str, int]]:
        blobs = self._call(what, self.journal_prefix,
                           lambda: list(self.container.list_blobs(
                               name_starts_with=self.journal_prefix)))
        found = []
        for blob in blobs:
            stem = blob.name[len(self.journal_prefix):].removesuffix(".json")
            if stem.isdigit():
                found.append((blob.name, int(stem)))
        return sorted(found, key=lambda item: item[1])

    def _clear_journal(self) -> None:
        for name, _ in self._journal_names("clear the journal"):
            try:
                self.container.get_blob_client(name).delete_blob()
            except Exception as exc:
                if not _is(exc, "ResourceNotFoundError"):
                    raise self._error("clear the journal", name, exc) from None
        with self._seq_mutex:
            self._seq = None

    # --- plumbing -------------------------------------------------------------------

    def _url(self, name: str) -> str:
        return f"{self.account_url}/{self.container_name}/{name}"

    def _get(self, name: str) -> tuple[bytes | None, str]:
        """The blob's content and etag; (None, ABSENT) when there is none."""
        try:
            download = self.container.get_blob_client(name).download_blob()
            data = download.readall()
        except Exception as exc:
            if _is(exc, "ResourceNotFoundError") and _code(exc) != "ContainerNotFound":
                return None, ABSENT
            raise self._error("read", name, exc) from None
        return bytes(data), str(download.properties.etag)

    def _upload(self, name: str, data: bytes, conditions: dict[str, Any] | None = None) -> Any:
        from azure.storage.blob import ContentSettings

        return self.container.get_blob_client(name).upload_blob(
            data, overwrite=True, content_settings=ContentSettings(
                content_type="application/json"), **(conditions or {}))

    def _call(self, what: str, name: str, call: Any) -> Any:
        try:
            return call()
        except Exception as exc:
            raise self._error(what, name, exc) from None

    def _error(self, what: str, name: str, exc: BaseException) -> MlformError:
        return _error(what, self._url(name), exc, self.account_url, self.container_name)


def endpoint(storage_account: str, account_url: str | None) -> str:
    """The account's blob endpoint: `account_url` when given, else the public cloud's."""
    if account_url:
        return account_url.rstrip("/")
    return f"https://{storage_account}.blob.core.windows.net"


def blob_url(storage_account: str, container: str, key: str, account_url: str | None) -> str:
    """The state blob's URL, as the backend names it in messages."""
    return f"{endpoint(storage_account, account_url)}/{container}/{key.lstrip('/')}"


def _only_if(etag: str) -> dict[str, Any]:
    """The conditions for a write or delete: the blob still has `etag` (If-Match), or, for
    ABSENT, there is no such blob (If-None-Match: *)."""
    from azure.core import MatchConditions

    if etag == ABSENT:
        return {"match_condition": MatchConditions.IfMissing}
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def _container(storage_account: str, container: str, url: str) -> Any:
    try:
        from azure.identity import DefaultAzureCredential
        from azure.storage.blob import BlobServiceClient
    except ImportError:
        raise MlformError.simple("the azureblob backend needs azure-storage-blob and "
                                 "azure-identity", help="pip install 'mlform[azure]'") from None
    connection = os.environ.get(CONNECTION_ENV)
    if connection:
        try:
            service = BlobServiceClient.from_connection_string(connection)
        except ValueError as exc:
            raise MlformError.simple(f"{CONNECTION_ENV} is not a storage connection string",
                                     detail=str(exc)) from None
        found = service.url.split("?", 1)[0].rstrip("/")
        if found.lower() != url.lower():
            # The state goes where `backend:` says (and the stack records), or nowhere.
            raise MlformError.simple(
                f"{CONNECTION_ENV} is for '{found}', but 'backend:' names '{url}'",
                help="set 'account_url' in 'backend:' to the connection string's blob "
                     f"endpoint (an emulator), or unset {CONNECTION_ENV} to sign in with "
                     "DefaultAzureCredential")
        return service.get_container_client(container)
    key = os.environ.get(KEY_ENV)
    if key:
        service = BlobServiceClient(url, credential={"account_name": storage_account,
                                                     "account_key": key})
        return service.get_container_client(container)
    if not url.lower().startswith("https://"):
        raise MlformError.simple(
            f"the azureblob backend cannot sign in to '{url}' without https",
            detail="Azure access tokens are only sent over https",
            help=f"for an emulator, set {CONNECTION_ENV} (Azurite's development account) or "
                 f"{KEY_ENV}")
    credential = DefaultAzureCredential()
    # Fail once, clearly, here: a missing credential inside the storage client is retried
    # for over a minute, and azure.identity logs each place it looked in vain.
    quiet = logging.getLogger("azure.identity")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        credential.get_token(STORAGE_SCOPE)
    except Exception as exc:
        if not _is(exc, "ClientAuthenticationError", "CredentialUnavailableError"):
            raise
        raise no_credentials(_first_line(str(exc))) from None
    finally:
        quiet.setLevel(level)
    return BlobServiceClient(url, credential=credential).get_container_client(container)


def no_credentials(detail: str = "") -> MlformError:
    return MlformError.simple(
        "the azureblob backend found no Azure credentials", detail=detail,
        help=f"run 'az login', or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET "
             f"for a service principal (in Azure, an attached managed identity is used); for "
             f"an emulator or an account key, set {CONNECTION_ENV} or {KEY_ENV}")


def _is(exc: BaseException, *names: str) -> bool:
    """Whether `exc` is one of the azure.core exceptions `names` (checked by class name, so
    this module needs no import of them)."""
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def _code(exc: BaseException) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _error(what: str, url: str, exc: BaseException, account_url: str = "",
           container: str = "") -> MlformError:
    status = getattr(exc, "status_code", None)
    message = _first_line(getattr(exc, "message", None) or str(exc))
    if _is(exc, "ClientAuthenticationError", "CredentialUnavailableError") and status is None:
        return no_credentials(message)
    if status in (401, 403):
        return MlformError.simple(f"cannot {what}: permission denied on '{url}'",
                                  detail=f"{_code(exc) or status}: {message}", help=ROLE_HELP)
    if _code(exc) == "ContainerNotFound":
        return MlformError.simple(
            f"cannot {what}: the container '{container}' does not exist in '{account_url}'",
            help=f"create it first (az storage container create --name {container} "
                 "--account-name <storage_account> --auth-mode login), or fix 'container' "
                 "in 'backend:'")
    if _is(exc, "ServiceRequestError"):
        return MlformError.simple(f"cannot {what}: '{url}' cannot be reached", detail=message,
                                  help="check 'storage_account' (and 'account_url') in "
                                       "'backend:', and the network")
    return MlformError.simple(f"cannot {what} ('{url}'): {message}")


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _readable(data: bytes) -> bool:
    try:
        decode(data, "state")
    except MlformError:
        return False
    return True
