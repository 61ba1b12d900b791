"""Azure clients for one provider: made on first use, shared by every handler.

Verbs run on parallel threads, so each client is made under a lock exactly once; the made
clients are safe to share. The workspace is reached through azure-ai-ml's `MLClient`
(with a custom cloud's endpoints when `cloud:` gives them), blobs through
azure-storage-blob, and Azure Monitor's metrics through plain ARM REST with the same
credential. Every call goes through `call`: 429 (after its Retry-After) and 5xx answers
are retried with backoff, at most `max_attempts` tries, and a failure that remains is
raised as an `AzureError` in words (errors.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .config import AzureConfig
from .errors import (
    AzureError,
    error_code,
    explain,
    is_azure_error,
    is_not_found,
    is_retried,
    message_of,
    no_credentials,
    retry_after,
    status_of,
)

T = TypeVar("T")
MAX_BACKOFF = 20.0
CALL_TIMEOUT = 60.0


def _missing(package: str) -> AzureError:
    return AzureError(f"the azure provider needs {package}: pip install 'mlform[azure]'")


def retrying(fn: Callable[[], T], attempts: int, area: str, resource: str = "",
             scope: str = "", sleep: Callable[[float], None] = time.sleep) -> T:
    """`fn()`, tried again after a pause (the service's Retry-After, else a growing one)
    while it fails with a retried error; the last failure is raised in words. Not found
    is raised as is (callers decide)."""
    for attempt in range(attempts):
        try:
            return fn()
        except AzureError:
            raise
        except Exception as exc:
            if is_not_found(exc):
                raise
            if not is_retried(exc) or attempt == attempts - 1:
                if is_azure_error(exc):
                    raise AzureError(explain(exc, area, resource, scope)) from exc
                raise
            asked = retry_after(exc)
            pause = min(MAX_BACKOFF, asked if asked is not None else
                        0.5 * 2 ** attempt * (0.5 + random.random() / 2))
            sleep(pause)
    raise AssertionError("unreachable")


class StaticToken:
    """A TokenCredential handing out an access token acquired beforehand (`credential:
    token`): from `az account get-access-token`, a CI's workload identity step, or the
    tests' loopback fake."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self.token, int(time.time()) + 3600)


def sdk_cloud_name(name: str, metadata: dict[str, str]) -> str:
    """The name a custom cloud is registered under in azure-ai-ml: the SDK keeps the first
    metadata registered under a name for the whole process and silently ignores later ones,
    so the name carries a digest of the endpoints (two workspaces on clouds that share a
    name, or a cloud whose endpoints changed, never reach each other's endpoints)."""
    digest = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode()).hexdigest()[:10]
    return f"{name}-{digest}"


def prepare_sdk() -> None:
    """azure-ai-ml reads AZUREML_CURRENT_CLOUD when it is imported and fails on a cloud it
    does not know (a custom cloud's name, exported by an earlier MLClient in a parent
    process): such a name is dropped before the import; MLClient sets it again."""
    from .config import PUBLIC

    if "azure.ai.ml" not in sys.modules and \
            os.environ.get("AZUREML_CURRENT_CLOUD", "AzureCloud") not in PUBLIC:
        os.environ.pop("AZUREML_CURRENT_CLOUD", None)
    # every handler imports from these on first use: a missing one is said here, once
    for module, package in (("azure.ai.ml", "azure-ai-ml"),
                            ("azure.storage.blob", "azure-storage-blob")):
        try:
            importlib.import_module(module)
        except ImportError:
            raise _missing(package) from None


def _quiet_polling() -> None:
    try:
        from azure.ai.ml._utils._azureml_polling import AzureMLPolling
        from azure.mgmt.core.polling.arm_polling import ARMPolling
    except ImportError:  # another SDK release: its polling may print, nothing breaks
        return
    AzureMLPolling.update_status = ARMPolling.update_status  # type: ignore[method-assign]


class Clients:
    """The workspace, blob and metrics clients, shared by every handler of the provider."""

    def __init__(self, cfg: AzureConfig):
        prepare_sdk()
        self.cfg = cfg
        self._lock = threading.Lock()
        self._credential: Any = None
        self._ml: Any = None
        self._container: Any = None
        self._http: Any = None

    # --- construction -----------------------------------------------------------------
    def credential(self) -> Any:
        """The credential `credential:` names, checked once by asking it for a token, so a
        machine without credentials fails here, in words, before anything is made."""
        with self._lock:
            if self._credential is None:
                self._credential = self._make_credential()
            return self._credential

    def _make_credential(self) -> Any:
        cfg = self.cfg
        if cfg.credential == "token":
            token = os.environ.get(cfg.token_env, "")
            if not token:
                raise AzureError(no_credentials(f"`credential: token` reads the access token "
                                                f"from {cfg.token_env}, which is not set"))
            return StaticToken(token)
        try:
            from azure import identity
        except ImportError:
            raise _missing("azure-identity") from None
        authority = cfg.cloud.active_directory
        host = {"authority": authority.split("://", 1)[-1].rstrip("/")} if authority else {}
        made: Any
        if cfg.credential == "azure-cli":
            made = identity.AzureCliCredential()
        elif cfg.credential == "managed-identity":
            made = identity.ManagedIdentityCredential()
        elif cfg.credential == "environment":
            made = identity.EnvironmentCredential(**host)
        else:
            made = identity.DefaultAzureCredential(**host)
        try:
            made.get_token(self.cfg.resource_manager + ".default")
        except Exception as exc:
            if type(exc).__name__ in ("ClientAuthenticationError",
                                      "CredentialUnavailableError"):
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise AzureError(no_credentials(first[:200])) from None
            raise
        return made

    @property
    def ml(self) -> Any:
        """The workspace's MLClient."""
        if self._ml is not None:
            return self._ml
        credential = self.credential()
        with self._lock:
            if self._ml is None:
                try:
                    from azure.ai.ml import MLClient
                except ImportError:
                    raise _missing("azure-ai-ml") from None
                # the SDK logs a warning per experimental class it touches, and prints a dot
                # to stdout per poll of a deployment: neither is the user's business (the
                # provider reports progress itself)
                logging.getLogger("azure.ai.ml").setLevel(logging.ERROR)
                _quiet_polling()
                cfg = self.cfg
                kwargs: dict[str, Any] = {"show_progress": False, "enable_telemetry": False}
                if cfg.cloud.custom:
                    kwargs.update(cloud=sdk_cloud_name(cfg.cloud.name, cfg.cloud.metadata()),
                                  cloud_metadata=cfg.cloud.metadata())
                elif cfg.cloud.name != "AzureCloud":
                    kwargs["cloud"] = cfg.cloud.name
                self._ml = MLClient(credential, cfg.subscription_id, cfg.resource_group,
                                    cfg.workspace, **kwargs)
            return self._ml

    @property
    def container(self) -> Any:
        """The blob container holding the stack's data (a ContainerClient)."""
        if self._container is not None:
            return self._container
        key = self.storage_key()
        credential: Any = None if key else self.credential()
        with self._lock:
            if self._container is None:
                try:
                    from azure.storage.blob import BlobServiceClient
                except ImportError:
                    raise _missing("azure-storage-blob") from None
                if key:
                    credential = {"account_name": self.cfg.storage_account,
                                  "account_key": key}
                service = BlobServiceClient(self.cfg.blob_url, credential=credential)
                self._container = service.get_container_client(self.cfg.container)
            return self._container

    def storage_key(self) -> str | None:
        name = self.cfg.storage_key_env
        if not name:
            return None
        key = os.environ.get(name)
        if not key:
            raise AzureError(f"`storage_key_env: {name}` names a variable that is not set: "
                             f"export {name}=<the storage account key>, or leave "
                             "`storage_key_env` out to sign blobs with the credential")
        return key

    # --- calls ------------------------------------------------------------------------
    def call(self, area: str, fn: Callable[[], T], *, resource: str = "",
             scope: str = "") -> T:
        """`fn()` retried and explained; not found raised as is."""
        return retrying(fn, self.cfg.max_attempts, area, resource,
                        scope or self.cfg.workspace_id)

    def get_or_none(self, area: str, fn: Callable[[], T], resource: str = "") -> T | None:
        """`fn()`, or None when what it reads does not exist."""
        try:
            return self.call(area, fn, resource=resource)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def wait(self, area: str, start: Callable[[], Any], timeout: float, *, what: str,
             resource: str = "", progress: Any = None) -> Any:
        """Start a long-running operation (an LROPoller) and poll it until done, within
        `timeout`, saying what it waits for while it does."""
        poller = self.call(area, start, resource=resource)
        deadline = time.monotonic() + timeout
        last = ""
        try:
            while not poller.done():
                status = str(poller.status())
                if progress is not None and status != last:
                    progress(f"{what}: {status}")
                    last = status
                if time.monotonic() >= deadline:
                    raise AzureError(f"{what} did not finish within {timeout:.0f}s; it keeps "
                                     "going in Azure. Raise the wait with `timeouts:` in the "
                                     "provider config and apply again")
                poller.wait(min(self.cfg.poll_interval or 0.2, 5.0))
            return poller.result()
        except AzureError:
            raise
        except Exception as exc:
            if not is_azure_error(exc):
                raise
            if status_of(exc) in (None, 200):  # the operation ran, and ended failed
                code = error_code(exc)
                raise AzureError(f"{what} failed: {code + ': ' if code else ''}"
                                 f"{message_of(exc)}") from exc
            raise AzureError(explain(exc, area, resource, self.cfg.workspace_id)) from exc

    def arm_get(self, path: str, params: dict[str, str], *, area: str,
                resource: str = "") -> dict[str, Any]:
        """GET `path` (an ARM resource id path) on Azure Resource Manager, as JSON."""
        return self.arm("GET", path, params, area=area, resource=resource)

    def arm(self, method: str, path: str, params: dict[str, str], body: Any = None, *,
            area: str, resource: str = "") -> dict[str, Any]:
        """`method` on `path` (an ARM resource id path) on Azure Resource Manager; the
        answer as JSON, retried and explained like every call."""
        import requests

        token = self.credential().get_token(self.cfg.resource_manager + ".default").token
        url = self.cfg.resource_manager.rstrip("/") + path

        def send() -> dict[str, Any]:
            got = requests.request(method, url, params=params, json=body, timeout=CALL_TIMEOUT,
                                   headers={"Authorization": f"Bearer {token}"})
            if got.status_code >= 400:
                raise ArmError(got)
            return dict(got.json()) if got.content else {}

        return self.call(area, send, resource=resource, scope=path.split("/providers/Micro"
                                                                        "soft.Insights")[0])

    def close(self) -> None:
        with self._lock:
            for client in (self._container, self._ml):
                close = getattr(client, "close", None)
                if callable(close):
                    with contextlib.suppress(Exception):  # closing is best effort
                        close()
            self._container = self._ml = None


class ArmError(Exception):
    """An ARM REST answer of 400 or more, shaped like azure-core's HttpResponseError
    (status_code, error.code, error.message, response) for errors.py."""

    __module__ = "azure.mlform"

    def __init__(self, response: Any):
        self.response = response
        self.status_code = response.status_code
        try:
            body = response.json().get("error") or {}
        except ValueError:
            body = {}
        self.error = type("Err", (), {"code": body.get("code", ""),
                                      "message": body.get("message", response.text[:300])})()
        super().__init__(f"({self.error.code}) {self.error.message}")
