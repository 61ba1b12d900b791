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
The flow is `ObjectStoreBackend`'s; this module maps azure-storage-blob's calls and errors onto
it. azure-storage-blob and azure-identity are imported when a backend is made, never when this
module is.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ..diagnostics import MlformError
from .object_store import Conflict, ObjectStoreBackend, Version, VersionMismatch

CONNECTION_ENV = "AZURE_STORAGE_CONNECTION_STRING"
KEY_ENV = "AZURE_STORAGE_KEY"
STORAGE_SCOPE = "https://storage.azure.com/.default"
ROLE_HELP = ("grant the caller the 'Storage Blob Data Contributor' role on the container (or "
             "its storage account); with an account key, check that it is the account's "
             "current key")
CONDITION_ERRORS = ("ResourceModifiedError", "ResourceExistsError")


class EtagMismatch(VersionMismatch):
    """The state blob is not the one this backend read: someone else wrote it."""


class AzureBlobBackend(ObjectStoreBackend):
    kind = "azureblob"
    version_word = "etag"
    mismatch = EtagMismatch

    def __init__(self, storage_account: str, container: str, key: str,
                 account_url: str | None = None, client: Any = None):
        """`client`: a `ContainerClient` to use instead of one made from the environment."""
        self.storage_account = storage_account
        self.container_name = container
        self.account_url = endpoint(storage_account, account_url)
        self.name = key.lstrip("/")
        self.container = client or _container(storage_account, container, self.account_url)
        super().__init__(AzureBlobStore(self.container, self.account_url, container),
                         self.name)


class AzureBlobStore:
    """One container; a version is a blob's etag (`If-Match`; `If-None-Match: *` for absent)."""

    compare_and_swap = True

    def __init__(self, container: Any, account_url: str, container_name: str):
        self.container = container
        self.account_url = account_url
        self.container_name = container_name

    def uri(self, key: str) -> str:
        return f"{self.account_url}/{self.container_name}/{key}"

    def get(self, key: str) -> tuple[bytes, Version] | None:
        try:
            download = self.container.get_blob_client(key).download_blob()
            data = download.readall()
        except Exception as exc:
            if _is(exc, "ResourceNotFoundError") and _code(exc) != "ContainerNotFound":
                return None
            raise self._error("read", key, exc) from None
        return bytes(data), str(download.properties.etag)

    def put(self, key: str, data: bytes, what: str, *, if_version: Version = None,
            if_absent: bool = False) -> Version:
        conditional = if_absent or if_version is not None
        try:
            return self._upload(key, data, _only_if(None if if_absent else if_version)
                                if conditional else {})["etag"]
        except Exception as exc:
            if conditional and _is(exc, *CONDITION_ERRORS):
                raise Conflict(self._error(what, key, exc)) from None
            raise self._error(what, key, exc) from None

    def copy(self, source: str, target: str, data: bytes, what: str) -> None:
        try:
            self._upload(target, data, {})
        except Exception as exc:
            raise self._error(what, target, exc) from None

    def delete(self, key: str, what: str, *, if_version: Version = None) -> None:
        conditions = _only_if(if_version) if if_version is not None else {}
        try:
            self.container.get_blob_client(key).delete_blob(**conditions)
        except Exception as exc:
            if conditions and _is(exc, "ResourceModifiedError"):
                raise Conflict(self._error(what, key, exc)) from None
            if not _is(exc, "ResourceNotFoundError"):
                raise self._error(what, key, exc) from None

    def delete_all(self, keys: list[str], what: str) -> None:
        for key in keys:
            self.delete(key, what)

    def list(self, prefix: str, what: str) -> list[str]:
        try:
            return [blob.name for blob in self.container.list_blobs(name_starts_with=prefix)]
        except Exception as exc:
            raise self._error(what, prefix, exc) from None

    def _upload(self, key: str, data: bytes, conditions: dict[str, Any]) -> Any:
        from azure.storage.blob import ContentSettings

        return self.container.get_blob_client(key).upload_blob(
            data, overwrite=True, content_settings=ContentSettings(
                content_type="application/json"), **conditions)

    def _error(self, what: str, key: str, exc: BaseException) -> MlformError:
        return _error(what, self.uri(key), exc, self.account_url, self.container_name)


def endpoint(storage_account: str, account_url: str | None) -> str:
    """The account's blob endpoint: `account_url` when given, else the public cloud's."""
    if account_url:
        return account_url.rstrip("/")
    return f"https://{storage_account}.blob.core.windows.net"


def blob_url(storage_account: str, container: str, key: str, account_url: str | None) -> str:
    """The state blob's URL, as the backend names it in messages."""
    return f"{endpoint(storage_account, account_url)}/{container}/{key.lstrip('/')}"


def _only_if(etag: str | None) -> dict[str, Any]:
    """The conditions for a write or delete: the blob still has `etag` (If-Match), or, for
    None, there is no such blob (If-None-Match: *)."""
    from azure.core import MatchConditions

    if etag is None:
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

