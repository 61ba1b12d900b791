"""Google Cloud clients for one provider: made on first use, one per service, shared.

Verbs run on parallel threads, so each client is made under a lock exactly once; the
made clients are safe to share. Credentials come from Application Default Credentials
(`google.auth.default()`), or are anonymous when `api_endpoint` is an emulator reached
over http. Every call goes through `call`: 429 and 5xx answers are retried with
exponential backoff (at most `max_attempts` tries), and a failure that remains is raised
as a `GcpError` in words (errors.py).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .config import GcpConfig
from .errors import GcpError, explain, is_not_found, is_retried, no_credentials

T = TypeVar("T")

VERTEX_SERVICES = {
    "jobs": "JobServiceClient",
    "models": "ModelServiceClient",
    "endpoints": "EndpointServiceClient",
    "prediction": "PredictionServiceClient",
}
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
CALL_TIMEOUT = 60.0
"""Seconds one HTTP call may take."""
MAX_BACKOFF = 20.0


def aiplatform_module() -> Any:
    try:
        from google.cloud import aiplatform_v1
    except ImportError:
        raise GcpError("the gcp provider needs google-cloud-aiplatform: "
                       "pip install 'mlform[gcp]'") from None
    return aiplatform_v1


def retrying(fn: Callable[[], T], attempts: int, method: str, resource: str = "",
             sleep: Callable[[float], None] = time.sleep) -> T:
    """`fn()`, tried again after a growing pause while it fails with a retried error;
    the last failure is raised in words. Not found is raised as is (callers decide)."""
    for attempt in range(attempts):
        try:
            return fn()
        except GcpError:
            raise
        except Exception as exc:
            if is_not_found(exc):
                raise
            if not is_retried(exc) or attempt == attempts - 1:
                if type(exc).__module__.startswith(("google.", "requests.", "urllib3.")):
                    raise GcpError(explain(exc, method, resource)) from exc
                raise
            sleep(min(MAX_BACKOFF, 0.5 * 2 ** attempt) * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")


class Clients:
    """One client per service, shared by every handler of the provider."""

    def __init__(self, cfg: GcpConfig):
        self.cfg = cfg
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._credentials: Any = None

    # --- construction -----------------------------------------------------------------
    def get(self, service: str) -> Any:
        found = self._clients.get(service)
        if found is not None:  # the common case takes no lock
            return found
        with self._lock:
            if service not in self._clients:  # another thread may have made it meanwhile
                self._clients[service] = self._make(service)
            return self._clients[service]

    def credentials(self) -> Any:
        """Anonymous for an emulator, else Application Default Credentials (called under
        the lock)."""
        if self._credentials is None:
            if self.cfg.emulated:
                from google.auth.credentials import AnonymousCredentials

                self._credentials = AnonymousCredentials()
            else:
                import google.auth
                from google.auth.exceptions import DefaultCredentialsError

                try:
                    self._credentials, _ = google.auth.default(scopes=SCOPES)
                except DefaultCredentialsError as exc:
                    raise GcpError(no_credentials(str(exc).split(".")[0])) from None
        return self._credentials

    def _make(self, service: str) -> Any:
        if service in VERTEX_SERVICES:
            v1 = aiplatform_module()
            endpoint = self.cfg.api_endpoint or f"{self.cfg.region}-aiplatform.googleapis.com"
            return getattr(v1, VERTEX_SERVICES[service])(
                credentials=self.credentials(), transport="rest",
                client_options={"api_endpoint": endpoint})
        if service == "storage":
            try:
                from google.cloud import storage
            except ImportError:
                raise GcpError("the gcp provider needs google-cloud-storage: "
                               "pip install 'mlform[gcp]'") from None
            options = {"api_endpoint": self.cfg.storage_endpoint} \
                if self.cfg.storage_endpoint else None
            credentials = self.credentials()
            if self.cfg.storage_endpoint and self.cfg.storage_endpoint.startswith("http://"):
                from google.auth.credentials import AnonymousCredentials

                credentials = AnonymousCredentials()
            return storage.Client(project=self.cfg.project, credentials=credentials,
                                  client_options=options)
        if service == "monitoring":
            # Cloud Monitoring's Python client speaks gRPC only: its REST API is called
            # directly (timeSeries.list is one GET), through the same credentials.
            from google.auth.transport.requests import AuthorizedSession

            return AuthorizedSession(self.credentials())
        raise ValueError(f"no client for '{service}'")

    # --- calls ------------------------------------------------------------------------
    def call(self, service: str, method: str, request: Any = None, *, resource: str = "",
             **kwargs: Any) -> Any:
        """`<service client>.<method>(request)`, retried; NotFound raised as is."""
        client = self.get(service)
        fn = getattr(client, method)
        return retrying(lambda: fn(request=request, timeout=CALL_TIMEOUT, **kwargs),
                        self.cfg.max_attempts, method, resource)

    def get_or_none(self, service: str, method: str, name: str, resource: str = "") -> Any:
        """The resource named `name`, or None when it does not exist."""
        try:
            return self.call(service, method, {"name": name}, resource=resource)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def operation(self, service: str, method: str, request: Any, timeout: float, *,
                  resource: str = "") -> Any:
        """Start a long-running operation and wait for its result (within `timeout`)."""
        op = self.call(service, method, request, resource=resource)
        try:
            return op.result(timeout=timeout)
        except Exception as exc:
            if type(exc).__name__ in ("TimeoutError", "RetryError"):
                raise GcpError(f"'{method}'{f' on {resource!r}' if resource else ''} did not "
                               f"finish within {timeout:.0f}s; it keeps running in Vertex AI. "
                               "Raise the wait with `timeouts:` in the provider config and "
                               "apply again") from None
            if type(exc).__module__.startswith("google."):
                raise GcpError(explain(exc, method, resource)) from exc
            raise

    def rest_get(self, service: str, path: str, params: dict[str, Any], *,
                 method: str, resource: str = "") -> Any:
        """GET `path` of a REST API (Cloud Monitoring) as JSON, retried like `call`."""
        from google.api_core.exceptions import from_http_response

        if service != "monitoring":
            raise ValueError(f"no REST API for '{service}'")
        base = self.cfg.monitoring_endpoint or \
            ((self.cfg.api_endpoint or "") if self.cfg.emulated
             else "https://monitoring.googleapis.com")
        session = self.get(service)

        def get() -> Any:
            response = session.get(f"{base.rstrip('/')}/{path.lstrip('/')}", params=params,
                                   timeout=CALL_TIMEOUT)
            if response.status_code >= 400:
                raise from_http_response(response)
            return response.json()

        return retrying(get, self.cfg.max_attempts, method, resource)

    @property
    def storage(self) -> Any:
        return self.get("storage")

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                transport = getattr(client, "transport", None)
                close = getattr(transport, "close", None) or getattr(client, "close", None)
                if callable(close):
                    with contextlib.suppress(Exception):  # closing is best effort
                        close()
            self._clients.clear()
